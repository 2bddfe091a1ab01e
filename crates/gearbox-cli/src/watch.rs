//! `gearbox watch`: a live view of every server, redrawn every `--interval`: a table of
//! functions (queued per priority, running, workers) and one of worker connections, plus
//! any server that cannot be reached. `q` (or Ctrl-C) quits.
//!
//! The numbers come from each server's admin port, or with `--http` (or `GEARBOX_HTTP`) from
//! gearboxd's HTTP JSON API (`/api/status`, `/api/workers`): the same tables either way.
//!
//! On a terminal each frame clears the screen (plain ANSI); otherwise frames follow each
//! other; with `--json` each frame is one JSON line. Admin connections stay open between
//! frames and are re-opened after an error. SIGTERM quits too.

use std::io::{IsTerminal, Read, Write};
use std::process::ExitCode;
use std::time::Duration;

use bytes::Bytes;
use clap::Args;
use gearbox_client::admin::{Admin, FunctionStatus, PriorityStatus, WorkerInfo};
use gearbox_client::{ServerAddr, TlsConfig};
use serde_json::{json, Value};
use tokio::signal::unix::{signal, SignalKind};
use tokio::sync::mpsc;

use super::cli::Ctx;
use super::http_api::{blocking, HttpApi, HTTP_ENV};
use super::output::{json_text, text, Table};
use super::submit::parse_secs;

/// `gearbox watch`.
#[derive(Debug, Args)]
pub struct WatchArgs {
    /// Seconds between refreshes.
    #[arg(short = 'n', long, default_value = "1", value_parser = parse_secs)]
    pub interval: Duration,
    /// Exit after this many frames (default: until q or Ctrl-C).
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Read gearboxd's HTTP API at URL (`http://host:port`; comma-separated or repeated for
    /// several servers) instead of the admin port of the -s servers.
    #[arg(long = "http", value_name = "URL", env = HTTP_ENV, value_delimiter = ',')]
    pub http: Vec<String>,
}

/// What one server said in one frame.
type Snapshot = Result<(Vec<FunctionStatus>, Vec<PriorityStatus>, Vec<WorkerInfo>), String>;

async fn snapshot(
    addr: &ServerAddr,
    conn: &mut Option<Admin>,
    limit: Duration,
    tls: Option<&TlsConfig>,
) -> Snapshot {
    let result = async {
        if conn.is_none() {
            *conn = Some(Admin::connect_with(addr.clone(), limit, tls).await?);
        }
        let a = conn.as_mut().expect("just connected");
        let mut status = a.status().await?;
        let mut prio = a.priority_status().await?;
        let workers = a.workers().await?;
        status.sort_by(|x, y| x.function.cmp(&y.function));
        prio.sort_by(|x, y| x.function.cmp(&y.function));
        Ok::<_, gearbox_client::Error>((status, prio, workers))
    }
    .await;
    result.map_err(|e| {
        *conn = None;
        e.to_string()
    })
}

/// The same as [`snapshot`], from gearboxd's HTTP API.
async fn http_snapshot(api: &HttpApi) -> Snapshot {
    let read = blocking(api, |api| Ok((api.status()?, api.workers()?))).await;
    let (functions, conns) = read.map_err(|e| format!("{e:#}"))?;
    let mut status = Vec::new();
    let mut prio = Vec::new();
    for f in functions {
        let function = Bytes::from(f.function);
        status.push(FunctionStatus {
            function: function.clone(),
            total: f.total,
            running: f.running,
            workers: f.workers,
        });
        prio.push(PriorityStatus {
            function,
            high: f.queued.high,
            normal: f.queued.normal,
            low: f.queued.low,
            workers: f.workers,
        });
    }
    let workers = conns
        .into_iter()
        .map(|w| WorkerInfo {
            fd: Bytes::from(w.fd.to_string()),
            ip: Bytes::from(w.ip),
            client_id: Bytes::from(w.client_id),
            functions: w.functions.into_iter().map(Bytes::from).collect(),
        })
        .collect();
    Ok((status, prio, workers))
}

/// Renders one frame for people; `servers` are the servers' labels.
pub fn render(servers: &[String], frame: &[Snapshot], interval: Duration) -> String {
    let now = chrono::Local::now().format("%Y-%m-%d %H:%M:%S");
    let mut out = format!(
        "gearbox watch: {} server(s), every {interval:?}, {now} (q or Ctrl-C quits)\n\n",
        servers.len()
    );
    let mut functions = Table::new(&[
        "SERVER", "FUNCTION", ">QUEUED", ">HIGH", ">NORMAL", ">LOW", ">RUNNING", ">WORKERS",
    ]);
    let mut workers = Table::new(&["SERVER", "CLIENT-ID", "IP", "FUNCTIONS"]);
    let mut down = String::new();
    for (addr, snap) in servers.iter().zip(frame) {
        let (status, prio, conns) = match snap {
            Ok(s) => s,
            Err(e) => {
                down.push_str(&format!("{addr}: unreachable: {e}\n"));
                continue;
            }
        };
        for f in status {
            let p = prio.iter().find(|p| p.function == f.function);
            let by = |get: fn(&PriorityStatus) -> u64| p.map_or("-".into(), |p| get(p).to_string());
            functions.row(vec![
                addr.clone(),
                text(&f.function),
                f.queued().to_string(),
                by(|p| p.high),
                by(|p| p.normal),
                by(|p| p.low),
                f.running.to_string(),
                f.workers.to_string(),
            ]);
        }
        for w in conns.iter().filter(|w| !w.functions.is_empty()) {
            let fns: Vec<String> = w.functions.iter().map(|f| text(f)).collect();
            workers.row(vec![
                addr.clone(),
                text(&w.client_id),
                text(&w.ip),
                fns.join(" "),
            ]);
        }
    }
    out.push_str(&functions.render());
    out.push('\n');
    out.push_str(&workers.render());
    if !down.is_empty() {
        out.push('\n');
        out.push_str(&down);
    }
    out
}

/// One frame as a JSON value; `servers` are the servers' labels.
pub fn frame_json(servers: &[String], frame: &[Snapshot]) -> Value {
    let per: Vec<Value> = servers
        .iter()
        .zip(frame)
        .map(|(addr, snap)| match snap {
            Err(e) => json!({"server": addr.clone(), "error": e}),
            Ok((status, prio, conns)) => {
                let fns: Vec<Value> = status
                    .iter()
                    .map(|f| {
                        let p = prio.iter().find(|p| p.function == f.function);
                        json!({"function": json_text(&f.function), "queued": f.queued(),
                        "running": f.running, "workers": f.workers,
                        "high": p.map(|p| p.high), "normal": p.map(|p| p.normal),
                        "low": p.map(|p| p.low)})
                    })
                    .collect();
                let ws: Vec<Value> = conns
                    .iter()
                    .filter(|w| !w.functions.is_empty())
                    .map(|w| {
                        let f: Vec<Value> = w.functions.iter().map(|f| json_text(f)).collect();
                        json!({"client_id": json_text(&w.client_id), "ip": json_text(&w.ip),
                        "functions": f})
                    })
                    .collect();
                json!({"server": addr.clone(), "functions": fns, "workers": ws})
            }
        })
        .collect();
    json!({"time": chrono::Utc::now().timestamp(), "servers": per})
}

/// The terminal's height, if standard output is one.
fn terminal_rows() -> Option<usize> {
    // SAFETY: TIOCGWINSZ fills a zeroed winsize struct for fd 1.
    unsafe {
        let mut w: libc::winsize = std::mem::zeroed();
        (libc::ioctl(1, libc::TIOCGWINSZ, &mut w) == 0 && w.ws_row > 0).then_some(w.ws_row.into())
    }
}

/// Cuts a frame to `rows` lines (the last one saying how many were left out), so the top of
/// the view stays on screen.
pub fn fit(frame: &str, rows: Option<usize>) -> String {
    let lines: Vec<&str> = frame.lines().collect();
    match rows {
        Some(rows) if rows >= 2 && lines.len() > rows - 1 => {
            let keep = rows - 2;
            let mut out: String = lines[..keep].iter().map(|l| format!("{l}\n")).collect();
            out.push_str(&format!("... {} more line(s)\n", lines.len() - keep));
            out
        }
        _ => frame.to_string(),
    }
}

/// Terminal settings changed for single-key input, restored on drop.
struct RawInput(Option<libc::termios>);

impl RawInput {
    fn enable() -> RawInput {
        if !std::io::stdin().is_terminal() {
            return RawInput(None);
        }
        // SAFETY: tcgetattr/tcsetattr on fd 0 with a zeroed, then filled, termios struct.
        unsafe {
            let mut t: libc::termios = std::mem::zeroed();
            if libc::tcgetattr(0, &mut t) != 0 {
                return RawInput(None);
            }
            let saved = t;
            t.c_lflag &= !(libc::ICANON | libc::ECHO);
            t.c_cc[libc::VMIN] = 1;
            t.c_cc[libc::VTIME] = 0;
            libc::tcsetattr(0, libc::TCSANOW, &t);
            RawInput(Some(saved))
        }
    }
}

impl Drop for RawInput {
    fn drop(&mut self) {
        if let Some(t) = &self.0 {
            // SAFETY: restores the settings read in `enable`.
            unsafe {
                libc::tcsetattr(0, libc::TCSANOW, t);
            }
        }
    }
}

/// A thread reading standard input; sends once on `q`/`Q`. End of input is not a quit.
fn quit_keys() -> mpsc::UnboundedReceiver<()> {
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::spawn(move || {
        let mut stdin = std::io::stdin().lock();
        let mut b = [0u8; 1];
        while let Ok(1) = stdin.read(&mut b) {
            if b[0] == b'q' || b[0] == b'Q' {
                let _ = tx.send(());
                return;
            }
        }
        // Keep the sender alive: a closed stdin must not end the watch.
        std::mem::forget(tx);
    });
    rx
}

/// Runs `gearbox watch`.
pub async fn run(ctx: &Ctx, args: WatchArgs) -> anyhow::Result<ExitCode> {
    let interval = args.interval.max(Duration::from_millis(50));
    let limit = interval.max(Duration::from_secs(2));
    let tty = !ctx.json && std::io::stdout().is_terminal();
    let _raw = RawInput::enable();
    let mut quit = quit_keys();
    // Registered before the first frame, so a Ctrl-C at any time after it quits cleanly.
    let mut interrupt = signal(SignalKind::interrupt())?;
    let mut terminate = signal(SignalKind::terminate())?;
    let apis = args
        .http
        .iter()
        .map(|u| HttpApi::new(u, limit))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let labels: Vec<String> = if apis.is_empty() {
        ctx.servers.iter().map(ToString::to_string).collect()
    } else {
        apis.iter().map(|a| a.url().to_owned()).collect()
    };
    let mut conns: Vec<Option<Admin>> = ctx.servers.iter().map(|_| None).collect();
    let mut ticker = tokio::time::interval(interval);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut frames = 0u64;
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            _ = quit.recv() => break,
            _ = interrupt.recv() => break,
            _ = terminate.recv() => break,
        }
        let frame: Vec<Snapshot> = if apis.is_empty() {
            let queries = ctx
                .servers
                .iter()
                .zip(conns.iter_mut())
                .map(|(addr, conn)| snapshot(addr, conn, limit, ctx.tls.as_ref()));
            futures::future::join_all(queries).await
        } else {
            futures::future::join_all(apis.iter().map(http_snapshot)).await
        };
        let mut out = std::io::stdout().lock();
        if ctx.json {
            writeln!(out, "{}", frame_json(&labels, &frame))?;
        } else if tty {
            let text = fit(&render(&labels, &frame, interval), terminal_rows());
            write!(out, "\x1b[H\x1b[2J{text}")?;
        } else {
            if frames > 0 {
                writeln!(out)?;
            }
            write!(out, "{}", render(&labels, &frame, interval))?;
        }
        out.flush()?;
        frames += 1;
        if args.iterations.is_some_and(|n| frames >= n) {
            break;
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::fit;

    #[test]
    fn frames_fit_the_terminal() {
        let frame = "a\nb\nc\nd\n";
        assert_eq!(fit(frame, None), frame);
        assert_eq!(fit(frame, Some(10)), frame);
        assert_eq!(fit(frame, Some(4)), "a\nb\n... 2 more line(s)\n");
    }
}
