//! The admin subcommands: `status`, `workers`, `jobs`, `cancel`, `maxqueue`. Each asks every
//! server at once; a server that fails is reported on standard error (`gearbox: SERVER:
//! error`) and makes the exit status 1, while the others are still shown.

use std::future::Future;
use std::io::Write;
use std::process::ExitCode;

use clap::Args;
use gearbox_client::admin::{Admin, MaxQueue, DEFAULT_TIMEOUT};
use gearbox_client::ServerAddr;
use serde_json::{json, Value};

use super::cli::Ctx;
use super::output::{json_text, text, Table};

/// `gearbox status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Show queued jobs per priority (HIGH, NORMAL, LOW) instead of total and running.
    #[arg(long)]
    pub priority: bool,
}

/// `gearbox workers`.
#[derive(Debug, Args)]
pub struct WorkersArgs {
    /// List every connection, clients (no functions) included.
    #[arg(long)]
    pub all: bool,
}

/// `gearbox jobs`.
#[derive(Debug, Args)]
pub struct JobsArgs {
    /// List the unique ids of the jobs instead (`show unique jobs`).
    #[arg(long)]
    pub unique: bool,
}

/// `gearbox cancel`.
#[derive(Debug, Args)]
pub struct CancelArgs {
    /// The job handle, e.g. `H:host:42`.
    pub handle: String,
}

/// `gearbox maxqueue`.
#[derive(Debug, Args)]
pub struct MaxqueueArgs {
    /// The function.
    pub function: String,
    /// Nothing (unlimited), one limit for every priority, or HIGH NORMAL LOW.
    #[arg(num_args = 0..=3)]
    pub limits: Vec<u32>,
}

/// Runs `query` on a fresh admin connection to every server, concurrently, in list order.
pub async fn query_all<T, F, Fut>(
    ctx: &Ctx,
    query: F,
) -> Vec<(ServerAddr, gearbox_client::Result<T>)>
where
    F: Fn(Admin) -> Fut,
    Fut: Future<Output = gearbox_client::Result<T>>,
{
    let tls = ctx.tls.as_ref();
    let each = ctx.servers.iter().map(|s| {
        let query = &query;
        async move {
            let r = match Admin::connect_with(s.clone(), DEFAULT_TIMEOUT, tls).await {
                Ok(a) => query(a).await,
                Err(e) => Err(e),
            };
            (s.clone(), r)
        }
    });
    futures::future::join_all(each).await
}

/// Splits answers into successes, printing failures; returns whether any failed.
pub(crate) fn report<T>(
    answers: Vec<(ServerAddr, gearbox_client::Result<T>)>,
) -> (Vec<(ServerAddr, T)>, bool) {
    let mut ok = Vec::new();
    let mut failed = false;
    for (s, r) in answers {
        match r {
            Ok(v) => ok.push((s, v)),
            Err(e) => {
                failed = true;
                let _ = writeln!(std::io::stderr(), "gearbox: {s}: {e}");
            }
        }
    }
    (ok, failed)
}

pub(crate) fn finish(
    ctx: &Ctx,
    table: Table,
    rows: Vec<Value>,
    failed: bool,
) -> anyhow::Result<ExitCode> {
    let mut out = std::io::stdout().lock();
    if ctx.json {
        writeln!(out, "{}", Value::Array(rows))?;
    } else {
        out.write_all(table.render().as_bytes())?;
    }
    out.flush()?;
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

pub(crate) fn with_server(ctx: &Ctx, s: &ServerAddr, mut cells: Vec<String>) -> Vec<String> {
    if ctx.many() {
        cells.insert(0, s.to_string());
    }
    cells
}

pub(crate) fn headers<'a>(ctx: &Ctx, cols: &[&'a str]) -> Vec<&'a str> {
    let mut h = cols.to_vec();
    if ctx.many() {
        h.insert(0, "SERVER");
    }
    h
}

/// `gearbox status [--priority]`.
pub async fn status(ctx: &Ctx, args: StatusArgs) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    if args.priority {
        let answers = query_all(ctx, |mut a| async move { a.priority_status().await });
        let (ok, failed) = report(answers.await);
        let h = headers(ctx, &["FUNCTION", ">HIGH", ">NORMAL", ">LOW", ">WORKERS"]);
        let mut t = Table::new(&h);
        for (s, mut list) in ok {
            list.sort_by(|a, b| a.function.cmp(&b.function));
            for p in list {
                let cells = vec![
                    text(&p.function),
                    p.high.to_string(),
                    p.normal.to_string(),
                    p.low.to_string(),
                    p.workers.to_string(),
                ];
                t.row(with_server(ctx, &s, cells));
                rows.push(
                    json!({"server": s.to_string(), "function": json_text(&p.function),
                    "high": p.high, "normal": p.normal, "low": p.low, "workers": p.workers}),
                );
            }
        }
        return finish(ctx, t, rows, failed);
    }
    let answers = query_all(ctx, |mut a| async move { a.status().await });
    let (ok, failed) = report(answers.await);
    let h = headers(ctx, &["FUNCTION", ">QUEUED", ">RUNNING", ">WORKERS"]);
    let mut t = Table::new(&h);
    for (s, mut list) in ok {
        list.sort_by(|a, b| a.function.cmp(&b.function));
        for f in list {
            let cells = vec![
                text(&f.function),
                f.queued().to_string(),
                f.running.to_string(),
                f.workers.to_string(),
            ];
            t.row(with_server(ctx, &s, cells));
            rows.push(
                json!({"server": s.to_string(), "function": json_text(&f.function),
                "total": f.total, "queued": f.queued(), "running": f.running,
                "workers": f.workers}),
            );
        }
    }
    finish(ctx, t, rows, failed)
}

/// `gearbox workers [--all]`.
pub async fn workers(ctx: &Ctx, args: WorkersArgs) -> anyhow::Result<ExitCode> {
    let answers = query_all(ctx, |mut a| async move { a.workers().await });
    let (ok, failed) = report(answers.await);
    let h = headers(ctx, &["FD", "IP", "CLIENT-ID", "FUNCTIONS"]);
    let mut t = Table::new(&h);
    let mut rows = Vec::new();
    for (s, list) in ok {
        for w in list
            .into_iter()
            .filter(|w| args.all || !w.functions.is_empty())
        {
            let fns: Vec<String> = w.functions.iter().map(|f| text(f)).collect();
            let cells = vec![text(&w.fd), text(&w.ip), text(&w.client_id), fns.join(" ")];
            t.row(with_server(ctx, &s, cells));
            let jfns: Vec<Value> = w.functions.iter().map(|f| json_text(f)).collect();
            rows.push(json!({"server": s.to_string(), "fd": json_text(&w.fd),
                "ip": json_text(&w.ip), "client_id": json_text(&w.client_id),
                "functions": jfns}));
        }
    }
    finish(ctx, t, rows, failed)
}

/// `gearbox jobs [--unique]`.
pub async fn jobs(ctx: &Ctx, args: JobsArgs) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    if args.unique {
        let answers = query_all(ctx, |mut a| async move { a.show_unique_jobs().await });
        let (ok, failed) = report(answers.await);
        let mut t = Table::new(&headers(ctx, &["UNIQUE"]));
        for (s, list) in ok {
            for u in list {
                t.row(with_server(ctx, &s, vec![text(&u)]));
                rows.push(json!({"server": s.to_string(), "unique": json_text(&u)}));
            }
        }
        return finish(ctx, t, rows, failed);
    }
    let answers = query_all(ctx, |mut a| async move { a.show_jobs().await });
    let (ok, failed) = report(answers.await);
    let h = headers(ctx, &["HANDLE", ">RETRIES", "KIND", "IGNORED"]);
    let mut t = Table::new(&h);
    let yes_no = |b: bool| if b { "yes" } else { "no" }.to_string();
    for (s, list) in ok {
        for j in list {
            let kind = if j.background {
                "background"
            } else {
                "foreground"
            };
            let cells = vec![
                text(&j.handle),
                j.retries.to_string(),
                kind.into(),
                yes_no(j.ignored),
            ];
            t.row(with_server(ctx, &s, cells));
            rows.push(
                json!({"server": s.to_string(), "handle": json_text(&j.handle),
                "retries": j.retries, "background": j.background, "ignored": j.ignored}),
            );
        }
    }
    finish(ctx, t, rows, failed)
}

/// `gearbox cancel HANDLE`: asks every server; succeeds if one of them cancelled it.
pub async fn cancel(ctx: &Ctx, args: CancelArgs) -> anyhow::Result<ExitCode> {
    let handle = args.handle.clone();
    let answers = query_all(ctx, |mut a| {
        let h = handle.clone();
        async move { a.cancel(h).await }
    })
    .await;
    let mut cancelled = Vec::new();
    let mut errors = false;
    for (s, r) in answers {
        match r {
            Ok(()) => cancelled.push(s),
            Err(e) if e.admin_code() == Some("UNKNOWN_JOB") => {}
            Err(e) => {
                errors = true;
                let _ = writeln!(std::io::stderr(), "gearbox: {s}: {e}");
            }
        }
    }
    if cancelled.is_empty() {
        if !errors {
            let n = ctx.servers.len();
            anyhow::bail!("no server knows job {handle} (asked {n} server(s))");
        }
        return Ok(ExitCode::FAILURE);
    }
    let mut out = std::io::stdout().lock();
    for s in &cancelled {
        if ctx.json {
            writeln!(
                out,
                "{}",
                json!({"server": s.to_string(), "handle": handle, "cancelled": true})
            )?;
        } else {
            writeln!(out, "cancelled {handle} on {s}")?;
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `gearbox maxqueue FUNCTION [N | HIGH NORMAL LOW]` on every server.
pub async fn maxqueue(ctx: &Ctx, args: MaxqueueArgs) -> anyhow::Result<ExitCode> {
    let limit = match args.limits[..] {
        [] => MaxQueue::Unlimited,
        [n] => MaxQueue::All(n),
        [high, normal, low] => MaxQueue::ByPriority { high, normal, low },
        _ => anyhow::bail!("give no limit, one limit, or three (HIGH NORMAL LOW)"),
    };
    let function = args.function.clone();
    let answers = query_all(ctx, |mut a| {
        let f = function.clone();
        async move { a.maxqueue(f, limit).await }
    })
    .await;
    let (ok, failed) = report(answers);
    let shown = match limit {
        MaxQueue::Unlimited => "unlimited".to_string(),
        MaxQueue::All(n) => n.to_string(),
        MaxQueue::ByPriority { high, normal, low } => {
            format!("high {high}, normal {normal}, low {low}")
        }
    };
    let mut out = std::io::stdout().lock();
    for (s, ()) in ok {
        if ctx.json {
            let limits: Vec<u32> = args.limits.clone();
            writeln!(
                out,
                "{}",
                json!({"server": s.to_string(), "function": function, "limits": limits})
            )?;
        } else {
            writeln!(out, "{s}: maxqueue {function}: {shown}")?;
        }
    }
    Ok(if failed {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}
