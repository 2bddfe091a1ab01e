//! The `metrics` admin command: the core's gauges, counters and histograms in Prometheus'
//! text exposition format (version 0.0.4), then the server-wide ones
//! ([`ServerMetrics`](crate::metrics::ServerMetrics)). Nothing is counted for it: a scrape
//! reads the per-function [`FunctionStats`](super::state::FunctionStats), queue lengths and
//! the connection table, under the same lock as any admin command. With thousands of
//! functions that lock is held while the text is written, so the text goes into one buffer
//! sized up front, numbers through `itoa`, each function's label escaped once.

use crate::metrics::{Histogram, Kind, Text, JOB_SECONDS};

use super::state::{Function, FunctionStats};
use super::{Core, UnixMillis};

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

/// Counters: name, help, value.
type Counter = (&'static str, &'static str, fn(&FunctionStats) -> u64);

const COUNTERS: [Counter; 7] = [
    ("gearbox_jobs_submitted_total", "Jobs accepted.", |s| {
        s.submitted
    }),
    (
        "gearbox_jobs_completed_total",
        "WORK_COMPLETE received.",
        |s| s.completed,
    ),
    (
        "gearbox_jobs_failed_total",
        "Jobs failed (WORK_FAIL, retries exhausted, cancel, timeout).",
        |s| s.failed,
    ),
    (
        "gearbox_jobs_exceptions_total",
        "WORK_EXCEPTION received.",
        |s| s.exceptions,
    ),
    (
        "gearbox_jobs_retried_total",
        "Jobs queued again after losing their worker.",
        |s| s.retried,
    ),
    (
        "gearbox_jobs_timed_out_total",
        "Jobs whose worker exceeded its CAN_DO_TIMEOUT.",
        |s| s.timed_out,
    ),
    (
        "gearbox_jobs_rejected_total",
        "Submits refused (queue full, limits).",
        |s| s.rejected,
    ),
];

/// Histograms: name, help, histogram of a function.
type Durations = (&'static str, &'static str, fn(&FunctionStats) -> &Histogram);

const HISTOGRAMS: [Durations; 2] = [
    (
        "gearbox_job_queue_wait_seconds",
        "Time from submit (or requeue) until a worker took the job.",
        |s| &s.queue_wait,
    ),
    (
        "gearbox_job_run_seconds",
        "Time from a worker taking the job until it ended or the worker was lost.",
        |s| &s.run_time,
    ),
];

const PRIORITIES: [&str; 3] = [
    ",priority=\"high\"",
    ",priority=\"normal\"",
    ",priority=\"low\"",
];

/// About what one function's lines take (53 lines), to size the buffer once.
const BYTES_PER_FUNCTION: usize = 4096;

impl Core {
    /// Appends the metrics, functions sorted by name.
    pub(super) fn render_metrics(&self, out: &mut Vec<u8>, now: UnixMillis) {
        let mut functions: Vec<&Function> = self.functions.values().collect();
        functions.sort_unstable_by(|a, b| a.name.cmp(&b.name));
        // Each function's `function="..."` label, escaped once, at `labels[spans[i]]`.
        let mut labels = Vec::with_capacity(functions.len() * 32);
        let mut spans = Vec::with_capacity(functions.len());
        {
            let mut t = Text::new(&mut labels);
            for f in &functions {
                let start = t.len();
                t.raw("function=\"");
                t.label_value(&f.name);
                t.raw("\"");
                spans.push(start..t.len());
            }
        }
        let rows: Vec<(&[u8], &Function)> = spans
            .into_iter()
            .map(|r| &labels[r])
            .zip(functions)
            .collect();
        out.reserve(8192 + rows.len() * BYTES_PER_FUNCTION);
        let mut t = Text::new(out);
        t.header(
            "gearbox_connections",
            "Open connections (clients, workers, admin).",
            Kind::Gauge,
        );
        t.sample("gearbox_connections", |_| {}, self.conns.len() as u64);
        t.header(
            "gearbox_queued_jobs",
            "Jobs of the function waiting for a worker.",
            Kind::Gauge,
        );
        for (label, f) in &rows {
            for (p, q) in PRIORITIES.iter().zip(&f.queues) {
                let labels = |t: &mut Text| {
                    t.bytes(label);
                    t.raw(p);
                };
                t.sample("gearbox_queued_jobs", labels, q.len() as u64);
            }
        }
        for (metric, help, value) in GAUGES {
            t.header(metric, help, Kind::Gauge);
            for (label, f) in &rows {
                t.sample(metric, |t| t.bytes(label), value(f));
            }
        }
        for (metric, help, value) in COUNTERS {
            t.header(metric, help, Kind::Counter);
            for (label, f) in &rows {
                t.sample(metric, |t| t.bytes(label), value(&f.stats));
            }
        }
        for (metric, help, histogram) in HISTOGRAMS {
            t.header(metric, help, Kind::Histogram);
            for (label, f) in &rows {
                let h = histogram(&f.stats);
                let counts = h.counts().iter().copied();
                t.histogram(metric, |t| t.bytes(label), &JOB_SECONDS, counts, h.sum_ms());
            }
        }
        self.server_metrics.render(&mut t, now);
    }

    /// Appends the `metrics totals` listing: open connections, each job counter summed over
    /// the functions the server holds (one unlabelled line each), then the server-wide
    /// metrics. Its size does not depend on the number of functions.
    pub(super) fn render_metric_totals(&self, out: &mut Vec<u8>, now: UnixMillis) {
        let mut sums = [0u64; COUNTERS.len()];
        for f in self.functions.values() {
            for (sum, (_, _, value)) in sums.iter_mut().zip(COUNTERS) {
                *sum += value(&f.stats);
            }
        }
        let mut t = Text::new(out);
        t.header(
            "gearbox_connections",
            "Open connections (clients, workers, admin).",
            Kind::Gauge,
        );
        t.sample("gearbox_connections", |_| {}, self.conns.len() as u64);
        for ((metric, help, _), sum) in COUNTERS.into_iter().zip(sums) {
            t.header(metric, help, Kind::Counter);
            t.sample(metric, |_| {}, sum);
        }
        self.server_metrics.render(&mut t, now);
    }
}
