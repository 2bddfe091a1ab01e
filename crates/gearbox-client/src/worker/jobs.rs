//! The jobs of one slot: their tasks, what is known about each for the log, and the counts
//! reported at shutdown.

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use bytes::Bytes;
use tokio::task::{self, JoinError, JoinSet};
use tokio::time::Instant;

use crate::Error;

/// Jobs of a slot that were running when shutdown was requested.
#[derive(Debug, Default)]
pub(crate) struct Drained {
    pub finished: usize,
    pub abandoned: usize,
}

/// A job being run, for the log when its connection dies or it is abandoned.
struct Running {
    handle: Bytes,
    function: Arc<str>,
    /// Which connection of the slot (by count) it came from.
    connection: u64,
}

type Reaped = Result<(task::Id, bool), JoinError>;

/// The running jobs of one slot. A job of a lost connection stays here until it ends.
pub(crate) struct SlotJobs {
    server: Arc<str>,
    /// Each task says whether its job was still running when shutdown was requested.
    tasks: JoinSet<bool>,
    running: HashMap<task::Id, Running>,
    pub drained: Drained,
}

impl SlotJobs {
    /// No jobs yet, for a slot of `server`.
    pub(crate) fn new(server: Arc<str>) -> SlotJobs {
        SlotJobs {
            server,
            tasks: JoinSet::new(),
            running: HashMap::new(),
            drained: Drained::default(),
        }
    }

    /// Whether no job is running.
    pub(crate) fn is_empty(&self) -> bool {
        self.tasks.is_empty()
    }

    /// Runs `task`, job `handle` of `function` from connection `connection`.
    pub(crate) fn spawn(
        &mut self,
        task: impl Future<Output = bool> + Send + 'static,
        handle: Bytes,
        function: Arc<str>,
        connection: u64,
    ) {
        let id = self.tasks.spawn(task).id();
        let r = Running {
            handle,
            function,
            connection,
        };
        self.running.insert(id, r);
    }

    /// Whether connection `connection` is running a job (one at a time per connection).
    pub(crate) fn busy(&self, connection: u64) -> bool {
        self.running.values().any(|r| r.connection == connection)
    }

    /// The next job to end (pending forever while there is none, for `select!`).
    pub(crate) async fn next(&mut self) -> Reaped {
        match self.tasks.join_next_with_id().await {
            Some(r) => r,
            None => std::future::pending().await,
        }
    }

    /// Forgets a job that ended; counts it if it finished after shutdown was requested.
    pub(crate) fn reaped(&mut self, r: Reaped) {
        let id = match r {
            Ok((id, during_shutdown)) => {
                self.drained.finished += usize::from(during_shutdown);
                id
            }
            Err(e) => {
                if e.is_panic() {
                    tracing::error!(server = %self.server, "a job task panicked while reporting");
                }
                e.id()
            }
        };
        self.running.remove(&id);
    }

    /// Logs the jobs whose results lost connection `connection` took with it.
    pub(crate) fn log_lost(&self, connection: u64, error: &Error) {
        for r in self.running.values().filter(|r| r.connection == connection) {
            tracing::warn!(
                server = %self.server,
                handle = %String::from_utf8_lossy(&r.handle),
                function = %r.function,
                error = %error,
                "connection lost while the job ran: its result cannot be reported \
                 (the server re-queues or fails it)"
            );
        }
    }

    /// Waits for running jobs until `deadline`, then abandons (cancels) the rest.
    pub(crate) async fn drain(&mut self, deadline: Instant) {
        while !self.tasks.is_empty() {
            match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                Ok(Some(r)) => self.reaped(r),
                Ok(None) => break,
                Err(_) => {
                    for r in self.running.values() {
                        tracing::warn!(
                            server = %self.server,
                            handle = %String::from_utf8_lossy(&r.handle),
                            function = %r.function,
                            "job still running at the shutdown timeout: abandoned"
                        );
                    }
                    self.drained.abandoned += self.tasks.len();
                    self.running.clear();
                    self.tasks.shutdown().await;
                }
            }
        }
    }
}
