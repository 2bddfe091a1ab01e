//! `gearbox top`: the dashboard's numbers in the terminal. Per function: jobs queued by
//! priority, running, workers, completed and completed per second; their total; several
//! servers summed per function.
//!
//! - `view`: the numbers (merging, rates, sorting, filtering) and the frame as text or JSON.
//! - `source`: reading a server through its admin port or gearboxd's HTTP API.
//! - `screen`: the full-screen terminal (crossterm).
//!
//! On a terminal it is interactive (keys: `s` next sort column, `r` reverse, `/` filter, `+`
//! and `-` change the refresh interval, `q` quits). With `--once`, `--iterations N`, `--json`
//! or output that is not a terminal, it prints frames one after the other, for scripts.

mod screen;
mod source;
mod view;

use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use clap::Args;
use crossterm::event::{KeyCode, KeyEvent};
use tokio::signal::unix::{signal, SignalKind};

use super::cli::Ctx;
use super::http_api::{HttpApi, HTTP_ENV};
use super::submit::parse_secs;
pub use source::{completed_counts, Source};
pub use view::{frame_json, render, Down, Row, Sample, SortKey, Tracker, View};

/// `gearbox top`.
#[derive(Debug, Args)]
pub struct TopArgs {
    /// Read gearboxd's HTTP API at URL (`http://host:port`; comma-separated or repeated for
    /// several servers) instead of the admin port of the -s servers.
    #[arg(long = "http", value_name = "URL", env = HTTP_ENV, value_delimiter = ',')]
    pub http: Vec<String>,
    /// Seconds between refreshes.
    #[arg(short = 'n', long, default_value = "1", value_parser = parse_secs)]
    pub interval: Duration,
    /// Column to sort by (numbers largest first, names A to Z).
    #[arg(long, value_enum, default_value = "queued")]
    pub sort: SortKey,
    /// Sort the other way round.
    #[arg(long)]
    pub reverse: bool,
    /// Show only the functions whose name contains TEXT (any case).
    #[arg(
        long,
        value_name = "TEXT",
        default_value = "",
        hide_default_value = true
    )]
    pub filter: String,
    /// Print one frame and exit (no completed/s: that needs two samples).
    #[arg(long, conflicts_with = "iterations")]
    pub once: bool,
    /// Print N frames, --interval apart, and exit.
    #[arg(long, value_name = "N")]
    pub iterations: Option<u64>,
}

/// The state the keys change.
struct Controls {
    view: View,
    interval: Duration,
    /// The filter being typed after `/`, if any.
    editing: Option<String>,
}

/// What a key asks of the loop.
#[derive(Debug, PartialEq, Eq)]
enum Step {
    Quit,
    Redraw,
    /// The interval changed: restart the timer.
    Retime,
}

impl Controls {
    fn on_key(&mut self, k: &KeyEvent) -> Step {
        if screen::is_interrupt(k) {
            return Step::Quit;
        }
        if let Some(typed) = &mut self.editing {
            match k.code {
                KeyCode::Enter => self.view.filter = self.editing.take().unwrap_or_default(),
                KeyCode::Esc => self.editing = None,
                KeyCode::Backspace => {
                    typed.pop();
                }
                KeyCode::Char(c) => typed.push(c),
                _ => {}
            }
            return Step::Redraw;
        }
        match k.code {
            KeyCode::Char('q' | 'Q') | KeyCode::Esc => return Step::Quit,
            KeyCode::Char('s') => self.view.sort = self.view.sort.next(),
            KeyCode::Char('r') => self.view.reverse = !self.view.reverse,
            KeyCode::Char('/') => self.editing = Some(self.view.filter.clone()),
            KeyCode::Char('+') => {
                self.interval = (self.interval * 2).min(Duration::from_secs(60));
                return Step::Retime;
            }
            KeyCode::Char('-') => {
                self.interval = (self.interval / 2).max(Duration::from_millis(100));
                return Step::Retime;
            }
            _ => {}
        }
        Step::Redraw
    }

    /// The line above the table.
    fn header(&self, servers: usize, via: &str) -> String {
        let now = chrono::Local::now().format("%H:%M:%S");
        let order = if self.view.reverse { " (reversed)" } else { "" };
        let filter = match &self.view.filter {
            f if f.is_empty() => String::new(),
            f => format!(", filter {f:?}"),
        };
        format!(
            "gearbox top: {servers} server(s) via {via}, every {:?}, {now}; sort {}{order}{filter}",
            self.interval,
            self.view.sort.name(),
        )
    }

    /// The bottom line: the keys, or the filter being typed.
    fn status(&self) -> String {
        match &self.editing {
            Some(t) => format!("filter: {t}_  (Enter applies, Esc cancels)"),
            None => "s sort  r reverse  / filter  +/- interval  q quit".into(),
        }
    }
}

/// The sources from the flags: the HTTP API addresses, else the admin ports.
fn sources(ctx: &Ctx, http: &[String], limit: Duration) -> anyhow::Result<Vec<Source>> {
    if http.is_empty() {
        return Ok(ctx
            .servers
            .iter()
            .map(|addr| Source::Admin {
                addr: addr.clone(),
                conn: None,
                tls: ctx.tls.clone(),
            })
            .collect());
    }
    http.iter()
        .map(|u| HttpApi::new(u, limit).map(Source::Http))
        .collect()
}

/// Samples every source at once.
async fn sample_all(sources: &mut [Source], limit: Duration) -> Vec<(String, Sample)> {
    let labels: Vec<String> = sources.iter().map(Source::label).collect();
    let samples = futures::future::join_all(sources.iter_mut().map(|s| s.sample(limit))).await;
    labels.into_iter().zip(samples).collect()
}

/// Runs `gearbox top`.
pub async fn run(ctx: &Ctx, args: TopArgs) -> anyhow::Result<ExitCode> {
    let interval = args.interval.max(Duration::from_millis(50));
    let limit = interval.max(Duration::from_secs(2));
    let via = if args.http.is_empty() {
        "admin"
    } else {
        "http"
    };
    let mut sources = sources(ctx, &args.http, limit)?;
    let mut controls = Controls {
        view: View {
            sort: args.sort,
            reverse: args.reverse,
            filter: args.filter,
        },
        interval,
        editing: None,
    };
    let iterations = if args.once { Some(1) } else { args.iterations };
    let interactive = !ctx.json
        && iterations.is_none()
        && std::io::stdout().is_terminal()
        && std::io::stdin().is_terminal();
    // Registered before the first frame, so a signal at any time after it quits cleanly.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let mut screen = interactive.then(screen::Screen::enter).transpose()?;
    let mut keys = if interactive {
        screen::inputs()
    } else {
        tokio::sync::mpsc::unbounded_channel().1
    };
    let labels: Vec<String> = sources.iter().map(Source::label).collect();
    let mut tracker = Tracker::default();
    let mut last: Option<(Vec<Row>, Vec<Down>)> = None;
    let mut ticker = tokio::time::interval(controls.interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut frames = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {
                let samples = sample_all(&mut sources, limit).await;
                last = Some(tracker.merge(Instant::now(), samples));
            }
            Some(input) = keys.recv() => {
                if let screen::Input::Key(k) = input {
                    match controls.on_key(&k) {
                        Step::Quit => break,
                        Step::Redraw => {}
                        Step::Retime => {
                            ticker = tokio::time::interval_at(
                                tokio::time::Instant::now() + controls.interval,
                                controls.interval,
                            );
                            ticker.set_missed_tick_behavior(
                                tokio::time::MissedTickBehavior::Delay,
                            );
                        }
                    }
                }
                if last.is_none() {
                    continue;
                }
            }
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        }
        let Some((rows, down)) = &last else { continue };
        let shown = controls.view.apply(rows);
        if let Some(screen) = screen.as_mut() {
            let text = format!(
                "{}\n\n{}",
                controls.header(labels.len(), via),
                render(&shown, down)
            );
            screen.draw(&text, &controls.status())?;
            continue;
        }
        let mut out = std::io::stdout().lock();
        if ctx.json {
            writeln!(out, "{}", frame_json(&labels, &controls.view, &shown, down))?;
        } else {
            if frames > 0 {
                writeln!(out)?;
            }
            writeln!(out, "{}", controls.header(labels.len(), via))?;
            write!(out, "{}", render(&shown, down))?;
        }
        out.flush()?;
        frames += 1;
        if iterations.is_some_and(|n| frames >= n) {
            break;
        }
    }
    drop(screen);
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use crossterm::event::KeyModifiers;

    use super::*;

    fn key(c: KeyCode) -> KeyEvent {
        KeyEvent::new(c, KeyModifiers::NONE)
    }

    #[test]
    fn keys_sort_filter_retime_and_quit() {
        let mut c = Controls {
            view: View {
                sort: SortKey::Name,
                reverse: false,
                filter: String::new(),
            },
            interval: Duration::from_secs(1),
            editing: None,
        };
        assert_eq!(c.on_key(&key(KeyCode::Char('s'))), Step::Redraw);
        assert_eq!(c.view.sort, SortKey::Queued);
        c.on_key(&key(KeyCode::Char('r')));
        assert!(c.view.reverse);
        for k in [
            KeyCode::Char('/'),
            KeyCode::Char('m'),
            KeyCode::Char('x'),
            KeyCode::Backspace,
            KeyCode::Char('a'),
        ] {
            c.on_key(&key(k));
        }
        assert_eq!(c.status(), "filter: ma_  (Enter applies, Esc cancels)");
        // `q` while typing is a letter of the filter.
        assert_eq!(c.on_key(&key(KeyCode::Char('q'))), Step::Redraw);
        c.on_key(&key(KeyCode::Enter));
        assert_eq!(c.view.filter, "maq");
        c.on_key(&key(KeyCode::Char('/')));
        c.on_key(&key(KeyCode::Char('z')));
        c.on_key(&key(KeyCode::Esc));
        assert_eq!((c.view.filter.as_str(), c.editing.is_none()), ("maq", true));
        assert_eq!(c.on_key(&key(KeyCode::Char('+'))), Step::Retime);
        assert_eq!(c.interval, Duration::from_secs(2));
        c.on_key(&key(KeyCode::Char('-')));
        c.on_key(&key(KeyCode::Char('-')));
        assert_eq!(c.interval, Duration::from_millis(500));
        assert!(c
            .header(2, "http")
            .contains("2 server(s) via http, every 500ms"));
        assert_eq!(c.on_key(&key(KeyCode::Char('q'))), Step::Quit);
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(c.on_key(&ctrl_c), Step::Quit);
    }
}
