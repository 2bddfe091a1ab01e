//! A small synchronous Gearman client for use inside a PostgreSQL backend: no threads, no
//! runtime, one blocking [`TcpStream`] per server with a short read timeout, so that a wait can
//! be interrupted between two reads (the caller's `tick`, which checks for query cancel).
//!
//! Nothing here knows about PostgreSQL; the SQL layer passes its settings and its interrupt
//! check in.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use gearbox_proto::{ClientCodec, Priority, Request, Response, SubmitJob};
use tokio_util::codec::Decoder;

/// The port used when a server in the list has none.
pub const DEFAULT_PORT: u16 = 4730;

/// How long one read blocks before the caller gets to check for interrupts.
const READ_SLICE: Duration = Duration::from_millis(100);

/// A failure of a call, with the text the SQL error shows.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No server of the list accepted a connection.
    #[error("cannot connect to any job server ({}); check gearbox.servers or gman_servers_set()", .tried.join("; "))]
    Unreachable {
        /// Each server with the reason it failed.
        tried: Vec<String>,
    },
    /// The server list does not parse.
    #[error("bad server list: {0}")]
    BadServers(String),
    /// The connection broke in the middle of a call.
    #[error("connection to {server} failed: {source}")]
    Io {
        /// The server.
        server: String,
        /// What happened.
        #[source]
        source: io::Error,
    },
    /// The server sent something this client cannot use.
    #[error("unexpected answer from {server}: {what}")]
    Protocol {
        /// The server.
        server: String,
        /// What was wrong.
        what: String,
    },
    /// The server answered with an ERROR packet.
    #[error("job server {server} answered ERROR {code}: {text}")]
    Server {
        /// The server.
        server: String,
        /// The error code, e.g. `ERR_QUEUE_FULL`.
        code: String,
        /// The error text.
        text: String,
    },
    /// The worker reported WORK_FAIL.
    #[error("job failed (the worker sent WORK_FAIL)")]
    Failed,
    /// The worker reported WORK_EXCEPTION with this text.
    #[error("job failed with an exception: {}", String::from_utf8_lossy(.0))]
    Exception(Vec<u8>),
    /// No answer before the deadline.
    #[error("no answer in time")]
    Timeout,
}

/// One server of the list, `host:port`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Server(pub String);

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Parses `host[:port],...` (IPv6 as `[addr]:port`); the port defaults to 4730.
pub fn parse_servers(list: &str) -> Result<Vec<Server>, Error> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let has_port = match item.rsplit_once(':') {
            Some((host, port))
                if !port.is_empty() && (!host.contains(':') || host.ends_with(']')) =>
            {
                port.parse::<u16>()
                    .map_err(|_| Error::BadServers(format!("bad port in {item:?}")))?;
                true
            }
            _ => false,
        };
        out.push(Server(if has_port {
            item.to_owned()
        } else {
            format!("{item}:{DEFAULT_PORT}")
        }));
    }
    if out.is_empty() {
        return Err(Error::BadServers("no server in the list".to_owned()));
    }
    Ok(out)
}

/// One open connection to a job server.
pub struct Conn {
    server: Server,
    stream: TcpStream,
    rbuf: BytesMut,
    codec: ClientCodec,
}

impl Conn {
    /// Connects (each address of the name in turn, within `connect_timeout`) and asks the
    /// server to forward worker exceptions, waiting for its answer: a connection returned here
    /// has a server that speaks.
    pub fn open(
        server: &Server,
        connect_timeout: Duration,
        tick: &mut dyn FnMut(),
    ) -> io::Result<Conn> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "name resolves to no address");
        let mut stream = None;
        for addr in server.0.to_socket_addrs()? {
            match TcpStream::connect_timeout(&addr, connect_timeout) {
                Ok(s) => {
                    stream = Some(s);
                    break;
                }
                Err(e) => last = e,
            }
        }
        let stream = stream.ok_or(last)?;
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(READ_SLICE))?;
        stream.set_write_timeout(Some(connect_timeout.max(Duration::from_secs(1))))?;
        let mut conn = Conn {
            server: server.clone(),
            stream,
            rbuf: BytesMut::with_capacity(4096),
            codec: ClientCodec::default(),
        };
        conn.send(&[Request::OptionReq {
            option: Bytes::from_static(b"exceptions"),
        }])
        .map_err(to_io)?;
        let deadline = Some(Instant::now() + connect_timeout.max(Duration::from_secs(1)));
        match conn.recv(deadline, tick).map_err(to_io)? {
            Response::OptionRes { .. } => Ok(conn),
            other => Err(io::Error::other(format!(
                "answered OPTION_REQ with {:?}",
                other.packet_type()
            ))),
        }
    }

    /// The server this connection goes to.
    pub fn server(&self) -> &Server {
        &self.server
    }

    /// Writes all of `requests` in one write.
    pub fn send(&mut self, requests: &[Request]) -> Result<(), Error> {
        let mut buf = BytesMut::new();
        for r in requests {
            r.encode(&mut buf);
        }
        self.stream.write_all(&buf).map_err(|e| self.io(e))
    }

    /// The next packet from the server. Between reads (every 100 ms at most) it calls `tick`,
    /// which may raise a PostgreSQL ERROR (a Rust panic): the caller then drops this
    /// connection, half-read.
    pub fn recv(
        &mut self,
        deadline: Option<Instant>,
        tick: &mut dyn FnMut(),
    ) -> Result<Response, Error> {
        let mut chunk = [0u8; 16 * 1024];
        loop {
            match self.codec.decode(&mut self.rbuf) {
                Ok(Some(r)) => return Ok(r),
                Ok(None) => {}
                Err(e) => {
                    return Err(Error::Protocol {
                        server: self.server.0.clone(),
                        what: e.to_string(),
                    })
                }
            }
            if let Some(d) = deadline {
                if Instant::now() >= d {
                    return Err(Error::Timeout);
                }
            }
            tick();
            match self.stream.read(&mut chunk) {
                Ok(0) => {
                    return Err(self.io(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the server closed the connection",
                    )))
                }
                Ok(n) => self.rbuf.extend_from_slice(&chunk[..n]),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) => {}
                Err(e) => return Err(self.io(e)),
            }
        }
    }

    /// ECHO round trip: proves the server is still there.
    pub fn ping(&mut self, timeout: Duration, tick: &mut dyn FnMut()) -> Result<(), Error> {
        self.send(&[Request::EchoReq {
            data: Bytes::from_static(b"gearbox-pg"),
        }])?;
        match self.recv(Some(Instant::now() + timeout), tick)? {
            Response::EchoRes { .. } => Ok(()),
            other => Err(self.unexpected(&other)),
        }
    }

    /// Submits a job and waits for its JOB_CREATED; returns the handle.
    pub fn submit(
        &mut self,
        job: SubmitJob,
        deadline: Option<Instant>,
        tick: &mut dyn FnMut(),
    ) -> Result<Bytes, Error> {
        self.send(&[Request::Submit(job)])?;
        self.created(deadline, tick)
    }

    /// Waits for the next JOB_CREATED (the answer to a submit already sent).
    pub fn created(
        &mut self,
        deadline: Option<Instant>,
        tick: &mut dyn FnMut(),
    ) -> Result<Bytes, Error> {
        loop {
            match self.recv(deadline, tick)? {
                Response::JobCreated { handle } => return Ok(handle),
                // A straggler of an earlier job on this connection.
                Response::WorkStatus { .. }
                | Response::WorkData { .. }
                | Response::WorkWarning { .. }
                | Response::WorkComplete { .. }
                | Response::WorkFail { .. }
                | Response::WorkException { .. } => {}
                other => return Err(self.unexpected(&other)),
            }
        }
    }

    /// Waits for the end of the foreground job `handle` and returns its result.
    pub fn result(
        &mut self,
        handle: &[u8],
        deadline: Option<Instant>,
        tick: &mut dyn FnMut(),
    ) -> Result<Bytes, Error> {
        loop {
            match self.recv(deadline, tick)? {
                Response::WorkComplete { handle: h, data } if h == handle => return Ok(data),
                Response::WorkFail { handle: h } if h == handle => return Err(Error::Failed),
                Response::WorkException { handle: h, data } if h == handle => {
                    return Err(Error::Exception(data.to_vec()))
                }
                Response::WorkStatus { .. }
                | Response::WorkData { .. }
                | Response::WorkWarning { .. }
                | Response::WorkComplete { .. }
                | Response::WorkFail { .. }
                | Response::WorkException { .. } => {}
                other => return Err(self.unexpected(&other)),
            }
        }
    }

    fn io(&self, source: io::Error) -> Error {
        Error::Io {
            server: self.server.0.clone(),
            source,
        }
    }

    fn unexpected(&self, r: &Response) -> Error {
        match r {
            Response::Error { code, text } => Error::Server {
                server: self.server.0.clone(),
                code: String::from_utf8_lossy(code).into_owned(),
                text: String::from_utf8_lossy(text).into_owned(),
            },
            other => Error::Protocol {
                server: self.server.0.clone(),
                what: format!("{:?} packet", other.packet_type()),
            },
        }
    }
}

fn to_io(e: Error) -> io::Error {
    match e {
        Error::Io { source, .. } => source,
        other => io::Error::other(other.to_string()),
    }
}

/// A job to submit: what the SQL functions build from their arguments.
#[derive(Debug, Clone)]
pub struct Job {
    /// The function name.
    pub function: Bytes,
    /// The payload.
    pub payload: Bytes,
    /// The unique id (empty: none).
    pub unique: Bytes,
    /// The priority.
    pub priority: Priority,
}

impl Job {
    /// The submit packet, foreground or background.
    pub fn packet(&self, background: bool) -> SubmitJob {
        SubmitJob {
            function: self.function.clone(),
            unique: self.unique.clone(),
            data: self.payload.clone(),
            priority: self.priority,
            background,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_lists() {
        let s = parse_servers(" a , b:1,[::1]:7, [::1] ").unwrap();
        let s: Vec<_> = s.into_iter().map(|s| s.0).collect();
        assert_eq!(s, ["a:4730", "b:1", "[::1]:7", "[::1]:4730"]);
        assert!(parse_servers(" , ").is_err());
        assert!(parse_servers("a:x").is_err());
    }
}
