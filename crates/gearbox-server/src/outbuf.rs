//! Bytes queued for one socket: an open tail that small packets are encoded into, behind any
//! number of frozen segments. A large payload (a 1 MB WORK_COMPLETE, say) becomes a segment of
//! its own, shared with the buffer it was read into, and leaves with a vectored write: it
//! crosses the server without being copied.

use std::collections::VecDeque;
use std::io::{self, IoSlice};

use bytes::{Buf, Bytes, BytesMut};
use gearbox_proto::Response;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::tcp::OwnedWriteHalf;

/// Payloads at least this long are sent from where they are instead of being copied.
pub const SPLIT_AT: usize = 16 * 1024;

/// Most slices handed to one vectored write.
const MAX_SLICES: usize = 64;

/// An output queue's bytes, in order: `segments`, then `tail`.
#[derive(Debug, Default)]
pub struct OutBuf {
    segments: VecDeque<Bytes>,
    segments_len: usize,
    tail: BytesMut,
}

impl OutBuf {
    /// An empty buffer whose tail has room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> OutBuf {
        OutBuf {
            segments: VecDeque::new(),
            segments_len: 0,
            tail: BytesMut::with_capacity(capacity),
        }
    }

    /// Bytes queued.
    pub fn len(&self) -> usize {
        self.segments_len + self.tail.len()
    }

    /// Whether nothing is queued.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Queues one packet; a payload of [`SPLIT_AT`] bytes or more is queued by reference.
    pub fn push(&mut self, r: &Response) {
        if let Some(payload) = r.encode_head(&mut self.tail, SPLIT_AT) {
            let head = self.tail.split().freeze();
            self.push_segment(head);
            self.push_segment(payload);
        }
    }

    /// Queues raw bytes (admin replies).
    pub fn extend(&mut self, bytes: &[u8]) {
        self.tail.extend_from_slice(bytes);
    }

    fn push_segment(&mut self, b: Bytes) {
        if !b.is_empty() {
            self.segments_len += b.len();
            self.segments.push_back(b);
        }
    }

    /// One non-blocking write of as much as the socket takes (vectored when there are
    /// segments); returns the bytes written. `WouldBlock` when the socket is full.
    pub fn try_write(&mut self, sock: &OwnedWriteHalf) -> io::Result<usize> {
        let n = if self.segments.is_empty() {
            sock.try_write(&self.tail)?
        } else {
            let mut slices = [IoSlice::new(&[]); MAX_SLICES];
            let mut k = 0;
            for s in self.segments.iter().take(MAX_SLICES - 1) {
                slices[k] = IoSlice::new(s);
                k += 1;
            }
            if k < MAX_SLICES && !self.tail.is_empty() && k == self.segments.len() {
                slices[k] = IoSlice::new(&self.tail);
                k += 1;
            }
            sock.try_write_vectored(&slices[..k])?
        };
        self.advance(n);
        Ok(n)
    }

    /// Writes everything queued to `w` (a TLS stream) in order, then flushes it; the buffer is
    /// empty afterwards. Returns the bytes written.
    pub async fn write_to<W: AsyncWrite + Unpin>(&mut self, w: &mut W) -> io::Result<usize> {
        let n = self.len();
        while let Some(segment) = self.segments.front() {
            w.write_all(segment).await?;
            self.segments_len -= segment.len();
            self.segments.pop_front();
        }
        w.write_all(&self.tail).await?;
        self.tail.clear();
        w.flush().await?;
        Ok(n)
    }

    /// Drops the first `n` bytes (written).
    fn advance(&mut self, mut n: usize) {
        while n > 0 {
            match self.segments.front_mut() {
                Some(front) if n >= front.len() => {
                    n -= front.len();
                    self.segments_len -= front.len();
                    self.segments.pop_front();
                }
                Some(front) => {
                    front.advance(n);
                    self.segments_len -= n;
                    n = 0;
                }
                None => {
                    self.tail.advance(n.min(self.tail.len()));
                    n = 0;
                }
            }
        }
    }

    /// Everything queued, as one contiguous copy (tests).
    #[cfg(test)]
    pub fn to_vec(&self) -> Vec<u8> {
        let mut v: Vec<u8> = self
            .segments
            .iter()
            .flat_map(|s| s.iter().copied())
            .collect();
        v.extend_from_slice(&self.tail);
        v
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete(len: usize) -> Response {
        Response::WorkComplete {
            handle: Bytes::from_static(b"H:x:1"),
            data: Bytes::from(vec![b'd'; len]),
        }
    }

    #[test]
    fn large_payloads_become_segments_in_order() {
        let mut b = OutBuf::default();
        let mut expected = BytesMut::new();
        for r in [
            Response::Noop,
            complete(SPLIT_AT),
            complete(10),
            complete(SPLIT_AT * 3),
        ] {
            r.encode(&mut expected);
            b.push(&r);
        }
        b.extend(b"OK\n");
        expected.extend_from_slice(b"OK\n");
        assert_eq!(b.segments.len(), 4, "two heads, two payloads");
        assert_eq!(b.len(), expected.len());
        assert_eq!(b.to_vec(), expected.to_vec());
    }

    #[test]
    fn advancing_crosses_segments_and_the_tail() {
        let mut b = OutBuf::default();
        b.push(&complete(SPLIT_AT));
        b.extend(b"tail");
        let all = b.to_vec();
        for step in [5, SPLIT_AT, 3] {
            let before = b.to_vec();
            b.advance(step);
            assert_eq!(b.to_vec(), before[step..].to_vec());
        }
        assert_eq!(b.len(), all.len() - 5 - SPLIT_AT - 3);
    }
}
