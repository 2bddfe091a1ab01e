//! `gearbox cluster [--members]` against a scripted server answering the cluster admin
//! listings, and against a real gearbox server that is not in a cluster.

mod tool_support;

use serde_json::Value;
use tool_support::fake::{Fake, Reply, Script};
use tool_support::{gearbox, run, Server};

fn answering(listing: &'static [u8]) -> Script {
    Script {
        submit: Reply::Nothing,
        grab: Reply::Nothing,
        admin: Some(listing),
    }
}

#[tokio::test]
async fn cluster_prints_the_cluster_wide_totals() {
    let fake = Fake::start(answering(b"nobody\t5\t0\t0\t0\nresize\t1\t2\t3\t4\n.\n")).await;
    let list = fake.addr.to_string();
    let out = run(gearbox(&list, &["cluster"]), b"").await;
    out.assert_success("cluster");
    assert_eq!(
        out.stdout,
        "FUNCTION  CLUSTER-FREE  CLUSTER-QUEUED  CLUSTER-RUNNING  CLUSTER-WORKERS\n\
         nobody               5               0                0                0\n\
         resize               1               2                3                4\n"
    );
    let out = run(gearbox(&list, &["--json", "cluster"]), b"").await;
    out.assert_success("cluster --json");
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[1]["function"], "resize");
    assert_eq!(
        (v[1]["free"].as_u64(), v[1]["workers"].as_u64()),
        (Some(1), Some(4))
    );
}

#[tokio::test]
async fn cluster_members_marks_the_answering_server() {
    let fake = Fake::start(answering(
        b"s1\th1:4730\t120\t3\t5\t2\ns2\th2:4730\t20\t0\t1\t0\t*\n.\n",
    ))
    .await;
    let list = fake.addr.to_string();
    let out = run(gearbox(&list, &["cluster", "--members"]), b"").await;
    out.assert_success("cluster --members");
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", out.stdout);
    assert!(lines[0].starts_with("ID"), "{}", out.stdout);
    assert!(
        lines[1].starts_with("s1") && !lines[1].ends_with('*'),
        "{}",
        out.stdout
    );
    assert!(
        lines[2].starts_with("s2") && lines[2].ends_with('*'),
        "{}",
        out.stdout
    );
    let out = run(gearbox(&list, &["--json", "cluster", "--members"]), b"").await;
    let v: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v[0]["id"], "s1");
    assert_eq!(v[0]["heartbeat_age_ms"], 120);
    assert_eq!(v[0]["this"], false);
    assert_eq!(v[1]["this"], true);
}

#[tokio::test]
async fn a_server_not_in_a_cluster_fails() {
    let server = Server::both()
        .await
        .into_iter()
        .find(|s| s.is_gearbox())
        .unwrap();
    let out = run(gearbox(&server.list(), &["cluster"]), b"").await;
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("NOT_CLUSTER"), "{}", out.stderr);
}
