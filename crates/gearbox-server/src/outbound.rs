//! A connection's outgoing bytes: a byte-bounded buffer that the core's dispatch encodes
//! into (from any task), written to the socket directly by whichever task produced them.
//!
//! Writing is two-tier. After a batch of effects, the producing task calls
//! [`Outbound::flush`] on every queue it touched: one non-blocking `write` carries everything
//! queued, with no task switch. Only when the socket is full (or the write is partial) does the
//! connection's writer task take over, waiting for the socket to become writable; while it
//! holds bytes, producers only append, so the byte order is kept.
//!
//! Flow control has two levels. Past the soft limit ([`Outbound::congested`]) the connection
//! that produced the output stops reading until the buffer drains (see `net`), so a peer that
//! reads slowly throttles its producers instead of growing the server's memory. Past the hard
//! cap the peer is dropped at once; a single packet larger than the cap is still accepted into
//! an empty buffer.

use std::io;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use gearbox_proto::Response;

use crate::metrics::{self, ServerMetrics};
use crate::outbuf::OutBuf;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// Bytes waiting, and whether the writer task currently owns the socket.
#[derive(Debug)]
struct Pending {
    bytes: OutBuf,
    /// The writer task holds bytes taken from this queue: nobody else may write.
    writer_busy: bool,
}

/// Output queue of one connection.
#[derive(Debug)]
pub struct Outbound {
    // A std Mutex: held to append, to swap, or for one non-blocking write; never across an
    // await.
    buf: Mutex<Pending>,
    notify: Notify,
    /// Stop reading; the writer flushes what is queued, then closes.
    pub close: CancellationToken,
    /// Stop everything now without flushing (peer not reading, server aborting): see
    /// [`abort`](Self::abort).
    abort: CancellationToken,
    /// The same as `abort`, read on every packet without the token's lock.
    aborted: AtomicBool,
    overflowed: AtomicBool,
    drained: Notify,
    cap: usize,
    sock: Option<OwnedWriteHalf>,
    /// Already on some producer's list of queues to flush.
    listed: AtomicBool,
    /// Where the bytes written are counted.
    metrics: Arc<ServerMetrics>,
}

impl Outbound {
    /// An empty queue for `sock` that aborts the connection past `cap` unsent bytes and
    /// counts what it writes in `metrics`. Without a socket (a TLS connection, whose writer
    /// task owns the stream; tests), bytes stay queued until [`take`](Self::take)n, and each
    /// [`flush`](Self::flush) wakes the taker.
    pub fn new(cap: usize, sock: Option<OwnedWriteHalf>, metrics: Arc<ServerMetrics>) -> Outbound {
        Outbound {
            buf: Mutex::new(Pending {
                bytes: OutBuf::with_capacity(4096),
                writer_busy: false,
            }),
            notify: Notify::new(),
            close: CancellationToken::new(),
            abort: CancellationToken::new(),
            aborted: AtomicBool::new(false),
            overflowed: AtomicBool::new(false),
            drained: Notify::new(),
            cap,
            sock,
            listed: AtomicBool::new(false),
            metrics,
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        self.buf.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Appends under the lock; returns whether the queue is now past the soft limit.
    fn append(&self, f: impl FnOnce(&mut OutBuf)) -> bool {
        if self.is_aborted() {
            return false;
        }
        let (len, over) = {
            let mut p = self.lock();
            let was_empty = p.bytes.is_empty();
            f(&mut p.bytes);
            (p.bytes.len(), !was_empty && p.bytes.len() > self.cap)
        };
        if over {
            self.overflowed.store(true, Ordering::Relaxed);
            self.abort();
            self.close.cancel();
        }
        len > self.soft_limit()
    }

    /// Queues one packet; returns whether the queue is now congested (see [`congested`]).
    /// Nothing is sent until [`flush`](Self::flush).
    ///
    /// [`congested`]: Outbound::congested
    pub fn push(&self, r: &Response) -> bool {
        self.append(|b| b.push(r))
    }

    /// Queues raw bytes (admin replies); returns whether the queue is now congested.
    pub fn push_bytes(&self, bytes: &[u8]) -> bool {
        self.append(|b| b.extend(bytes))
    }

    /// Marks the queue as listed for a flush; returns whether it was not already (the caller
    /// must then [`flush`](Self::flush) it once its batch is done).
    pub fn list_for_flush(&self) -> bool {
        !self.listed.swap(true, Ordering::SeqCst)
    }

    /// Sends what is queued with one non-blocking write, unless the writer task owns the
    /// socket; hands whatever the socket does not take to the writer task.
    pub fn flush(&self) {
        self.listed.store(false, Ordering::SeqCst);
        let Some(sock) = &self.sock else {
            self.notify.notify_one();
            return;
        };
        let mut p = self.lock();
        if p.writer_busy || p.bytes.is_empty() || self.is_aborted() {
            return;
        }
        match p.bytes.try_write(sock) {
            Ok(n) => metrics::add(&self.metrics.bytes_sent, n as u64),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            Err(_) => {
                drop(p);
                self.abort();
                return;
            }
        }
        let rest = !p.bytes.is_empty();
        drop(p);
        if rest {
            self.notify.notify_one();
        } else {
            self.drained.notify_waiters();
        }
    }

    /// Stops the connection now, dropping what is queued (the peer is not reading, the
    /// socket failed, or the server is aborting).
    pub fn abort(&self) {
        self.aborted.store(true, Ordering::Release);
        self.abort.cancel();
    }

    /// Whether [`abort`](Self::abort) was called.
    pub fn is_aborted(&self) -> bool {
        self.aborted.load(Ordering::Acquire)
    }

    /// Resolves once [`abort`](Self::abort) is called.
    pub async fn aborted(&self) {
        self.abort.cancelled().await
    }

    /// Bytes queued and not yet handed to the writer.
    pub fn pending(&self) -> usize {
        self.lock().bytes.len()
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
            if !self.congested() || self.is_aborted() {
                return;
            }
            tokio::select! {
                _ = drained => {}
                _ = self.abort.cancelled() => return,
            }
        }
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

    /// Waits for output, then swaps it into `into` (which must be empty) and marks the writer
    /// busy until [`wrote`](Self::wrote). Returns with `into` empty once closed and drained.
    pub async fn take(&self, into: &mut OutBuf) {
        loop {
            let notified = self.notify.notified();
            {
                let mut p = self.lock();
                if !p.bytes.is_empty() {
                    std::mem::swap(&mut p.bytes, into);
                    p.writer_busy = true;
                    return;
                }
            }
            if self.close.is_cancelled() {
                return;
            }
            notified.await;
        }
    }

    /// Called by the writer after writing what it took: producers may write directly again,
    /// and those waiting in [`wait_drained`](Self::wait_drained) wake up.
    pub fn wrote(&self) {
        self.lock().writer_busy = false;
        self.drained.notify_waiters();
        // Bytes appended while the writer was busy have not been flushed by anyone.
        self.flush();
    }

    /// Sends FIN (shuts the socket's write side), after the writer's last write.
    pub fn shutdown_write(&self) {
        if let Some(sock) = &self.sock {
            use std::os::fd::AsRawFd;
            let fd = AsRef::<tokio::net::TcpStream>::as_ref(sock).as_raw_fd();
            // SAFETY: shutdown(2) on a descriptor this queue's socket owns; errors (already
            // closed by the peer) do not matter here.
            unsafe {
                libc::shutdown(fd, libc::SHUT_WR);
            }
        }
    }

    /// Writes all of `bytes` to the socket, waiting for it to become writable (the writer
    /// task); `bytes` is empty afterwards.
    pub async fn write_all(&self, bytes: &mut OutBuf) -> io::Result<()> {
        let Some(sock) = &self.sock else {
            return Ok(());
        };
        while !bytes.is_empty() {
            sock.writable().await?;
            match bytes.try_write(sock) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => metrics::add(&self.metrics.bytes_sent, n as u64),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::AsyncReadExt;
    use tokio::net::{TcpListener, TcpStream};

    async fn pair() -> (Outbound, TcpStream) {
        let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let a = TcpStream::connect(l.local_addr().unwrap()).await.unwrap();
        let (b, _) = l.accept().await.unwrap();
        let (_rd, wr) = a.into_split();
        (Outbound::new(1 << 20, Some(wr), Arc::default()), b)
    }

    #[tokio::test]
    async fn flush_writes_directly_without_the_writer() {
        let (o, mut peer) = pair().await;
        o.push(&Response::Noop);
        o.push(&Response::NoJob);
        o.flush();
        assert_eq!(o.pending(), 0);
        let mut got = [0u8; 24];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got[4..8], &6u32.to_be_bytes(), "NOOP first");
        assert_eq!(&got[16..20], &10u32.to_be_bytes(), "then NO_JOB");
    }

    #[tokio::test]
    async fn producers_only_append_while_the_writer_holds_bytes() {
        let (o, mut peer) = pair().await;
        o.push_bytes(b"first ");
        let mut taken = OutBuf::default();
        o.take(&mut taken).await;
        o.push_bytes(b"second");
        o.flush();
        assert_eq!(o.pending(), 6, "must not overtake the writer's bytes");
        o.write_all(&mut taken).await.unwrap();
        o.wrote();
        let mut got = [0u8; 12];
        peer.read_exact(&mut got).await.unwrap();
        assert_eq!(&got, b"first second");
    }
}
