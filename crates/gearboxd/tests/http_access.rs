//! The `[[access]]` rules on the HTTP listener, judged by the HTTP client's address: the
//! clients are told apart by their loopback source addresses (127.0.0.0/8 is all local on
//! Linux). 127.0.0.1 (also the gateway's own Gearman connection) may do everything, 127.0.0.2
//! may submit to `allowed_*` and read, 127.0.0.3 matches no rule.

mod support;

use std::net::{IpAddr, SocketAddr, TcpStream};

use socket2::{Domain, Socket, Type};
use support::http::{exchange, start, Answer};
use support::{Gearboxd, TempDir};

const CONFIG: &str = r#"
queue_type = "builtin"
http_allow = ["127.0.0.0/8"]

[[access]]
name = "gateway"
peer = ["127.0.0.1"]
submit = ["*"]
register = ["*"]
admin = "write"

[[access]]
name = "readers"
peer = ["127.0.0.2"]
submit = ["allowed_*"]
admin = "read"
"#;

fn server(dir: &TempDir) -> (Gearboxd, SocketAddr) {
    let path = dir.join("gearboxd.toml");
    std::fs::write(&path, CONFIG).unwrap();
    start(&["--verbose", "WARNING", "--config", path.to_str().unwrap()])
}

/// `request` sent from the address `from`.
fn from(from: &str, to: SocketAddr, request: &str) -> Answer {
    let from: IpAddr = from.parse().unwrap();
    let s = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    s.bind(&SocketAddr::new(from, 0).into()).unwrap();
    s.connect(&to.into()).unwrap();
    exchange(TcpStream::from(s), request.as_bytes())
}

fn body(a: &Answer) -> String {
    String::from_utf8_lossy(&a.body).into_owned()
}

const MAXQUEUE: &str = "PUT /api/maxqueue/allowed_x HTTP/1.0\r\nContent-Type: application/json\r\n\
                        Content-Length: 9\r\n\r\n{\"all\":3}";

fn background(function: &str) -> String {
    format!("POST /{function} HTTP/1.0\r\nX-Gearman-Background: true\r\nContent-Length: 1\r\n\r\nx")
}

#[test]
fn a_reader_may_list_and_submit_to_its_functions_but_not_change_or_submit_elsewhere() {
    let dir = TempDir::new();
    let (server, http) = server(&dir);
    let a = from("127.0.0.2", http, &background("allowed_x"));
    assert_eq!(a.status, 200, "{}", body(&a));
    assert_eq!(a.header("x-gearman-command"), Some("JOB_CREATED"));
    let a = from("127.0.0.2", http, "GET /api/status HTTP/1.0\r\n\r\n");
    assert_eq!(a.status, 200, "{}", body(&a));
    assert!(body(&a).contains("allowed_x"), "{}", body(&a));

    let a = from("127.0.0.2", http, &background("secret"));
    assert_eq!(a.status, 403);
    assert!(
        body(&a).contains("permission denied: may not submit to secret (access rule `readers`"),
        "{}",
        body(&a)
    );
    let a = from("127.0.0.2", http, MAXQUEUE);
    assert_eq!(a.status, 403);
    assert!(
        body(&a).contains("needs admin write access") && body(&a).contains("`readers`"),
        "{}",
        body(&a)
    );
    let log = server.wait_for_stderr(|l| l.contains("http request refused by the access rules"));
    assert!(log.contains("127.0.0.2"), "{log}");

    // The operator's address may change it.
    let a = from("127.0.0.1", http, MAXQUEUE);
    assert_eq!(a.status, 200, "{}", body(&a));
}

#[test]
fn a_client_no_rule_matches_may_not_read_or_submit() {
    let dir = TempDir::new();
    let (_server, http) = server(&dir);
    for path in ["/api/status", "/api/workers", "/api/jobs", "/metrics"] {
        let a = from("127.0.0.3", http, &format!("GET {path} HTTP/1.0\r\n\r\n"));
        assert_eq!(a.status, 403, "{path}");
        assert!(
            body(&a).contains("needs admin read access") && body(&a).contains("(no rule matched)"),
            "{path}: {}",
            body(&a)
        );
    }
    let a = from("127.0.0.3", http, &background("allowed_x"));
    assert_eq!(a.status, 403);
    // The dashboard's page itself is static and stays reachable.
    let a = from("127.0.0.3", http, "GET / HTTP/1.0\r\n\r\n");
    assert_eq!(a.status, 200);
}
