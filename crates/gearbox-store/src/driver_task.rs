//! The writer task itself: serves the requests of a [`super::Driver`] through a [`Backend`].

use std::sync::Arc;
use std::time::Instant;

use tokio::sync::mpsc;

use super::{Backend, Backoff, Request};
use crate::stats::Counters;
use crate::{Batch, HandleMaker, StoreError, StoredJob};

/// An operation that [`Writer::retrying`] may run twice.
enum Op {
    Load,
    Apply(Arc<Batch>),
}

/// What an [`Op`] gave.
enum Done {
    Loaded(Vec<StoredJob>),
    Applied,
}

/// The state owned by the writer task.
pub(super) struct Writer<B: Backend> {
    backend: B,
    /// Where the store is, without password, for logs.
    location: String,
    counters: Arc<Counters>,
    conn: Option<B::Conn>,
    /// True from a lost connection or failed operation until the next success: errors are
    /// logged once per outage, not once per batch.
    failing: bool,
    backoff: Backoff,
    /// The current wait and when the next reconnection attempt is due.
    wait: std::time::Duration,
    next_attempt: Instant,
    /// The last connection error, returned to requests made before the next attempt.
    last_error: Option<StoreError>,
}

impl<B: Backend> Writer<B> {
    pub(super) fn new(
        backend: B,
        location: String,
        counters: Arc<Counters>,
        backoff: Backoff,
    ) -> Self {
        Writer {
            backend,
            location,
            counters,
            conn: None,
            failing: false,
            backoff,
            wait: backoff.first,
            next_attempt: Instant::now(),
            last_error: None,
        }
    }

    /// One connection attempt; on success the back-off starts again from the beginning.
    pub(super) async fn connect(&mut self) -> Result<(), StoreError> {
        let conn = self.backend.connect().await?;
        self.conn = Some(conn);
        self.counters.connected();
        self.wait = self.backoff.first;
        self.last_error = None;
        Ok(())
    }

    /// Serves requests until the store is dropped or closed.
    pub(super) async fn run(mut self, mut rx: mpsc::UnboundedReceiver<Request<B::Control>>) {
        loop {
            let request = if self.conn.is_none() {
                // Disconnected: wait for a request or for the next reconnection attempt.
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
            } else {
                match rx.recv().await {
                    Some(request) => request,
                    None => break,
                }
            };
            match request {
                Request::Commit { batch, reply } => {
                    let _ = reply.send(self.commit(batch).await);
                }
                Request::Load { reply } => {
                    let result = match self.retrying(Op::Load).await {
                        Ok(Done::Loaded(jobs)) => Ok(jobs),
                        Ok(Done::Applied) => Ok(Vec::new()),
                        Err(e) => Err(e),
                    };
                    if let Ok(jobs) = &result {
                        tracing::debug!(store = %self.location, jobs = jobs.len(), "loaded stored jobs");
                    }
                    self.note(&result);
                    let _ = reply.send(result);
                }
                Request::Import {
                    table,
                    mut new_handle,
                    reply,
                } => {
                    let result = self.import(&table, &mut new_handle).await;
                    self.note(&result);
                    let _ = reply.send(result);
                }
                Request::Control(request) => {
                    if self.ensure_connected().await.is_ok() {
                        if let Some(conn) = self.conn.as_mut() {
                            self.backend.control(conn, request).await;
                        }
                    }
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

    async fn commit(&mut self, batch: Batch) -> Result<(), StoreError> {
        if batch.is_empty() {
            return Ok(());
        }
        let started = Instant::now();
        let batch = Arc::new(batch);
        let result = self.retrying(Op::Apply(batch.clone())).await.map(drop);
        match &result {
            Ok(()) => {
                self.counters.committed(&batch);
                tracing::trace!(
                    store = %self.location,
                    writes = batch.len(),
                    micros = started.elapsed().as_micros() as u64,
                    "commit"
                );
            }
            Err(_) => self.counters.failed(),
        }
        self.note(&result);
        result
    }

    /// Runs `op` in a transaction on the connection. When a connection that had been working
    /// turns out to be lost (the server restarted while we were idle, say), connects again at
    /// once and runs `op` a second time: loading and applying a batch are idempotent.
    async fn retrying(&mut self, op: Op) -> Result<Done, StoreError> {
        let had_connection = self.conn.is_some();
        self.ensure_connected().await?;
        match self.run_once(&op).await {
            Err(StoreError::Unavailable { .. }) if had_connection => {
                tracing::debug!(store = %self.location, "connection lost; reconnecting once");
                self.conn = None;
                self.next_attempt = Instant::now();
                self.ensure_connected().await?;
                self.run_once(&op).await
            }
            other => other,
        }
    }

    async fn run_once(&mut self, op: &Op) -> Result<Done, StoreError> {
        let result = match (self.conn.as_mut(), op) {
            (Some(conn), Op::Load) => self.backend.load(conn).await.map(Done::Loaded),
            (Some(conn), Op::Apply(batch)) => self
                .backend
                .apply(conn, batch.clone())
                .await
                .map(|()| Done::Applied),
            (None, _) => Err(StoreError::Closed),
        };
        self.finish_tx(result).await
    }

    /// Makes sure there is a live connection: reconnects if an attempt is due, otherwise
    /// fails at once with the last connection error.
    async fn ensure_connected(&mut self) -> Result<(), StoreError> {
        if let Some(conn) = &self.conn {
            if !self.backend.is_closed(conn) {
                return Ok(());
            }
            self.conn = None;
            self.next_attempt = Instant::now();
            self.wait = self.backoff.first;
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
                self.next_attempt = Instant::now() + self.wait;
                self.wait = (self.wait * 2).min(self.backoff.max);
                if self.failing {
                    tracing::debug!(store = %self.location, error = %e, "job store reconnection failed");
                } else {
                    self.failing = true;
                    tracing::error!(store = %self.location, error = %e, cause = %cause(&e), "job store failed: cannot reach it; background submits fail until it is back, reconnecting");
                }
                self.last_error = Some(e.clone());
                Err(e)
            }
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
                    self.conn = None;
                    self.next_attempt = Instant::now();
                    self.wait = self.backoff.first;
                    self.last_error = Some(e.clone());
                }
                if self.failing {
                    tracing::debug!(store = %self.location, error = %e, "job store operation failed again");
                } else if unavailable
                    || matches!(
                        e,
                        StoreError::DiskFull { .. }
                            | StoreError::Io { .. }
                            | StoreError::ReadOnly { .. }
                            | StoreError::Locked { .. }
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

    async fn import(
        &mut self,
        table: &str,
        new_handle: &mut HandleMaker,
    ) -> Result<usize, StoreError> {
        self.backend.check_table(table)?;
        self.ensure_connected().await?;
        let result = match self.conn.as_mut() {
            Some(conn) => self.backend.import(conn, table, new_handle).await,
            None => Err(StoreError::Closed),
        };
        match self.finish_tx(result).await? {
            Some(count) => {
                self.counters.imported(count);
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
