//! `-r http`: gearmand's HTTP job submission on the real binary, over raw TCP so every byte of
//! the answer is seen; and the same requests against Debian's gearmand, compared.

mod support;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;

use gearbox_proto::PacketType::{
    CAN_DO, GRAB_JOB_UNIQ, JOB_ASSIGN_UNIQ, NOOP, NO_JOB, PRE_SLEEP, WORK_COMPLETE, WORK_FAIL,
};
use gearbox_testkit::gearmand::{free_port, Gearmand};
use support::{Conn, Gearboxd, TIMEOUT};

/// An HTTP answer, split.
#[derive(Debug)]
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` (the whole HTTP/1.0 request) and reads the answer to the end.
fn http(addr: SocketAddr, request: &[u8]) -> Answer {
    let mut s = TcpStream::connect(addr).expect("connect to the http port");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    s.write_all(request).unwrap();
    let mut raw = Vec::new();
    s.read_to_end(&mut raw).expect("read the answer");
    let end = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no end of headers in {:?}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8(raw[..end].to_vec()).unwrap();
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .unwrap()
        .split(' ')
        .nth(1)
        .unwrap()
        .parse()
        .unwrap();
    let headers = lines
        .map(|l| {
            let (n, v) = l.split_once(": ").unwrap();
            (n.to_owned(), v.to_owned())
        })
        .collect();
    Answer {
        status,
        headers,
        body: raw[end + 4..].to_vec(),
    }
}

/// `POST /function` with `headers` (each `Name: value`) and `body`.
fn post(addr: SocketAddr, function: &str, headers: &[&str], body: &[u8]) -> Answer {
    let mut req = format!(
        "POST /{function} HTTP/1.0\r\nContent-Length: {}\r\n",
        body.len()
    );
    for h in headers {
        req.push_str(h);
        req.push_str("\r\n");
    }
    req.push_str("\r\n");
    let mut req = req.into_bytes();
    req.extend_from_slice(body);
    http(addr, &req)
}

/// gearboxd with `-r http --http-port 0`, and its HTTP address.
fn start(extra: &[&str]) -> (Gearboxd, SocketAddr) {
    let mut args = vec![
        "-p",
        "0",
        "-L",
        "127.0.0.1",
        "-r",
        "http",
        "--http-port",
        "0",
    ];
    args.extend_from_slice(extra);
    let server = Gearboxd::start(&args);
    let line = server.wait_for_stderr(|l| l.starts_with(gearboxd::http::HTTP_LISTENING_PREFIX));
    let addr = line[gearboxd::http::HTTP_LISTENING_PREFIX.len()..]
        .trim()
        .parse()
        .unwrap();
    (server, addr)
}

/// What a worker answers a job with.
#[derive(Clone, Copy)]
enum Reply {
    /// WORK_COMPLETE with the payload reversed.
    Reverse,
    /// WORK_FAIL.
    Fail,
}

/// A worker for `function` that waits (PRE_SLEEP/NOOP) for one job, answers it, and returns
/// what it was given: (unique, payload).
fn one_job(
    mut worker: Conn,
    function: &str,
    reply: Reply,
) -> thread::JoinHandle<(String, Vec<u8>)> {
    worker.send(CAN_DO, function.as_bytes());
    thread::spawn(move || loop {
        worker.send(GRAB_JOB_UNIQ, b"");
        let (ty, body) = worker.recv();
        match ty {
            NO_JOB => {
                worker.send(PRE_SLEEP, b"");
                let (ty, _) = worker.recv();
                assert_eq!(ty, NOOP);
            }
            JOB_ASSIGN_UNIQ => {
                let mut parts = body.splitn(4, |b| *b == 0);
                let handle = parts.next().unwrap().to_vec();
                let _function = parts.next().unwrap();
                let unique = String::from_utf8(parts.next().unwrap().to_vec()).unwrap();
                let data = parts.next().unwrap().to_vec();
                let mut out = handle;
                match reply {
                    Reply::Reverse => {
                        out.push(0);
                        out.extend(data.iter().rev());
                        worker.send(WORK_COMPLETE, &out);
                    }
                    Reply::Fail => worker.send(WORK_FAIL, &out),
                }
                return (unique, data);
            }
            other => panic!("worker got {other:?}"),
        }
    })
}

fn is_handle(h: &str) -> bool {
    h.starts_with("H:") && h.rsplit(':').next().unwrap().parse::<u64>().is_ok()
}

#[test]
fn foreground_post_answers_with_the_result_and_the_handle() {
    let (server, http_addr) = start(&[]);
    let worker = one_job(server.connect(), "reverse", Reply::Reverse);
    let a = post(
        http_addr,
        "reverse",
        &["X-Gearman-Unique: u-17"],
        b"hello\0world",
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.body, b"dlrow\0olleh");
    assert_eq!(a.header("X-Gearman-Command"), Some("WORK_COMPLETE"));
    assert_eq!(a.header("Content-Length"), Some("11"));
    assert!(
        is_handle(a.header("X-Gearman-Job-Handle").unwrap()),
        "{a:?}"
    );
    assert_eq!(
        worker.join().unwrap(),
        ("u-17".to_owned(), b"hello\0world".to_vec())
    );
}

#[test]
fn failed_foreground_job_answers_work_fail_with_no_body() {
    let (server, http_addr) = start(&[]);
    let worker = one_job(server.connect(), "flaky", Reply::Fail);
    let a = http(http_addr, b"GET /flaky HTTP/1.0\r\n\r\n");
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(a.header("X-Gearman-Command"), Some("WORK_FAIL"));
    assert!(a.body.is_empty());
    // GET submits an empty workload.
    assert_eq!(worker.join().unwrap(), (String::new(), Vec::new()));
}

#[test]
fn background_posts_are_queued_by_priority_with_their_unique() {
    let (server, http_addr) = start(&[]);
    let mut handles = Vec::new();
    for (prio, unique, data) in [("low", "a", "1"), ("normal", "b", "2"), ("high", "c", "3")] {
        let a = post(
            http_addr,
            "bg",
            &[
                "X-Gearman-Background: true",
                &format!("X-Gearman-Priority: {prio}"),
                &format!("X-Gearman-Unique: {unique}"),
            ],
            data.as_bytes(),
        );
        assert_eq!(a.status, 200, "{a:?}");
        assert_eq!(a.header("X-Gearman-Command"), Some("JOB_CREATED"));
        assert_eq!(a.header("Content-Length"), Some("0"));
        assert!(a.body.is_empty());
        handles.push(a.header("X-Gearman-Job-Handle").unwrap().to_owned());
    }
    assert_eq!(support::jobs::status(&server, "bg"), Some((3, 0)));
    let run = support::jobs::run_all(&server, "bg");
    let got: Vec<_> = run
        .iter()
        .map(|j| (j.handle.as_str(), j.unique.as_str(), j.data.as_slice()))
        .collect();
    assert_eq!(
        got,
        [
            (handles[2].as_str(), "c", &b"3"[..]),
            (handles[1].as_str(), "b", &b"2"[..]),
            (handles[0].as_str(), "a", &b"1"[..]),
        ]
    );
}

#[test]
fn bad_requests_get_clear_errors_and_queue_nothing() {
    let (server, http_addr) = start(&["--max-body", "16"]);
    let cases: [(&[u8], u16, &str); 6] = [
        (b"DELETE /f HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", 405, "method DELETE not allowed"),
        (b"POST / HTTP/1.0\r\nContent-Length: 1\r\n\r\nx", 404, "no function"),
        (
            b"POST /f HTTP/1.0\r\nX-Gearman-Priority: urgent\r\nX-Gearman-Background: true\r\nContent-Length: 1\r\n\r\nx",
            400,
            "bad X-Gearman-Priority header: `urgent`",
        ),
        (
            b"POST /f HTTP/1.0\r\nX-Gearman-Background: yes\r\nContent-Length: 1\r\n\r\nx",
            400,
            "bad X-Gearman-Background header: `yes`",
        ),
        (
            b"POST /f HTTP/1.0\r\nX-Gearman-Background: true\r\nContent-Length: 17\r\n\r\n12345678901234567",
            413,
            "",
        ),
        // Within the HTTP limit, but the packet (`f\0\0` and 14 bytes) is over --max-body.
        (
            b"POST /f HTTP/1.0\r\nX-Gearman-Background: true\r\nContent-Length: 14\r\n\r\n12345678901234",
            413,
            "ARGUMENT_TOO_LARGE",
        ),
    ];
    for (req, status, text) in cases {
        let a = http(http_addr, req);
        assert_eq!(a.status, status, "{a:?}");
        assert!(String::from_utf8_lossy(&a.body).contains(text), "{a:?}");
    }
    // Nothing was queued; a packet of exactly --max-body still is.
    assert_eq!(support::jobs::status(&server, "f"), None);
    let a = post(http_addr, "f", &["X-Gearman-Background: true"], &[b'x'; 13]);
    assert_eq!(a.status, 200, "{a:?}");
    assert_eq!(support::jobs::status(&server, "f"), Some((1, 0)));
}

/// The parts of an answer gearboxd must share with gearmand: status, `X-Gearman-Command`,
/// `Content-Length`, body, and whether a handle is given (HTTP/1.0 vs 1.1 in the status
/// line, header-name case and `Server` differ; gearmand cuts the last character off the
/// handle of a WORK_FAIL answer, gearboxd does not; see docs/http.md).
/// Error answers compare by status only: gearboxd explains them in the body, gearmand sends
/// none.
fn comparable(a: &Answer) -> (u16, Option<String>, Option<String>, Vec<u8>, bool) {
    let handle = a.header("X-Gearman-Job-Handle");
    if a.status != 200 {
        return (a.status, None, None, Vec::new(), handle.is_some());
    }
    (
        a.status,
        a.header("X-Gearman-Command").map(str::to_owned),
        a.header("Content-Length").map(str::to_owned),
        a.body.clone(),
        handle.is_some(),
    )
}

/// The same requests to gearmand (`-r http`) and gearboxd, answered alike.
#[tokio::test(flavor = "multi_thread")]
async fn answers_match_gearmands_http_module() {
    let http_port = free_port();
    let Some(gearmand) =
        Gearmand::start_with(&["-r", "http", "--http-port", &http_port.to_string()]).await
    else {
        return;
    };
    let gearmand_http = SocketAddr::from(([127, 0, 0, 1], http_port));
    assert!(
        support::wait_until(TIMEOUT, || TcpStream::connect(gearmand_http).is_ok()),
        "gearmand's http port {http_port} never accepted"
    );
    let (gearboxd, gearboxd_http) = start(&[]);
    let servers = [
        (gearmand.addr, gearmand_http),
        (gearboxd.addr, gearboxd_http),
    ];
    let ask = |i: usize, request: &[u8], worker: Option<Reply>| {
        let (gearman, http_addr) = servers[i];
        let job = worker.map(|r| one_job(Conn::connect(gearman), "rev", r));
        let a = http(http_addr, request);
        if let Some(job) = job {
            job.join().unwrap();
        }
        a
    };
    let cases: [(&[u8], Option<Reply>); 6] = [
        (b"POST /rev HTTP/1.0\r\nX-Gearman-Unique: u1\r\nContent-Length: 5\r\n\r\nhello", Some(Reply::Reverse)),
        (b"POST /rev HTTP/1.1\r\nConnection: close\r\nContent-Length: 3\r\n\r\nabc", Some(Reply::Reverse)),
        (b"PUT /rev HTTP/1.0\r\nContent-Length: 2\r\n\r\nxy", Some(Reply::Reverse)),
        (b"GET /rev HTTP/1.0\r\n\r\n", Some(Reply::Fail)),
        (b"POST /bg HTTP/1.0\r\nX-Gearman-Background: true\r\nX-Gearman-Priority: low\r\nContent-Length: 1\r\n\r\nz", None),
        (b"POST / HTTP/1.0\r\nContent-Length: 1\r\n\r\nz", None),
    ];
    for (request, worker) in cases {
        let theirs = ask(0, request, worker);
        let ours = ask(1, request, worker);
        if let Some(h) = ours.header("X-Gearman-Job-Handle") {
            assert!(is_handle(h), "{ours:?}");
        }
        assert_eq!(
            comparable(&ours),
            comparable(&theirs),
            "{}\ngearboxd: {ours:?}\ngearmand: {theirs:?}",
            String::from_utf8_lossy(request)
        );
    }
}

/// `GET /metrics` as (series with labels, value), `#` lines left out.
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
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').unwrap();
            (series.to_owned(), value.parse().unwrap())
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
    use gearbox_proto::PacketType::{
        ERROR, GRAB_JOB, JOB_ASSIGN, SUBMIT_JOB_BG, SUBMIT_JOB_HIGH_BG, SUBMIT_JOB_LOW_BG,
        WORK_EXCEPTION,
    };
    use support::jobs::submit;
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
