//! `gearbox cluster [--members]`: the cluster seen from each server asked (gearbox servers in
//! cluster mode): per function the cluster-wide free, queued and running jobs and workers
//! (`cluster status`), or with `--members` every live member (`cluster members`), the
//! answering server marked. A server not in a cluster is reported as failed.

use std::process::ExitCode;

use clap::Args;
use serde_json::json;

use super::admin_cmds::{finish, headers, query_all, report, with_server};
use super::cli::Ctx;
use super::output::{json_text, text, Table};

/// `gearbox cluster`.
#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// List the members (id, address, heartbeat age, jobs held, connections, workers)
    /// instead of the per-function cluster-wide totals.
    #[arg(long)]
    pub members: bool,
}

/// Runs `gearbox cluster`.
pub async fn run(ctx: &Ctx, args: ClusterArgs) -> anyhow::Result<ExitCode> {
    let mut rows = Vec::new();
    if args.members {
        let answers = query_all(ctx, |mut a| async move { a.cluster_members().await });
        let (ok, failed) = report(answers.await);
        let h = headers(
            ctx,
            &[
                "ID",
                "ADDRESS",
                ">HEARTBEAT-AGE-MS",
                ">JOBS-HELD",
                ">CONNECTIONS",
                ">WORKERS",
                "THIS",
            ],
        );
        let mut t = Table::new(&h);
        for (s, list) in ok {
            for m in list {
                let cells = vec![
                    m.id.clone(),
                    m.address.clone(),
                    m.heartbeat_age_ms.to_string(),
                    m.jobs_held.to_string(),
                    m.connections.to_string(),
                    m.workers.to_string(),
                    if m.this_server { "*" } else { "" }.to_owned(),
                ];
                t.row(with_server(ctx, &s, cells));
                rows.push(
                    json!({"server": s.to_string(), "id": m.id, "address": m.address,
                    "heartbeat_age_ms": m.heartbeat_age_ms, "jobs_held": m.jobs_held,
                    "connections": m.connections, "workers": m.workers,
                    "this": m.this_server}),
                );
            }
        }
        return finish(ctx, t, rows, failed);
    }
    let answers = query_all(ctx, |mut a| async move { a.cluster_status().await });
    let (ok, failed) = report(answers.await);
    let h = headers(
        ctx,
        &[
            "FUNCTION",
            ">CLUSTER-FREE",
            ">CLUSTER-QUEUED",
            ">CLUSTER-RUNNING",
            ">CLUSTER-WORKERS",
        ],
    );
    let mut t = Table::new(&h);
    for (s, list) in ok {
        for f in list {
            let cells = vec![
                text(&f.function),
                f.free.to_string(),
                f.queued.to_string(),
                f.running.to_string(),
                f.workers.to_string(),
            ];
            t.row(with_server(ctx, &s, cells));
            rows.push(
                json!({"server": s.to_string(), "function": json_text(&f.function),
                "free": f.free, "queued": f.queued, "running": f.running,
                "workers": f.workers}),
            );
        }
    }
    finish(ctx, t, rows, failed)
}
