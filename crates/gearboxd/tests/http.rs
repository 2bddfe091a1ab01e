//! `-r http`: gearmand's HTTP job submission on the real binary, over raw TCP so every byte of
//! the answer is seen; and the same requests against Debian's gearmand, compared.

mod support;

use std::net::{SocketAddr, TcpStream};
use std::thread;

use gearbox_proto::PacketType::{
    CAN_DO, GRAB_JOB_UNIQ, JOB_ASSIGN_UNIQ, NOOP, NO_JOB, PRE_SLEEP, WORK_COMPLETE, WORK_FAIL,
};
use gearbox_testkit::gearmand::{free_port, Gearmand};
use support::http::{http, post, start, Answer};
use support::{Conn, TIMEOUT};

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

/// A background job submitted over HTTP is answered only once the store has it: after a
/// SIGKILL right after the answer, the restarted server still holds it.
#[test]
fn background_post_is_answered_after_the_store_commit() {
    let dir = support::TempDir::new();
    let data_dir = dir.path().to_str().unwrap().to_owned();
    let flags = ["-q", "libsqlite3", "--data-dir", data_dir.as_str()];
    let (mut server, http_addr) = start(&flags);
    let mut handles = Vec::new();
    for i in 0..3 {
        let a = post(
            http_addr,
            "durable",
            &["X-Gearman-Background: true"],
            format!("{i}").as_bytes(),
        );
        assert_eq!(a.header("X-Gearman-Command"), Some("JOB_CREATED"), "{a:?}");
        handles.push(a.header("X-Gearman-Job-Handle").unwrap().to_owned());
    }
    server.signal(libc::SIGKILL);
    server.wait_exit();
    let (server, _) = start(&flags);
    let mut run: Vec<_> = support::jobs::run_all(&server, "durable")
        .into_iter()
        .map(|j| (j.handle, j.data))
        .collect();
    run.sort();
    let want: Vec<_> = handles
        .into_iter()
        .zip(0..)
        .map(|(h, i)| (h, format!("{i}").into_bytes()))
        .collect();
    assert_eq!(run, want);
}

#[test]
fn head_runs_the_job_and_answers_headers_only() {
    let (server, http_addr) = start(&[]);
    let worker = one_job(server.connect(), "h", Reply::Reverse);
    let a = http(
        http_addr,
        b"HEAD /h HTTP/1.0\r\nX-Gearman-Unique: hu\r\n\r\n",
    );
    assert_eq!(a.status, 200, "{a:?}");
    assert!(a.body.is_empty(), "{a:?}");
    assert!(
        is_handle(a.header("X-Gearman-Job-Handle").unwrap()),
        "{a:?}"
    );
    assert_eq!(worker.join().unwrap(), ("hu".to_owned(), Vec::new()));
}
