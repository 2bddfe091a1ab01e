//! The writer task itself: serves the requests of a [`super::Remote`] through a [`Backend`].

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;

use super::{Backend, Counters, Reply, Request, MAX_BACKOFF, MIN_BACKOFF};
use crate::{Batch, StoreError};

/// The most commit requests put into one transaction.
const MAX_GROUP: usize = 4096;

/// The state owned by the writer task.
pub(super) struct Writer<B: Backend> {
    pub backend: B,
    /// Server and database, without password, for logs.
    pub location: String,
    pub counters: Arc<Counters>,
    pub conn: Option<B::Conn>,
    /// True from a lost connection or failed transaction until the next success: errors are
    /// logged once per outage, not once per batch.
    pub failing: bool,
    /// The current back-off and when the next reconnection attempt is due.
    pub backoff: Duration,
    pub next_attempt: Instant,
    /// The last connection error, returned to requests made before the next attempt.
    pub last_error: Option<StoreError>,
}

impl<B: Backend> Writer<B> {
    pub async fn connect(&mut self) -> Result<(), StoreError> {
        let conn = self.backend.connect().await?;
        self.conn = Some(conn);
        self.counters.connects.fetch_add(1, Ordering::Relaxed);
        self.backoff = MIN_BACKOFF;
        self.last_error = None;
        Ok(())
    }

    /// Serves requests until the store is dropped or closed.
    pub async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Request>) {
        let mut next = None;
        loop {
            let request = match next.take() {
                Some(request) => request,
                None if self.conn.is_none() => {
                    tokio::select! {
                        r = rx.recv() => match r {
                            Some(r) => r,
                            None => break,
                        },
                        _ = tokio::time::sleep_until(self.next_attempt.into()) => {
                            let _ = self.ensure_connected().await;
                            continue;
                        }
                    }
                }
                None => match rx.recv().await {
                    Some(request) => request,
                    None => break,
                },
            };
            match request {
                Request::Commit { batch, reply } => {
                    let mut batches = vec![batch];
                    let mut replies = vec![reply];
                    while batches.len() < MAX_GROUP {
                        match rx.try_recv() {
                            Ok(Request::Commit { batch, reply }) => {
                                batches.push(batch);
                                replies.push(reply);
                            }
                            Ok(other) => {
                                next = Some(other);
                                break;
                            }
                            Err(_) => break,
                        }
                    }
                    self.commit_group(batches, replies).await;
                }
                Request::Load { reply } => {
                    let result = match self.ensure_connected().await {
                        Ok(()) => match self.conn.as_mut() {
                            Some(conn) => self.backend.load(conn).await,
                            None => Err(StoreError::Closed),
                        },
                        Err(e) => Err(e),
                    };
                    self.note(&result);
                    let _ = reply.send(result);
                }
                Request::Import {
                    table,
                    mut new_handle,
                    reply,
                } => {
                    let result = self.import(&table, &mut *new_handle).await;
                    self.note(&result);
                    let _ = reply.send(result);
                }
                Request::Close { reply } => {
                    if let Some(conn) = self.conn.take() {
                        self.backend.disconnect(conn).await;
                    }
                    tracing::debug!(store = %self.location, "job store closed");
                    let _ = reply.send(());
                    return;
                }
            }
        }
        if let Some(conn) = self.conn.take() {
            self.backend.disconnect(conn).await;
        }
        tracing::debug!(store = %self.location, "job store writer stopped");
    }

    /// Makes sure there is a live connection: reconnects if an attempt is due, otherwise
    /// fails at once with the last connection error.
    async fn ensure_connected(&mut self) -> Result<(), StoreError> {
        if let Some(conn) = &self.conn {
            if !self.backend.is_closed(conn) {
                return Ok(());
            }
            self.lost(None);
        }
        if Instant::now() < self.next_attempt {
            return Err(self.last_error.clone().unwrap_or(StoreError::Closed));
        }
        match self.connect().await {
            Ok(()) => {
                if self.failing {
                    self.failing = false;
                    tracing::info!(store = %self.location, "job store reconnected: commits succeed again");
                }
                Ok(())
            }
            Err(e) => {
                self.next_attempt = Instant::now() + self.backoff;
                self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
                if self.failing {
                    tracing::debug!(store = %self.location, error = %e, "job store reconnection failed");
                } else {
                    self.failing = true;
                    tracing::error!(store = %self.location, error = %e, cause = %cause(&e), "cannot reach the job store; background submits fail until it is back, reconnecting");
                }
                self.last_error = Some(e.clone());
                Err(e)
            }
        }
    }

    /// Forgets a lost connection; the next attempt is due at once.
    fn lost(&mut self, err: Option<&StoreError>) {
        self.conn = None;
        self.next_attempt = Instant::now();
        self.backoff = MIN_BACKOFF;
        if let Some(e) = err {
            self.last_error = Some(e.clone());
        }
    }

    /// After a failed transaction that left the connection up: lets the backend end it, and
    /// drops the connection if even that fails.
    async fn finish_tx<T>(&mut self, result: Result<T, StoreError>) -> Result<T, StoreError> {
        if let Err(e) = &result {
            if !matches!(e, StoreError::Unavailable { .. }) {
                if let Some(conn) = self.conn.as_mut() {
                    if !self.backend.rollback(conn).await {
                        self.conn = None;
                        self.next_attempt = Instant::now();
                    }
                }
            }
        }
        result
    }

    /// After any operation: a connection loss drops the connection, and outages are logged
    /// once when they start and once when they end.
    fn note<T>(&mut self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => {
                if self.failing {
                    self.failing = false;
                    tracing::info!(store = %self.location, "job store recovered: commits succeed again");
                }
            }
            Err(e) => {
                let unavailable = matches!(e, StoreError::Unavailable { .. });
                if unavailable && self.conn.is_some() {
                    self.lost(Some(e));
                }
                if self.failing {
                    tracing::debug!(store = %self.location, error = %e, "job store operation failed again");
                } else if unavailable
                    || matches!(
                        e,
                        StoreError::DiskFull { .. }
                            | StoreError::Io { .. }
                            | StoreError::ReadOnly { .. }
                    )
                {
                    self.failing = true;
                    tracing::error!(store = %self.location, error = %e, cause = %cause(e), "job store failed; background submits fail until it recovers");
                } else {
                    tracing::warn!(store = %self.location, error = %e, cause = %cause(e), "job store operation failed");
                }
            }
        }
    }

    async fn commit_group(&mut self, batches: Vec<Batch>, replies: Vec<Reply<()>>) {
        let writes: usize = batches.iter().map(Batch::len).sum();
        if writes == 0 {
            for reply in replies {
                let _ = reply.send(Ok(()));
            }
            return;
        }
        let started = Instant::now();
        let result = match self.ensure_connected().await {
            Ok(()) => {
                let result = match self.conn.as_mut() {
                    Some(conn) => self.backend.apply(conn, &batches).await,
                    None => Err(StoreError::Closed),
                };
                self.finish_tx(result).await
            }
            Err(e) => Err(e),
        };
        match &result {
            Ok(()) => {
                let c = &self.counters;
                c.transactions.fetch_add(1, Ordering::Relaxed);
                c.batches.fetch_add(batches.len() as u64, Ordering::Relaxed);
                let persisted: usize = batches.iter().map(|b| b.persist.len()).sum();
                c.persisted.fetch_add(persisted as u64, Ordering::Relaxed);
                c.removed
                    .fetch_add((writes - persisted) as u64, Ordering::Relaxed);
                tracing::trace!(
                    store = %self.location,
                    batches = batches.len(),
                    writes,
                    micros = started.elapsed().as_micros() as u64,
                    "group commit"
                );
            }
            Err(_) => {
                self.counters.failures.fetch_add(1, Ordering::Relaxed);
            }
        }
        self.note(&result);
        for reply in replies {
            let _ = reply.send(result.clone());
        }
    }

    async fn import(
        &mut self,
        table: &str,
        new_handle: &mut (dyn FnMut() -> Bytes + Send),
    ) -> Result<usize, StoreError> {
        self.backend.check_table(table)?;
        self.ensure_connected().await?;
        let result = match self.conn.as_mut() {
            Some(conn) => self.backend.import(conn, table, new_handle).await,
            None => Err(StoreError::Closed),
        };
        match self.finish_tx(result).await? {
            Some(count) => {
                let c = &self.counters;
                c.transactions.fetch_add(1, Ordering::Relaxed);
                c.persisted.fetch_add(count as u64, Ordering::Relaxed);
                Ok(count)
            }
            None => Ok(0),
        }
    }
}

/// The driver's own message behind a store error (the store error says what to do, this says
/// what happened), for logs.
fn cause(e: &StoreError) -> String {
    match std::error::Error::source(e) {
        Some(source) => source.to_string(),
        None => String::new(),
    }
}
