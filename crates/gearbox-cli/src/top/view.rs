//! `gearbox top`'s numbers, free of I/O: each server's sample, the completion rate from its
//! previous sample, the servers summed per function, filtered and sorted, and the frame as
//! text or JSON.

use std::collections::{BTreeMap, HashMap};
use std::time::Instant;

use serde_json::{json, Value};

use crate::output::{text, Table};

/// One function's numbers (one server's, or summed over several).
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// Function name (lossy UTF-8, unescaped).
    pub function: String,
    /// Queued HIGH jobs.
    pub high: u64,
    /// Queued NORMAL jobs.
    pub normal: u64,
    /// Queued LOW jobs.
    pub low: u64,
    /// Jobs a worker is running.
    pub running: u64,
    /// Registered workers.
    pub workers: u64,
    /// Jobs completed since the function appeared (`None`: a server without gearbox's
    /// `metrics`, such as gearmand).
    pub completed: Option<u64>,
    /// Completions per second since the previous sample (`None` on the first).
    pub rate: Option<f64>,
}

impl Row {
    /// An empty row for `function`.
    pub fn new(function: &str) -> Row {
        Row {
            function: function.to_owned(),
            high: 0,
            normal: 0,
            low: 0,
            running: 0,
            workers: 0,
            completed: Some(0),
            rate: Some(0.0),
        }
    }

    /// Jobs waiting for a worker, all priorities.
    pub fn queued(&self) -> u64 {
        self.high + self.normal + self.low
    }

    /// Adds `o`'s numbers; a number one side does not know is unknown in the sum.
    fn add(&mut self, o: &Row) {
        self.high += o.high;
        self.normal += o.normal;
        self.low += o.low;
        self.running += o.running;
        self.workers += o.workers;
        self.completed = self.completed.zip(o.completed).map(|(a, b)| a + b);
        self.rate = self.rate.zip(o.rate).map(|(a, b)| a + b);
    }
}

/// What one server said: its functions (rates not yet known), or why it could not be read.
pub type Sample = Result<Vec<Row>, String>;

/// The column `top` sorts by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SortKey {
    /// Function name, A to Z.
    Name,
    /// Queued jobs, all priorities (the default).
    Queued,
    /// Queued HIGH jobs.
    High,
    /// Queued NORMAL jobs.
    Normal,
    /// Queued LOW jobs.
    Low,
    /// Running jobs.
    Running,
    /// Registered workers.
    Workers,
    /// Jobs completed.
    Completed,
    /// Completions per second.
    Rate,
}

impl SortKey {
    const ALL: [SortKey; 9] = [
        SortKey::Name,
        SortKey::Queued,
        SortKey::High,
        SortKey::Normal,
        SortKey::Low,
        SortKey::Running,
        SortKey::Workers,
        SortKey::Completed,
        SortKey::Rate,
    ];

    /// The name `--sort` takes.
    pub fn name(self) -> &'static str {
        match self {
            SortKey::Name => "name",
            SortKey::Queued => "queued",
            SortKey::High => "high",
            SortKey::Normal => "normal",
            SortKey::Low => "low",
            SortKey::Running => "running",
            SortKey::Workers => "workers",
            SortKey::Completed => "completed",
            SortKey::Rate => "rate",
        }
    }

    /// The next column (the `s` key).
    pub fn next(self) -> SortKey {
        let i = SortKey::ALL.iter().position(|k| *k == self).unwrap_or(0);
        SortKey::ALL[(i + 1) % SortKey::ALL.len()]
    }

    /// The row's value in this column, for numbers (unknown sorts lowest).
    fn number(self, r: &Row) -> f64 {
        let n = |v: u64| v as f64;
        match self {
            SortKey::Name => 0.0,
            SortKey::Queued => n(r.queued()),
            SortKey::High => n(r.high),
            SortKey::Normal => n(r.normal),
            SortKey::Low => n(r.low),
            SortKey::Running => n(r.running),
            SortKey::Workers => n(r.workers),
            SortKey::Completed => r.completed.map_or(-1.0, n),
            SortKey::Rate => r.rate.unwrap_or(-1.0),
        }
    }
}

/// How the rows are shown: sorted by a column (numbers largest first, names A to Z; `reverse`
/// turns it round), and only the functions whose name contains `filter` (any case).
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    /// Sort column.
    pub sort: SortKey,
    /// The other way round.
    pub reverse: bool,
    /// Substring of the names shown; empty = all.
    pub filter: String,
}

impl View {
    /// The rows kept by the filter, in order.
    pub fn apply(&self, rows: &[Row]) -> Vec<Row> {
        let needle = self.filter.to_lowercase();
        let mut out: Vec<Row> = rows
            .iter()
            .filter(|r| r.function.to_lowercase().contains(&needle))
            .cloned()
            .collect();
        out.sort_by(|a, b| {
            let by = match self.sort {
                SortKey::Name => a.function.cmp(&b.function),
                k => k.number(b).total_cmp(&k.number(a)),
            };
            let by = if self.reverse { by.reverse() } else { by };
            by.then_with(|| a.function.cmp(&b.function))
        });
        out
    }
}

/// A server that could not be read in this frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Down {
    /// The server's label.
    pub server: String,
    /// Why.
    pub error: String,
}

/// Keeps each server's previous completed counts to turn them into rates.
#[derive(Debug, Default)]
pub struct Tracker {
    previous: HashMap<String, (Instant, HashMap<String, u64>)>,
}

impl Tracker {
    /// Sets each row's rate from the server's previous sample (none for the first sample of
    /// a server, after it was unreachable, or when a counter went back, as when the server
    /// restarted), then sums the servers per function, sorted by name.
    pub fn merge(&mut self, now: Instant, samples: Vec<(String, Sample)>) -> (Vec<Row>, Vec<Down>) {
        let mut merged: BTreeMap<String, Row> = BTreeMap::new();
        let mut down = Vec::new();
        for (server, sample) in samples {
            let rows = match sample {
                Ok(rows) => rows,
                Err(error) => {
                    self.previous.remove(&server);
                    down.push(Down { server, error });
                    continue;
                }
            };
            let before = self.previous.get(&server);
            let counts: HashMap<String, u64> = rows
                .iter()
                .filter_map(|r| Some((r.function.clone(), r.completed?)))
                .collect();
            for mut row in rows {
                row.rate = before.and_then(|(then, counts)| {
                    let secs = now.duration_since(*then).as_secs_f64();
                    let was = counts.get(&row.function).copied().unwrap_or(0);
                    let is = row.completed?;
                    (secs > 0.0 && is >= was).then(|| (is - was) as f64 / secs)
                });
                match merged.get_mut(&row.function) {
                    Some(sum) => sum.add(&row),
                    None => {
                        merged.insert(row.function.clone(), row);
                    }
                }
            }
            self.previous.insert(server, (now, counts));
        }
        (merged.into_values().collect(), down)
    }
}

/// The sum of `rows`.
pub fn total(rows: &[Row]) -> Row {
    let mut t = Row::new("(total)");
    for r in rows {
        t.add(r);
    }
    t
}

fn opt(v: Option<u64>) -> String {
    v.map_or("-".into(), |v| v.to_string())
}

fn rate(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1}"))
}

/// The table of `rows` (already filtered and sorted) with the total as its last line, and the
/// servers that could not be read.
pub fn render(rows: &[Row], down: &[Down]) -> String {
    let mut t = Table::new(&[
        "FUNCTION",
        ">HIGH",
        ">NORMAL",
        ">LOW",
        ">QUEUED",
        ">RUNNING",
        ">WORKERS",
        ">COMPLETED",
        ">COMPLETED/S",
    ]);
    let sum = total(rows);
    for r in rows.iter().chain(std::iter::once(&sum)) {
        t.row(vec![
            text(r.function.as_bytes()),
            r.high.to_string(),
            r.normal.to_string(),
            r.low.to_string(),
            r.queued().to_string(),
            r.running.to_string(),
            r.workers.to_string(),
            opt(r.completed),
            rate(r.rate),
        ]);
    }
    let mut out = t.render();
    for d in down {
        out.push_str(&format!("{}: unreachable: {}\n", d.server, d.error));
    }
    out
}

fn row_json(r: &Row) -> Value {
    json!({
        "function": r.function, "high": r.high, "normal": r.normal, "low": r.low,
        "queued": r.queued(), "running": r.running, "workers": r.workers,
        "completed": r.completed, "completed_per_sec": r.rate,
    })
}

/// One frame as a JSON value: the rows shown, their total, the servers that could not be
/// read, and the view.
pub fn frame_json(servers: &[String], view: &View, rows: &[Row], down: &[Down]) -> Value {
    json!({
        "time": chrono::Utc::now().timestamp(),
        "servers": servers,
        "sort": view.sort.name(),
        "reverse": view.reverse,
        "filter": view.filter,
        "functions": rows.iter().map(row_json).collect::<Vec<_>>(),
        "total": row_json(&total(rows)),
        "unreachable": down.iter().map(|d| json!({"server": d.server, "error": d.error}))
            .collect::<Vec<_>>(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn row(f: &str, [high, normal, low, running, workers]: [u64; 5], done: Option<u64>) -> Row {
        Row {
            function: f.into(),
            high,
            normal,
            low,
            running,
            workers,
            completed: done,
            rate: None,
        }
    }

    #[test]
    fn servers_are_summed_per_function_and_rates_need_two_samples() {
        let mut t = Tracker::default();
        let t0 = Instant::now();
        let a = vec![
            row("f", [1, 2, 3, 1, 2], Some(10)),
            row("g", [0; 5], Some(0)),
        ];
        let b = vec![row("f", [0, 1, 0, 0, 1], Some(5))];
        let (rows, down) = t.merge(
            t0,
            vec![
                ("a".into(), Ok(a)),
                ("b".into(), Ok(b)),
                ("c".into(), Err("refused".into())),
            ],
        );
        assert_eq!(rows.len(), 2);
        assert_eq!(
            rows[0],
            Row {
                rate: None,
                ..row("f", [1, 3, 3, 1, 3], Some(15))
            }
        );
        assert_eq!(
            down,
            [Down {
                server: "c".into(),
                error: "refused".into()
            }]
        );
        // Two seconds later: f completed 4 more on a, 2 more on b; g is new on b.
        let a = vec![row("f", [0; 5], Some(14)), row("g", [0; 5], Some(0))];
        let b = vec![row("f", [0; 5], Some(7)), row("g", [0; 5], Some(3))];
        let (rows, _) = t.merge(
            t0 + Duration::from_secs(2),
            vec![("a".into(), Ok(a)), ("b".into(), Ok(b))],
        );
        assert_eq!((rows[0].completed, rows[0].rate), (Some(21), Some(3.0)));
        assert_eq!((rows[1].completed, rows[1].rate), (Some(3), Some(1.5)));
    }

    #[test]
    fn unknown_counts_and_restarts_give_no_rate() {
        let mut t = Tracker::default();
        let t0 = Instant::now();
        let s = |done| vec![("s".to_owned(), Ok(vec![row("f", [0; 5], done)]))];
        t.merge(t0, s(Some(9)));
        let (rows, _) = t.merge(t0 + Duration::from_secs(1), s(Some(2)));
        assert_eq!(rows[0].rate, None, "counter went back");
        let (rows, _) = t.merge(t0 + Duration::from_secs(2), s(None));
        assert_eq!((rows[0].completed, rows[0].rate), (None, None));
        // Summed with a server that knows: still unknown.
        let mut sum = row("f", [0; 5], Some(1));
        sum.add(&row("f", [0; 5], None));
        assert_eq!(sum.completed, None);
    }

    #[test]
    fn filter_and_sort() {
        let rows = vec![
            row("resize", [0, 5, 0, 1, 1], Some(3)),
            row("Mail", [2, 0, 0, 0, 4], Some(9)),
            row("thumb", [0, 5, 1, 0, 0], Some(1)),
        ];
        let names =
            |v: &View| -> Vec<String> { v.apply(&rows).into_iter().map(|r| r.function).collect() };
        let mut v = View {
            sort: SortKey::Queued,
            reverse: false,
            filter: String::new(),
        };
        assert_eq!(names(&v), ["thumb", "resize", "Mail"]);
        v.reverse = true;
        assert_eq!(names(&v), ["Mail", "resize", "thumb"]);
        v = View {
            sort: SortKey::Name,
            reverse: false,
            filter: String::new(),
        };
        assert_eq!(names(&v), ["Mail", "resize", "thumb"]);
        v.sort = SortKey::Workers;
        assert_eq!(names(&v), ["Mail", "resize", "thumb"]);
        v.filter = "M".into();
        assert_eq!(names(&v), ["Mail", "thumb"]);
        assert_eq!(SortKey::Rate.next(), SortKey::Name);
    }

    #[test]
    fn the_table_ends_with_the_total_and_the_servers_down() {
        let mut r = row("a\tb", [1, 2, 3, 4, 5], Some(6));
        r.rate = Some(2.25);
        let text = render(
            &[r, row("c", [0, 0, 1, 0, 0], None)],
            &[Down {
                server: "h:1".into(),
                error: "timed out".into(),
            }],
        );
        assert_eq!(
            text,
            "FUNCTION  HIGH  NORMAL  LOW  QUEUED  RUNNING  WORKERS  COMPLETED  COMPLETED/S\n\
             a\\tb         1       2    3       6        4        5          6          2.2\n\
             c            0       0    1       1        0        0          -            -\n\
             (total)      1       2    4       7        4        5          -            -\n\
             h:1: unreachable: timed out\n"
        );
    }
}
