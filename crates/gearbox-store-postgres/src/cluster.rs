//! [`PostgresClusterStore`]: the PostgreSQL store as a member of a cluster of gearboxd
//! servers sharing one table ([`gearbox_store::cluster`]).

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use gearbox_store::cluster::{
    Beat, ClusterMember, ClusterStore, ClusterView, Coalesced, MemberStatus, Want,
};
use gearbox_store::driver::{Backend, Backoff, Driver};
use gearbox_store::{
    Batch, BoxFuture, Durability, HandleMaker, Store, StoreError, StoreStats, StoredJob,
};
use tokio::sync::{oneshot, Notify};

use crate::backend::{ClusterState, Control, Postgres};
use crate::cluster_backend::Reply;

/// A [`PostgresStore`](crate::PostgresStore) shared by several gearboxd servers: each job row
/// has an owner (the member holding it, or none while it is free), members claim free jobs
/// with row locks, prove themselves alive in a members table and take over the jobs of the
/// dead. See [`ClusterStore`] for the operations and the [crate documentation](crate) for
/// the tables.
///
/// It runs on the same writer task as the single-server store (reconnection, outage logs);
/// the cluster requests go to it in order with the others. [`Store::load`] gives nothing (a
/// member claims jobs instead of replaying the table), and [`Store::commit`] is
/// [`ClusterStore::commit_cluster`] without the list of coalesced jobs.
pub struct PostgresClusterStore {
    driver: Driver<Postgres>,
    member: ClusterMember,
    wake: Arc<Notify>,
    /// The cluster commits, which do not go through the driver's own commit and its counters.
    commits: Arc<CommitCounts>,
}

/// What the cluster commits did, added to the driver's [`StoreStats`].
#[derive(Debug, Default)]
struct CommitCounts {
    transactions: AtomicU64,
    persisted: AtomicU64,
    removed: AtomicU64,
    failed: AtomicU64,
}

impl CommitCounts {
    /// Counts a commit of `persisted` jobs and `removed` removals that gave `result`.
    fn count<T>(&self, persisted: usize, removed: usize, result: &Result<T, StoreError>) {
        let add = |counter: &AtomicU64, n: usize| {
            counter.fetch_add(n as u64, Ordering::Relaxed);
        };
        match result {
            Ok(_) => {
                add(&self.transactions, 1);
                add(&self.persisted, persisted);
                add(&self.removed, removed);
            }
            Err(_) => add(&self.failed, 1),
        }
    }

    /// `stats` with these counts added.
    fn add_to(&self, mut stats: StoreStats) -> StoreStats {
        stats.transactions += self.transactions.load(Ordering::Relaxed);
        stats.jobs_persisted += self.persisted.load(Ordering::Relaxed);
        stats.jobs_removed += self.removed.load(Ordering::Relaxed);
        stats.failed_transactions += self.failed.load(Ordering::Relaxed);
        stats
    }
}

impl std::fmt::Debug for PostgresClusterStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresClusterStore")
            .field("location", &self.driver.location())
            .field("member", &self.member.id)
            .finish_non_exhaustive()
    }
}

impl PostgresClusterStore {
    /// Connects as [`PostgresStore::connect_with_password`](crate::PostgresStore::connect_with_password)
    /// does, prepares `table` for cluster mode (an `owner` column, its indexes, a unique index
    /// on function and unique id, the members table `<table>_members`), listens for wake-ups
    /// and joins the cluster as `member`.
    ///
    /// Fails when a member with the same id has a heartbeat younger than its dead-after
    /// bound (another server uses the id), and when the table holds two jobs with the same
    /// function and unique id (written by a single server, which cluster mode cannot
    /// share). Jobs the table still holds under our id, from a previous life of this server,
    /// are freed for any member to claim.
    pub async fn connect_with_password(
        conninfo: &str,
        password: Option<&str>,
        table: &str,
        durability: Durability,
        member: ClusterMember,
    ) -> Result<Self, StoreError> {
        let (mut backend, location) = crate::backend(conninfo, password, table, durability, None)?;
        let state = ClusterState::new(member.clone(), &backend.at);
        let wake = state.wake.clone();
        backend.cluster = Some(state);
        let driver = Driver::start(backend, location, Backoff::default()).await?;
        Ok(PostgresClusterStore {
            driver,
            member,
            wake,
            commits: Arc::default(),
        })
    }

    /// Queues a cluster request now and returns the future of its answer. A request the
    /// writer task drops (the database is unreachable) fails with
    /// [`StoreError::Unavailable`].
    fn ask<T: Send + 'static>(
        &self,
        make: impl FnOnce(Reply<T>) -> Control,
    ) -> BoxFuture<'static, T> {
        let (reply, answer) = oneshot::channel();
        let sent = self.driver.control(make(reply));
        let location = self.driver.location().to_owned();
        Box::pin(async move {
            if !sent {
                return Err(StoreError::Closed);
            }
            answer.await.map_err(|_| {
                StoreError::unavailable(
                    &location,
                    std::io::Error::new(
                        std::io::ErrorKind::NotConnected,
                        "no connection to the database; reconnecting",
                    ),
                )
            })?
        })
    }
}

impl Store for PostgresClusterStore {
    fn name(&self) -> &str {
        Postgres::NAME
    }

    fn location(&self) -> &str {
        self.driver.location()
    }

    /// Nothing: a cluster member claims jobs rather than replaying the table.
    fn load(&self) -> BoxFuture<'_, Vec<StoredJob>> {
        self.driver.load()
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, ()> {
        let commit = self.commit_cluster(batch);
        Box::pin(async move { commit.await.map(drop) })
    }

    fn import_gearmand(&self, table: &str, new_handle: HandleMaker) -> BoxFuture<'_, usize> {
        self.driver.import(table, new_handle)
    }

    fn close(&self) -> Pin<Box<dyn Future<Output = ()> + Send + '_>> {
        self.driver.close()
    }

    fn stats(&self) -> StoreStats {
        self.commits.add_to(self.driver.stats())
    }

    fn as_cluster(self: Arc<Self>) -> Option<Arc<dyn ClusterStore>> {
        Some(self)
    }
}

impl ClusterStore for PostgresClusterStore {
    fn member(&self) -> &ClusterMember {
        &self.member
    }

    fn commit_cluster(&self, batch: Batch) -> BoxFuture<'_, Vec<Coalesced>> {
        if batch.is_empty() {
            return Box::pin(std::future::ready(Ok(Vec::new())));
        }
        if let Some(err) = batch.persist.iter().find_map(Postgres::refuse) {
            return Box::pin(std::future::ready(Err(err)));
        }
        let (persisted, removed) = (batch.persist.len(), batch.complete.len());
        let answer = self.ask(|reply| Control::Commit { batch, reply });
        let counts = self.commits.clone();
        Box::pin(async move {
            let result = answer.await;
            counts.count(persisted, removed, &result);
            result
        })
    }

    fn claim(&self, wants: Vec<Want>, timed: u32) -> BoxFuture<'_, Vec<StoredJob>> {
        self.ask(|reply| Control::Claim {
            wants,
            timed,
            reply,
        })
    }

    fn release(&self, handles: Vec<Bytes>) -> BoxFuture<'_, ()> {
        self.ask(|reply| Control::Release { handles, reply })
    }

    fn heartbeat(&self, status: MemberStatus) -> BoxFuture<'_, Beat> {
        self.ask(|reply| Control::Heartbeat { status, reply })
    }

    fn wake(&self) -> Arc<Notify> {
        self.wake.clone()
    }

    fn view(&self) -> BoxFuture<'_, ClusterView> {
        self.ask(|reply| Control::View { reply })
    }

    fn leave(&self) -> BoxFuture<'_, ()> {
        self.ask(|reply| Control::Leave { reply })
    }
}
