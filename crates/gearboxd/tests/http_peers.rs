//! The HTTP listener's settings on the real binary: `--http-listen` binds where asked,
//! `--http-allow` decides which peers may change state (the others get `403` and a warning
//! naming them), and `--http-header-timeout-ms` drops a client that does not finish its
//! request head in time. Peers are told apart by their loopback source addresses
//! (127.0.0.0/8 is all local on Linux).

mod support;

use std::io::{Read, Write};
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use gearbox_proto::PacketType::{ERROR, SUBMIT_JOB_BG};
use socket2::{Domain, Socket, Type};
use support::http::{exchange, start, Answer};
use support::jobs::submit;
use support::TIMEOUT;

/// A connection to `to` from the address `from` (port chosen by the system).
fn connect_from(from: &str, to: SocketAddr) -> TcpStream {
    let from: IpAddr = from.parse().unwrap();
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(from, 0).into()).unwrap();
    s.connect(&to.into()).unwrap();
    s.into()
}

/// `request` sent from the address `from`.
fn http_from(from: &str, to: SocketAddr, request: &str) -> Answer {
    exchange(connect_from(from, to), request.as_bytes())
}

fn put_maxqueue(function: &str, body: &str) -> String {
    format!(
        "PUT /api/maxqueue/{function} HTTP/1.0\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
}

#[test]
fn only_allowed_peers_change_state_on_the_address_asked_for() {
    let (server, http_addr) = start(&[
        "--http-listen",
        "127.0.0.2",
        "--http-allow",
        "127.0.0.1/32",
        "--verbose",
        "WARNING",
    ]);
    assert_eq!(http_addr.ip(), "127.0.0.2".parse::<IpAddr>().unwrap());
    // The Gearman port stays on -L.
    assert_eq!(server.addr.ip(), "127.0.0.1".parse::<IpAddr>().unwrap());

    let mut client = server.connect();
    let handle = submit(&mut client, SUBMIT_JOB_BG, "f", "", b"1");
    let cancel = format!("POST /api/jobs/{handle}/cancel HTTP/1.0\r\n\r\n");

    // A peer outside the list: refused, the job and the limits untouched, reads still open.
    let a = http_from("127.0.0.3", http_addr, &cancel);
    assert_eq!(a.status, 403, "{a:?}");
    let body: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    let error = body["error"].as_str().unwrap();
    assert!(
        error.contains("cancel") && error.contains("127.0.0.3") && error.contains("http_allow"),
        "{error}"
    );
    let a = http_from("127.0.0.3", http_addr, &put_maxqueue("f", r#"{"all":1}"#));
    assert_eq!(a.status, 403, "{a:?}");
    let warning = server.wait_for_stderr(|l| l.contains("WARN") && l.contains("127.0.0.3"));
    assert!(warning.contains("http_allow"), "{warning}");
    submit(&mut client, SUBMIT_JOB_BG, "f", "", b"2");
    let a = http_from("127.0.0.3", http_addr, "GET /api/status HTTP/1.0\r\n\r\n");
    assert_eq!(a.status, 200, "{a:?}");
    let status: serde_json::Value = serde_json::from_slice(&a.body).unwrap();
    assert_eq!(status[0]["queued"]["normal"], 2, "{status}");

    // The allowed peer: both take effect.
    let a = http_from("127.0.0.1", http_addr, &put_maxqueue("f", r#"{"all":2}"#));
    assert_eq!(a.status, 200, "{a:?}");
    client.send(SUBMIT_JOB_BG, b"f\0\x003");
    assert_eq!(client.recv().0, ERROR);
    let a = http_from("127.0.0.1", http_addr, &cancel);
    assert_eq!(a.status, 200, "{a:?}");
    let status = client.admin_listing("prioritystatus");
    assert_eq!(status, ["f\t0\t1\t0\t0"], "{status:?}");
}

#[test]
fn a_client_too_slow_to_send_its_request_head_is_dropped() {
    let timeout = Duration::from_millis(300);
    let (_server, http_addr) = start(&["--http-header-timeout-ms", "300"]);
    let mut slow = TcpStream::connect(http_addr).unwrap();
    slow.set_read_timeout(Some(TIMEOUT)).unwrap();
    let started = Instant::now();
    slow.write_all(b"GET /api/status HTTP/1.1\r\nHost: x\r\n")
        .unwrap();
    // A client that finishes in time meanwhile is served.
    let a = support::http::http(http_addr, b"GET /api/status HTTP/1.0\r\n\r\n");
    assert_eq!(a.status, 200, "{a:?}");
    // The slow one is disconnected after the timeout (an answer, if any, is not a 200).
    let mut got = Vec::new();
    let end = slow.read_to_end(&mut got);
    let waited = started.elapsed();
    assert!(
        end.is_ok()
            || end
                .as_ref()
                .is_err_and(|e| e.kind() == std::io::ErrorKind::ConnectionReset),
        "{end:?}"
    );
    assert!(!String::from_utf8_lossy(&got).contains(" 200 "), "{got:?}");
    assert!(waited >= timeout, "dropped after {waited:?}");
    assert!(waited < TIMEOUT, "not dropped: {waited:?}");
}

/// The accept loop in-process: once stopped, it accepts no connection, but a foreground
/// request already in flight gets its answer when the worker finishes, and then it returns.
#[tokio::test]
async fn a_stop_refuses_new_connections_and_finishes_requests_in_flight() {
    use gearbox_proto::{Request, Response};
    use gearbox_testkit::{Poller, RawConn, TestServer};
    use gearboxd::http::{AllowList, HttpSettings};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let server = TestServer::start().await;
    let settings = HttpSettings {
        port: 0,
        listen: Vec::new(),
        allow: AllowList::loopback(),
        header_timeout: TIMEOUT,
        max_body: 1 << 20,
        access: Default::default(),
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(gearboxd::http::serve(
        vec![(listener, async move {
            let _ = stopped.await;
        })],
        gearboxd::http::router(server.addr, &settings, Default::default()),
        settings.header_timeout,
    ));
    let mut request = tokio::net::TcpStream::connect(addr).await.unwrap();
    request
        .write_all(b"POST /slow HTTP/1.0\r\nContent-Length: 2\r\n\r\nhi")
        .await
        .unwrap();
    let mut admin = RawConn::connect(server.addr).await;
    let mut poll = Poller::new("the HTTP job to be queued");
    while !admin.admin_list("status").await.starts_with("slow\t1\t") {
        poll.again().await;
    }
    stop.send(()).unwrap();
    let mut poll = Poller::new("the listener to close");
    while tokio::net::TcpStream::connect(addr).await.is_ok() {
        poll.again().await;
    }
    let mut worker = RawConn::connect(server.addr).await;
    worker
        .send(&Request::CanDo {
            function: "slow".into(),
        })
        .await;
    worker.send(&Request::GrabJob).await;
    let Response::JobAssign { handle, .. } = worker.recv().await else {
        panic!("no job for the worker");
    };
    worker
        .send(&Request::WorkComplete {
            handle,
            data: "done".into(),
        })
        .await;
    let mut answer = Vec::new();
    tokio::time::timeout(TIMEOUT, request.read_to_end(&mut answer))
        .await
        .expect("the answer in time")
        .unwrap();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.0 200 OK\r\n"), "{answer}");
    assert!(answer.ends_with("\r\n\r\ndone"), "{answer}");
    tokio::time::timeout(TIMEOUT, serving)
        .await
        .expect("serve returns once the request is answered")
        .unwrap();
}
