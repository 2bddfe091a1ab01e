//! Latency histograms and CPU/memory readings of a process from `/proc`.

use std::time::Duration;

use gearbox_proto::Priority;
use hdrhistogram::Histogram;
use serde::Serialize;

/// Latencies in microseconds, one histogram per priority.
#[derive(Debug, Clone)]
pub struct Latencies {
    by_priority: [Histogram<u64>; 3],
}

/// Largest latency recorded exactly: one hour (longer ones are clamped).
const MAX_MICROS: u64 = 3_600_000_000;

impl Latencies {
    /// Empty histograms (3 significant digits).
    pub fn new() -> Latencies {
        let h = || Histogram::new_with_bounds(1, MAX_MICROS, 3).expect("valid histogram bounds");
        Latencies {
            by_priority: [h(), h(), h()],
        }
    }

    /// Records one job's latency.
    pub fn record(&mut self, priority: Priority, latency: Duration) {
        let micros = u64::try_from(latency.as_micros()).unwrap_or(MAX_MICROS);
        self.by_priority[priority.index()].saturating_record(micros.clamp(1, MAX_MICROS));
    }

    /// Adds another client's latencies.
    pub fn merge(&mut self, other: &Latencies) {
        for (mine, theirs) in self.by_priority.iter_mut().zip(&other.by_priority) {
            // Same bounds on both sides, so adding cannot fail.
            let _ = mine.add(theirs);
        }
    }

    /// Percentiles over every priority.
    pub fn summary(&self) -> Option<Summary> {
        let mut all = self.by_priority[0].clone();
        for h in &self.by_priority[1..] {
            let _ = all.add(h);
        }
        Summary::of(&all)
    }

    /// Percentiles per priority (HIGH, NORMAL, LOW), skipping unused ones.
    pub fn per_priority(&self) -> Vec<(&'static str, Summary)> {
        Priority::ALL
            .iter()
            .filter_map(|p| {
                let name = match p {
                    Priority::High => "high",
                    Priority::Normal => "normal",
                    Priority::Low => "low",
                };
                Summary::of(&self.by_priority[p.index()]).map(|s| (name, s))
            })
            .collect()
    }
}

impl Default for Latencies {
    fn default() -> Self {
        Latencies::new()
    }
}

/// Latency percentiles in microseconds.
#[derive(Debug, Clone, Copy, Serialize)]
pub struct Summary {
    /// Jobs measured.
    pub count: u64,
    /// Mean.
    pub mean_us: f64,
    /// Median.
    pub p50_us: u64,
    /// 90th percentile.
    pub p90_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Slowest.
    pub max_us: u64,
}

impl Summary {
    fn of(h: &Histogram<u64>) -> Option<Summary> {
        (!h.is_empty()).then(|| Summary {
            count: h.len(),
            mean_us: h.mean(),
            p50_us: h.value_at_quantile(0.5),
            p90_us: h.value_at_quantile(0.9),
            p99_us: h.value_at_quantile(0.99),
            max_us: h.max(),
        })
    }
}

/// CPU time used so far and resident memory of a process.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    /// User plus system CPU time, all threads, in seconds.
    pub cpu_seconds: f64,
    /// Resident set size in KiB.
    pub rss_kib: u64,
}

impl ProcSample {
    /// Reads `/proc/PID/stat` (utime + stime) and `/proc/PID/status` (VmRSS).
    pub fn of_pid(pid: u32) -> anyhow::Result<ProcSample> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map_err(|e| anyhow::anyhow!("cannot read /proc/{pid}/stat: {e}: is the pid right?"))?;
        let cpu_seconds = parse_stat_cpu(&stat)
            .ok_or_else(|| anyhow::anyhow!("unreadable /proc/{pid}/stat"))?
            / clock_ticks();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
        Ok(ProcSample {
            cpu_seconds,
            rss_kib: parse_rss_kib(&status).unwrap_or(0),
        })
    }

    /// This process (the load generator).
    pub fn of_self() -> anyhow::Result<ProcSample> {
        ProcSample::of_pid(std::process::id())
    }
}

fn clock_ticks() -> f64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// utime + stime in clock ticks. The command name (field 2) may contain spaces and
/// parentheses, so fields are counted after its closing parenthesis.
fn parse_stat_cpu(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    let utime: f64 = fields.get(11)?.parse().ok()?;
    let stime: f64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

fn parse_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_fields_are_counted_after_the_command_name() {
        let stat = "1234 (odd) name)) S 1 2 3 4 5 6 7 8 9 10 250 50 0 0 20 0 1 0";
        assert_eq!(parse_stat_cpu(stat), Some(300.0));
        assert_eq!(parse_rss_kib("Name:\tx\nVmRSS:\t  6348 kB\n"), Some(6348));
    }

    #[test]
    fn own_process_is_readable() {
        let s = ProcSample::of_self().unwrap();
        assert!(s.rss_kib > 0);
    }

    #[test]
    fn latencies_merge_and_summarise() {
        let mut a = Latencies::new();
        for us in 1..=100 {
            a.record(Priority::Normal, Duration::from_micros(us));
        }
        let mut b = Latencies::new();
        b.record(Priority::High, Duration::from_millis(5));
        a.merge(&b);
        let s = a.summary().unwrap();
        assert_eq!(s.count, 101);
        assert_eq!(s.p50_us, 51);
        assert!(s.max_us >= 4_990);
        let names: Vec<_> = a.per_priority().iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["high", "normal"]);
    }
}
