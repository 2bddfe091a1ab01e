//! Getting output onto the wire in few writes: the queues one batch of effects touched, and
//! the flusher task that writes the queues readers hand over.

use std::sync::Arc;

use super::Shared;
use crate::outbound::Outbound;

/// The output queues one batch of effects wrote to.
#[derive(Default)]
pub(super) struct Touched {
    /// To flush once the core's lock is released: one write each.
    pub(super) dirty: Vec<Arc<Outbound>>,
    /// Past their soft limit: the reader waits on them after the batch.
    pub(super) congested: Vec<Arc<Outbound>>,
}

impl Touched {
    pub(super) fn note(&mut self, o: &Arc<Outbound>, busy: bool) {
        if o.list_for_flush() {
            self.dirty.push(o.clone());
        }
        if busy && !self.congested.iter().any(|x| Arc::ptr_eq(x, o)) {
            self.congested.push(o.clone());
        }
    }

    /// Writes what the batch queued (call without the core's lock).
    pub(super) fn flush(&mut self) {
        for o in self.dirty.drain(..) {
            o.flush();
        }
    }
}

/// Writes the output queues that readers handed over (see [`Shared::hand_to_flusher`]), until
/// every connection is closing; what is left then goes out with each connection's writer.
pub(super) async fn flush_loop(shared: Arc<Shared>) {
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            _ = shared.flusher.notified() => {}
            _ = shared.closing.cancelled() => return,
        }
        std::mem::swap(&mut shared.lock().dirty, &mut batch);
        for o in batch.drain(..) {
            o.flush();
        }
    }
}

impl Shared {
    /// Queues `dirty` for the flusher task, waking it if it had nothing to do.
    pub(super) fn hand_to_flusher(&self, dirty: &mut Vec<Arc<Outbound>>) {
        let first = {
            let mut st = self.lock();
            let first = st.dirty.is_empty();
            st.dirty.append(dirty);
            first
        };
        if first {
            self.flusher.notify_one();
        }
    }
}
