//! One connection slot of a worker: connect to its server and register, grab and run one job
//! at a time (GRAB_JOB_UNIQ / NO_JOB / PRE_SLEEP / NOOP), reconnect with back-off after a
//! loss, and at shutdown stop grabbing and let the running job finish until the deadline.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

use bytes::Bytes;
use gearbox_proto::{Request, Response};
use tokio::sync::{watch, AcquireError, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tracing::Instrument;

use super::builder::Settings;
use super::connection::{label, read_packet, Connection};
use super::exec;
use super::health::Health;
use super::job::{Job, Link};
use super::jobs::{Drained, SlotJobs};
use crate::{Error, ServerAddr};

/// What every session of one worker shares.
pub(crate) struct Shared {
    pub settings: Arc<Settings>,
    /// One permit per job that may run at once, across all servers.
    pub permits: Arc<Semaphore>,
    pub health: Arc<Health>,
}

/// Where a connection is in the grab cycle.
enum Grab {
    /// Should ask for a job as soon as a permit is free.
    Want,
    /// GRAB_JOB_UNIQ sent, holding the permit the job will use.
    Asked(OwnedSemaphorePermit),
    /// PRE_SLEEP sent (or shutting down): waiting for NOOP.
    Asleep,
}

type Acquire = Pin<Box<dyn Future<Output = Result<OwnedSemaphorePermit, AcquireError>> + Send>>;

enum Ended {
    Stopped,
    Lost(Error),
}

/// One slot's connection loop. The stop channel carries the shutdown deadline.
pub(crate) struct Session {
    /// Index among all slots of the worker (for [`Health`]).
    index: usize,
    /// Index among the slots of this server (for logs).
    slot: usize,
    addr: ServerAddr,
    label: Arc<str>,
    shared: Arc<Shared>,
    stop: watch::Receiver<Option<Instant>>,
    /// The worker dropped the stop sender (its `run` future was dropped): stop now.
    orphaned: bool,
    jobs: SlotJobs,
    connections: u64,
}

impl Session {
    /// Slot `slot` of `addr`, number `index` of the worker.
    pub(crate) fn new(
        index: usize,
        slot: usize,
        addr: ServerAddr,
        shared: Arc<Shared>,
        stop: watch::Receiver<Option<Instant>>,
    ) -> Session {
        Session {
            index,
            slot,
            label: label(&addr),
            jobs: SlotJobs::new(label(&addr)),
            addr,
            shared,
            stop,
            orphaned: false,
            connections: 0,
        }
    }

    /// Runs until shutdown: connects, serves, reconnects with back-off; then drains.
    pub(crate) async fn run(mut self) -> Drained {
        let (min, max) = (
            self.shared.settings.reconnect_min,
            self.shared.settings.reconnect_max,
        );
        let mut backoff = min;
        while self.deadline().is_none() {
            let (addr, settings) = (self.addr.clone(), self.shared.settings.clone());
            let opened = self
                .until_stop(async move { Connection::open(&addr, &settings).await })
                .await;
            let error = match opened {
                None => break,
                Some(Ok(conn)) => {
                    self.connections += 1;
                    self.shared.health.up(self.index);
                    if self.slot == 0 {
                        tracing::info!(server = %self.label, "connected; functions registered");
                    }
                    backoff = min;
                    match self.serve(conn).await {
                        Ended::Stopped => break,
                        Ended::Lost(e) => {
                            self.jobs.log_lost(self.connections, &e);
                            e
                        }
                    }
                }
                Some(Err(Error::PermissionDenied(refusal))) => {
                    // Not temporary: retrying would only repeat the refusal.
                    if self.slot == 0 {
                        tracing::error!(server = %self.label, error = %refusal, "the server's access rules refuse this worker's functions; not retrying this server");
                    }
                    self.shared.health.refused(self.index, refusal);
                    break;
                }
                Some(Err(e)) => e,
            };
            let retry_in_ms = u64::try_from(backoff.as_millis()).unwrap_or(u64::MAX);
            // Every slot of a server fails alike: one warning per server is enough.
            if self.slot == 0 {
                tracing::warn!(server = %self.label, error = %error, retry_in_ms, "server unavailable");
            } else {
                tracing::debug!(server = %self.label, slot = self.slot, error = %error, retry_in_ms, "server unavailable");
            }
            self.shared.health.down(self.index, error.to_string());
            if self.until_stop(tokio::time::sleep(backoff)).await.is_none() {
                break;
            }
            backoff = (backoff * 2).min(max);
        }
        self.drain().await;
        self.jobs.drained
    }

    /// The shutdown deadline, once shutdown was requested.
    fn deadline(&self) -> Option<Instant> {
        if self.orphaned {
            return Some(Instant::now());
        }
        *self.stop.borrow()
    }

    /// Awaits `fut` while reaping finished jobs; `None` if shutdown was requested first.
    async fn until_stop<T>(&mut self, fut: impl Future<Output = T>) -> Option<T> {
        tokio::pin!(fut);
        loop {
            if self.deadline().is_some() {
                return None;
            }
            tokio::select! {
                v = &mut fut => return Some(v),
                changed = self.stop.changed() => self.orphaned |= changed.is_err(),
                r = self.jobs.next() => self.jobs.reaped(r),
            }
        }
    }

    /// Serves one connection until it is lost or, at shutdown, until its jobs are done.
    async fn serve(&mut self, mut conn: Connection) -> Ended {
        let generation = self.connections;
        let mut grab = Grab::Want;
        let mut acquire: Option<Acquire> = None;
        let ended = loop {
            let deadline = self.deadline();
            if let Some(d) = deadline {
                acquire = None;
                let asked = matches!(grab, Grab::Asked(_));
                if (!asked && self.jobs.is_empty()) || Instant::now() >= d {
                    break Ended::Stopped;
                }
            } else if matches!(grab, Grab::Want) && acquire.is_none() && !self.jobs.busy(generation)
            {
                acquire = Some(Box::pin(self.shared.permits.clone().acquire_owned()));
            }
            tokio::select! {
                packet = read_packet(&mut conn.reader, &self.addr) => {
                    let handled = match packet {
                        Ok(p) => self.on_packet(p, &mut grab, &conn, generation).await,
                        Err(e) => Err(e),
                    };
                    if let Err(e) = handled {
                        break Ended::Lost(e);
                    }
                }
                permit = async { acquire.as_mut().expect("guarded by is_some").await },
                    if acquire.is_some() =>
                {
                    acquire = None;
                    // The semaphore is never closed.
                    let Ok(permit) = permit else { break Ended::Stopped };
                    if self.deadline().is_some() {
                        // Shutdown came in while this branch was being chosen.
                        drop(permit);
                        continue;
                    }
                    if let Err(e) = conn.send(&self.addr, Request::GrabJobUniq).await {
                        break Ended::Lost(e);
                    }
                    grab = Grab::Asked(permit);
                }
                changed = self.stop.changed(), if deadline.is_none() => {
                    self.orphaned |= changed.is_err();
                }
                r = self.jobs.next() => self.jobs.reaped(r),
                w = &mut conn.writer => {
                    let reason = match w {
                        Ok(Err(e)) => format!("write failed: {e}"),
                        _ => "the writer stopped".into(),
                    };
                    break Ended::Lost(Error::Disconnected { server: self.label.to_string(), reason });
                }
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)),
                    if deadline.is_some() => {}
            }
        };
        drop(grab);
        match ended {
            Ended::Stopped => {
                // Abandon what is still running at the deadline, then flush the results.
                self.drain().await;
                conn.close(&self.addr).await;
            }
            Ended::Lost(_) => conn.writer.abort(),
        }
        ended
    }

    /// Reacts to one packet from the server.
    async fn on_packet(
        &mut self,
        packet: Response,
        grab: &mut Grab,
        conn: &Connection,
        generation: u64,
    ) -> Result<(), Error> {
        match packet {
            Response::Noop => {
                if matches!(grab, Grab::Asleep) && self.deadline().is_none() {
                    *grab = Grab::Want;
                }
            }
            Response::NoJob => match std::mem::replace(grab, Grab::Asleep) {
                Grab::Asked(permit) => {
                    drop(permit);
                    if self.deadline().is_none() {
                        conn.send(&self.addr, Request::PreSleep).await?;
                    }
                }
                other => {
                    *grab = other;
                    tracing::warn!(server = %self.label, "NO_JOB without a grab; ignored");
                }
            },
            Response::JobAssignUniq {
                handle,
                function,
                unique,
                data,
            } => {
                self.assigned(grab, conn, generation, handle, function, unique, data)
                    .await?
            }
            Response::JobAssign {
                handle,
                function,
                data,
            } => {
                self.assigned(grab, conn, generation, handle, function, Bytes::new(), data)
                    .await?
            }
            Response::Error { code, text } => tracing::warn!(
                server = %self.label,
                code = %String::from_utf8_lossy(&code),
                text = %String::from_utf8_lossy(&text),
                "the server reported an error (e.g. JOB_NOT_FOUND: a result came after the \
                 job's CAN_DO_TIMEOUT)"
            ),
            other => tracing::debug!(server = %self.label, packet = ?other, "ignored"),
        }
        Ok(())
    }

    /// Starts a job the server assigned, or fails it back when it cannot be run.
    #[allow(clippy::too_many_arguments)]
    async fn assigned(
        &mut self,
        grab: &mut Grab,
        conn: &Connection,
        generation: u64,
        handle: Bytes,
        function: Bytes,
        unique: Bytes,
        data: Bytes,
    ) -> Result<(), Error> {
        let h = String::from_utf8_lossy(&handle).into_owned();
        let f = String::from_utf8_lossy(&function).into_owned();
        let permit = match std::mem::replace(grab, Grab::Want) {
            Grab::Asked(permit) => permit,
            other => {
                *grab = other;
                tracing::warn!(server = %self.label, handle = %h, function = %f,
                    "job assigned without a grab; failing it back");
                return conn.send(&self.addr, Request::WorkFail { handle }).await;
            }
        };
        let Some(reg) = self.shared.settings.functions.get(&function) else {
            tracing::warn!(server = %self.label, handle = %h, function = %f,
                "job for a function this worker did not register; failing it back");
            return conn.send(&self.addr, Request::WorkFail { handle }).await;
        };
        let link = Link::new(self.label.clone(), conn.out.clone(), self.stop.clone());
        let job = Job::new(handle.clone(), reg.name.clone(), unique, data, link);
        let span =
            tracing::info_span!("job", server = %self.label, function = %reg.name, handle = %h);
        let mode = self.shared.settings.exception_mode;
        let task = exec::execute(job, reg.handler.clone(), mode, permit).instrument(span);
        self.jobs.spawn(task, handle, reg.name.clone(), generation);
        Ok(())
    }

    /// Waits for running jobs until the deadline, then abandons the rest.
    async fn drain(&mut self) {
        let deadline = self.deadline().unwrap_or_else(Instant::now);
        self.jobs.drain(deadline).await;
    }
}
