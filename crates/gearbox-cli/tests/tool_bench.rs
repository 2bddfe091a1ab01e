//! `gearbox bench` against gearbox and gearmand: every scenario and mode does the number of
//! jobs asked, reports consistent numbers, and leaves the queues as it says.

mod tool_support;

use serde_json::Value;
use tool_support::{gearbox, run, Server};

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s:?}"))
}

/// The server's pid: gearmand's, or this test process (gearbox runs in-process).
fn pid(s: &Server) -> String {
    match s {
        Server::Gearbox(_) => std::process::id().to_string(),
        Server::Gearmand(g) => g.pid().to_string(),
    }
}

async fn bench(s: &Server, args: &[&str]) -> Vec<Value> {
    let mut all = vec!["bench"];
    all.extend_from_slice(args);
    all.push("--json");
    let out = run(gearbox(&s.list(), &all), b"").await;
    out.assert_success(&format!("{}: bench {args:?}", s.name()));
    json(&out.stdout)
        .as_array()
        .expect("an array of phases")
        .clone()
}

fn count(phase: &Value) -> u64 {
    phase["jobs"].as_u64().expect("jobs")
}

fn assert_latency_sane(phase: &Value, jobs: u64) {
    let l = &phase["latency"];
    assert_eq!(l["count"].as_u64(), Some(jobs), "{phase}");
    let p = |k: &str| l[k].as_u64().unwrap();
    assert!(
        p("p50_us") <= p("p90_us") && p("p90_us") <= p("p99_us"),
        "{phase}"
    );
    assert!(p("p99_us") <= p("max_us") && p("p50_us") > 0, "{phase}");
    assert!(phase["jobs_per_sec"].as_f64().unwrap() > 0.0, "{phase}");
}

#[tokio::test]
async fn foreground_runs_every_job_in_both_modes_with_the_priority_mix() {
    for s in Server::both().await {
        let who = s.name();
        for mode in ["classic", "pipelined"] {
            let server_pid = pid(&s);
            let phases = bench(
                &s,
                &[
                    "fg",
                    "--mode",
                    mode,
                    "-c",
                    "3",
                    "-w",
                    "2",
                    "-n",
                    "400",
                    "--depth",
                    "8",
                    "--priorities",
                    "1,2,1",
                    "--server-pid",
                    &server_pid,
                    "--label",
                    who,
                ],
            )
            .await;
            assert_eq!(phases.len(), 1, "{who} {mode}");
            let fg = &phases[0];
            assert_eq!(
                (fg["phase"].as_str(), fg["mode"].as_str(), count(fg)),
                (Some("fg"), Some(mode), 400),
                "{who}"
            );
            assert_eq!(fg["label"].as_str(), Some(who));
            assert_latency_sane(fg, 400);
            let by: Vec<(String, u64)> = fg["by_priority"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| {
                    (
                        p[0].as_str().unwrap().to_string(),
                        p[1]["count"].as_u64().unwrap(),
                    )
                })
                .collect();
            assert_eq!(
                by,
                [
                    ("high".to_string(), 100),
                    ("normal".to_string(), 200),
                    ("low".to_string(), 100)
                ],
                "{who} {mode}"
            );
            assert!(fg["server_cpu_us_per_job"].as_f64().is_some(), "{fg}");
            assert!(fg["server_rss_kib"].as_u64().unwrap() > 0, "{fg}");
        }
    }
}

#[tokio::test]
async fn background_submits_then_drains_the_queue() {
    for s in Server::both().await {
        let who = s.name();
        for mode in ["classic", "pipelined"] {
            let function = format!("bench_bg_{mode}");
            let phases = bench(
                &s,
                &[
                    "bg",
                    "--mode",
                    mode,
                    "-c",
                    "4",
                    "-w",
                    "3",
                    "-n",
                    "500",
                    "--function",
                    &function,
                ],
            )
            .await;
            let names: Vec<&str> = phases
                .iter()
                .map(|p| p["phase"].as_str().unwrap())
                .collect();
            assert_eq!(names, ["bg-submit", "bg-drain"], "{who} {mode}");
            assert_eq!((count(&phases[0]), count(&phases[1])), (500, 500), "{who}");
            assert_latency_sane(&phases[0], 500);
            // The drain really emptied the queue on the server.
            s.wait_admin("status", "an empty queue", |st| {
                st.lines()
                    .any(|l| l.starts_with(&format!("{function}\t0\t0\t")))
            })
            .await;
        }
    }
}

#[tokio::test]
async fn background_without_drain_leaves_the_jobs_queued() {
    for s in Server::both().await {
        let phases = bench(
            &s,
            &[
                "bg",
                "--mode",
                "pipelined",
                "-n",
                "300",
                "--no-drain",
                "--function",
                "held",
            ],
        )
        .await;
        assert_eq!(phases.len(), 1);
        assert_eq!(count(&phases[0]), 300);
        let status = s
            .wait_admin("status", "300 queued", |st| st.contains("held\t300\t0\t0"))
            .await;
        assert!(status.contains("held\t300\t0\t0"), "{}: {status}", s.name());
        // A later run drains what this one left.
        let phases = bench(
            &s,
            &[
                "bg",
                "--no-submit",
                "-n",
                "300",
                "--function",
                "held",
                "-w",
                "2",
            ],
        )
        .await;
        let names: Vec<&str> = phases
            .iter()
            .map(|p| p["phase"].as_str().unwrap())
            .collect();
        assert_eq!((names, count(&phases[0])), (vec!["bg-drain"], 300));
        s.wait_admin("status", "an empty queue", |st| st.contains("held\t0\t0\t"))
            .await;
    }
}

#[tokio::test]
async fn sweep_runs_each_size_and_duration_runs_stop() {
    for s in Server::both().await {
        let phases = bench(
            &s,
            &[
                "sweep",
                "--sizes",
                "10,20000",
                "-n",
                "150",
                "--bytes-per-size",
                "1000000",
                "-c",
                "2",
            ],
        )
        .await;
        let got: Vec<(u64, u64)> = phases
            .iter()
            .map(|p| (p["size"].as_u64().unwrap(), count(p)))
            .collect();
        // 1 MB / 20,000 B = 50 jobs, raised to the floor of 100.
        assert_eq!(got, [(10, 150), (20000, 100)], "{}", s.name());
        let phases = bench(&s, &["fg", "--duration", "0.3", "-c", "2", "-w", "1"]).await;
        let fg = &phases[0];
        assert!(count(fg) > 0, "{fg}");
        assert_latency_sane(fg, count(fg));
    }
}

#[tokio::test]
async fn zero_jobs_end_at_once() {
    for s in Server::both().await {
        let phases = bench(&s, &["bg", "-n", "0"]).await;
        let names: Vec<&str> = phases
            .iter()
            .map(|p| p["phase"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["bg-submit"], "{}: no drain without jobs", s.name());
        assert_eq!(count(&phases[0]), 0);
        let phases = bench(&s, &["fg", "-n", "0"]).await;
        assert_eq!(count(&phases[0]), 0, "{}", s.name());
    }
}

#[tokio::test]
async fn unreachable_server_is_a_clear_error() {
    let port = gearbox_testkit::gearmand::free_port();
    let out = run(
        gearbox(&format!("127.0.0.1:{port}"), &["bench", "fg", "-n", "1"]),
        b"",
    )
    .await;
    assert!(!out.status.success());
    assert!(
        out.stderr
            .contains("gearbox: error: cannot connect to 127.0.0.1:"),
        "{}",
        out.stderr
    );
}
