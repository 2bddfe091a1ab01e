//! `GET /metrics` and the JSON API under `/api/` on the real binary, after scripted
//! workloads: the values read match the workload exactly.

mod support;

use std::net::SocketAddr;

use gearbox_proto::PacketType::{
    CAN_DO, ERROR, GRAB_JOB, JOB_ASSIGN, NOOP, SUBMIT_JOB_BG, SUBMIT_JOB_HIGH_BG,
    SUBMIT_JOB_LOW_BG, WORK_COMPLETE, WORK_EXCEPTION, WORK_FAIL,
};
use support::http::{http, start};
use support::jobs::submit;
use support::{Conn, TIMEOUT};

/// `GET /metrics` as (series with labels, value), `#` lines and the histograms' sums (seconds,
/// with a fraction) left out.
fn scrape(http_addr: SocketAddr) -> std::collections::BTreeMap<String, u64> {
    let a = http(http_addr, b"GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a
        .header("Content-Type")
        .unwrap()
        .starts_with("text/plain; version=0.0.4"));
    String::from_utf8(a.body)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            if series.contains("_seconds_sum") || series.contains("outage_seconds") {
                return None;
            }
            Some((series.to_owned(), value.parse().unwrap()))
        })
        .collect()
}

/// Sends a packet of `ty` with `handle` (and `data`, but WORK_FAIL has none) as a worker's
/// answer.
fn answer_job(worker: &mut Conn, ty: gearbox_proto::PacketType, handle: &[u8], data: &[u8]) {
    let mut body = handle.to_vec();
    if ty != WORK_FAIL {
        body.push(0);
        body.extend_from_slice(data);
    }
    worker.send(ty, &body);
}

#[test]
fn metrics_count_a_scripted_workload_exactly() {
    let (server, http_addr) = start(&[]);
    let mut client = server.connect();
    for i in 0..5 {
        submit(
            &mut client,
            SUBMIT_JOB_BG,
            "m",
            "",
            format!("{i}").as_bytes(),
        );
    }
    submit(&mut client, SUBMIT_JOB_HIGH_BG, "h", "", b"x");
    submit(&mut client, SUBMIT_JOB_LOW_BG, "h", "", b"y");
    submit(&mut client, SUBMIT_JOB_LOW_BG, "h", "", b"z");
    assert_eq!(client.admin("maxqueue r 1"), "OK\r\n");
    submit(&mut client, SUBMIT_JOB_BG, "r", "", b"1");
    client.send(SUBMIT_JOB_BG, b"r\0\x002");
    assert_eq!(client.recv().0, ERROR);
    // A worker for `m`: two complete, one fails, one throws, one is still running.
    let mut worker = server.connect();
    worker.send(CAN_DO, b"m");
    for answer in [
        WORK_COMPLETE,
        WORK_COMPLETE,
        WORK_FAIL,
        WORK_EXCEPTION,
        NOOP,
    ] {
        worker.send(GRAB_JOB, b"");
        let (ty, body) = worker.recv();
        assert_eq!(ty, JOB_ASSIGN);
        let handle = body.split(|b| *b == 0).next().unwrap();
        if answer != NOOP {
            answer_job(&mut worker, answer, handle, b"r");
        }
    }
    // The answers are processed in order: a status round trip on the worker's connection.
    worker.send(gearbox_proto::PacketType::ECHO_REQ, b"sync");
    assert_eq!(worker.recv().0, gearbox_proto::PacketType::ECHO_RES);
    let m = scrape(http_addr);
    let get = |k: &str| {
        m.get(k)
            .copied()
            .unwrap_or_else(|| panic!("no {k} in {m:?}"))
    };
    // client, worker, and the scrape's own connection.
    assert_eq!(get("gearbox_connections"), 3);
    for (series, want) in [
        ("gearbox_jobs_submitted_total{function=\"m\"}", 5),
        ("gearbox_jobs_completed_total{function=\"m\"}", 2),
        ("gearbox_jobs_failed_total{function=\"m\"}", 1),
        ("gearbox_jobs_exceptions_total{function=\"m\"}", 1),
        ("gearbox_jobs_retried_total{function=\"m\"}", 0),
        ("gearbox_jobs_timed_out_total{function=\"m\"}", 0),
        ("gearbox_running_jobs{function=\"m\"}", 1),
        ("gearbox_workers{function=\"m\"}", 1),
        ("gearbox_queued_jobs{function=\"m\",priority=\"normal\"}", 0),
        ("gearbox_queued_jobs{function=\"h\",priority=\"high\"}", 1),
        ("gearbox_queued_jobs{function=\"h\",priority=\"normal\"}", 0),
        ("gearbox_queued_jobs{function=\"h\",priority=\"low\"}", 2),
        ("gearbox_workers{function=\"h\"}", 0),
        ("gearbox_jobs_submitted_total{function=\"r\"}", 1),
        ("gearbox_jobs_rejected_total{function=\"r\"}", 1),
        ("gearbox_queued_jobs{function=\"r\",priority=\"normal\"}", 1),
    ] {
        assert_eq!(get(series), want, "{series}");
    }
    // The worker goes away: its running job is queued again and counted as retried.
    drop(worker);
    assert!(support::wait_until(TIMEOUT, || scrape(http_addr)
        ["gearbox_jobs_retried_total{function=\"m\"}"]
        == 1));
    let m = scrape(http_addr);
    assert_eq!(
        m["gearbox_queued_jobs{function=\"m\",priority=\"normal\"}"],
        1
    );
    assert_eq!(m["gearbox_running_jobs{function=\"m\"}"], 0);
}

/// `GET path` answered 200 with JSON.
fn get_json(http_addr: SocketAddr, path: &str) -> serde_json::Value {
    let a = http(http_addr, format!("GET {path} HTTP/1.0\r\n\r\n").as_bytes());
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("Content-Type"), Some("application/json"));
    serde_json::from_slice(&a.body).unwrap()
}

#[test]
fn json_api_lists_status_workers_jobs_and_cancels_and_limits() {
    use serde_json::json;
    let (server, http_addr) = start(&[]);
    let mut client = server.connect();
    let h1 = submit(&mut client, SUBMIT_JOB_HIGH_BG, "a", "", b"1");
    let h2 = submit(&mut client, SUBMIT_JOB_LOW_BG, "a", "", b"2");
    let mut worker = server.connect();
    worker.send(gearbox_proto::PacketType::SET_CLIENT_ID, b"w1");
    worker.send(CAN_DO, b"a");
    worker.send(CAN_DO, b"b");
    worker.send(GRAB_JOB, b"");
    assert_eq!(worker.recv().0, JOB_ASSIGN); // h1, high first: running now
    assert_eq!(
        get_json(http_addr, "/api/status"),
        json!([
            {"function": "a", "queued": {"high": 0, "normal": 0, "low": 1}, "running": 1, "workers": 1, "total": 2},
            {"function": "b", "queued": {"high": 0, "normal": 0, "low": 0}, "running": 0, "workers": 1, "total": 0},
        ])
    );
    let workers = get_json(http_addr, "/api/workers");
    let w1: Vec<_> = workers
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["client_id"] == "w1")
        .collect();
    assert_eq!(w1.len(), 1, "{workers}");
    assert_eq!(w1[0]["functions"], json!(["b", "a"]), "{workers}");
    assert_eq!(w1[0]["ip"], "127.0.0.1");
    assert_eq!(
        get_json(http_addr, "/api/jobs"),
        json!([
            {"handle": h1, "retries": 0, "ignored": false, "background": true},
            {"handle": h2, "retries": 0, "ignored": false, "background": true},
        ])
    );
    // Cancel the queued one; a second cancel finds nothing.
    let cancel = format!("POST /api/jobs/{h2}/cancel HTTP/1.0\r\n\r\n");
    let a = http(http_addr, cancel.as_bytes());
    assert_eq!(a.status, 200, "{a:?}");
    let a = http(http_addr, cancel.as_bytes());
    assert_eq!(a.status, 404, "{a:?}");
    assert_eq!(
        get_json(http_addr, "/api/jobs"),
        json!([{"handle": h1, "retries": 0, "ignored": false, "background": true}])
    );
    // maxqueue: at most one queued job of `c` at normal priority.
    let body = r#"{"normal":1}"#;
    let req = format!(
        "PUT /api/maxqueue/c HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let a = http(http_addr, req.as_bytes());
    assert_eq!(a.status, 200, "{a:?}");
    submit(&mut client, SUBMIT_JOB_BG, "c", "", b"1");
    client.send(SUBMIT_JOB_BG, b"c\0\x002");
    assert_eq!(client.recv().0, ERROR);
    // Bad limits and bad names are refused with a reason.
    for (path, body, status) in [
        ("/api/maxqueue/c", r#"{"all":1,"high":2}"#, 400),
        ("/api/maxqueue/c", r#"{"often":1}"#, 422),
        ("/api/maxqueue/a%20b", r#"{"all":1}"#, 400),
    ] {
        let req = format!(
            "PUT {path} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        let a = http(http_addr, req.as_bytes());
        assert_eq!(a.status, status, "{path} {body}: {a:?}");
    }
}

/// `POST path` with a JSON `body`.
fn post_json(http_addr: SocketAddr, path: &str, body: &str) -> support::http::Answer {
    let req = format!(
        "POST {path} HTTP/1.0\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    http(http_addr, req.as_bytes())
}

#[test]
fn json_api_submits_and_looks_jobs_up_by_handle_and_unique() {
    use serde_json::{json, Value};
    let (server, http_addr) = start(&[]);
    // Background: the handle at once; the job is then found by handle and by unique.
    let a = post_json(
        http_addr,
        "/api/submit/j",
        r#"{"data":"x","unique":"u9","background":true,"priority":"low"}"#,
    );
    assert_eq!(a.status, 200, "{a:?}");
    let v: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(v["status"], "JOB_CREATED");
    assert!(v.get("result").is_none(), "{v}");
    let handle = v["handle"].as_str().unwrap().to_owned();
    let want = json!({"known": true, "running": false, "numerator": 0, "denominator": 0});
    assert_eq!(
        serde_json::from_slice::<Value>(
            &http(
                http_addr,
                format!("GET /api/jobs/{handle} HTTP/1.0\r\n\r\n").as_bytes()
            )
            .body
        )
        .unwrap(),
        want
    );
    let by_unique = http(http_addr, b"GET /api/unique/u9 HTTP/1.0\r\n\r\n");
    let mut want_u = want.clone();
    want_u["clients"] = json!(0);
    assert_eq!(
        serde_json::from_slice::<Value>(&by_unique.body).unwrap(),
        want_u
    );
    assert_eq!(
        http(http_addr, b"GET /api/jobs/H:none:1 HTTP/1.0\r\n\r\n").status,
        404
    );
    assert_eq!(
        http(http_addr, b"GET /api/unique/nope HTTP/1.0\r\n\r\n").status,
        404
    );
    let queued = support::jobs::run_all(&server, "j");
    assert_eq!(
        (queued[0].unique.as_str(), queued[0].data.as_slice()),
        ("u9", &b"x"[..])
    );
    // Foreground: the result in the answer.
    let mut worker = server.connect();
    worker.send(CAN_DO, b"k");
    let client =
        std::thread::spawn(move || post_json(http_addr, "/api/submit/k", r#"{"data":"in"}"#));
    worker.send(gearbox_proto::PacketType::PRE_SLEEP, b"");
    assert_eq!(worker.recv().0, NOOP);
    worker.send(GRAB_JOB, b"");
    let (ty, body) = worker.recv();
    assert_eq!(ty, JOB_ASSIGN);
    let h = body.split(|b| *b == 0).next().unwrap().to_vec();
    answer_job(&mut worker, WORK_COMPLETE, &h, b"out");
    let a = client.join().unwrap();
    assert_eq!(a.status, 200, "{a:?}");
    let v: Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(
        v,
        json!({"handle": String::from_utf8(h).unwrap(), "status": "WORK_COMPLETE", "result": "out"})
    );
    // A body that is not the expected JSON is refused.
    assert_eq!(
        post_json(http_addr, "/api/submit/k", r#"{"data":1}"#).status,
        422
    );
}
