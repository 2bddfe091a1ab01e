//! Moving a real gearmand's Redis queue into gearboxd: Debian's gearmand 1.1.20 (`-q redis`)
//! queues background jobs submitted with the C `gearman -b` tool into a throwaway
//! redis-server and is stopped; gearboxd started with gearmand's own flags on the same Redis
//! imports them, a worker receives each once with its payload, in priority order, and a
//! second start imports nothing. Missing programs print SKIPPED (a failure with CI=true).

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::process::{Command, Stdio};

use gearbox_testkit::external;
use gearbox_testkit::gearmand::Gearmand;
use gearbox_testkit::servers::redis::RedisServer;
use support::jobs::{run_all, show_jobs, stop, Assigned};
use support::Gearboxd;

/// Submits a background job to gearmand with the C tool, the payload on standard input;
/// `flags` add the priority (`-I`, `-L`) and the unique id (`-u`).
fn gearman_b(gearman: &std::path::Path, port: &str, function: &str, flags: &[&str], data: &[u8]) {
    let mut child = Command::new(gearman)
        .args(["-h", "127.0.0.1", "-p", port, "-f", function, "-b"])
        .args(flags)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run gearman");
    child.stdin.take().unwrap().write_all(data).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "gearman -b: {out:?}");
}

/// gearmand's queue keys in Redis.
fn gearmand_keys(redis: &mut redis::Connection) -> BTreeSet<String> {
    redis::cmd("KEYS").arg("_gear_-*").query(redis).unwrap()
}

/// gearboxd with gearmand's queue flags `queue`.
fn gearboxd(queue: &[&str]) -> Gearboxd {
    let mut args = vec!["-p", "0", "-L", "127.0.0.1", "--job-handle-prefix", "H:srv"];
    args.extend_from_slice(queue);
    Gearboxd::start(&args)
}

#[tokio::test]
async fn gearmands_redis_queue_moves_into_gearboxd() {
    let test = "gearmands_redis_queue_moves_into_gearboxd";
    let Some(redis_server) = RedisServer::start(test) else {
        return;
    };
    let Some(gearman) = external::require("gearman", "Debian gearman-tools: submits the jobs")
    else {
        return;
    };
    let port = redis_server.port().to_string();
    // Both servers' defaults: Redis on 127.0.0.1, gearmand's key prefix `_gear_`.
    let queue = ["-q", "redis", "--redis-port", &port];
    let Some(gearmand) = Gearmand::start_with(&queue).await else {
        return;
    };
    let gport = gearmand.port();
    let submitted: [(&str, &[&str], &[u8]); 5] = [
        ("resize", &["-u", "img-1"], b"normal"),
        ("resize", &["-L", "-u", "img-3"], b"later"),
        ("resize", &["-I", "-u", "img-2"], b"urgent"),
        ("resize", &[], b"no unique\0binary \xff"),
        ("email", &["-u", "mail-1"], b"to: a@b"),
    ];
    for (function, flags, data) in submitted {
        gearman_b(&gearman, &gport, function, flags, data);
    }
    let mut redis = redis::Client::open(format!("redis://127.0.0.1:{port}/"))
        .unwrap()
        .get_connection()
        .unwrap();
    let queued = gearmand_keys(&mut redis);
    assert_eq!(queued.len(), 5, "gearmand's queue in Redis: {queued:?}");
    // gearmand's own unique id for the job submitted without one.
    let generated = queued
        .iter()
        .find_map(|k| {
            k.strip_prefix("_gear_-resize-")
                .filter(|u| !u.starts_with("img-"))
        })
        .expect("a key for the job without a unique id")
        .to_owned();
    drop(gearmand);

    let server = gearboxd(&queue);
    let line = server.wait_for_stderr(|l| l.contains("imported"));
    assert!(
        line.contains("imported 5 jobs from gearmand's Redis queue (keys `_gear_-*`)"),
        "{line}"
    );
    let handles: BTreeSet<String> = (1..=5).map(|n| format!("H:srv:{n}")).collect();
    assert_eq!(show_jobs(&server), handles);
    let resize = run_all(&server, "resize");
    let got = |jobs: &[Assigned]| -> Vec<(String, Vec<u8>)> {
        jobs.iter()
            .map(|a| (a.unique.clone(), a.data.clone()))
            .collect()
    };
    // High first, low last; the two normal ones in between (gearmand keeps no order).
    assert_eq!(got(&resize[..1]), [("img-2".into(), b"urgent".to_vec())]);
    assert_eq!(got(&resize[3..]), [("img-3".into(), b"later".to_vec())]);
    let normal: BTreeSet<_> = got(&resize[1..3]).into_iter().collect();
    let want = BTreeSet::from([
        ("img-1".to_owned(), b"normal".to_vec()),
        (generated, b"no unique\0binary \xff".to_vec()),
    ]);
    assert_eq!(normal, want);
    assert_eq!(resize.len(), 4, "{resize:?}");
    let email = run_all(&server, "email");
    assert_eq!(got(&email), [("mail-1".into(), b"to: a@b".to_vec())]);
    stop(server);
    assert!(gearmand_keys(&mut redis).is_empty(), "moved, not copied");

    // A second start finds nothing more to import, and nothing left to run.
    let mut server = gearboxd(&queue);
    assert!(show_jobs(&server).is_empty());
    assert!(run_all(&server, "resize").is_empty());
    let log = server.stop_with(libc::SIGTERM);
    assert!(!log.contains("imported"), "{log}");
}
