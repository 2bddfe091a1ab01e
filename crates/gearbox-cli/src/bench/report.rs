//! The result of one measured phase, as a table row or JSON.

use serde::Serialize;

use super::drive::Mode;
use super::measure::Summary;
use crate::output::Table;

/// One measured phase of a scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Phase {
    /// What ran: `fg`, `bg-submit`, `bg-drain`, `fg 10240B`, ...
    pub phase: String,
    /// Free text from `--label` (e.g. the server under test).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Classic or pipelined.
    pub mode: Mode,
    /// Client connections.
    pub clients: usize,
    /// Worker connections.
    pub workers: usize,
    /// Payload bytes per job.
    pub size: usize,
    /// Jobs finished in the phase.
    pub jobs: u64,
    /// Wall-clock seconds of the phase.
    pub seconds: f64,
    /// Jobs per second.
    pub jobs_per_sec: f64,
    /// Latency over all jobs (foreground: submit to WORK_COMPLETE; background submit: submit
    /// to JOB_CREATED).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latency: Option<Summary>,
    /// Latency per priority when more than one was used.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub by_priority: Vec<(String, Summary)>,
    /// Server CPU (user+sys) per job in microseconds, with `--server-pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_cpu_us_per_job: Option<f64>,
    /// Server resident memory at the end of the phase in KiB, with `--server-pid`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub server_rss_kib: Option<u64>,
    /// The generator's own CPU per job in microseconds.
    pub bench_cpu_us_per_job: f64,
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1000.0)
}

/// Prints the phases as one table (latencies in milliseconds).
pub fn print_table(phases: &[Phase]) {
    let mut table = Table::new(&[
        "PHASE",
        "MODE",
        ">C",
        ">W",
        ">SIZE",
        ">JOBS",
        ">SECS",
        ">JOBS/S",
        ">P50_MS",
        ">P90_MS",
        ">P99_MS",
        ">MAX_MS",
        ">SRV_CPU_US/JOB",
        ">SRV_RSS_MB",
        ">GEN_CPU_US/JOB",
    ]);
    for p in phases {
        let mut rows = vec![(p.phase.clone(), p.latency)];
        rows.extend(
            p.by_priority
                .iter()
                .map(|(name, s)| (format!("  {name}"), Some(*s))),
        );
        for (i, (name, latency)) in rows.into_iter().enumerate() {
            let first = i == 0;
            let lat = |f: fn(&Summary) -> u64| latency.map(|s| ms(f(&s))).unwrap_or_default();
            let mode = match p.mode {
                Mode::Classic => "classic",
                Mode::Pipelined => "pipelined",
            };
            table.row(vec![
                name,
                if first { mode.into() } else { String::new() },
                if first {
                    p.clients.to_string()
                } else {
                    String::new()
                },
                if first {
                    p.workers.to_string()
                } else {
                    String::new()
                },
                if first {
                    p.size.to_string()
                } else {
                    String::new()
                },
                latency.map(|s| s.count).unwrap_or(p.jobs).to_string(),
                if first {
                    format!("{:.2}", p.seconds)
                } else {
                    String::new()
                },
                if first {
                    format!("{:.0}", p.jobs_per_sec)
                } else {
                    String::new()
                },
                lat(|s| s.p50_us),
                lat(|s| s.p90_us),
                lat(|s| s.p99_us),
                lat(|s| s.max_us),
                match (first, p.server_cpu_us_per_job) {
                    (true, Some(c)) => format!("{c:.2}"),
                    _ => String::new(),
                },
                match (first, p.server_rss_kib) {
                    (true, Some(k)) => format!("{:.1}", k as f64 / 1024.0),
                    _ => String::new(),
                },
                if first {
                    format!("{:.2}", p.bench_cpu_us_per_job)
                } else {
                    String::new()
                },
            ]);
        }
    }
    print!("{}", table.render());
}
