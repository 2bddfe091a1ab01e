//! The cluster interface: several gearboxd servers sharing one store's queue.
//!
//! In cluster mode every background job is a row of the shared table with an owner: the
//! server that holds it in its core, or nobody while it waits to be claimed. A server
//!
//! - writes the jobs submitted to it as its own ([`ClusterStore::commit_cluster`]); a job
//!   whose unique id is already queued anywhere in the cluster is not written, and the
//!   existing job's handle is reported instead ([`Coalesced`]), so that unique coalescing
//!   holds across servers;
//! - gives back the queued jobs it has no worker ready for ([`ClusterStore::release`]), and
//!   takes free jobs for the workers it has waiting ([`ClusterStore::claim`]), highest
//!   priority and oldest first, with row locks so that two servers never take the same row;
//! - proves it is alive ([`ClusterStore::heartbeat`]); the same call frees the jobs of
//!   servers whose heartbeat is older than the dead-after bound, for the others to claim.
//!
//! Servers wake each other when jobs are freed ([`ClusterStore::wake`]); polling is the
//! fallback, so a lost notification only delays.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::{Batch, BoxFuture, Store};

/// Who this server is in the cluster, and the bounds every member uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterMember {
    /// The server's id, unique in the cluster and stable across restarts (default
    /// `<hostname>-<port>`). Rows it holds carry it as their owner.
    pub id: String,
    /// Where its Gearman port can be reached by the other servers (`host:port`), shown to
    /// operators.
    pub address: String,
    /// How often it proves it is alive.
    pub heartbeat: Duration,
    /// A member whose last heartbeat is older than this is dead: its jobs are freed.
    pub dead_after: Duration,
}

impl ClusterMember {
    /// The longest a dead member's jobs wait before another member claims them: the
    /// dead-after bound, plus one heartbeat of the member that notices, plus one poll.
    pub fn takeover_bound(&self, poll: Duration) -> Duration {
        self.dead_after + self.heartbeat + poll
    }
}

/// How many jobs of one function a server has workers waiting for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Want {
    /// The function name.
    pub function: Bytes,
    /// How many free jobs to claim at most.
    pub count: u32,
}

/// A background job that was not written because a job with the same function and unique id
/// is already in the cluster: its submitters get `existing` as the handle.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coalesced {
    /// The handle the job was submitted under here.
    pub handle: Bytes,
    /// The handle of the job already queued (on any server).
    pub existing: Bytes,
}

/// What one heartbeat found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Beat {
    /// Members found dead by this heartbeat (their rows are now free).
    pub dead: Vec<String>,
    /// Jobs freed because their owner is dead or gone.
    pub freed: u64,
    /// This server had itself been declared dead (its heartbeats stalled): the jobs it held
    /// were freed and other members may be running them. It is a member again now.
    pub was_dead: bool,
}

/// One function's load on one member, as it publishes it at each heartbeat.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionLoad {
    /// The function name (any bytes).
    pub function: Bytes,
    /// Jobs of the function held by the member and queued there (waiting for a worker).
    pub queued: u64,
    /// Jobs of the function running on the member's workers.
    pub running: u64,
    /// Connections of the member that registered the function.
    pub workers: u64,
}

/// A member's load, published with each heartbeat ([`ClusterStore::heartbeat`]) and read back
/// by every member in [`MemberInfo::status`] for the cluster-wide admin views.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MemberStatus {
    /// Open connections (clients, workers and admin).
    pub connections: u64,
    /// Connections with at least one registered function.
    pub workers: u64,
    /// Per function with any job or worker, by name.
    pub functions: Vec<FunctionLoad>,
}

/// One member as the store sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberInfo {
    /// Its id.
    pub id: String,
    /// Its Gearman address.
    pub address: String,
    /// Milliseconds since its last heartbeat, by the database's clock.
    pub last_heartbeat_ms: u64,
    /// Jobs it holds (queued, running or waiting for their time there).
    pub jobs: u64,
    /// The load it published with its last heartbeat (empty before its first).
    pub status: MemberStatus,
}

/// The whole cluster's queue, for the cluster-wide admin views.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClusterView {
    /// Every live member.
    pub members: Vec<MemberInfo>,
    /// Jobs no member holds: waiting to be claimed.
    pub free: u64,
    /// Free jobs per function name, most first.
    pub free_by_function: Vec<(Bytes, u64)>,
}

/// A store several servers share (see the module documentation).
pub trait ClusterStore: Store {
    /// This server's membership.
    fn member(&self) -> &ClusterMember;

    /// Applies a batch as [`Store::commit`] does, writing new jobs as owned by this server,
    /// except those whose function and unique id are already in the table: those are left
    /// out and reported. Removals delete by handle, whoever holds the row.
    fn commit_cluster(&self, batch: Batch) -> BoxFuture<'_, Vec<Coalesced>>;

    /// Takes free jobs, per function at most the count wanted, highest priority first and
    /// FIFO within a priority, skipping rows another server is taking at the same moment;
    /// jobs whose time has not come are not taken. Also takes up to `timed` free jobs that
    /// wait for a time or a schedule, whatever their function (a dead member's timers).
    fn claim(&self, wants: Vec<Want>, timed: u32) -> BoxFuture<'_, Vec<crate::StoredJob>>;

    /// Frees jobs this server holds, for any member to claim, and wakes the others.
    fn release(&self, handles: Vec<Bytes>) -> BoxFuture<'_, ()>;

    /// Proves this server alive, publishes its load `status` for the others' admin views,
    /// and frees the jobs of dead members (waking the others).
    fn heartbeat(&self, status: MemberStatus) -> BoxFuture<'_, Beat>;

    /// Notified when another member freed jobs (a release, a takeover).
    fn wake(&self) -> Arc<Notify>;

    /// The members and the free jobs, for the admin views.
    fn view(&self) -> BoxFuture<'_, ClusterView>;

    /// Leaves the cluster at shutdown: frees every job still held and removes the member.
    fn leave(&self) -> BoxFuture<'_, ()>;
}
