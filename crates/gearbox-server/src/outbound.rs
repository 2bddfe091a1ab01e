//! A connection's outgoing bytes: a byte-bounded buffer that the core's dispatch encodes
//! into (from any task) and one writer task drains with a single write per wake-up.
//!
//! Flow control has two levels. Past the soft limit ([`Outbound::congested`]) the connection
//! that produced the output stops reading until the buffer drains (see `net`), so a peer that
//! reads slowly throttles its producers instead of growing the server's memory. Past the hard
//! cap the peer is dropped at once; a single packet larger than the cap is still accepted into
//! an empty buffer.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use bytes::BytesMut;
use gearbox_proto::Response;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Output queue of one connection.
#[derive(Debug)]
pub struct Outbound {
    // A std Mutex: held only to append or swap bytes, never across an await.
    buf: Mutex<BytesMut>,
    notify: Notify,
    /// Stop reading; the writer flushes what is queued, then closes.
    pub close: CancellationToken,
    /// Stop everything now without flushing (peer not reading, server aborting).
    pub abort: CancellationToken,
    overflowed: AtomicBool,
    drained: Notify,
    cap: usize,
}

impl Outbound {
    /// An empty queue that aborts the connection past `cap` unsent bytes.
    pub fn new(cap: usize) -> Outbound {
        Outbound {
            buf: Mutex::new(BytesMut::with_capacity(4096)),
            notify: Notify::new(),
            close: CancellationToken::new(),
            abort: CancellationToken::new(),
            overflowed: AtomicBool::new(false),
            drained: Notify::new(),
            cap,
        }
    }

    /// Appends under the lock; returns whether the queue is now past the soft limit.
    fn append(&self, f: impl FnOnce(&mut BytesMut)) -> bool {
        if self.abort.is_cancelled() {
            return false;
        }
        let (len, over) = {
            let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
            let was_empty = b.is_empty();
            f(&mut b);
            (b.len(), !was_empty && b.len() > self.cap)
        };
        if over {
            self.overflowed.store(true, Ordering::Relaxed);
            self.abort.cancel();
            self.close.cancel();
        }
        self.notify.notify_one();
        len > self.soft_limit()
    }

    /// Queues one packet; returns whether the queue is now congested (see [`congested`]).
    ///
    /// [`congested`]: Outbound::congested
    pub fn push(&self, r: &Response) -> bool {
        self.append(|b| r.encode(b))
    }

    /// Queues raw bytes (admin replies); returns whether the queue is now congested.
    pub fn push_bytes(&self, bytes: &[u8]) -> bool {
        self.append(|b| b.extend_from_slice(bytes))
    }

    /// Bytes queued and not yet handed to the writer.
    pub fn pending(&self) -> usize {
        self.buf.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    /// Whether more than a quarter of the cap is waiting: producers should pause.
    pub fn congested(&self) -> bool {
        self.pending() > self.soft_limit()
    }

    fn soft_limit(&self) -> usize {
        self.cap / 4
    }

    /// Waits until the queue is back under the soft limit (or the connection is going away).
    pub async fn wait_drained(&self) {
        loop {
            let drained = self.drained.notified();
            if !self.congested() || self.abort.is_cancelled() {
                return;
            }
            tokio::select! {
                _ = drained => {}
                _ = self.abort.cancelled() => return,
            }
        }
    }

    /// Called by the writer after each write: wakes producers waiting in [`wait_drained`].
    ///
    /// [`wait_drained`]: Outbound::wait_drained
    pub fn wrote(&self) {
        self.drained.notify_waiters();
    }

    /// Whether the peer let more than the cap pile up.
    pub fn overflowed(&self) -> bool {
        self.overflowed.load(Ordering::Relaxed)
    }

    /// Asks the writer to flush and close.
    pub fn close(&self) {
        self.close.cancel();
        self.notify.notify_one();
    }

    /// Waits for output, then swaps it into `into` (which must be empty).
    pub async fn take(&self, into: &mut BytesMut) {
        loop {
            {
                let mut b = self.buf.lock().unwrap_or_else(|e| e.into_inner());
                if !b.is_empty() {
                    std::mem::swap(&mut *b, into);
                    return;
                }
            }
            if self.close.is_cancelled() {
                return;
            }
            self.notify.notified().await;
        }
    }
}
