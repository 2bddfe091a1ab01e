//! The job server's state machine. It never touches a socket, a file or the clock: callers
//! feed it events (a connection opened, a request arrived, time passed) with the current time,
//! and it answers with [`Effect`]s in an [`Outbox`].
//!
//! - `ids`: [`ConnId`] and [`JobId`]; `time`: [`UnixMillis`], the moments the caller passes.
//! - [`state`]: jobs, functions, connections and counters.
//! - `table`: where jobs are kept: by id, and by function + unique id.
//! - `functions`: the functions by number; jobs and abilities hold the number.
//! - `lookup`: handles (derived from job ids), finding jobs by handle or unique id.
//! - `jobs`: submitting, grabbing, finishing, re-queueing.
//! - `timers`: EPOCH/SCHED jobs falling due, CAN_DO_TIMEOUT deadlines; `timeout`: the
//!   CAN_DO_TIMEOUT settings (unit, expiry action).
//! - `work`: WORK_* packets from workers, status queries.
//! - `workers`: workers registering (CAN_DO, CANT_DO) and going to sleep (PRE_SLEEP).
//! - `access`: refusing what a connection's access rule does not grant.
//! - `admin`: the admin text commands and their gearmand-exact replies.
//! - [`cron`]: schedules for SUBMIT_JOB_SCHED.
//! - [`cluster`]: cluster mode: which queued jobs to give back to the shared queue, which to
//!   claim, taking claimed jobs in.
//! - `cluster_view`: the load this member publishes and the cluster-wide admin commands
//!   (`cluster status`, `cluster members`), rendered from the last view of the shared queue.

mod access;
mod admin;
pub mod cluster;
mod cluster_view;
pub mod cron;
mod functions;
mod ids;
mod jobs;
mod log;
mod lookup;
mod metrics;
mod persist;
pub mod state;
mod table;
mod time;
mod timeout;
mod timers;
pub(crate) use table::IdMap;
use table::NameMap;
pub use timeout::{TimeoutAction, TimeoutUnit};
mod work;
mod workers;

#[cfg(test)]
mod tests;

use std::collections::BTreeSet;
use std::sync::Arc;

use bytes::Bytes;
use gearbox_proto::{AdminCommand, ErrorCode, Priority, Request, Response};

use crate::access::AccessPolicy;
use crate::metrics::ServerMetrics;
use functions::Functions;
pub use ids::{ConnId, JobId};
use jobs::NewJob;
use state::{Conn, JobKind, JobState};
pub use state::{ConnInfo, FunctionStats};
use table::{JobTable, UniqueIndex};
pub use time::UnixMillis;

/// Settings the core needs. Every limit is explicit.
#[derive(Debug, Clone)]
pub struct CoreConfig {
    /// Handle prefix; handles are `<prefix>:<n>`.
    pub handle_prefix: String,
    /// Attempts a job gets: it fails when it has lost its worker this many times (as
    /// gearmand's `--job-retries`); `None` = unlimited.
    pub job_retries: Option<u32>,
    /// Sleeping workers woken per new job; 0 = all.
    pub worker_wakeup: usize,
    /// Send WORK_EXCEPTION to every client, not only those that asked.
    pub exceptions: bool,
    /// What a CAN_DO_TIMEOUT expiry does.
    pub timeout_action: TimeoutAction,
    /// The unit of a decimal CAN_DO_TIMEOUT.
    pub timeout_unit: TimeoutUnit,
    /// Longest unique id accepted.
    pub max_unique: usize,
    /// Longest function name accepted.
    pub max_function: usize,
    /// Longest client id accepted.
    pub max_client_id: usize,
    /// Background jobs are kept in a store: JOB_CREATED waits for its commit.
    pub persistent: bool,
    /// Version string for the `version` admin command.
    pub version: String,
    /// Log level name for the `verbose` admin command.
    pub verbose: String,
    /// A job running this long logs one warning, milliseconds; 0 = never.
    pub slow_job_warning_ms: u64,
    /// A running job's worker silent this long (no WORK_STATUS, WORK_DATA or WORK_WARNING
    /// since it took the job or since its last one) logs one warning, milliseconds; 0 = never.
    pub stuck_worker_warning_ms: u64,
    /// The access rules; each connection gets its grants from them when it connects.
    pub access: AccessPolicy,
    /// A member of a cluster sharing one queue (see [`cluster`]): queued jobs beyond the
    /// workers ready for them are given back to the shared queue.
    pub cluster: bool,
}

impl Default for CoreConfig {
    fn default() -> Self {
        CoreConfig {
            handle_prefix: "H:localhost".into(),
            job_retries: None,
            worker_wakeup: 0,
            exceptions: false,
            timeout_action: TimeoutAction::Fail,
            timeout_unit: TimeoutUnit::Seconds,
            max_unique: 64,
            max_function: 512,
            max_client_id: 254,
            persistent: false,
            version: env!("CARGO_PKG_VERSION").into(),
            verbose: "ERROR".into(),
            slow_job_warning_ms: 0,
            stuck_worker_warning_ms: 0,
            access: AccessPolicy::default(),
            cluster: false,
        }
    }
}

/// Something the caller must do on the core's behalf.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Send a packet to a connection.
    Send(ConnId, Response),
    /// Send admin reply text to a connection.
    Text(ConnId, Bytes),
    /// Store this background job, then call [`Core::committed`] with the outcome.
    Persist(Box<gearbox_store::StoredJob>),
    /// Remove the stored job with this handle: it is over (at-least-once: a crash before the
    /// removal only runs it again).
    Complete(Bytes),
    /// Close a connection after what was sent to it is written.
    Close(ConnId),
    /// Stop the server (admin `shutdown`).
    Shutdown {
        /// Finish queued work first.
        graceful: bool,
    },
}

/// Effects gathered while handling events; the caller drains it after each batch.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Effects in the order they were produced.
    pub effects: Vec<Effect>,
    /// The earliest timer may have moved: re-read [`Core::next_deadline`].
    pub timers_changed: bool,
    /// Cluster mode: a function's balance of ready workers and queued jobs changed; run a
    /// [`Core::cluster_pass`].
    pub cluster_changed: bool,
}

impl Outbox {
    fn send(&mut self, conn: ConnId, r: Response) {
        self.effects.push(Effect::Send(conn, r));
    }

    fn error(&mut self, conn: ConnId, code: ErrorCode, text: impl Into<Bytes>) {
        let text = text.into();
        tracing::debug!(conn = conn.get(), code = ?code, text = %log::Lossy(&text), "ERROR sent to peer");
        self.send(conn, Response::error(code, text));
    }
}

/// Timer entries: (due time, job, kind).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum TimerKind {
    /// An EPOCH or SCHED job falls due.
    Due,
    /// A running job's CAN_DO_TIMEOUT expires.
    Timeout,
    /// A running job reaches the slow-job warning threshold.
    Slow,
    /// A running job's worker may have gone silent for the stuck-worker threshold.
    Stuck,
}

/// The whole server state. See the module docs.
#[derive(Debug)]
pub struct Core {
    config: CoreConfig,
    functions: Functions,
    jobs: JobTable,
    uniques: UniqueIndex,
    /// Replayed jobs whose handle is not the one their id gives (see `lookup`).
    foreign: NameMap<JobId>,
    conns: IdMap<ConnId, Conn>,
    timers: BTreeSet<(UnixMillis, JobId, TimerKind)>,
    next_job: JobId,
    draining: bool,
    /// Cluster mode's bookkeeping; `None` on a server of its own.
    cluster: Option<cluster::ClusterBook>,
    /// Cluster mode: the last view of the cluster, for the cluster admin commands.
    cluster_view: Option<cluster_view::ClusterSnapshot>,
    /// The server-wide counters the network layer and the persister keep (rendered by the
    /// `metrics` command with the core's own).
    server_metrics: Arc<ServerMetrics>,
}

impl Core {
    /// An empty core.
    pub fn new(config: CoreConfig) -> Core {
        Core {
            functions: Functions::default(),
            jobs: JobTable::default(),
            uniques: UniqueIndex::default(),
            foreign: NameMap::default(),
            conns: IdMap::default(),
            timers: BTreeSet::new(),
            next_job: JobId::FIRST,
            draining: false,
            cluster: config.cluster.then(cluster::ClusterBook::default),
            cluster_view: None,
            config,
            server_metrics: Arc::default(),
        }
    }

    /// The server-wide counters, for the network layer and the persister to update.
    pub fn server_metrics(&self) -> Arc<ServerMetrics> {
        self.server_metrics.clone()
    }

    /// The configuration in force.
    pub fn config(&self) -> &CoreConfig {
        &self.config
    }

    /// A connection opened: it gets the grants of the first access rule that matches its
    /// certificate names and peer address (so `info.identity` must be filled by now).
    pub fn connect(&mut self, conn: ConnId, info: ConnInfo) {
        let grants = self.config.access.resolve(&info.identity, &info.peer_ip);
        if !self.config.access.is_empty() {
            tracing::debug!(conn = conn.get(), peer = %info.peer_ip, identity = ?info.identity, rule = grants.rule(), "access rule chosen");
        }
        self.conns.insert(conn, Conn::new(info, grants));
    }

    /// The connection proved the certificate names `identity` after it connected (a TLS
    /// handshake finished later): they replace its identity and its access rule is chosen
    /// again. A network layer that completes the handshake before [`Core::connect`] never
    /// needs this.
    pub fn identify(&mut self, conn: ConnId, identity: Vec<String>) {
        let Some(c) = self.conns.get_mut(&conn) else {
            return;
        };
        c.grants = self.config.access.resolve(&identity, &c.info.peer_ip);
        c.info.identity = identity;
        tracing::debug!(conn = conn.get(), identity = ?c.info.identity, rule = c.grants.rule(), "identified; access rule chosen again");
    }

    /// A connection closed: its running jobs go back to the queue (or fail past the retry
    /// limit), it is detached from the jobs it waited on, and its abilities are dropped.
    pub fn disconnect(&mut self, conn: ConnId, now: UnixMillis, out: &mut Outbox) {
        self.cluster_touch_conn(conn, out);
        let Some(c) = self.conns.remove(&conn) else {
            return;
        };
        for a in &c.abilities {
            self.functions[a.function].workers.retain(|w| *w != conn);
        }
        let mut abandoned = Vec::new();
        for job in c.attached {
            if let Some(j) = self.jobs.get_mut(&job) {
                j.clients_mut().retain(|cl| *cl != conn);
                j.tidy();
                if !j.background && j.clients().is_empty() && j.state == JobState::Queued {
                    abandoned.push(job);
                }
            }
        }
        self.drop_abandoned(abandoned, out);
        let mut running: Vec<JobId> = c.running.into_iter().collect();
        running.sort_unstable();
        for job in running {
            self.worker_lost(job, now, out);
        }
    }

    /// Handles one request from `conn`.
    pub fn request(&mut self, conn: ConnId, req: Request, now: UnixMillis, out: &mut Outbox) {
        if !self.conns.contains_key(&conn) {
            return;
        }
        if !self.permits(conn, &req, out) {
            return;
        }
        match req {
            Request::CanDo { function } => self.can_do(conn, function, None, out),
            Request::CanDoTimeout { function, timeout } => match Request::timeout_value(&timeout) {
                Some(t) => {
                    let ms = self.config.timeout_unit.millis(t);
                    self.can_do(conn, function, ms, out)
                }
                None => out.error(
                    conn,
                    ErrorCode::InvalidPacket,
                    "CAN_DO_TIMEOUT timeout is not a number",
                ),
            },
            Request::CantDo { function } => self.cant_do(conn, &function, out),
            Request::ResetAbilities => {
                self.cluster_touch_conn(conn, out);
                let abilities = std::mem::take(&mut self.conn_mut(conn).abilities);
                for a in abilities {
                    self.functions[a.function].workers.retain(|w| *w != conn);
                }
            }
            Request::PreSleep => self.pre_sleep(conn, out),
            Request::Submit(s) => {
                let new = NewJob {
                    function: s.function,
                    unique: s.unique,
                    data: s.data,
                    priority: s.priority,
                    background: s.background,
                    kind: JobKind::Plain,
                };
                self.submit(conn, new, now, out);
            }
            Request::SubmitEpoch {
                function,
                unique,
                epoch,
                data,
            } => {
                let new = NewJob::background(
                    function,
                    unique,
                    data,
                    JobKind::Epoch(UnixMillis::from_secs(epoch)),
                );
                self.submit(conn, new, now, out);
            }
            Request::SubmitSched {
                function,
                unique,
                schedule,
                data,
            } => match cron::Schedule::parse(&schedule) {
                Ok(s) => {
                    let kind = JobKind::Sched(Box::new(s));
                    self.submit(
                        conn,
                        NewJob::background(function, unique, data, kind),
                        now,
                        out,
                    );
                }
                Err(e) => out.error(conn, ErrorCode::InvalidArguments, e.to_string()),
            },
            Request::SubmitReduce {
                function,
                unique,
                reducer,
                data,
                background,
                ..
            } => {
                let new = NewJob {
                    function,
                    unique,
                    data,
                    priority: Priority::Normal,
                    background,
                    kind: JobKind::Reduce { reducer },
                };
                self.submit(conn, new, now, out);
            }
            Request::GrabJob => self.grab(conn, jobs::Grab::Plain, now, out),
            Request::GrabJobUniq => self.grab(conn, jobs::Grab::Uniq, now, out),
            Request::GrabJobAll => self.grab(conn, jobs::Grab::All, now, out),
            Request::WorkStatus {
                handle,
                numerator,
                denominator,
            } => self.work_status(conn, handle, numerator, denominator, now, out),
            Request::WorkData { handle, data } => {
                self.work_forward(conn, handle, data, false, now, out)
            }
            Request::WorkWarning { handle, data } => {
                self.work_forward(conn, handle, data, true, now, out)
            }
            Request::WorkComplete { handle, data } => {
                self.work_end(conn, handle, work::End::Complete(data), now, out)
            }
            Request::WorkFail { handle } => self.work_end(conn, handle, work::End::Fail, now, out),
            Request::WorkException { handle, data } => {
                self.work_end(conn, handle, work::End::Exception(data), now, out)
            }
            Request::GetStatus { handle } => self.get_status(conn, handle, out),
            Request::GetStatusUnique { unique } => self.get_status_unique(conn, unique, out),
            Request::EchoReq { data } => out.send(conn, Response::EchoRes { data }),
            Request::SetClientId { id } => {
                if id.len() > self.config.max_client_id {
                    out.error(conn, ErrorCode::ArgumentTooLarge, "client id too long");
                } else if jobs::has_control(&id) {
                    out.error(conn, ErrorCode::InvalidArguments, jobs::CONTROL_IN_NAME);
                } else {
                    // A copy: a slice would keep the whole read buffer alive.
                    let peer =
                        self.cluster.is_some() && id.starts_with(cluster::PEER_CLIENT_ID_PREFIX);
                    let c = self.conn_mut(conn);
                    c.peer = peer;
                    c.client_id = Bytes::copy_from_slice(&id);
                }
            }
            Request::OptionReq { option } => {
                if option.as_ref() == b"exceptions" {
                    self.conn_mut(conn).exceptions = true;
                    out.send(conn, Response::OptionRes { option });
                } else {
                    out.error(
                        conn,
                        ErrorCode::UnknownOption,
                        "Server does not recognize given option",
                    );
                }
            }
            Request::AllYours => out.error(conn, ErrorCode::InvalidCommand, "Command not expected"),
            _ => out.error(conn, ErrorCode::InvalidCommand, "unsupported request"),
        }
    }

    /// Handles one admin command from `conn`.
    pub fn admin(&mut self, conn: ConnId, cmd: AdminCommand, now: UnixMillis, out: &mut Outbox) {
        if let Some(refused) = self.admin_refused(conn, &cmd) {
            out.effects.push(Effect::Text(conn, refused));
            return;
        }
        let reply = self.admin_reply(conn, cmd, now, out);
        out.effects.push(Effect::Text(conn, reply));
    }

    /// Whether graceful shutdown may finish: no job is queued or running.
    pub fn is_idle(&self) -> bool {
        self.functions
            .values()
            .all(|f| f.queued() == 0 && f.running == 0)
    }

    /// Whether graceful shutdown has begun.
    pub fn is_draining(&self) -> bool {
        self.draining
    }

    /// Graceful shutdown has begun: no new jobs are accepted (and a cluster member's next
    /// [`Core::cluster_pass`] gives back every queued job it can).
    pub fn start_draining(&mut self) {
        self.draining = true;
        if let Some(book) = &mut self.cluster {
            book.dirty.extend(self.functions.ids());
        }
    }

    /// Number of jobs held (queued, running and waiting for their time).
    pub fn job_count(&self) -> usize {
        self.jobs.len()
    }

    /// Counters of one function.
    pub fn function_stats(&self, function: &[u8]) -> Option<&FunctionStats> {
        self.functions.by_name(function).map(|f| &f.stats)
    }

    fn conn(&self, conn: ConnId) -> &Conn {
        &self.conns[&conn]
    }

    fn conn_mut(&mut self, conn: ConnId) -> &mut Conn {
        self.conns
            .get_mut(&conn)
            .expect("connection checked by caller")
    }
}
