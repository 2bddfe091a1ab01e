//! WORK_* packets from workers, forwarded to attached clients, and status queries.

use bytes::Bytes;
use gearbox_proto::{ErrorCode, Response};

use super::ids::{ConnId, JobId};
use super::jobs::Outcome;
use super::log::Lossy;
use super::state::JobState;
use super::table::UniqueKey;
use super::time::UnixMillis;
use super::{Core, Outbox};

/// How a worker ended a job.
#[derive(Debug)]
pub(super) enum End {
    Complete(Bytes),
    Fail,
    Exception(Bytes),
}

/// gearmand's JOB_NOT_FOUND texts: WORK_STATUS, WORK_COMPLETE and WORK_FAIL use the first,
/// WORK_DATA and WORK_WARNING the second, WORK_EXCEPTION the third.
const RESULT_NOT_FOUND: &str = "Job given in work result not found";
const NO_SUCH_JOB: &str = "Job does not exist on server";
const EXCEPTION_NOT_FOUND: &str = "An exception was received for a job that does not exist";

impl End {
    fn not_found_text(&self) -> &'static str {
        match self {
            End::Exception(_) => EXCEPTION_NOT_FOUND,
            End::Complete(_) | End::Fail => RESULT_NOT_FOUND,
        }
    }
}

impl Core {
    /// The job `handle` if it is running on `conn`. Otherwise sends ERROR JOB_NOT_FOUND with
    /// `text` (gearmand words it differently per packet type), unless the job was this
    /// worker's until its CAN_DO_TIMEOUT failed it: that late packet is dropped silently, and
    /// forgotten with the worker's final packet (`last`).
    fn running_on(
        &mut self,
        conn: ConnId,
        handle: &[u8],
        text: &'static str,
        last: bool,
        out: &mut Outbox,
    ) -> Option<JobId> {
        let id = self.job_by_handle(handle);
        let ok = id
            .and_then(|id| self.jobs.get(&id))
            .is_some_and(|j| matches!(j.state, JobState::Running { worker, .. } if worker == conn));
        if ok {
            return id;
        }
        let late = &mut self.conn_mut(conn).timed_out;
        match late.iter().position(|h| h.as_ref() == handle) {
            Some(pos) => {
                if last {
                    late.remove(pos);
                }
                tracing::debug!(conn = conn.get(), handle = %Lossy(handle), "late result after CAN_DO_TIMEOUT dropped");
            }
            None => out.error(conn, ErrorCode::JobNotFound, text),
        }
        None
    }

    pub(super) fn work_status(
        &mut self,
        conn: ConnId,
        handle: Bytes,
        numerator: Bytes,
        denominator: Bytes,
        now: UnixMillis,
        out: &mut Outbox,
    ) {
        let Some(id) = self.running_on(conn, &handle, RESULT_NOT_FOUND, false, out) else {
            return;
        };
        self.note_progress(id, now);
        // `running_on` accepts only the job's exact handle, so the worker's bytes are it.
        self.log_job(id, "status", Some(conn));
        let job = self.jobs.get_mut(&id).expect("checked");
        // Forwarded as sent; stored as gearmand reads it (atoi), for GET_STATUS.
        job.set_status(leading_number(&numerator), leading_number(&denominator));
        for &cl in job.clients() {
            out.send(
                cl,
                Response::WorkStatus {
                    handle: handle.clone(),
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
        now: UnixMillis,
        out: &mut Outbox,
    ) {
        let Some(id) = self.running_on(conn, &handle, NO_SUCH_JOB, false, out) else {
            return;
        };
        self.note_progress(id, now);
        let job = &self.jobs[&id];
        for &cl in job.clients() {
            let (handle, data) = (handle.clone(), data.clone());
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
        now: UnixMillis,
        out: &mut Outbox,
    ) {
        let Some(id) = self.running_on(conn, &handle, end.not_found_text(), true, out) else {
            return;
        };
        let job = &self.jobs[&id];
        // `running_on` accepts only the job's exact handle, so the worker's bytes are it.
        let own = handle;
        for &cl in job.clients() {
            let handle = own.clone();
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
        let (outcome, event) = match end {
            End::Complete(_) => (Outcome::Completed, "completed"),
            End::Fail => (Outcome::Failed, "failed"),
            End::Exception(_) => (Outcome::Exception, "exception"),
        };
        self.log_job(id, event, Some(conn));
        self.finish(id, outcome, now, out);
    }

    pub(super) fn get_status(&self, conn: ConnId, handle: Bytes, out: &mut Outbox) {
        let job = self
            .job_by_handle(&handle)
            .and_then(|id| self.jobs.get(&id));
        let r = match job {
            Some(j) => {
                let (numerator, denominator) = j.status();
                Response::StatusRes {
                    handle,
                    known: true,
                    running: matches!(j.state, JobState::Running { .. }),
                    numerator,
                    denominator,
                }
            }
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
        // Every job with a unique id is in the unique index, under any function.
        let job = self
            .jobs
            .values()
            .filter(|j| UniqueKey::of_job(j).is_some_and(|k| k.is(&unique)))
            .max_by_key(|j| j.id);
        let r = match job {
            Some(j) => {
                let (numerator, denominator) = j.status();
                Response::StatusResUnique {
                    unique,
                    known: true,
                    running: matches!(j.state, JobState::Running { .. }),
                    numerator,
                    denominator,
                    client_count: j.clients().len() as u64,
                }
            }
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

/// The leading decimal digits of `s` (C `atoi` on a non-negative number), or `0`. A copy: it
/// is kept with the job, where a slice would keep the whole read buffer alive.
fn leading_number(s: &Bytes) -> Bytes {
    let digits = s.iter().take_while(|b| b.is_ascii_digit()).count();
    if digits == 0 {
        Bytes::from_static(b"0")
    } else {
        Bytes::copy_from_slice(&s[..digits])
    }
}
