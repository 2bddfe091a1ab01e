//! WORK_* packets from workers, forwarded to attached clients, and status queries.

use bytes::Bytes;
use gearbox_proto::Response;

use super::jobs::Outcome;
use super::state::{ConnId, JobId, JobState};
use super::{Core, Outbox};

/// How a worker ended a job.
#[derive(Debug)]
pub(super) enum End {
    Complete(Bytes),
    Fail,
    Exception(Bytes),
}

impl Core {
    /// The job `handle` if it is running on `conn`; otherwise sends ERROR JOB_NOT_FOUND.
    fn running_on(&self, conn: ConnId, handle: &[u8], out: &mut Outbox) -> Option<JobId> {
        let id = self.handles.get(handle).copied();
        let ok = id
            .and_then(|id| self.jobs.get(&id))
            .is_some_and(|j| matches!(j.state, JobState::Running { worker, .. } if worker == conn));
        if ok {
            id
        } else {
            out.error(conn, "JOB_NOT_FOUND", "Job given in work result not found");
            None
        }
    }

    pub(super) fn work_status(
        &mut self,
        conn: ConnId,
        handle: Bytes,
        numerator: Bytes,
        denominator: Bytes,
        out: &mut Outbox,
    ) {
        let Some(id) = self.running_on(conn, &handle, out) else {
            return;
        };
        let job = self.jobs.get_mut(&id).expect("checked");
        job.status = (numerator.clone(), denominator.clone());
        for &cl in &job.clients {
            out.send(
                cl,
                Response::WorkStatus {
                    handle: job.handle.clone(),
                    numerator: numerator.clone(),
                    denominator: denominator.clone(),
                },
            );
        }
    }

    pub(super) fn work_forward(
        &mut self,
        conn: ConnId,
        handle: Bytes,
        data: Bytes,
        warning: bool,
        out: &mut Outbox,
    ) {
        let Some(id) = self.running_on(conn, &handle, out) else {
            return;
        };
        let job = &self.jobs[&id];
        for &cl in &job.clients {
            let (handle, data) = (job.handle.clone(), data.clone());
            let r = if warning {
                Response::WorkWarning { handle, data }
            } else {
                Response::WorkData { handle, data }
            };
            out.send(cl, r);
        }
    }

    pub(super) fn work_end(
        &mut self,
        conn: ConnId,
        handle: Bytes,
        end: End,
        now_ms: u64,
        out: &mut Outbox,
    ) {
        let Some(id) = self.running_on(conn, &handle, out) else {
            return;
        };
        let job = &self.jobs[&id];
        for &cl in &job.clients {
            let handle = job.handle.clone();
            let r = match &end {
                End::Complete(data) => Response::WorkComplete {
                    handle,
                    data: data.clone(),
                },
                End::Fail => Response::WorkFail { handle },
                End::Exception(data) => {
                    let wants =
                        self.config.exceptions || self.conns.get(&cl).is_some_and(|c| c.exceptions);
                    if wants {
                        Response::WorkException {
                            handle,
                            data: data.clone(),
                        }
                    } else {
                        Response::WorkFail { handle }
                    }
                }
            };
            out.send(cl, r);
        }
        let outcome = match end {
            End::Complete(_) => Outcome::Completed,
            End::Fail => Outcome::Failed,
            End::Exception(_) => Outcome::Exception,
        };
        self.finish(id, outcome, now_ms, out);
    }

    pub(super) fn get_status(&self, conn: ConnId, handle: Bytes, out: &mut Outbox) {
        let job = self.handles.get(&handle).and_then(|id| self.jobs.get(id));
        let r = match job {
            Some(j) => Response::StatusRes {
                handle,
                known: true,
                running: matches!(j.state, JobState::Running { .. }),
                numerator: j.status.0.clone(),
                denominator: j.status.1.clone(),
            },
            None => Response::StatusRes {
                handle,
                known: false,
                running: false,
                numerator: Bytes::from_static(b"0"),
                denominator: Bytes::from_static(b"0"),
            },
        };
        out.send(conn, r);
    }

    pub(super) fn get_status_unique(&self, conn: ConnId, unique: Bytes, out: &mut Outbox) {
        let job = self
            .uniques
            .iter()
            .filter(|((_, u), _)| *u == unique)
            .filter_map(|(_, id)| self.jobs.get(id))
            .min_by_key(|j| j.id);
        let r = match job {
            Some(j) => Response::StatusResUnique {
                unique,
                known: true,
                running: matches!(j.state, JobState::Running { .. }),
                numerator: j.status.0.clone(),
                denominator: j.status.1.clone(),
                client_count: j.clients.len() as u64,
            },
            None => Response::StatusResUnique {
                unique,
                known: false,
                running: false,
                numerator: Bytes::from_static(b"0"),
                denominator: Bytes::from_static(b"0"),
                client_count: 0,
            },
        };
        out.send(conn, r);
    }
}
