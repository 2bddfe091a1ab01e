//! The records the core keeps: jobs, functions, connections and their counters.

use std::collections::VecDeque;
use std::sync::Arc;

use super::functions::FnId;
use super::ids::{ConnId, JobId};
use super::table::IdSet;
use super::time::UnixMillis;
use crate::access::Grants;
use crate::metrics::Histogram;

use bytes::Bytes;
use gearbox_proto::Priority;

use super::cron::Schedule;

/// What kind of job this is, beyond a plain one.
#[derive(Debug, Clone, Default)]
pub enum JobKind {
    /// SUBMIT_JOB and its variants.
    #[default]
    Plain,
    /// SUBMIT_JOB_EPOCH: not before this moment (sent in whole seconds).
    Epoch(UnixMillis),
    /// SUBMIT_JOB_SCHED: repeats on this schedule.
    Sched(Box<Schedule>),
    /// SUBMIT_REDUCE_JOB: handed to GRAB_JOB_ALL workers with its reducer.
    Reduce {
        /// Reducer function name.
        reducer: Bytes,
    },
}

/// Where a job is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JobState {
    /// Waiting for its time (EPOCH or SCHED); in no queue.
    Waiting {
        /// When it falls due ([`UnixMillis::NEVER`]: a schedule that no longer fires).
        due: UnixMillis,
    },
    /// A background job waiting for the store to commit it: JOB_CREATED is not sent yet and
    /// it is in no queue.
    Persisting,
    /// In its function's queue at its priority.
    Queued,
    /// Assigned to a worker.
    Running {
        /// The worker's connection.
        worker: ConnId,
        /// CAN_DO_TIMEOUT deadline.
        deadline: Option<UnixMillis>,
    },
}

/// Unique id plus payload up to this size are copied out of the read buffer into one
/// exact-size allocation: a zero-copy slice would keep the whole read buffer it came from
/// alive for as long as the job is queued. Larger payloads stay zero-copy slices (they make
/// up most of their buffer anyway).
const COPY_LIMIT: usize = 64 * 1024;

/// `Job::unique_len` when the unique id is kept in [`Extra`] rather than in front of the
/// payload.
const UNIQUE_APART: u32 = u32::MAX;

/// One job, kept small because a queue may hold millions: what most jobs never use (clients,
/// status, store acknowledgements, a non-plain kind) lives behind one optional box, and the
/// handle is derived from the id (see `Core::handle_of`).
#[derive(Debug, Clone)]
pub struct Job {
    /// Internal id; the number in the handle.
    pub id: JobId,
    /// Its function's number in the core's function table.
    pub function: FnId,
    /// The unique id followed by the payload (see [`COPY_LIMIT`]).
    body: Bytes,
    /// Length of the unique id at the start of `body`, or [`UNIQUE_APART`].
    unique_len: u32,
    /// Priority.
    pub priority: Priority,
    /// Submitted (or re-submitted as a duplicate) in the background: it runs even when no
    /// client is attached. A foreground-only job whose clients all left is dropped instead.
    pub background: bool,
    /// The store holds it (so it must be removed from the store when it ends).
    pub persisted: bool,
    /// Lifecycle state.
    pub state: JobState,
    /// The hash it is filed under in the unique-id index; 0 when it is not filed (no unique
    /// id).
    pub unique_hash: u64,
    /// When it entered the queue while queued (for queue-wait stats), when a worker took it
    /// while running (for run-time stats).
    pub since: UnixMillis,
    /// The rarely used parts; `None` while they are all empty.
    extra: Option<Box<Extra>>,
}

/// A foreground job's clients: nearly always one, so up to two are kept without an
/// allocation of their own.
pub type Clients = smallvec::SmallVec<[ConnId; 2]>;

/// The parts of a [`Job`] most jobs leave empty.
#[derive(Debug, Clone, Default)]
struct Extra {
    /// Plain, epoch, scheduled or reduce.
    kind: JobKind,
    /// Foreground clients attached, in attach order, once per foreground submission (a
    /// connection that submitted it twice is listed twice and gets every WORK_* twice).
    clients: Clients,
    /// Connections waiting for its JOB_CREATED until the store commits it.
    acks: Vec<ConnId>,
    /// Last WORK_STATUS numerator and denominator; `None` = `0`, `0`.
    status: Option<(Bytes, Bytes)>,
    /// The handle, when it is not the one derived from the id (a replayed foreign handle).
    handle: Option<Bytes>,
    /// The unique id, when the payload is too large to be copied in behind it.
    unique: Bytes,
    /// Times it went back to the queue after a worker was lost or timed out.
    retries: u32,
    /// The current run's last WORK_STATUS, WORK_DATA or WORK_WARNING (stuck-worker check).
    heard: Option<UnixMillis>,
    /// The current run's stuck-worker timer, once moved past its first due time.
    stuck_due: Option<UnixMillis>,
}

impl Extra {
    fn is_empty(&self) -> bool {
        matches!(self.kind, JobKind::Plain)
            && self.retries == 0
            && self.clients.is_empty()
            && self.acks.is_empty()
            && self.status.is_none()
            && self.heard.is_none()
            && self.stuck_due.is_none()
            && self.handle.is_none()
            && self.unique.is_empty()
    }
}

/// The kind every job without an [`Extra`] has.
static PLAIN: JobKind = JobKind::Plain;

impl Job {
    /// A new queued-to-be job with no clients, status or acknowledgements; `unique` and
    /// `data` are copied (up to `COPY_LIMIT` bytes).
    pub fn new(
        id: JobId,
        function: FnId,
        unique: &[u8],
        data: Bytes,
        priority: Priority,
        kind: JobKind,
    ) -> Job {
        let small = unique.len() + data.len() <= COPY_LIMIT && unique.len() < UNIQUE_APART as usize;
        let (body, unique_len, apart) = if small {
            let mut v = Vec::with_capacity(unique.len() + data.len());
            v.extend_from_slice(unique);
            v.extend_from_slice(&data);
            (Bytes::from(v), unique.len() as u32, Bytes::new())
        } else {
            (data, UNIQUE_APART, Bytes::copy_from_slice(unique))
        };
        let mut job = Job {
            id,
            function,
            body,
            unique_len,
            priority,
            background: false,
            persisted: false,
            state: JobState::Queued,
            unique_hash: 0,
            since: UnixMillis::default(),
            extra: None,
        };
        if !apart.is_empty() || !matches!(kind, JobKind::Plain) {
            let e = job.extra_mut();
            e.unique = apart;
            e.kind = kind;
        }
        job
    }

    fn extra_mut(&mut self) -> &mut Extra {
        self.extra.get_or_insert_with(Box::default)
    }

    /// Frees the optional parts once they are all empty again.
    pub fn tidy(&mut self) {
        if self.extra.as_ref().is_some_and(|e| e.is_empty()) {
            self.extra = None;
        }
    }

    /// Unique id (after `-` expansion); empty when none.
    pub fn unique(&self) -> &[u8] {
        match (self.unique_len, &self.extra) {
            (UNIQUE_APART, Some(e)) => &e.unique,
            (UNIQUE_APART, None) => &[],
            (n, _) => &self.body[..n as usize],
        }
    }

    /// Unique id as a shareable buffer.
    pub fn unique_bytes(&self) -> Bytes {
        match (self.unique_len, &self.extra) {
            (UNIQUE_APART, Some(e)) => e.unique.clone(),
            (UNIQUE_APART, None) => Bytes::new(),
            (n, _) => self.body.slice(..n as usize),
        }
    }

    /// The payload.
    pub fn data(&self) -> &[u8] {
        &self.body[self.data_start()..]
    }

    /// The payload as a shareable buffer (no copy).
    pub fn data_bytes(&self) -> Bytes {
        self.body.slice(self.data_start()..)
    }

    fn data_start(&self) -> usize {
        match self.unique_len {
            UNIQUE_APART => 0,
            n => n as usize,
        }
    }

    /// Plain, epoch, scheduled or reduce.
    pub fn kind(&self) -> &JobKind {
        self.extra.as_ref().map_or(&PLAIN, |e| &e.kind)
    }

    /// Foreground clients attached, in attach order.
    pub fn clients(&self) -> &[ConnId] {
        self.extra.as_ref().map_or(&[], |e| &e.clients)
    }

    /// The attached clients, to change.
    pub fn clients_mut(&mut self) -> &mut Clients {
        &mut self.extra_mut().clients
    }

    /// Detaches every client and returns them.
    pub fn take_clients(&mut self) -> Clients {
        let taken = self
            .extra
            .as_mut()
            .map(|e| std::mem::take(&mut e.clients))
            .unwrap_or_default();
        self.tidy();
        taken
    }

    /// Connections waiting for its JOB_CREATED until the store commits it.
    pub fn acks(&self) -> &[ConnId] {
        self.extra.as_ref().map_or(&[], |e| &e.acks)
    }

    /// The waiting connections, to change.
    pub fn acks_mut(&mut self) -> &mut Vec<ConnId> {
        &mut self.extra_mut().acks
    }

    /// Empties the list of connections waiting for the store and returns them.
    pub fn take_acks(&mut self) -> Vec<ConnId> {
        let taken = self
            .extra
            .as_mut()
            .map(|e| std::mem::take(&mut e.acks))
            .unwrap_or_default();
        self.tidy();
        taken
    }

    /// Last WORK_STATUS numerator and denominator (`0`, `0` before any).
    pub fn status(&self) -> (Bytes, Bytes) {
        match self.extra.as_ref().and_then(|e| e.status.as_ref()) {
            Some(s) => s.clone(),
            None => (Bytes::from_static(b"0"), Bytes::from_static(b"0")),
        }
    }

    /// Times it went back to the queue after a worker was lost or timed out.
    pub fn retries(&self) -> u32 {
        self.extra.as_ref().map_or(0, |e| e.retries)
    }

    /// Sets the retry count (0 frees its room when nothing else is kept there).
    pub fn set_retries(&mut self, retries: u32) {
        self.extra_mut().retries = retries;
        self.tidy();
    }

    /// Records a WORK_STATUS.
    pub fn set_status(&mut self, numerator: Bytes, denominator: Bytes) {
        self.extra_mut().status = Some((numerator, denominator));
    }

    /// When the worker last sent WORK_STATUS, WORK_DATA or WORK_WARNING in this run.
    pub fn heard(&self) -> Option<UnixMillis> {
        self.extra.as_ref().and_then(|e| e.heard)
    }

    /// Records a sign of progress from the worker at `now`.
    pub fn set_heard(&mut self, now: UnixMillis) {
        self.extra_mut().heard = Some(now);
    }

    /// The stuck-worker timer's due time, once moved (`None`: assignment + threshold).
    pub fn stuck_due(&self) -> Option<UnixMillis> {
        self.extra.as_ref().and_then(|e| e.stuck_due)
    }

    /// Records where the stuck-worker timer was moved to.
    pub fn set_stuck_due(&mut self, due: UnixMillis) {
        self.extra_mut().stuck_due = Some(due);
    }

    /// Forgets the run's progress marks as the run ends.
    pub fn clear_run_marks(&mut self) {
        if let Some(e) = &mut self.extra {
            (e.heard, e.stuck_due) = (None, None);
        }
        self.tidy();
    }

    /// Forgets the last WORK_STATUS: the job starts over (re-queued or re-armed), as gearmand
    /// zeroes numerator and denominator when it puts a job back.
    pub fn clear_status(&mut self) {
        if let Some(e) = &mut self.extra {
            e.status = None;
        }
        self.tidy();
    }

    /// The handle it was replayed with, when that is not the one derived from its id.
    pub fn own_handle(&self) -> Option<&Bytes> {
        self.extra.as_ref().and_then(|e| e.handle.as_ref())
    }

    /// Keeps `handle` as this job's handle instead of the derived one.
    pub fn set_own_handle(&mut self, handle: Bytes) {
        self.extra_mut().handle = Some(handle);
    }
}

/// Per-function counters, read by the admin protocol and the `metrics` command.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionStats {
    /// Jobs accepted.
    pub submitted: u64,
    /// WORK_COMPLETE received.
    pub completed: u64,
    /// WORK_FAIL received or sent by the server (retries exhausted, cancel, timeout).
    pub failed: u64,
    /// WORK_EXCEPTION received.
    pub exceptions: u64,
    /// Jobs put back in the queue after losing their worker.
    pub retried: u64,
    /// Jobs whose worker exceeded its CAN_DO_TIMEOUT.
    pub timed_out: u64,
    /// Submits refused (queue full, limits).
    pub rejected: u64,
    /// Time from submit (or from being queued again) to a worker taking the job.
    pub queue_wait: Histogram,
    /// Time from a worker taking the job to its end (or to losing its worker).
    pub run_time: Histogram,
}

/// One function: its queues, workers and counters.
#[derive(Debug, Default)]
pub struct Function {
    /// Its name (the one copy everything shares).
    pub name: Bytes,
    /// Jobs of this function the core holds, in any state: it cannot be dropped before
    /// they end.
    pub jobs: u32,
    /// Queued job ids, indexed by priority (high, normal, low), FIFO.
    pub queues: [VecDeque<JobId>; 3],
    /// Jobs of this function currently running.
    pub running: u32,
    /// Jobs waiting for their time (EPOCH, SCHED).
    pub waiting: u32,
    /// Worker connections that registered the function, in registration order.
    pub workers: Vec<ConnId>,
    /// Queue limits per priority; 0 = unlimited.
    pub max_queue: [u32; 3],
    /// Counters.
    pub stats: FunctionStats,
}

impl Function {
    /// Queued jobs at all priorities.
    pub fn queued(&self) -> usize {
        self.queues.iter().map(VecDeque::len).sum()
    }

    /// Jobs held: queued, running and waiting for their time (gearmand's `job_total`).
    pub fn total(&self) -> usize {
        self.queued() + self.running as usize + self.waiting as usize
    }
}

/// A function a worker registered.
#[derive(Debug, Clone)]
pub struct Ability {
    /// The function's number.
    pub function: FnId,
    /// CAN_DO_TIMEOUT limit in milliseconds.
    pub timeout_ms: Option<u64>,
}

/// Facts about a peer, given when it connects.
#[derive(Debug, Clone)]
pub struct ConnInfo {
    /// Peer IP address as text.
    pub peer_ip: String,
    /// The socket's file descriptor, shown by `workers` as gearmand does (display only).
    pub fd: i64,
    /// Whether the peer is on a loopback address (may use `shutdown`).
    pub loopback: bool,
    /// Names the peer proved with a TLS client certificate: the subject's common name first,
    /// then its subject alternative names. Empty for plain TCP, or TLS without a client
    /// certificate. Access rules match on these (see `docs/security.md`).
    pub identity: Vec<String>,
}

/// One connection, client or worker or both.
#[derive(Debug)]
pub struct Conn {
    /// Peer facts.
    pub info: ConnInfo,
    /// What its access rule lets it do, chosen when it connected.
    pub grants: Arc<Grants>,
    /// SET_CLIENT_ID value, `-` until set.
    pub client_id: Bytes,
    /// Registered functions, in registration order.
    pub abilities: Vec<Ability>,
    /// Round-robin cursor into `abilities`.
    pub rr: usize,
    /// Sent PRE_SLEEP and has not been woken since.
    pub sleeping: bool,
    /// Another cluster member's bridge (its client id starts with
    /// [`PEER_CLIENT_ID_PREFIX`](super::cluster::PEER_CLIENT_ID_PREFIX)): as a worker it takes
    /// only foreground jobs with a client here, and jobs it submits are never handed to
    /// another bridge.
    pub peer: bool,
    /// Ready for a job: its last GRAB_JOB got NO_JOB, or it sent PRE_SLEEP, and it has not
    /// taken a job since (cluster mode holds queued jobs only for such workers).
    pub wants_work: bool,
    /// Asked for WORK_EXCEPTION packets.
    pub exceptions: bool,
    /// Jobs assigned to this worker.
    pub running: IdSet<JobId>,
    /// Foreground jobs this client waits on (once each, however often it submitted them).
    pub attached: IdSet<JobId>,
    /// Handles of jobs this worker held when their CAN_DO_TIMEOUT failed them, newest last, at
    /// most [`Conn::MAX_TIMED_OUT`]: its late WORK_* packets for them are dropped without an
    /// ERROR, as the Perl server does (Perl's Gearman::Worker dies on an ERROR reply).
    pub timed_out: VecDeque<Bytes>,
}

impl Conn {
    /// A fresh connection with the grants of its access rule.
    pub fn new(info: ConnInfo, grants: Arc<Grants>) -> Conn {
        Conn {
            info,
            grants,
            client_id: Bytes::from_static(b"-"),
            abilities: Vec::new(),
            rr: 0,
            sleeping: false,
            wants_work: false,
            peer: false,
            exceptions: false,
            running: IdSet::default(),
            attached: IdSet::default(),
            timed_out: VecDeque::new(),
        }
    }

    /// Timed-out handles remembered per worker; a worker that never answers forgets the oldest.
    pub const MAX_TIMED_OUT: usize = 64;

    /// Remembers that the job `handle`, run by this worker, was failed by its timeout.
    pub fn note_timed_out(&mut self, handle: Bytes) {
        if self.timed_out.len() == Conn::MAX_TIMED_OUT {
            self.timed_out.pop_front();
        }
        self.timed_out.push_back(handle);
    }

    /// The timeout registered for `function`, if the worker can do it.
    pub fn ability(&self, function: FnId) -> Option<&Ability> {
        self.abilities.iter().find(|a| a.function == function)
    }
}
