//! The cluster mode on the writer task: what the [`Postgres`](crate::backend::Postgres)
//! backend does differently when it is a cluster member (the migration's additions, LISTEN,
//! joining), and the cluster requests it serves ([`Control`]; served in `cluster_ops`).

use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use gearbox_store::cluster::{Beat, ClusterMember, ClusterView, Coalesced, Want};
use gearbox_store::sql::SqlTable;
use gearbox_store::{Batch, StoreError, StoredJob};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{oneshot, Notify};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Client, Transaction};

use crate::cluster_sql::ClusterSql;
use crate::sql::classify;

/// Where the answer to a cluster request goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// A cluster request to the writer task, with its reply channel. A request the task cannot
/// serve (no connection) is dropped with its channel, which the store reports as
/// [`StoreError::Unavailable`].
pub enum Control {
    /// [`gearbox_store::cluster::ClusterStore::commit_cluster`].
    Commit {
        /// The batch.
        batch: Batch,
        /// The jobs coalesced with one already in the cluster.
        reply: Reply<Vec<Coalesced>>,
    },
    /// [`gearbox_store::cluster::ClusterStore::claim`].
    Claim {
        /// Free due jobs wanted per function.
        wants: Vec<Want>,
        /// Free timed jobs wanted, whatever their function.
        timed: u32,
        /// The jobs now held.
        reply: Reply<Vec<StoredJob>>,
    },
    /// [`gearbox_store::cluster::ClusterStore::release`].
    Release {
        /// The handles to free.
        handles: Vec<Bytes>,
        /// Answered once committed.
        reply: Reply<()>,
    },
    /// [`gearbox_store::cluster::ClusterStore::heartbeat`].
    Heartbeat {
        /// The load to publish.
        status: gearbox_store::cluster::MemberStatus,
        /// What the heartbeat found.
        reply: Reply<Beat>,
    },
    /// [`gearbox_store::cluster::ClusterStore::view`].
    View {
        /// The members and the free jobs.
        reply: Reply<ClusterView>,
    },
    /// [`gearbox_store::cluster::ClusterStore::leave`].
    Leave {
        /// Answered once committed.
        reply: Reply<()>,
    },
}

/// Sends `result` to `reply` (a caller that gave up is no error).
pub(crate) fn answer<T>(reply: Reply<T>, result: Result<T, StoreError>) {
    let _ = reply.send(result);
}

impl Control {
    /// Answers the request with an error: the store is not in cluster mode.
    pub(crate) fn refuse(self, location: &str) {
        let err = || StoreError::Backend {
            location: location.to_owned(),
            source: Arc::new(std::io::Error::other("not a cluster store")),
        };
        match self {
            Control::Commit { reply, .. } => answer(reply, Err(err())),
            Control::Claim { reply, .. } => answer(reply, Err(err())),
            Control::Release { reply, .. } | Control::Leave { reply } => answer(reply, Err(err())),
            Control::Heartbeat { reply, .. } => answer(reply, Err(err())),
            Control::View { reply } => answer(reply, Err(err())),
        }
    }
}

/// The cluster side of the backend: this member, its statements and its wake-up.
pub struct ClusterState {
    pub(crate) member: ClusterMember,
    /// Notified when another member frees jobs.
    pub(crate) wake: Arc<Notify>,
    pub(crate) sql: ClusterSql,
    /// Set once the first connection has joined the cluster (checked that no live server
    /// uses our id, freed what a previous life left).
    joined: bool,
    /// The last successful heartbeat, and since when heartbeats have succeeded without a
    /// gap (see `ClusterState::may_reap`).
    pub(crate) beats: std::sync::Mutex<Option<(Instant, Instant)>>,
    /// The name of the session advisory lock every connection of this member takes: held
    /// while this process is connected as this member.
    life_lock: String,
}

/// A message for a store error that has no database error behind it.
pub(crate) fn failure(location: &str, message: String) -> StoreError {
    StoreError::Backend {
        location: location.to_owned(),
        source: Arc::new(std::io::Error::other(message)),
    }
}

impl ClusterState {
    /// The cluster state of `member` on our table `at`.
    pub(crate) fn new(member: ClusterMember, at: &SqlTable) -> ClusterState {
        ClusterState {
            life_lock: format!("gearbox:member-life:{}:{}", at.name, member.id),
            member,
            wake: Arc::new(Notify::new()),
            sql: ClusterSql::new(&at.name, &at.quoted),
            joined: false,
            beats: std::sync::Mutex::new(None),
        }
    }

    /// Whether a heartbeat at `now` may declare other members dead, and since when this
    /// member's heartbeats have run without a gap. Only a member whose own heartbeats have
    /// succeeded for the whole dead-after bound judges the others: after an outage of the
    /// database every heartbeat is stale, and the members get that long to come back before
    /// any is taken for dead.
    pub(crate) fn may_reap(&self, now: Instant) -> (bool, Instant) {
        let last = *self.beats.lock().unwrap_or_else(|e| e.into_inner());
        let gap = self.member.heartbeat * 3;
        let since = match last {
            Some((ok, since)) if now.saturating_duration_since(ok) <= gap => since,
            _ => now,
        };
        (
            now.saturating_duration_since(since) >= self.member.dead_after,
            since,
        )
    }

    /// The member's dead-after bound in milliseconds.
    pub(crate) fn dead_after_ms(&self) -> i64 {
        i64::try_from(self.member.dead_after.as_millis()).unwrap_or(i64::MAX)
    }

    /// Drives `connection` on a task of its own, waking the store on every notification
    /// that does not come from this connection's own backend, whose process id is to be
    /// stored in the returned cell.
    pub(crate) fn drive<S, T>(
        &self,
        mut connection: tokio_postgres::Connection<S, T>,
        location: &str,
    ) -> Arc<AtomicI32>
    where
        S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let pid = Arc::new(AtomicI32::new(0));
        let own = pid.clone();
        let wake = self.wake.clone();
        let location = location.to_owned();
        tokio::spawn(async move {
            loop {
                match std::future::poll_fn(|cx| connection.poll_message(cx)).await {
                    Some(Ok(AsyncMessage::Notification(n))) => {
                        if n.process_id() != own.load(Ordering::Relaxed) {
                            wake.notify_one();
                        }
                    }
                    Some(Ok(AsyncMessage::Notice(n))) => {
                        tracing::debug!(store = %location, severity = n.severity(), notice = n.message(), "job store notice");
                    }
                    Some(Ok(_)) => {}
                    Some(Err(e)) => {
                        tracing::debug!(store = %location, error = %e, "job store connection ended");
                        break;
                    }
                    None => break,
                }
            }
        });
        pid
    }

    /// The migration's cluster additions, in the migration's transaction (under its
    /// advisory lock); nothing when they are all there.
    pub(crate) async fn migrate(
        &self,
        tx: &Transaction<'_>,
        at: &SqlTable,
    ) -> Result<(), StoreError> {
        let db = |e| classify(e, &at.location);
        let n = &self.sql.names;
        let quoted = |s: &str| format!("\"{s}\"");
        let done: bool = tx
            .query_one(
                &self.sql.migrated,
                &[
                    &at.name,
                    &quoted(&n.members),
                    &quoted(&n.free),
                    &quoted(&n.owner),
                    &quoted(&n.unique),
                    &n.members,
                    &quoted(&n.timed),
                ],
            )
            .await
            .map_err(db)?
            .get(0);
        if done {
            return Ok(());
        }
        tx.batch_execute(&self.sql.migrate).await.map_err(db)?;
        match tx.batch_execute(&self.sql.unique_index).await {
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => Err(failure(
                &at.location,
                format!(
                    "table {} holds several jobs with the same function and unique id, which \
                     cluster mode cannot share: delete the duplicates (keep one row of each \
                     function and unique_key) and start again ({e})",
                    at.name
                ),
            )),
            other => other.map_err(db),
        }?;
        tracing::info!(store = %at.location, table = %at.name, "job table prepared for cluster mode");
        Ok(())
    }

    /// On a new connection: records its process id, listens on the wake channel, and on
    /// the first connection joins the cluster (see [`ClusterState::join`]).
    pub(crate) async fn attach(
        &mut self,
        client: &mut Client,
        pid: &AtomicI32,
        location: &str,
    ) -> Result<(), StoreError> {
        let db = |e| classify(e, location);
        let id: i32 = client
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .map_err(db)?
            .get(0);
        pid.store(id, Ordering::Relaxed);
        client.batch_execute(&self.sql.listen).await.map_err(db)?;
        // Held by this connection's session for its life: a process that dies (even by
        // SIGKILL) lets go of it when PostgreSQL sees its connection close.
        let holds = self.take_life_lock(client, location).await?;
        if !self.joined {
            // A process killed a moment ago may not be gone from PostgreSQL yet: its session
            // ends as soon as the server reads the closed connection.
            let mut holds = holds;
            for _ in 0..10 {
                if holds {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                holds = self.take_life_lock(client, location).await?;
            }
            self.join(client, location, holds).await?;
            self.joined = true;
        } else if !holds {
            tracing::warn!(store = %location, member = %self.member.id, "reconnected, but another session holds this member's id (the old connection not yet closed by PostgreSQL, or another gearboxd with the same --cluster-id)");
        }
        Ok(())
    }

    /// Takes this member's life lock on the connection's session, if no other session holds
    /// it; whether it is held now.
    async fn take_life_lock(&self, client: &Client, location: &str) -> Result<bool, StoreError> {
        let row = client
            .query_one(
                "SELECT pg_try_advisory_lock(hashtext($1::text))",
                &[&self.life_lock],
            )
            .await
            .map_err(|e| classify(e, location))?;
        Ok(row.get(0))
    }

    /// Refuses to start when a live member has our id; otherwise becomes a member and frees
    /// the jobs a previous life of this server left with our id.
    ///
    /// A member is live when another session holds its life lock (`holds` is false) and its
    /// heartbeat is younger than the dead-after bound. A previous life that crashed let go of
    /// the lock, so a restart right after a crash is not refused; one whose connection
    /// PostgreSQL has not closed yet is judged by its heartbeat alone.
    async fn join(
        &self,
        client: &mut Client,
        location: &str,
        holds: bool,
    ) -> Result<(), StoreError> {
        let db = |e| classify(e, location);
        let me = &self.member;
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('gearbox:member:' || $1::text))",
            &[&me.id],
        )
        .await
        .map_err(db)?;
        let age: Option<i64> = tx
            .query_opt(&self.sql.member_age, &[&me.id])
            .await
            .map_err(db)?
            .map(|r| r.get(0));
        if let Some(ms) = age.filter(|ms| !holds && *ms < self.dead_after_ms()) {
            return Err(failure(
                location,
                format!(
                    "another gearboxd with cluster id {} is alive (last heartbeat {ms} ms ago); \
                     give each server its own --cluster-id",
                    me.id
                ),
            ));
        }
        // No load to publish yet: the first heartbeat publishes it.
        let status = crate::cluster_status::encode(&Default::default());
        tx.query_one(&self.sql.beat, &[&me.id, &me.address, &status])
            .await
            .map_err(db)?;
        let freed = tx
            .execute(&self.sql.free_own, &[&me.id])
            .await
            .map_err(db)?;
        if freed > 0 {
            self.notify(&tx, location).await?;
        }
        tx.commit().await.map_err(db)?;
        tracing::info!(store = %location, member = %me.id, address = %me.address, freed, "joined the cluster");
        Ok(())
    }

    /// Wakes the other members when the transaction commits.
    pub(crate) async fn notify(
        &self,
        tx: &Transaction<'_>,
        location: &str,
    ) -> Result<(), StoreError> {
        tx.execute(&self.sql.notify, &[&self.sql.names.channel])
            .await
            .map(drop)
            .map_err(|e| classify(e, location))
    }
}
