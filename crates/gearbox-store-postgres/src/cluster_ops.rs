//! The cluster requests ([`Control`]) as the writer task serves them, each one transaction
//! on the connection.

use std::collections::{BTreeMap, HashSet};

use bytes::Bytes;
use gearbox_store::cluster::{Beat, ClusterView, Coalesced, MemberInfo, MemberStatus, Want};
use gearbox_store::sql::SqlTable;
use gearbox_store::{Batch, StoreError, StoredJob};
use tokio_postgres::{Client, Transaction};

use crate::backend::{stored_handles, Conn, JobArrays};
use crate::cluster_backend::{answer, failure, ClusterState, Control};
use crate::sql::{classify, decode_job};

/// How many times a job with a unique id is written again when the job it collided with
/// ended before it could be looked up.
const UNIQUE_ATTEMPTS: usize = 5;

impl ClusterState {
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
            Control::Heartbeat { status, reply } => answer(
                reply,
                self.heartbeat(&mut conn.client, location, &status).await,
            ),
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
    async fn heartbeat(
        &self,
        client: &mut Client,
        location: &str,
        status: &MemberStatus,
    ) -> Result<Beat, StoreError> {
        let db = |e| classify(e, location);
        let me = &self.member;
        let started = std::time::Instant::now();
        let (reap, since) = self.may_reap(started);
        let tx = client.transaction().await.map_err(db)?;
        let was_dead: bool = tx
            .query_one(
                &self.sql.beat,
                &[&me.id, &me.address, &crate::cluster_status::encode(status)],
            )
            .await
            .map_err(db)?
            .get(0);
        let dead: Vec<String> = if reap {
            tx.query(&self.sql.reap, &[&self.dead_after_ms()])
                .await
                .map_err(db)?
                .iter()
                .map(|r| r.get(0))
                .collect()
        } else {
            Vec::new()
        };
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
        *self.beats.lock().unwrap_or_else(|e| e.into_inner()) = Some((started, since));
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
                status: r
                    .get::<_, Option<Vec<u8>>>(4)
                    .and_then(|b| crate::cluster_status::decode(&b))
                    .unwrap_or_default(),
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
