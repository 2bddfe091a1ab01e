//! The `metrics` admin command: the core's gauges and counters in Prometheus' text exposition
//! format (version 0.0.4), rendered from the state the core keeps anyway. Nothing is counted
//! for it: a scrape reads the per-function [`FunctionStats`](super::state::FunctionStats),
//! queue lengths and the connection table, under the same lock as any admin command.

use std::io::Write as _;

use super::state::{Function, FunctionStats};
use super::Core;

/// Gauges: name, help, value of a function (one line per function).
type Gauge = (&'static str, &'static str, fn(&Function) -> u64);

const GAUGES: [Gauge; 3] = [
    (
        "gearbox_running_jobs",
        "Jobs of the function a worker is running.",
        |f| u64::from(f.running),
    ),
    (
        "gearbox_waiting_jobs",
        "Jobs of the function waiting for their time (EPOCH, SCHED).",
        |f| u64::from(f.waiting),
    ),
    (
        "gearbox_workers",
        "Worker connections that registered the function.",
        |f| f.workers.len() as u64,
    ),
];

/// Counters: name (without `_total`), help, value.
type Counter = (&'static str, &'static str, fn(&FunctionStats) -> u64);

const COUNTERS: [Counter; 7] = [
    ("gearbox_jobs_submitted", "Jobs accepted.", |s| s.submitted),
    ("gearbox_jobs_completed", "WORK_COMPLETE received.", |s| {
        s.completed
    }),
    (
        "gearbox_jobs_failed",
        "Jobs failed (WORK_FAIL, retries exhausted, cancel, timeout).",
        |s| s.failed,
    ),
    ("gearbox_jobs_exceptions", "WORK_EXCEPTION received.", |s| {
        s.exceptions
    }),
    (
        "gearbox_jobs_retried",
        "Jobs queued again after losing their worker.",
        |s| s.retried,
    ),
    (
        "gearbox_jobs_timed_out",
        "Jobs whose worker exceeded its CAN_DO_TIMEOUT.",
        |s| s.timed_out,
    ),
    (
        "gearbox_jobs_rejected",
        "Submits refused (queue full, limits).",
        |s| s.rejected,
    ),
];

const PRIORITIES: [&str; 3] = ["high", "normal", "low"];

/// A function name as a label value: lossy UTF-8, with `\`, `"` and newlines escaped.
fn label(name: &[u8]) -> String {
    let mut out = String::with_capacity(name.len());
    for c in String::from_utf8_lossy(name).chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

impl Core {
    /// Appends the metrics, functions sorted by name.
    pub(super) fn render_metrics(&self, s: &mut Vec<u8>) {
        let mut functions: Vec<(String, &Function)> = self
            .functions
            .values()
            .map(|f| (label(&f.name), f))
            .collect();
        functions.sort_by(|a, b| a.0.cmp(&b.0));
        let _ = writeln!(
            s,
            "# HELP gearbox_connections Open connections (clients, workers, admin)."
        );
        let _ = writeln!(s, "# TYPE gearbox_connections gauge");
        let _ = writeln!(s, "gearbox_connections {}", self.conns.len());
        let _ = writeln!(
            s,
            "# HELP gearbox_queued_jobs Jobs of the function waiting for a worker."
        );
        let _ = writeln!(s, "# TYPE gearbox_queued_jobs gauge");
        for (name, f) in &functions {
            for (p, q) in PRIORITIES.iter().zip(&f.queues) {
                let _ = writeln!(
                    s,
                    "gearbox_queued_jobs{{function=\"{name}\",priority=\"{p}\"}} {}",
                    q.len()
                );
            }
        }
        for (metric, help, value) in GAUGES {
            let _ = writeln!(s, "# HELP {metric} {help}\n# TYPE {metric} gauge");
            for (name, f) in &functions {
                let _ = writeln!(s, "{metric}{{function=\"{name}\"}} {}", value(f));
            }
        }
        for (metric, help, value) in COUNTERS {
            let _ = writeln!(
                s,
                "# HELP {metric}_total {help}\n# TYPE {metric}_total counter"
            );
            for (name, f) in &functions {
                let _ = writeln!(
                    s,
                    "{metric}_total{{function=\"{name}\"}} {}",
                    value(&f.stats)
                );
            }
        }
    }
}
