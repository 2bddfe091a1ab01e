//! `gman_do_*background_on_commit`: jobs queued in backend memory and submitted only when
//! the transaction commits.
//!
//! - A queued job remembers its subtransaction: when a savepoint rolls back, its jobs go;
//!   when it is released, they move to the parent.
//! - PRE_COMMIT (the transaction can still fail): a connection to a server of the list is
//!   opened, or a cached one proven alive with an ECHO round trip. No server: the COMMIT
//!   fails with an ERROR and the transaction rolls back.
//! - COMMIT (the transaction is durable, nothing may fail any more): the jobs are sent on that
//!   connection in batches and each JOB_CREATED is awaited. A failure now can only be logged
//!   (WARNING, with the number of jobs that may be lost).
//! - ABORT (or PREPARE TRANSACTION, which is refused while jobs are queued): the queue is
//!   discarded.

use std::cell::RefCell;
use std::panic::catch_unwind;
use std::time::{Duration, Instant};

use pgrx::pg_sys;
use pgrx::prelude::*;

use crate::client::{Conn, Error, Job};
use crate::{pool, settings};

/// Jobs sent in one write at COMMIT before their acknowledgements are read, so neither side
/// blocks on a full socket buffer.
const BATCH: usize = 1000;

/// How long COMMIT waits for the acknowledgements when `gearbox.timeout` is 0.
const COMMIT_WAIT: Duration = Duration::from_secs(10);

struct Queued {
    job: Job,
    subxact: pg_sys::SubTransactionId,
}

thread_local! {
    static QUEUE: RefCell<Vec<Queued>> = const { RefCell::new(Vec::new()) };
    /// The connection PRE_COMMIT opened or checked, used by COMMIT.
    static COMMIT_CONN: RefCell<Option<Conn>> = const { RefCell::new(None) };
}

/// Registers the transaction callbacks (from `_PG_init`).
pub fn register() {
    // SAFETY: called once per backend from _PG_init; the callbacks live as long as the library.
    unsafe {
        pg_sys::RegisterXactCallback(Some(xact_callback), std::ptr::null_mut());
        pg_sys::RegisterSubXactCallback(Some(subxact_callback), std::ptr::null_mut());
    }
}

/// Queues `job` for the commit of the current transaction.
pub fn enqueue(job: Job) {
    // SAFETY: a SQL function runs inside a transaction.
    let subxact = unsafe { pg_sys::GetCurrentSubTransactionId() };
    QUEUE.with(|q| q.borrow_mut().push(Queued { job, subxact }));
}

fn queued() -> usize {
    QUEUE.with(|q| q.borrow().len())
}

fn discard() {
    QUEUE.with(|q| q.borrow_mut().clear());
    COMMIT_CONN.with(|c| c.borrow_mut().take());
}

#[pg_guard]
unsafe extern "C-unwind" fn xact_callback(
    event: pg_sys::XactEvent::Type,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::XactEvent::*;
    match event {
        XACT_EVENT_PRE_COMMIT => pre_commit(),
        XACT_EVENT_COMMIT => after_commit(),
        XACT_EVENT_PRE_PREPARE if queued() > 0 => {
            let n = queued();
            discard();
            ereport!(
                ERROR,
                PgSqlErrorCode::ERRCODE_FEATURE_NOT_SUPPORTED,
                format!("gearbox: cannot PREPARE a transaction with {n} job(s) queued by gman_do_*background_on_commit")
            );
        }
        XACT_EVENT_ABORT | XACT_EVENT_PARALLEL_ABORT | XACT_EVENT_PREPARE => discard(),
        _ => {}
    }
}

#[pg_guard]
unsafe extern "C-unwind" fn subxact_callback(
    event: pg_sys::SubXactEvent::Type,
    my_subid: pg_sys::SubTransactionId,
    parent_subid: pg_sys::SubTransactionId,
    _arg: *mut std::ffi::c_void,
) {
    use pg_sys::SubXactEvent::*;
    QUEUE.with(|q| {
        let mut q = q.borrow_mut();
        match event {
            SUBXACT_EVENT_ABORT_SUB => q.retain(|j| j.subxact != my_subid),
            SUBXACT_EVENT_COMMIT_SUB => q
                .iter_mut()
                .filter(|j| j.subxact == my_subid)
                .for_each(|j| j.subxact = parent_subid),
            _ => {}
        }
    });
}

/// Opens (or checks) the connection COMMIT will use; an ERROR here rolls the transaction back.
fn pre_commit() {
    let n = queued();
    if n == 0 {
        return;
    }
    let fail = |e: Error| -> ! {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE,
            format!("gearbox: COMMIT refused, {n} job(s) queued by gman_do_*background_on_commit cannot be submitted: {e}")
        );
    };
    let servers = settings::servers().unwrap_or_else(|e| fail(e));
    let timeout = settings::connect_timeout();
    let tick = &mut crate::check_interrupts;
    let conn = match pool::checkout(&servers, timeout, tick) {
        Ok((mut conn, true)) => match conn.ping(timeout, tick) {
            Ok(()) => conn,
            Err(_) => {
                drop(conn);
                pool::connect(&servers, timeout, tick).unwrap_or_else(|e| fail(e))
            }
        },
        Ok((conn, false)) => conn,
        Err(e) => fail(e),
    };
    COMMIT_CONN.with(|c| *c.borrow_mut() = Some(conn));
}

/// [`commit`], which must not unwind: after the commit, an ERROR (a panic) becomes a PANIC.
fn after_commit() {
    if catch_unwind(commit).is_err() {
        discard();
        warning!("gearbox: submitting the jobs queued by the committed transaction panicked; they may be lost");
    }
}

/// Submits the queued jobs after the commit; failures are WARNINGs.
fn commit() {
    let jobs: Vec<Job> = QUEUE.with(|q| q.borrow_mut().drain(..).map(|j| j.job).collect());
    let conn = COMMIT_CONN.with(|c| c.borrow_mut().take());
    if jobs.is_empty() {
        if let Some(conn) = conn {
            pool::checkin(conn);
        }
        return;
    }
    let Some(mut conn) = conn else {
        warning!("gearbox: {} job(s) queued by the committed transaction were not submitted: no connection was prepared", jobs.len());
        return;
    };
    let wait = settings::timeout().unwrap_or(COMMIT_WAIT);
    // Interrupts are held during commit; nothing to check between reads.
    let tick = &mut || {};
    let mut done = 0;
    for batch in jobs.chunks(BATCH) {
        let deadline = Some(Instant::now() + wait);
        let sent = send_batch(&mut conn, batch, deadline, tick);
        let sent = match sent {
            // The first write found the connection broken: one new connection, once.
            Err(Error::Io { .. }) if done == 0 => {
                match settings::servers()
                    .and_then(|s| pool::connect(&s, settings::connect_timeout(), tick))
                {
                    Ok(c) => {
                        conn = c;
                        send_batch(&mut conn, batch, deadline, tick)
                    }
                    Err(e) => Err(e),
                }
            }
            other => other,
        };
        if let Err(e) = sent {
            warning!(
                "gearbox: {} of {} job(s) queued by the committed transaction may not have been submitted to {}: {e}",
                jobs.len() - done,
                jobs.len(),
                conn.server()
            );
            return;
        }
        done += batch.len();
    }
    pool::checkin(conn);
}

fn send_batch(
    conn: &mut Conn,
    batch: &[Job],
    deadline: Option<Instant>,
    tick: &mut dyn FnMut(),
) -> Result<(), Error> {
    let packets: Vec<_> = batch
        .iter()
        .map(|j| gearbox_proto::Request::Submit(j.packet(true)))
        .collect();
    conn.send(&packets)?;
    for _ in batch {
        conn.created(deadline, tick)?;
    }
    Ok(())
}
