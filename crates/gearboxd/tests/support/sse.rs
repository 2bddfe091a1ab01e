//! A server-sent-events client over raw TCP (HTTP/1.1, chunked) for the live-feed tests: it
//! tells a stream the server ended (the last chunk) from a connection that was cut.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use super::TIMEOUT;

/// One event: its name and its data (the `data:` lines joined).
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub data: String,
}

impl Event {
    /// The data as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("{e}: {}", self.data))
    }
}

/// How an event stream's body ended.
#[derive(Debug, PartialEq, Eq)]
pub enum End {
    /// The last chunk came: the server ended the stream.
    Finished,
    /// The connection closed without it.
    Cut,
}

/// An open `GET /api/events` answer, or the status and body it was refused with.
pub struct Stream {
    reader: BufReader<TcpStream>,
    /// Bytes of the current chunk not yet read.
    left: usize,
    text: String,
    /// Set once the body ended.
    pub end: Option<End>,
}

/// Opens `GET path` and reads the head: `Ok` with the stream when the status is 200, else
/// the status and body.
pub fn open(addr: SocketAddr, path: &str) -> Result<Stream, (u16, String)> {
    let mut s = TcpStream::connect(addr).expect("connect to the http port");
    s.set_read_timeout(Some(TIMEOUT)).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: test\r\nAccept: text/event-stream\r\n\r\n"
    )
    .unwrap();
    let mut reader = BufReader::new(s);
    let mut status = String::new();
    reader.read_line(&mut status).unwrap();
    let code: u16 = status.split(' ').nth(1).unwrap().parse().unwrap();
    let mut length = None;
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).unwrap();
        if h == "\r\n" || h.is_empty() {
            break;
        }
        if let Some((n, v)) = h.trim_end().split_once(": ") {
            if n.eq_ignore_ascii_case("content-length") {
                length = Some(v.parse::<usize>().unwrap());
            }
            if n.eq_ignore_ascii_case("content-type") && code == 200 {
                assert_eq!(v, "text/event-stream");
            }
        }
    }
    if code != 200 {
        let mut body = vec![0; length.expect("an error answer has a length")];
        reader.read_exact(&mut body).unwrap();
        return Err((code, String::from_utf8(body).unwrap()));
    }
    Ok(Stream {
        reader,
        left: 0,
        text: String::new(),
        end: None,
    })
}

impl Stream {
    /// Reads the next chunk's bytes into `text`; false once the body ended.
    fn fill(&mut self) -> bool {
        if self.end.is_some() {
            return false;
        }
        if self.left == 0 {
            let mut size = String::new();
            if self.reader.read_line(&mut size).expect("read a chunk size") == 0 {
                self.end = Some(End::Cut);
                return false;
            }
            let size = size.trim();
            if size.is_empty() {
                // The CRLF after a chunk's data.
                return true;
            }
            self.left = usize::from_str_radix(size, 16).unwrap();
            if self.left == 0 {
                self.end = Some(End::Finished);
                return false;
            }
        }
        let mut buf = vec![0; self.left];
        let n = self.reader.read(&mut buf).expect("read chunk data");
        if n == 0 {
            self.end = Some(End::Cut);
            return false;
        }
        self.left -= n;
        self.text.push_str(std::str::from_utf8(&buf[..n]).unwrap());
        true
    }

    /// The next event; `None` when the stream ended. Fails the test after [`TIMEOUT`] without
    /// a byte (the socket's read timeout).
    pub fn next(&mut self) -> Option<Event> {
        loop {
            if let Some(i) = self.text.find("\n\n") {
                let block: String = self.text.drain(..i + 2).collect();
                let mut e = Event {
                    name: String::new(),
                    data: String::new(),
                };
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        e.name = v.trim_start().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        if !e.data.is_empty() {
                            e.data.push('\n');
                        }
                        e.data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if e.name.is_empty() && e.data.is_empty() {
                    continue; // a comment (keep-alive)
                }
                return Some(e);
            }
            if !self.fill() {
                return None;
            }
        }
    }

    /// The next `snapshot` event's data for which `pred` holds; fails the test if the stream
    /// ends or `deadline` passes first.
    pub fn snapshot_until(
        &mut self,
        deadline: std::time::Duration,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let start = std::time::Instant::now();
        let mut last = None;
        while start.elapsed() < deadline {
            let e = self.next().expect("the stream ended");
            if e.name != "snapshot" {
                continue;
            }
            let j = e.json();
            if pred(&j) {
                return j;
            }
            last = Some(j);
        }
        panic!("no matching snapshot within {deadline:?}; last: {last:#?}")
    }
}
