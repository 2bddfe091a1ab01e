//! Running one job: call the handler, catch a panic, send the one final packet.

use std::any::Any;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use futures::FutureExt;
use gearbox_proto::Request;
use tokio::sync::OwnedSemaphorePermit;

use super::handler::{ExceptionMode, Handler, JobError};
use super::job::Job;

/// Runs `job` with `handler` and reports the outcome: Ok -> WORK_COMPLETE,
/// [`JobError::Exception`] -> WORK_EXCEPTION (or WORK_WARNING + WORK_FAIL, per `mode`),
/// [`JobError::Fail`] or a panic -> WORK_FAIL. `permit` (one unit of the worker's
/// concurrency) is held until the result is queued. Returns whether the handler was still
/// running when shutdown was requested.
pub(crate) async fn execute(
    job: Job,
    handler: Arc<dyn Handler>,
    mode: ExceptionMode,
    permit: OwnedSemaphorePermit,
) -> bool {
    let started = Instant::now();
    tracing::debug!("job started");
    let call = {
        let job = job.clone();
        // The handler's synchronous part runs inside the guarded future too.
        AssertUnwindSafe(async move { handler.call(job).await }).catch_unwind()
    };
    let handle = job.handle().clone();
    let returned = call.await;
    let during_shutdown = job.is_stopping();
    let (result, outcome) = match returned {
        Ok(Ok(data)) => (vec![Request::WorkComplete { handle, data }], "complete"),
        Ok(Err(JobError::Exception(data))) => {
            tracing::info!(exception = %String::from_utf8_lossy(&data), "job raised an exception");
            let sent = match mode {
                ExceptionMode::WarningThenFail => vec![
                    Request::WorkWarning {
                        handle: handle.clone(),
                        data,
                    },
                    Request::WorkFail { handle },
                ],
                _ => vec![Request::WorkException { handle, data }],
            };
            (sent, "exception")
        }
        Ok(Err(JobError::Fail)) => (vec![Request::WorkFail { handle }], "fail"),
        Err(panic) => {
            tracing::error!(
                panic = %panic_message(panic.as_ref()),
                "handler panicked; failing the job, the worker goes on"
            );
            (vec![Request::WorkFail { handle }], "panic")
        }
    };
    let elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    match job.finish(result).await {
        Ok(()) => tracing::debug!(outcome, elapsed_ms, "job done"),
        Err(e) => tracing::warn!(
            outcome,
            elapsed_ms,
            error = %e,
            "job result not reported: its connection is gone (the server re-queues or fails it)"
        ),
    }
    drop(permit);
    during_shutdown
}

/// The text of a panic payload, when it has one.
pub(crate) fn panic_message(payload: &(dyn Any + Send)) -> &str {
    if let Some(s) = payload.downcast_ref::<&'static str>() {
        s
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s
    } else {
        "<non-string panic payload>"
    }
}
