//! The cluster seen from any member: `cluster status`, `cluster members` and
//! `GET /api/cluster` on three real `gearboxd` processes sharing one throwaway PostgreSQL
//! (SKIPPED without PostgreSQL, a failure with CI=true). Every wait is a bounded poll.

mod support;

use std::net::SocketAddr;
use std::time::Duration;

use gearbox_proto::PacketType::{CAN_DO, JOB_CREATED, SUBMIT_JOB_BG};
use gearbox_testkit::servers::postgres::PgServer;
use support::http::http;
use support::{Conn, Gearboxd};

/// The longest any expected change may take to show.
const TIMEOUT: Duration = Duration::from_secs(20);

/// The cluster flags of member `id` on `pg` (heartbeat 200 ms, dead after 1 s, poll 200 ms).
fn cluster_args(pg: &PgServer, id: &str) -> Vec<String> {
    [
        "-q",
        "libpq",
        "--libpq-conninfo",
        &pg.conninfo(),
        "--cluster",
        "--cluster-id",
        id,
        "--cluster-heartbeat-ms",
        "200",
        "--cluster-dead-after-ms",
        "1000",
        "--cluster-poll-ms",
        "200",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// Starts member `id` of the cluster on `pg`.
fn member(pg: &PgServer, id: &str) -> Gearboxd {
    let mut args = vec!["-p".to_owned(), "0".into(), "-L".into(), "127.0.0.1".into()];
    args.extend(cluster_args(pg, id));
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Gearboxd::start(&args)
}

/// Starts member `id` with the HTTP listener (`-r http`); returns it and its HTTP address.
fn member_with_http(pg: &PgServer, id: &str) -> (Gearboxd, SocketAddr) {
    let args = cluster_args(pg, id);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    support::http::start(&args)
}

/// Polls the admin `command` on `conn` until `done` holds for its lines; fails after
/// [`TIMEOUT`] showing the last listing.
fn poll_listing(conn: &mut Conn, command: &str, done: impl Fn(&[String]) -> bool) -> Vec<String> {
    let mut last = Vec::new();
    let held = support::wait_until(TIMEOUT, || {
        last = conn.admin_listing(command);
        done(&last)
    });
    assert!(
        held,
        "`{command}` never showed what was expected; last: {last:?}"
    );
    last
}

/// `GET path` on `addr`, as JSON.
fn get_json(addr: SocketAddr, path: &str) -> serde_json::Value {
    let answer = http(addr, format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes());
    assert_eq!(
        answer.status,
        200,
        "{}",
        String::from_utf8_lossy(&answer.body)
    );
    serde_json::from_slice(&answer.body).unwrap()
}

#[test]
fn every_member_sees_the_whole_cluster() {
    let Some(pg) = PgServer::start("every_member_sees_the_whole_cluster") else {
        return;
    };
    let mut s1 = member(&pg, "s1");
    let s2 = member(&pg, "s2");
    let (s3, s3_http) = member_with_http(&pg, "s3");

    // Workers registered on s1 (one) and s2 (two); they never ask for a job.
    let mut w1 = s1.connect();
    w1.send(CAN_DO, b"resize");
    let mut w2 = s2.connect();
    w2.send(CAN_DO, b"resize");
    let mut w3 = s2.connect();
    w3.send(CAN_DO, b"resize");
    w3.send(CAN_DO, b"thumb");
    // Background jobs with no worker anywhere: s1 gives them to the shared queue.
    let mut client = s1.connect();
    for n in 0..5 {
        client.send(SUBMIT_JOB_BG, format!("nobody\0\0job-{n}").as_bytes());
        assert_eq!(client.recv().0, JOB_CREATED);
    }

    let mut admin = s3.connect();
    let status = poll_listing(&mut admin, "cluster status", |lines| {
        lines.iter().any(|l| l == "nobody\t5\t0\t0\t0")
            && lines.iter().any(|l| l == "resize\t0\t0\t0\t3")
            && lines.iter().any(|l| l == "thumb\t0\t0\t0\t1")
    });
    assert_eq!(status.len(), 3, "{status:?}");
    let members = poll_listing(&mut admin, "cluster members", |lines| {
        let cols: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
        cols.len() == 3
            && cols[0][0] == "s1"
            && cols[0][5] == "1"
            && cols[1][0] == "s2"
            && cols[1][5] == "2"
            && cols[2][0] == "s3"
    });
    for (line, me) in members.iter().zip([false, false, true]) {
        let cols: Vec<&str> = line.split('\t').collect();
        assert_eq!(cols.len(), if me { 7 } else { 6 }, "{line:?}");
        assert_eq!(cols.last() == Some(&"*"), me, "{line:?}");
        assert!(cols[1].contains(':'), "an address host:port: {line:?}");
        let age: u64 = cols[2].parse().unwrap();
        assert!(age < 10_000, "{line:?}");
    }
    // The classic commands stay local: s3 has no worker and holds no job.
    let local = admin.admin_listing("status");
    assert!(local.iter().all(|l| l.ends_with("\t0\t0\t0")), "{local:?}");

    // The JSON API says the same.
    let v = get_json(s3_http, "/api/cluster");
    assert_eq!(v["cluster"], true, "{v}");
    assert_eq!(v["member"], "s3", "{v}");
    let ids: Vec<&str> = v["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["s1", "s2", "s3"], "{v}");
    let nobody = v["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "nobody")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(nobody["free"], 5, "{v}");
    let resize = v["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == "resize")
        .unwrap_or_else(|| panic!("{v}"));
    assert_eq!(resize["workers"], 3, "{v}");
    assert_eq!(v["totals"]["free"], 5, "{v}");
    assert_eq!(v["totals"]["workers"], 3, "{v}");
    assert_eq!(v["totals"]["members"], 3, "{v}");
    // The dashboard has the (hidden until /api/cluster says so) Cluster panel.
    let page = http(s3_http, b"GET / HTTP/1.0\r\n\r\n");
    assert!(String::from_utf8_lossy(&page.body).contains("id=\"cluster\""));
    let script = http(s3_http, b"GET /dashboard/app.js HTTP/1.0\r\n\r\n");
    assert!(String::from_utf8_lossy(&script.body).contains("\"/api/cluster\""));

    // A member stopped with SIGTERM leaves the cluster: the others stop listing it.
    drop((w1, client));
    s1.stop_with(libc::SIGTERM);
    poll_listing(&mut admin, "cluster members", |lines| {
        lines.len() == 2 && lines.iter().all(|l| !l.starts_with("s1\t"))
    });
    poll_listing(&mut admin, "cluster status", |lines| {
        lines.iter().any(|l| l == "resize\t0\t0\t0\t2")
    });
    drop((w2, w3));
}

#[test]
fn a_server_of_its_own_is_not_a_cluster() {
    let (server, http_addr) = support::http::start(&[]);
    let mut admin = server.connect();
    for command in ["cluster status", "cluster members"] {
        assert_eq!(
            admin.admin(command),
            "ERR NOT_CLUSTER this+server+is+not+in+a+cluster\r\n"
        );
    }
    assert_eq!(
        get_json(http_addr, "/api/cluster"),
        serde_json::json!({ "cluster": false })
    );
}
