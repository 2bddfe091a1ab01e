//! Moving a real gearmand's queue into gearboxd, for the queues whose server the harness can
//! start (Redis, PostgreSQL): Debian's gearmand 1.1.20 queues background jobs submitted with
//! the C `gearman -b` tool and is stopped; gearboxd, started with gearmand's own queue flags,
//! imports them, a worker receives each once with its payload, in priority order, and a
//! second start imports nothing. Missing programs print SKIPPED (a failure with CI=true).

mod support;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};

use gearbox_testkit::external;
use gearbox_testkit::gearmand::Gearmand;
use gearbox_testkit::servers::postgres::PgServer;
use gearbox_testkit::servers::redis::RedisServer;
use support::jobs::{run_all, show_jobs, Assigned};
use support::Gearboxd;

/// What is submitted to gearmand: function, `gearman` flags (priority, unique id), payload.
const SUBMITTED: [(&str, &[&str], &[u8]); 5] = [
    ("resize", &["-u", "img-1"], b"normal"),
    ("resize", &["-L", "-u", "img-3"], b"later"),
    ("resize", &["-I", "-u", "img-2"], b"urgent"),
    ("resize", &[], b"no unique\0binary \xff"),
    ("email", &["-u", "mail-1"], b"to: a@b"),
];

/// Submits a background job to gearmand with the C tool, the payload on standard input.
fn gearman_b(gearman: &Path, port: &str, function: &str, flags: &[&str], data: &[u8]) {
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

/// gearboxd with gearmand's queue flags `queue`.
fn gearboxd(queue: &[&str]) -> Gearboxd {
    let mut args = vec!["-p", "0", "-L", "127.0.0.1", "--job-handle-prefix", "H:srv"];
    args.extend_from_slice(queue);
    Gearboxd::start(&args)
}

/// What gearmand's storage says it holds, for the test of one queue.
trait Queued {
    /// The unique ids of the jobs gearmand keeps.
    fn uniques(&self) -> BTreeSet<String>;
}

/// Queues [`SUBMITTED`] in gearmand started with `queue`, stops it, and checks that gearboxd
/// with the same flags imports every job once (its start-up line contains `imported`) and
/// that gearmand's storage is empty afterwards.
async fn moves_into_gearboxd(test: &str, queue: &[&str], imported: &str, queued: &dyn Queued) {
    let Some(gearman) = external::require("gearman", "Debian gearman-tools: submits the jobs")
    else {
        return;
    };
    let Some(gearmand) = Gearmand::start_with(queue).await else {
        return;
    };
    for (function, flags, data) in SUBMITTED {
        gearman_b(&gearman, &gearmand.port(), function, flags, data);
    }
    let uniques = queued.uniques();
    assert_eq!(uniques.len(), 5, "{test}: gearmand's queue: {uniques:?}");
    // gearmand's own unique id for the job submitted without one.
    let generated = uniques
        .iter()
        .find(|u| !u.starts_with("img-") && !u.starts_with("mail-"))
        .expect("the job without a unique id")
        .clone();
    drop(gearmand);

    let server = gearboxd(queue);
    let line = server.wait_for_stderr(|l| l.contains("imported"));
    assert!(line.contains(imported), "{test}: {line}");
    let handles: BTreeSet<String> = (1..=5).map(|n| format!("H:srv:{n}")).collect();
    assert_eq!(show_jobs(&server), handles);
    let resize = run_all(&server, "resize");
    let got = |jobs: &[Assigned]| -> Vec<(String, Vec<u8>)> {
        jobs.iter()
            .map(|a| (a.unique.clone(), a.data.clone()))
            .collect()
    };
    assert_eq!(resize.len(), 4, "{resize:?}");
    // High first, low last; the two normal ones in between (gearmand keeps no order).
    assert_eq!(got(&resize[..1]), [("img-2".into(), b"urgent".to_vec())]);
    assert_eq!(got(&resize[3..]), [("img-3".into(), b"later".to_vec())]);
    let normal: BTreeSet<_> = got(&resize[1..3]).into_iter().collect();
    let want = BTreeSet::from([
        ("img-1".to_owned(), b"normal".to_vec()),
        (generated, b"no unique\0binary \xff".to_vec()),
    ]);
    assert_eq!(normal, want);
    let email = run_all(&server, "email");
    assert_eq!(got(&email), [("mail-1".into(), b"to: a@b".to_vec())]);
    support::jobs::stop(server);
    assert!(queued.uniques().is_empty(), "{test}: moved, not copied");

    // A second start finds nothing more to import, and nothing left to run.
    let mut server = gearboxd(queue);
    assert!(show_jobs(&server).is_empty());
    assert!(run_all(&server, "resize").is_empty());
    let log = server.stop_with(libc::SIGTERM);
    assert!(!log.contains("imported"), "{test}: {log}");
}

/// gearmand's Redis keys: `_gear_-<function>-<unique>`.
struct RedisKeys(RedisServer);

impl Queued for RedisKeys {
    fn uniques(&self) -> BTreeSet<String> {
        let mut redis = redis::Client::open(format!("redis://127.0.0.1:{}/", self.0.port()))
            .unwrap()
            .get_connection()
            .unwrap();
        let keys: Vec<String> = redis::cmd("KEYS")
            .arg("_gear_-*")
            .query(&mut redis)
            .unwrap();
        let unique = |k: &str| k.splitn(3, '-').nth(2).unwrap().to_owned();
        keys.iter().map(|k| unique(k)).collect()
    }
}

#[tokio::test]
async fn gearmands_redis_queue_moves_into_gearboxd() {
    let test = "gearmands_redis_queue_moves_into_gearboxd";
    let Some(server) = RedisServer::start(test) else {
        return;
    };
    let port = server.port().to_string();
    // Both servers' defaults: Redis on 127.0.0.1, gearmand's key prefix `_gear_`.
    let queue = ["-q", "redis", "--redis-port", &port];
    let imported = "imported 5 jobs from gearmand's Redis queue (keys `_gear_-*`)";
    moves_into_gearboxd(test, &queue, imported, &RedisKeys(server)).await;
}

/// gearmand's PostgreSQL table `queue`.
struct PgTable(PgServer);

impl Queued for PgTable {
    fn uniques(&self) -> BTreeSet<String> {
        self.0
            .query("SELECT unique_key FROM queue")
            .into_iter()
            .collect()
    }
}

#[tokio::test]
async fn gearmands_libpq_queue_moves_into_gearboxd() {
    let test = "gearmands_libpq_queue_moves_into_gearboxd";
    let Some(server) = PgServer::start(test) else {
        return;
    };
    let conninfo = server.conninfo();
    // gearmand 1.1.20 names this queue `postgres`; `-q libpq` is "Unknown queue libpq".
    let queue = ["-q", "postgres", "--libpq-conninfo", &conninfo];
    let imported = "imported 5 jobs from gearmand's queue table `queue`";
    moves_into_gearboxd(test, &queue, imported, &PgTable(server)).await;
}
