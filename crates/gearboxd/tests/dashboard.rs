//! The web dashboard (`GET /`, its assets) and its live feed (`GET /api/events`) over plain
//! HTTP on the real binary: headers, the feed's history and snapshots against a real job load,
//! filter and paging, the cap on open streams, and streams ending when the server stops.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::http::{http, start};
use support::jobs::{submit, CAN_DO, SUBMIT_JOB_BG, SUBMIT_JOB_HIGH_BG};
use support::sse::{self, End};
use support::{wait_until, TIMEOUT};

/// The dashboard's files in the source tree.
fn source(name: &str) -> Vec<u8> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/src/http/dashboard/");
    std::fs::read(format!("{dir}{name}")).unwrap()
}

#[test]
fn page_and_assets_are_served_from_the_binary_with_a_strict_csp() {
    let (_server, addr) = start(&[]);
    let page = http(addr, b"GET / HTTP/1.0\r\n\r\n");
    assert_eq!(page.status, 200);
    assert_eq!(
        page.header("Content-Type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("Content-Security-Policy").unwrap();
    for part in [
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "img-src 'self'",
        "connect-src 'self'",
        "frame-ancestors 'none'",
    ] {
        assert!(csp.contains(part), "{part} in {csp}");
    }
    assert_eq!(page.header("X-Content-Type-Options"), Some("nosniff"));
    assert_eq!(page.body, source("index.html"));
    let html = String::from_utf8(page.body).unwrap();
    for (path, file, ty) in [
        (
            "/dashboard/app.js",
            "app.js",
            "text/javascript; charset=utf-8",
        ),
        ("/dashboard/app.css", "app.css", "text/css; charset=utf-8"),
        ("/dashboard/icon.svg", "icon.svg", "image/svg+xml"),
    ] {
        assert!(
            html.contains(&format!("\"{path}\"")),
            "the page uses {path}"
        );
        let a = http(addr, format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes());
        assert_eq!(
            (a.status, a.header("Content-Type")),
            (200, Some(ty)),
            "{path}"
        );
        assert!(a.header("Content-Security-Policy").is_some(), "{path}");
        assert_eq!(a.body, source(file), "{path}");
    }
    // Other methods there are still gearmand's submission.
    let a = http(addr, b"POST / HTTP/1.0\r\nContent-Length: 1\r\n\r\nx");
    assert_eq!(a.status, 404, "{a:?}");
    let a = http(
        addr,
        b"POST /dashboard/app.js HTTP/1.0\r\nX-Gearman-Background: true\r\nContent-Length: 1\r\n\r\nx",
    );
    assert_eq!(a.header("X-Gearman-Command"), Some("JOB_CREATED"), "{a:?}");
    // Nothing from another origin: no absolute URL in the page, script or style.
    for file in ["index.html", "app.js", "app.css"] {
        let text = String::from_utf8(source(file)).unwrap();
        for scheme in ["http://", "https://", "//cdn", "ws://"] {
            assert!(!text.contains(scheme), "{scheme} in {file}");
        }
        for inline in ["<style", " style=\"", " onclick", "<script>"] {
            assert!(!text.contains(inline), "{inline} in {file}");
        }
    }
}

/// The row of `function` in a snapshot, if sent.
fn row<'a>(snapshot: &'a Value, function: &str) -> Option<&'a Value> {
    snapshot["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["function"] == function)
}

#[test]
fn the_feed_sends_history_then_snapshots_that_follow_a_real_load() {
    let (server, addr) = start(&[]);
    let mut feed = sse::open(addr, "/api/events").unwrap();
    let history = feed.next().unwrap();
    assert_eq!(history.name, "history");
    assert_eq!(history.json()["interval_ms"], 1000);
    assert!(history.json()["samples"].is_array());

    let mut client = server.connect();
    for i in 0..3 {
        submit(
            &mut client,
            SUBMIT_JOB_BG,
            "dash_a",
            "",
            format!("{i}").as_bytes(),
        );
    }
    let urgent = submit(&mut client, SUBMIT_JOB_HIGH_BG, "dash_a", "u1", b"x");
    for _ in 0..2 {
        client.send(gearbox_proto::PacketType::SUBMIT_JOB_LOW_BG, b"dash_b\0\0y");
        assert_eq!(client.recv().0, gearbox_proto::PacketType::JOB_CREATED);
    }
    let mut worker = server.connect();
    worker.send(CAN_DO, b"dash_b");
    let s = feed.snapshot_until(TIMEOUT, |s| {
        row(s, "dash_b").is_some_and(|b| b["workers"] == 1)
    });
    assert_eq!(
        row(&s, "dash_a").unwrap(),
        &json!({"function": "dash_a", "queued": {"high": 1, "normal": 3, "low": 0},
                "running": 0, "workers": 0, "total": 4})
    );
    assert_eq!(
        row(&s, "dash_b").unwrap(),
        &json!({"function": "dash_b", "queued": {"high": 0, "normal": 0, "low": 2},
                "running": 0, "workers": 1, "total": 2})
    );
    let t = &s["totals"];
    assert_eq!(t["queued"], json!({"high": 1, "normal": 3, "low": 2}));
    assert_eq!((&t["submitted"], &t["completed"]), (&json!(6), &json!(0)));
    assert_eq!((&t["functions"], &t["workers"]), (&json!(2), &json!(1)));
    assert_eq!(
        (&s["matched"], &s["offset"], &s["limit"]),
        (&json!(2), &json!(0), &json!(100))
    );

    // The worker runs dash_b's jobs: the queue empties and the completions are counted.
    support::jobs::run_all_on(worker, "dash_b");
    assert_eq!(client.admin(&format!("cancel job {urgent}")), "OK\r\n");
    let s = feed.snapshot_until(TIMEOUT, |s| {
        s["totals"]["completed"] == 2 && s["totals"]["queued"]["high"] == 0
    });
    assert_eq!(
        s["totals"]["queued"],
        json!({"high": 0, "normal": 3, "low": 0})
    );
    assert_eq!(s["totals"]["failed"], 1, "the cancel counts as failed");

    // A stream opened now gets the samples taken so far, then the latest one at once.
    let mut second = sse::open(addr, "/api/events").unwrap();
    let h = second.next().unwrap().json();
    let samples = h["samples"].as_array().unwrap();
    assert!(samples.len() >= 2, "{h:#}");
    assert_eq!(samples.last().unwrap()["completed"], 2);
    assert!(samples.iter().any(|t| t["queued"]["low"] == 2), "{h:#}");
    let rate = |t: &Value| t["completed_per_s"].as_f64().unwrap();
    assert!(
        samples.iter().any(|t| rate(t) > 0.0),
        "a completion rate: {h:#}"
    );
    let first = second.next().unwrap();
    assert_eq!(first.name, "snapshot");
    assert_eq!(first.json()["totals"]["completed"], 2);
}

#[test]
fn filter_offset_limit_and_sort_choose_one_page() {
    let (server, addr) = start(&[]);
    let mut worker = server.connect();
    for i in 0..20 {
        worker.send(CAN_DO, format!("page_f{i:03}").as_bytes());
    }
    worker.send(CAN_DO, b"other");
    let mut client = server.connect();
    submit(&mut client, SUBMIT_JOB_BG, "page_f015", "", b"1");
    submit(&mut client, SUBMIT_JOB_BG, "page_f015", "", b"2");
    submit(&mut client, SUBMIT_JOB_BG, "page_f003", "", b"3");
    let names = |s: &Value| -> Vec<String> {
        s["functions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["function"].as_str().unwrap().to_owned())
            .collect()
    };
    let mut feed = sse::open(addr, "/api/events?filter=F01&offset=1&limit=3").unwrap();
    let s = feed.snapshot_until(TIMEOUT, |s| s["matched"] == 10);
    assert_eq!(names(&s), ["page_f011", "page_f012", "page_f013"]);
    assert_eq!((&s["offset"], &s["limit"]), (&json!(1), &json!(3)));
    assert_eq!(s["totals"]["functions"], 21, "totals cover every function");

    let mut feed = sse::open(addr, "/api/events?sort=queued&desc=true&limit=2").unwrap();
    let s = feed.snapshot_until(TIMEOUT, |s| s["matched"] == 21);
    assert_eq!(names(&s), ["page_f015", "page_f003"]);

    let mut feed = sse::open(addr, "/api/events?limit=100000").unwrap();
    let s = feed.snapshot_until(TIMEOUT, |s| s["matched"] == 21);
    assert_eq!((&s["limit"], names(&s).len()), (&json!(500), 21));

    for bad in ["sort=bogus", "offset=-1", "colour=red"] {
        let Err((status, body)) = sse::open(addr, &format!("/api/events?{bad}")) else {
            panic!("{bad} accepted");
        };
        assert_eq!(status, 400, "{bad}: {body}");
    }
}

#[test]
fn open_streams_are_capped_and_the_next_one_is_refused_with_503() {
    let (_server, addr) = start(&[]);
    let streams: Vec<sse::Stream> = (0..256)
        .map(|i| {
            sse::open(addr, "/api/events").unwrap_or_else(|e| panic!("stream {i} refused: {e:?}"))
        })
        .collect();
    let Err((status, body)) = sse::open(addr, "/api/events") else {
        panic!("stream 257 accepted");
    };
    assert_eq!(status, 503);
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("256 live streams"),
        "{body}"
    );
    // A closed stream frees its place (the server notices at its next event).
    drop(streams);
    let mut reopened = None;
    assert!(wait_until(TIMEOUT, || {
        reopened = sse::open(addr, "/api/events").ok();
        reopened.is_some()
    }));
}

#[test]
fn streams_end_when_the_server_stops() {
    let (mut server, addr) = start(&[]);
    let mut feed = sse::open(addr, "/api/events").unwrap();
    assert_eq!(feed.next().unwrap().name, "history");
    feed.snapshot_until(TIMEOUT, |_| true);
    let started = std::time::Instant::now();
    server.signal(libc::SIGTERM);
    while feed.next().is_some() {}
    assert_eq!(feed.end, Some(End::Finished), "the server ended the stream");
    server.wait_for_clean_exit();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "stopped in {:?}",
        started.elapsed()
    );
}

#[test]
fn one_sampler_serves_every_stream_and_runs_only_while_one_is_open() {
    let (server, addr) = start(&[]);
    // The connections the server holds, this listing's own included.
    let connections = || server.connect().admin_listing("workers").len();
    assert!(wait_until(TIMEOUT, || connections() == 1));
    let mut feeds: Vec<sse::Stream> = (0..3)
        .map(|_| sse::open(addr, "/api/events").unwrap())
        .collect();
    for f in &mut feeds {
        f.snapshot_until(TIMEOUT, |_| true);
    }
    // One admin connection, the sampler's, for the three streams.
    assert_eq!(connections(), 2);
    drop(feeds);
    assert!(
        wait_until(TIMEOUT, || connections() == 1),
        "the sampler still runs with no stream open"
    );
    // And it starts again for the next stream.
    let mut feed = sse::open(addr, "/api/events").unwrap();
    feed.snapshot_until(TIMEOUT, |_| true);
    assert_eq!(connections(), 2);
}
