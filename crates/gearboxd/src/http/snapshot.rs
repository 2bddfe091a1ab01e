//! One sample of the server for the live feed (`GET /api/events`): totals for the charts and
//! the per-function rows, read with the admin commands `prioritystatus`, `status`, `metrics`
//! and `workers` over one Gearman connection; and the page of rows one stream asked for.

use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

use super::admin::{AdminConn, AdminError};
use super::api::{connections, function_status, FunctionStatus, Queued};

/// The most function rows one snapshot event carries (`limit` is capped to it).
pub(crate) const MAX_LIMIT: usize = 500;

/// Rows per snapshot event when the stream does not say.
const DEFAULT_LIMIT: usize = 100;

/// The server as a whole at one moment: what the charts draw.
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub(crate) struct Totals {
    /// When the sample was taken, in milliseconds since the Unix epoch.
    pub(crate) time_ms: u64,
    /// Jobs accepted, summed over the functions the server holds (a dropped function's
    /// counters go with it).
    pub(crate) submitted: u64,
    /// `WORK_COMPLETE`s received, summed likewise.
    pub(crate) completed: u64,
    /// Jobs failed (`WORK_FAIL`, retries exhausted, cancel, timeout), summed likewise.
    pub(crate) failed: u64,
    /// Jobs accepted per second since the previous sample (0 for the first one).
    pub(crate) submitted_per_s: f64,
    /// Jobs completed per second since the previous sample (0 for the first one).
    pub(crate) completed_per_s: f64,
    /// Jobs waiting for a worker, per priority.
    pub(crate) queued: Queued,
    /// Jobs a worker is running.
    pub(crate) running: u64,
    /// Functions the server knows.
    pub(crate) functions: usize,
    /// Connections that registered at least one function.
    pub(crate) workers: usize,
    /// The other connections (clients and admin connections, the feed's own included).
    pub(crate) clients: usize,
}

/// A sample: the totals and every function's row, sorted by function.
#[derive(Debug)]
pub(crate) struct Sample {
    pub(crate) totals: Totals,
    pub(crate) functions: Vec<FunctionStatus>,
}

/// Reads a sample; `previous` (the sample before, if recent) gives the rates.
pub(crate) async fn take(
    conn: &mut AdminConn,
    previous: Option<&Totals>,
) -> Result<Sample, AdminError> {
    let prio = conn.listing("prioritystatus").await?;
    let status = conn.listing("status").await?;
    let metrics = conn.listing("metrics totals").await?;
    let workers = conn.listing("workers").await?;
    let time_ms = now_ms();
    let functions = function_status(&prio, &status);
    let conns = connections(&workers);
    let workers = conns.iter().filter(|c| !c.functions.is_empty()).count();
    let [submitted, completed, failed] = counter_sums(&metrics);
    let mut totals = Totals {
        time_ms,
        submitted,
        completed,
        failed,
        functions: functions.len(),
        workers,
        clients: conns.len() - workers,
        ..Totals::default()
    };
    for f in &functions {
        totals.queued.high += f.queued.high;
        totals.queued.normal += f.queued.normal;
        totals.queued.low += f.queued.low;
        totals.running += f.running;
    }
    if let Some(p) = previous.filter(|p| p.time_ms < time_ms) {
        // Counters of a dropped function vanish from the sum: never a negative rate.
        let secs = (time_ms - p.time_ms) as f64 / 1000.0;
        totals.submitted_per_s = submitted.saturating_sub(p.submitted) as f64 / secs;
        totals.completed_per_s = completed.saturating_sub(p.completed) as f64 / secs;
    }
    Ok(Sample { totals, functions })
}

/// Now, in milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// The submitted, completed and failed counters of a `metrics totals` listing (or of a
/// `metrics` listing, summed over the functions).
fn counter_sums(metrics: &[u8]) -> [u64; 3] {
    const NAMES: [&str; 3] = [
        "gearbox_jobs_submitted_total",
        "gearbox_jobs_completed_total",
        "gearbox_jobs_failed_total",
    ];
    let series_of = |line: &str, name: &str| {
        line.strip_prefix(name)
            .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
    };
    let mut sums = [0u64; 3];
    for line in String::from_utf8_lossy(metrics).lines() {
        if let Some(i) = NAMES.iter().position(|n| series_of(line, n)) {
            let value = line.rsplit(' ').next().and_then(|v| v.parse::<u64>().ok());
            sums[i] += value.unwrap_or(0);
        }
    }
    sums
}

/// The column a page of rows is sorted by.
#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SortKey {
    #[default]
    Function,
    Queued,
    Running,
    Workers,
    Total,
}

/// What one stream shows of the rows (`GET /api/events?filter=&offset=&limit=&sort=&desc=`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Page {
    /// Only functions whose name holds this text (case-insensitive).
    #[serde(default)]
    filter: String,
    /// Rows to skip, after filtering and sorting.
    #[serde(default)]
    offset: usize,
    /// Rows to send (default 100, at most [`MAX_LIMIT`]).
    limit: Option<usize>,
    #[serde(default)]
    sort: SortKey,
    /// Largest first (names: Z to A).
    #[serde(default)]
    desc: bool,
}

/// A `snapshot` event's data.
#[derive(Debug, Serialize)]
pub(crate) struct Snapshot<'a> {
    totals: &'a Totals,
    /// Functions matching the filter (the rows sent are `offset..offset + limit` of them).
    matched: usize,
    offset: usize,
    limit: usize,
    functions: Vec<&'a FunctionStatus>,
}

impl Page {
    /// The rows of `sample` this page shows.
    pub(crate) fn of<'a>(&self, sample: &'a Sample) -> Snapshot<'a> {
        let filter = self.filter.to_lowercase();
        let mut rows: Vec<&FunctionStatus> = sample
            .functions
            .iter()
            .filter(|f| filter.is_empty() || f.function.to_lowercase().contains(&filter))
            .collect();
        let key = |f: &FunctionStatus| match self.sort {
            SortKey::Function => 0,
            SortKey::Queued => f.queued.sum(),
            SortKey::Running => f.running,
            SortKey::Workers => f.workers,
            SortKey::Total => f.total,
        };
        rows.sort_by(|a, b| {
            let o = key(a).cmp(&key(b));
            let o = if self.desc { o.reverse() } else { o };
            // Equal counts in name order; by name, the order asked for.
            let by_name = a.function.cmp(&b.function);
            match self.sort {
                SortKey::Function if self.desc => by_name.reverse(),
                _ => o.then(by_name),
            }
        });
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT);
        let matched = rows.len();
        let functions = rows.into_iter().skip(self.offset).take(limit).collect();
        Snapshot {
            totals: &sample.totals,
            matched,
            offset: self.offset,
            limit,
            functions,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(name: &str, queued: u64) -> FunctionStatus {
        FunctionStatus {
            function: name.to_owned(),
            queued: Queued {
                normal: queued,
                ..Queued::default()
            },
            running: 0,
            workers: 0,
            total: queued,
        }
    }

    #[test]
    fn counters_are_summed_over_functions_and_other_series_ignored() {
        let text = b"# HELP x\ngearbox_jobs_submitted_total{function=\"a\"} 3\n\
            gearbox_jobs_submitted_total{function=\"b b\"} 4\n\
            gearbox_jobs_completed_total{function=\"a\"} 2\n\
            gearbox_jobs_failed_total{function=\"a\"} 1\n\
            gearbox_jobs_submitted_totally{function=\"a\"} 100\n\
            gearbox_connections 7\n";
        assert_eq!(counter_sums(text), [7, 2, 1]);
        // A `metrics totals` listing: one unlabelled line per counter.
        let totals = b"gearbox_jobs_submitted_total 9\ngearbox_jobs_completed_total 5\n\
            gearbox_jobs_failed_total 0\ngearbox_jobs_failed_totals 8\n";
        assert_eq!(counter_sums(totals), [9, 5, 0]);
    }

    #[test]
    fn a_page_filters_sorts_and_cuts() {
        let sample = Sample {
            totals: Totals::default(),
            functions: vec![
                row("Alpha", 1),
                row("beta", 5),
                row("gamma", 3),
                row("alps", 5),
            ],
        };
        let page: Page =
            serde_json::from_str(r#"{"filter":"AL","sort":"queued","desc":true}"#).unwrap();
        let s = page.of(&sample);
        let names: Vec<&str> = s.functions.iter().map(|f| f.function.as_str()).collect();
        assert_eq!((s.matched, names), (2, vec!["alps", "Alpha"]));
        let page: Page =
            serde_json::from_str(r#"{"sort":"queued","desc":true,"offset":1,"limit":2}"#).unwrap();
        let s = page.of(&sample);
        let names: Vec<&str> = s.functions.iter().map(|f| f.function.as_str()).collect();
        // Equal counts in name order: alps, beta, then gamma, Alpha.
        assert_eq!((s.matched, names), (4, vec!["beta", "gamma"]));
        let page = Page {
            limit: Some(10_000),
            ..Page::default()
        };
        assert_eq!(page.of(&sample).limit, MAX_LIMIT);
    }
}
