//! The records the core keeps: jobs, functions, connections and their counters.

use std::collections::{HashSet, VecDeque};

use bytes::Bytes;
use gearbox_proto::Priority;

use super::cron::Schedule;

/// Connection id: monotonic, never reused (not a file descriptor).
pub type ConnId = u64;
/// Internal job id; the handle string is derived from it.
pub type JobId = u64;

/// What kind of job this is, beyond a plain one.
#[derive(Debug, Clone)]
pub enum JobKind {
    /// SUBMIT_JOB and its variants.
    Plain,
    /// SUBMIT_JOB_EPOCH: not before this UNIX time (seconds).
    Epoch(u64),
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
        /// When it falls due, UNIX milliseconds.
        due_ms: u64,
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
        /// CAN_DO_TIMEOUT deadline, UNIX milliseconds.
        deadline_ms: Option<u64>,
    },
}

/// One job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Internal id.
    pub id: JobId,
    /// Handle as sent to clients.
    pub handle: Bytes,
    /// Function name.
    pub function: Bytes,
    /// Unique id (after `-` expansion); empty when none.
    pub unique: Bytes,
    /// Payload.
    pub data: Bytes,
    /// Priority.
    pub priority: Priority,
    /// Submitted (or re-submitted as a duplicate) in the background: it runs even when no
    /// client is attached. A foreground-only job whose clients all left is dropped instead.
    pub background: bool,
    /// Plain, epoch, scheduled or reduce.
    pub kind: JobKind,
    /// Lifecycle state.
    pub state: JobState,
    /// Foreground clients attached, in attach order.
    pub clients: Vec<ConnId>,
    /// Times it went back to the queue after a worker was lost or timed out.
    pub retries: u32,
    /// Last WORK_STATUS numerator and denominator.
    pub status: (Bytes, Bytes),
    /// The store holds it (so it must be removed from the store when it ends).
    pub persisted: bool,
    /// Connections waiting for its JOB_CREATED until the store commits it.
    pub acks: Vec<ConnId>,
    /// When it entered the queue, UNIX milliseconds (for queue-wait stats).
    pub queued_at_ms: u64,
    /// When a worker took it, UNIX milliseconds (for run-time stats).
    pub started_at_ms: u64,
}

impl Job {
    /// Forgets the last WORK_STATUS: the job starts over (re-queued or re-armed), as gearmand
    /// zeroes numerator and denominator when it puts a job back.
    pub fn clear_status(&mut self) {
        self.status = (Bytes::from_static(b"0"), Bytes::from_static(b"0"));
    }
}

/// Per-function counters, read by the admin protocol and (later) metrics.
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
    /// Sum of queue waits in milliseconds.
    pub queue_wait_ms: u64,
    /// Sum of run times in milliseconds.
    pub run_time_ms: u64,
}

/// One function: its queues, workers and counters.
#[derive(Debug, Default)]
pub struct Function {
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
    /// Function name.
    pub function: Bytes,
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
}

/// One connection, client or worker or both.
#[derive(Debug)]
pub struct Conn {
    /// Peer facts.
    pub info: ConnInfo,
    /// SET_CLIENT_ID value, `-` until set.
    pub client_id: Bytes,
    /// Registered functions, in registration order.
    pub abilities: Vec<Ability>,
    /// Round-robin cursor into `abilities`.
    pub rr: usize,
    /// Sent PRE_SLEEP and has not been woken since.
    pub sleeping: bool,
    /// Asked for WORK_EXCEPTION packets.
    pub exceptions: bool,
    /// Jobs assigned to this worker.
    pub running: HashSet<JobId>,
    /// Foreground jobs this client waits on.
    pub attached: HashSet<JobId>,
}

impl Conn {
    /// A fresh connection.
    pub fn new(info: ConnInfo) -> Conn {
        Conn {
            info,
            client_id: Bytes::from_static(b"-"),
            abilities: Vec::new(),
            rr: 0,
            sleeping: false,
            exceptions: false,
            running: HashSet::new(),
            attached: HashSet::new(),
        }
    }

    /// The timeout registered for `function`, if the worker can do it.
    pub fn ability(&self, function: &[u8]) -> Option<&Ability> {
        self.abilities.iter().find(|a| a.function == function)
    }
}
