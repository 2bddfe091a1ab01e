//! Running the hooks given to [`WorkerBuilder::periodic`](super::WorkerBuilder::periodic).

use std::panic::AssertUnwindSafe;

use futures::FutureExt;
use tokio::sync::watch;
use tokio::time::{Instant, MissedTickBehavior};

use super::builder::Periodic;
use super::exec::panic_message;

/// Calls the hook every period until shutdown is requested (a call in progress finishes).
pub(crate) async fn run(p: Periodic, mut stop: watch::Receiver<Option<Instant>>) {
    let mut ticks = tokio::time::interval_at(Instant::now() + p.every, p.every);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let every_ms = u64::try_from(p.every.as_millis()).unwrap_or(u64::MAX);
    loop {
        if stop.borrow().is_some() {
            return;
        }
        tokio::select! {
            _ = ticks.tick() => {}
            changed = stop.changed() => {
                if changed.is_err() {
                    return;
                }
                continue;
            }
        }
        let call = AssertUnwindSafe(async { (p.hook)().await });
        if let Err(panic) = call.catch_unwind().await {
            tracing::error!(
                every_ms,
                panic = %panic_message(panic.as_ref()),
                "periodic hook panicked; it runs again next period"
            );
        }
    }
}
