//! `gearbox top` (and `watch --http`) against in-process gearbox servers with a real job
//! load: the numbers printed are what happened, the admin port and gearboxd's HTTP API give
//! the same ones, several servers are summed, `--filter` and `--sort` choose the rows.

mod tool_support;

use std::time::Duration;

use gearbox_proto::{Priority, Request, Response};
use gearbox_testkit::build::{b, submit};
use gearbox_testkit::{RawConn, TestServer};
use gearboxd::http::{AllowList, HttpSettings};
use serde_json::{json, Value};
use tool_support::{command, gearbox, run};

/// Serves gearboxd's HTTP API for `server` on a free loopback port; returns its URL.
async fn http_api(server: &TestServer) -> String {
    let settings = HttpSettings {
        port: 0,
        listen: Vec::new(),
        allow: AllowList::loopback(),
        header_timeout: Duration::from_secs(10),
        max_body: 1 << 20,
        access: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let router = gearboxd::http::router(server.addr, &settings, Default::default());
    let stop = std::future::pending::<()>();
    tokio::spawn(gearboxd::http::serve(
        vec![(listener, stop)],
        router,
        settings.header_timeout,
    ));
    url
}

async fn bg(c: &mut RawConn, function: &str, priority: Priority, n: usize) {
    for i in 0..n {
        c.send(&submit(function, "", &i.to_string(), priority, true))
            .await;
        match c.recv().await {
            Response::JobCreated { .. } => {}
            other => panic!("expected JOB_CREATED, got {other:?}"),
        }
    }
}

/// A worker for `function` (registered once).
async fn worker(server: &TestServer, function: &str) -> RawConn {
    let mut w = server.connect().await;
    w.send(&Request::CanDo {
        function: b(function),
    })
    .await;
    w
}

/// Takes a queued job (there must be one).
async fn grab(w: &mut RawConn) -> bytes::Bytes {
    w.send(&Request::GrabJob).await;
    match w.recv().await {
        Response::JobAssign { handle, .. } => handle,
        other => panic!("expected JOB_ASSIGN, got {other:?}"),
    }
}

async fn complete(w: &mut RawConn, handle: bytes::Bytes) {
    w.send(&Request::WorkComplete {
        handle,
        data: b("done"),
    })
    .await;
}

/// Server A: `alpha` 2 high (one completed, one running), 3 normal, 1 low with one worker;
/// `beta` 2 normal. Server B: `alpha` 1 low; `gamma` one worker, one job completed. The
/// connections are returned to keep the workers registered.
async fn load(a: &TestServer, b_: &TestServer) -> Vec<RawConn> {
    let mut c = a.connect().await;
    bg(&mut c, "alpha", Priority::High, 2).await;
    bg(&mut c, "alpha", Priority::Normal, 3).await;
    bg(&mut c, "alpha", Priority::Low, 1).await;
    bg(&mut c, "beta", Priority::Normal, 2).await;
    let mut wa = worker(a, "alpha").await;
    let h = grab(&mut wa).await;
    complete(&mut wa, h).await;
    // Taken after the completion on the same connection: the server has counted it.
    grab(&mut wa).await;
    let mut c2 = b_.connect().await;
    bg(&mut c2, "alpha", Priority::Low, 1).await;
    bg(&mut c2, "gamma", Priority::Normal, 1).await;
    let mut wg = worker(b_, "gamma").await;
    let h = grab(&mut wg).await;
    complete(&mut wg, h).await;
    // A round trip on the worker's connection: the completion is counted.
    wg.send(&Request::GrabJob).await;
    assert_eq!(wg.recv().await, Response::NoJob);
    vec![c, wa, c2, wg]
}

fn row(f: &str, [high, normal, low, running, workers, completed]: [u64; 6]) -> Value {
    json!({"function": f, "high": high, "normal": normal, "low": low,
           "queued": high + normal + low, "running": running, "workers": workers,
           "completed": completed, "completed_per_sec": null})
}

/// `gearbox [-s servers] --json top ARGS` as its JSON lines.
async fn top_json(servers: &str, args: &[&str]) -> Vec<Value> {
    let mut cmd = gearbox(servers, &["--json", "top"]);
    cmd.args(args);
    let out = run(cmd, b"").await;
    out.assert_success("top");
    out.stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
        .collect()
}

async fn once(servers: &str, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--once");
    let frames = top_json(servers, &args).await;
    assert_eq!(frames.len(), 1, "{frames:?}");
    frames.into_iter().next().unwrap()
}

#[tokio::test]
async fn top_prints_what_happened_from_either_source_and_sums_servers() {
    let (a, b_) = (TestServer::start().await, TestServer::start().await);
    let _conns = load(&a, &b_).await;
    let (ua, ub) = (http_api(&a).await, http_api(&b_).await);
    let (la, lb) = (a.addr.to_string(), b_.addr.to_string());

    let from_admin = once(&la, &[]).await;
    let want_a = json!([
        row("alpha", [0, 3, 1, 1, 1, 1]),
        row("beta", [0, 2, 0, 0, 0, 0]),
    ]);
    assert_eq!(from_admin["functions"], want_a, "{from_admin}");
    assert_eq!(from_admin["total"], row("(total)", [0, 5, 1, 1, 1, 1]));
    let from_http = once(&la, &["--http", &ua]).await;
    assert_eq!(from_http["functions"], from_admin["functions"]);
    assert_eq!(from_http["total"], from_admin["total"]);
    assert_eq!(from_http["servers"], json!([ua]));

    // Both servers: summed per function, the same from either source.
    let both = once(&format!("{la},{lb}"), &[]).await;
    let want = json!([
        row("alpha", [0, 3, 2, 1, 1, 1]),
        row("beta", [0, 2, 0, 0, 0, 0]),
        row("gamma", [0, 0, 0, 0, 1, 1]),
    ]);
    assert_eq!(both["functions"], want, "{both}");
    assert_eq!(both["total"], row("(total)", [0, 5, 2, 1, 2, 2]));
    assert_eq!(both["servers"], json!([la, lb]));
    let both_http = once(&la, &["--http", &format!("{ua},{ub}")]).await;
    assert_eq!(both_http["functions"], want);

    // A server that cannot be reached is named; the others still count.
    let with_down = once(&format!("{la},127.0.0.1:1"), &[]).await;
    assert_eq!(with_down["functions"], want_a);
    assert_eq!(with_down["unreachable"][0]["server"], "127.0.0.1:1");

    // Rates from the second frame on: nothing completed in between.
    let frames = top_json(&la, &["--iterations", "2", "-n", "0.1"]).await;
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1]["functions"][0]["completed_per_sec"], 0.0);
    assert_eq!(frames[1]["total"]["completed"], 1);
}

#[tokio::test]
async fn top_filters_and_sorts_and_prints_a_table() {
    let (a, b_) = (TestServer::start().await, TestServer::start().await);
    let _conns = load(&a, &b_).await;
    let servers = format!("{},{}", a.addr, b_.addr);
    let names = |v: &Value| -> Vec<String> {
        v["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function"].as_str().unwrap().to_owned())
            .collect()
    };
    let v = once(&servers, &[]).await;
    assert_eq!(
        names(&v),
        ["alpha", "beta", "gamma"],
        "queued, largest first"
    );
    let v = once(&servers, &["--sort", "workers"]).await;
    assert_eq!(names(&v), ["alpha", "gamma", "beta"]);
    let v = once(&servers, &["--sort", "name", "--reverse"]).await;
    assert_eq!(names(&v), ["gamma", "beta", "alpha"]);
    assert_eq!(
        (v["sort"].as_str(), v["reverse"].as_bool()),
        (Some("name"), Some(true))
    );
    let v = once(&servers, &["--filter", "MM"]).await;
    assert_eq!(names(&v), ["gamma"]);
    assert_eq!(v["total"], row("(total)", [0, 0, 0, 0, 1, 1]));

    // The table, for people (and scripts that read text).
    let out = run(gearbox(&servers, &["top", "--once", "--sort", "name"]), b"").await;
    out.assert_success("top");
    let mut lines = out.stdout.lines();
    let header = lines.next().unwrap();
    assert!(
        header.starts_with("gearbox top: 2 server(s) via admin, every 1s,"),
        "{header}"
    );
    let table: Vec<&str> = lines.collect();
    assert_eq!(
        table.join("\n"),
        "FUNCTION  HIGH  NORMAL  LOW  QUEUED  RUNNING  WORKERS  COMPLETED  COMPLETED/S\n\
         alpha        0       3    2       5        1        1          1            -\n\
         beta         0       2    0       2        0        0          0            -\n\
         gamma        0       0    0       0        0        1          1            -\n\
         (total)      0       5    2       7        1        2          2            -"
    );
}

#[tokio::test]
async fn watch_reads_the_http_api_like_the_admin_port() {
    let (a, b_) = (TestServer::start().await, TestServer::start().await);
    let _conns = load(&a, &b_).await;
    let url = http_api(&a).await;
    let watch = |args: &[&str]| {
        let mut c = command(
            env!("CARGO_BIN_EXE_gearbox"),
            "gearbox",
            &[
                "-s",
                &a.addr.to_string(),
                "--json",
                "watch",
                "--iterations",
                "1",
            ],
        );
        c.args(args);
        c
    };
    let admin = run(watch(&[]), b"").await;
    admin.assert_success("watch");
    let mut via_env = watch(&[]);
    via_env.env("GEARBOX_HTTP", &url);
    let http = run(via_env, b"").await;
    http.assert_success("watch --http");
    let parse = |s: &str| -> Value { serde_json::from_str(s.trim()).unwrap() };
    let (admin, http) = (parse(&admin.stdout), parse(&http.stdout));
    assert_eq!(http["servers"][0]["server"], url.as_str());
    assert_eq!(
        http["servers"][0]["functions"], admin["servers"][0]["functions"],
        "{http}"
    );
    assert_eq!(
        http["servers"][0]["workers"],
        admin["servers"][0]["workers"]
    );
    assert_eq!(http["servers"][0]["functions"][0]["running"], 1);
}
