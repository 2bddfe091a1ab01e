//! HTTP over raw TCP for the `-r http` tests: every byte of the answer is seen.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::{Gearboxd, TIMEOUT};

/// An HTTP answer, split.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` (the whole HTTP/1.0 request) and reads the answer to the end.
pub fn http(addr: SocketAddr, request: &[u8]) -> Answer {
    exchange(
        TcpStream::connect(addr).expect("connect to the http port"),
        request,
    )
}

/// [`http`] on a connection already made (from a chosen source address, ...).
pub fn exchange(mut s: TcpStream, request: &[u8]) -> Answer {
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
pub fn post(addr: SocketAddr, function: &str, headers: &[&str], body: &[u8]) -> Answer {
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
pub fn start(extra: &[&str]) -> (Gearboxd, SocketAddr) {
    start_on("127.0.0.1", extra)
}

/// [`start`] listening on `address` (`-L`).
pub fn start_on(address: &str, extra: &[&str]) -> (Gearboxd, SocketAddr) {
    let mut args = vec!["-p", "0", "-L", address, "-r", "http", "--http-port", "0"];
    args.extend_from_slice(extra);
    let server = Gearboxd::start(&args);
    let line = server.wait_for_stderr(|l| l.starts_with(gearboxd::http::HTTP_LISTENING_PREFIX));
    let addr = line[gearboxd::http::HTTP_LISTENING_PREFIX.len()..]
        .trim()
        .parse()
        .unwrap();
    (server, addr)
}
