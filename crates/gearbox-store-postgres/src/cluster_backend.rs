//! The cluster mode on the writer task: what the [`Postgres`](crate::backend::Postgres)
//! backend does differently when it is a cluster member (the migration's additions, LISTEN,
//! joining), and the cluster requests it serves as [`Control`]s, each one transaction.

use std::collections::{BTreeMap, HashSet};
use std::sync::atomic::{AtomicI32, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use gearbox_store::cluster::{Beat, ClusterMember, ClusterView, Coalesced, MemberInfo, Want};
use gearbox_store::sql::SqlTable;
use gearbox_store::{Batch, StoreError, StoredJob};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{oneshot, Notify};
use tokio_postgres::error::SqlState;
use tokio_postgres::{AsyncMessage, Client, Transaction};

use crate::backend::{stored_handles, Conn, JobArrays};
use crate::cluster_sql::ClusterSql;
use crate::sql::{classify, decode_job};

/// Where the answer to a cluster request goes.
pub(crate) type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

/// How many times a job with a unique id is written again when the job it collided with
/// ended before it could be looked up.
const UNIQUE_ATTEMPTS: usize = 5;

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
fn answer<T>(reply: Reply<T>, result: Result<T, StoreError>) {
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
            Control::Heartbeat { reply } => answer(reply, Err(err())),
            Control::View { reply } => answer(reply, Err(err())),
        }
    }
}

/// The cluster side of the backend: this member, its statements and its wake-up.
pub struct ClusterState {
    pub(crate) member: ClusterMember,
    /// Notified when another member frees jobs.
    pub(crate) wake: Arc<Notify>,
    sql: ClusterSql,
    /// Set once the first connection has joined the cluster (checked that no live server
    /// uses our id, freed what a previous life left).
    joined: bool,
}

/// A message for a store error that has no database error behind it.
fn failure(location: &str, message: String) -> StoreError {
    StoreError::Backend {
        location: location.to_owned(),
        source: Arc::new(std::io::Error::other(message)),
    }
}

impl ClusterState {
    /// The cluster state of `member` on our table `at`.
    pub(crate) fn new(member: ClusterMember, at: &SqlTable) -> ClusterState {
        ClusterState {
            member,
            wake: Arc::new(Notify::new()),
            sql: ClusterSql::new(&at.name, &at.quoted),
            joined: false,
        }
    }

    /// The member's dead-after bound in milliseconds.
    fn dead_after_ms(&self) -> i64 {
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
        if !self.joined {
            self.join(client, location).await?;
            self.joined = true;
        }
        Ok(())
    }

    /// Refuses to start when a live member has our id; otherwise becomes a member and frees
    /// the jobs a previous life of this server left with our id.
    async fn join(&self, client: &mut Client, location: &str) -> Result<(), StoreError> {
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
        if let Some(ms) = age.filter(|ms| *ms < self.dead_after_ms()) {
            return Err(failure(
                location,
                format!(
                    "another gearboxd with cluster id {} is alive (last heartbeat {ms} ms ago); \
                     give each server its own --cluster-id",
                    me.id
                ),
            ));
        }
        tx.query_one(&self.sql.beat, &[&me.id, &me.address])
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
    async fn notify(&self, tx: &Transaction<'_>, location: &str) -> Result<(), StoreError> {
        tx.execute(&self.sql.notify, &[&self.sql.names.channel])
            .await
            .map(drop)
            .map_err(|e| classify(e, location))
    }

    /// Serves one cluster request on the connection.
    pub(crate) async fn serve(&self, conn: &mut Conn, at: &SqlTable, request: Control) {
        let location = at.location.as_str();
        match request {
            Control::Commit { batch, reply } => {
                answer(reply, self.commit(conn, location, &batch).await)
            }
            Control::Claim {
                wants,
                timed,
                reply,
            } => answer(
                reply,
                self.claim(&conn.client, location, wants, timed).await,
            ),
            Control::Release { handles, reply } => answer(
                reply,
                self.release(&mut conn.client, location, &handles).await,
            ),
            Control::Heartbeat { reply } => {
                answer(reply, self.heartbeat(&mut conn.client, location).await)
            }
            Control::View { reply } => answer(reply, self.view(&conn.client, location).await),
            Control::Leave { reply } => answer(reply, self.leave(&mut conn.client, location).await),
        }
    }

    /// See [`gearbox_store::cluster::ClusterStore::commit_cluster`].
    async fn commit(
        &self,
        conn: &mut Conn,
        location: &str,
        batch: &Batch,
    ) -> Result<Vec<Coalesced>, StoreError> {
        let db = |e| classify(e, location);
        let me = self.member.id.as_str();
        let net = batch.net_effect();
        let deletes = stored_handles(&net.removed);
        let (plain, mut pending): (Vec<&StoredJob>, Vec<&StoredJob>) =
            net.written.iter().partition(|j| j.unique.is_empty());
        let tx = conn.client.transaction().await.map_err(db)?;
        if !deletes.is_empty() {
            tx.execute(&conn.delete, &[&deletes]).await.map_err(db)?;
        }
        self.write_owned(&tx, &plain).await.map_err(db)?;
        let mut own = Vec::new();
        let mut coalesced = Vec::new();
        for _ in 0..UNIQUE_ATTEMPTS {
            if pending.is_empty() {
                break;
            }
            let arrays = JobArrays::new(&pending);
            let mut params = arrays.params();
            params.push(&me);
            let written: HashSet<String> = tx
                .query(&self.sql.insert_unique, &params)
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.get(0))
                .collect();
            let rest: Vec<&StoredJob> = pending
                .drain(..)
                .filter(|j| !written.contains(std::str::from_utf8(&j.handle).unwrap_or("")))
                .collect();
            if rest.is_empty() {
                break;
            }
            let functions: Vec<&[u8]> = rest.iter().map(|j| &j.function[..]).collect();
            let uniques: Vec<&[u8]> = rest.iter().map(|j| &j.unique[..]).collect();
            let found = tx
                .query(&self.sql.find_unique, &[&functions, &uniques])
                .await
                .map_err(db)?;
            for (job, row) in rest.into_iter().zip(&found) {
                let existing: Option<String> = row.try_get(0).map_err(db)?;
                match existing {
                    // Ended since the insert: try again.
                    None => pending.push(job),
                    // Our own row (a batch applied again, a re-armed schedule).
                    Some(h) if h.as_bytes() == &job.handle[..] => own.push(job),
                    Some(h) => {
                        tracing::debug!(store = %location, handle = %String::from_utf8_lossy(&job.handle), existing = %h, "job coalesced with one in the cluster");
                        coalesced.push(Coalesced {
                            handle: job.handle.clone(),
                            existing: Bytes::from(h),
                        });
                    }
                }
            }
        }
        if let Some(job) = pending.first() {
            return Err(failure(
                location,
                format!(
                    "job {} could not be written: the job with its unique id kept ending \
                     while it was written; submit it again",
                    String::from_utf8_lossy(&job.handle)
                ),
            ));
        }
        self.write_owned(&tx, &own).await.map_err(db)?;
        tx.commit().await.map_err(db)?;
        Ok(coalesced)
    }

    /// Upserts `jobs` by handle as ours.
    async fn write_owned(
        &self,
        tx: &Transaction<'_>,
        jobs: &[&StoredJob],
    ) -> Result<(), tokio_postgres::Error> {
        if jobs.is_empty() {
            return Ok(());
        }
        let me = self.member.id.as_str();
        let arrays = JobArrays::new(jobs);
        let mut params = arrays.params();
        params.push(&me);
        tx.execute(&self.sql.upsert_owned, &params).await.map(drop)
    }

    /// See [`gearbox_store::cluster::ClusterStore::claim`]: one statement.
    async fn claim(
        &self,
        client: &Client,
        location: &str,
        wants: Vec<Want>,
        timed: u32,
    ) -> Result<Vec<StoredJob>, StoreError> {
        let db = |e| classify(e, location);
        // One entry per function, so that a function named twice is not scanned twice.
        let mut per_function: BTreeMap<Bytes, i64> = BTreeMap::new();
        for want in wants.into_iter().filter(|w| w.count > 0) {
            *per_function.entry(want.function).or_default() += i64::from(want.count);
        }
        if per_function.is_empty() && timed == 0 {
            return Ok(Vec::new());
        }
        let functions: Vec<&[u8]> = per_function.keys().map(|f| &f[..]).collect();
        let counts: Vec<i64> = per_function.values().copied().collect();
        let rows = client
            .query(
                &self.sql.claim,
                &[&functions, &counts, &self.member.id, &i64::from(timed)],
            )
            .await
            .map_err(db)?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let seq: i64 = row.try_get(8).map_err(db)?;
            jobs.push((decode_job(row, location)?, seq));
        }
        jobs.sort_by_key(|(job, seq)| (job.priority, *seq));
        if !jobs.is_empty() {
            tracing::trace!(store = %location, member = %self.member.id, jobs = jobs.len(), "claimed jobs");
        }
        Ok(jobs.into_iter().map(|(job, _)| job).collect())
    }

    /// See [`gearbox_store::cluster::ClusterStore::release`].
    async fn release(
        &self,
        client: &mut Client,
        location: &str,
        handles: &[Bytes],
    ) -> Result<(), StoreError> {
        let db = |e| classify(e, location);
        let refs: Vec<&Bytes> = handles.iter().collect();
        let handles = stored_handles(&refs);
        if handles.is_empty() {
            return Ok(());
        }
        let tx = client.transaction().await.map_err(db)?;
        let freed = tx
            .execute(&self.sql.release, &[&handles, &self.member.id])
            .await
            .map_err(db)?;
        if freed > 0 {
            self.notify(&tx, location).await?;
        }
        tx.commit().await.map_err(db)
    }

    /// See [`gearbox_store::cluster::ClusterStore::heartbeat`].
    async fn heartbeat(&self, client: &mut Client, location: &str) -> Result<Beat, StoreError> {
        let db = |e| classify(e, location);
        let me = &self.member;
        let tx = client.transaction().await.map_err(db)?;
        let was_dead: bool = tx
            .query_one(&self.sql.beat, &[&me.id, &me.address])
            .await
            .map_err(db)?
            .get(0);
        let dead: Vec<String> = tx
            .query(&self.sql.reap, &[&self.dead_after_ms()])
            .await
            .map_err(db)?
            .iter()
            .map(|r| r.get(0))
            .collect();
        let orphans: Vec<(String, i64)> = tx
            .query(&self.sql.free_orphans, &[])
            .await
            .map_err(db)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let freed = orphans.iter().map(|(_, n)| *n as u64).sum();
        if freed > 0 {
            self.notify(&tx, location).await?;
        }
        tx.commit().await.map_err(db)?;
        if was_dead {
            tracing::warn!(store = %location, member = %me.id, "this server had been declared dead by the cluster (its heartbeats stalled): its jobs were freed; it is a member again");
        }
        for id in &dead {
            let jobs = orphans.iter().find(|(o, _)| o == id).map_or(0, |(_, n)| *n);
            tracing::warn!(store = %location, member = %id, jobs, "cluster member is dead (no heartbeat): its jobs are freed");
        }
        for (owner, jobs) in orphans.iter().filter(|(o, _)| !dead.contains(o)) {
            tracing::info!(store = %location, member = %owner, jobs, "freed jobs of a server that is no cluster member");
        }
        Ok(Beat {
            dead,
            freed,
            was_dead,
        })
    }

    /// See [`gearbox_store::cluster::ClusterStore::view`].
    async fn view(&self, client: &Client, location: &str) -> Result<ClusterView, StoreError> {
        let db = |e| classify(e, location);
        let members = client
            .query(&self.sql.members, &[])
            .await
            .map_err(db)?
            .iter()
            .map(|r| MemberInfo {
                id: r.get(0),
                address: r.get(1),
                last_heartbeat_ms: r.get::<_, i64>(2).max(0) as u64,
                jobs: r.get::<_, i64>(3).max(0) as u64,
            })
            .collect();
        let free_by_function: Vec<(Bytes, u64)> = client
            .query(&self.sql.free_by_function, &[])
            .await
            .map_err(db)?
            .iter()
            .map(|r| {
                let f: Vec<u8> = r.get(0);
                (Bytes::from(f), r.get::<_, i64>(1).max(0) as u64)
            })
            .collect();
        Ok(ClusterView {
            members,
            free: free_by_function.iter().map(|(_, n)| n).sum(),
            free_by_function,
        })
    }

    /// See [`gearbox_store::cluster::ClusterStore::leave`].
    async fn leave(&self, client: &mut Client, location: &str) -> Result<(), StoreError> {
        let db = |e| classify(e, location);
        let me = &self.member.id;
        let tx = client.transaction().await.map_err(db)?;
        let freed = tx.execute(&self.sql.free_own, &[me]).await.map_err(db)?;
        tx.execute(&self.sql.remove_member, &[me])
            .await
            .map_err(db)?;
        self.notify(&tx, location).await?;
        tx.commit().await.map_err(db)?;
        tracing::info!(store = %location, member = %me, freed, "left the cluster");
        Ok(())
    }
}
