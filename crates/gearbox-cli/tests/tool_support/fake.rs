//! A scripted fake Gearman server for the error paths no real server takes on demand: it
//! answers every submit, every GRAB_JOB* and every admin line as its [`Script`] says (an ERROR
//! packet with any code, a job that fails or raises, a connection closed mid-reply), and
//! ignores everything else (CAN_DO, PRE_SLEEP, ...). Listens on `127.0.0.1:0`.

use std::net::SocketAddr;

use bytes::{Bytes, BytesMut};
use gearbox_proto::Response;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// What to do with one request.
#[derive(Debug, Clone)]
pub enum Reply {
    /// Send these packets; a handle starting `HANDLE` gets the job's handle in its place.
    Packets(Vec<Response>),
    /// Send these packets, then close the connection.
    ThenClose(Vec<Response>),
    /// Send nothing.
    Nothing,
}

/// The fake's whole behaviour.
#[derive(Debug, Clone)]
pub struct Script {
    /// The answer to SUBMIT_JOB and its variants.
    pub submit: Reply,
    /// The answer to GRAB_JOB, GRAB_JOB_UNIQ and GRAB_JOB_ALL.
    pub grab: Reply,
    /// The answer to an admin line: these bytes, or `None` to close the connection.
    pub admin: Option<&'static [u8]>,
}

impl Script {
    /// Answers submits with `reply`; NO_JOB to grabs; admin lines closed.
    pub fn submit(reply: Reply) -> Script {
        Script {
            submit: reply,
            grab: Reply::Packets(vec![Response::NoJob]),
            admin: None,
        }
    }
}

/// An ERROR packet.
pub fn error(code: &str, text: &str) -> Response {
    Response::Error {
        code: Bytes::copy_from_slice(code.as_bytes()),
        text: Bytes::copy_from_slice(text.as_bytes()),
    }
}

/// JOB_CREATED with the job's handle.
pub fn created() -> Response {
    Response::JobCreated {
        handle: Bytes::from_static(b"HANDLE"),
    }
}

/// A running fake; stops when dropped.
pub struct Fake {
    /// Where it listens.
    pub addr: SocketAddr,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Fake {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Fake {
    /// Starts serving `script`.
    pub async fn start(script: Script) -> Fake {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                tokio::spawn(serve(stream, script.clone()));
            }
        });
        Fake { addr, task }
    }

    /// The port as text.
    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }
}

async fn serve(stream: TcpStream, script: Script) {
    let mut conn = BufReader::new(stream);
    let mut jobs = 0u32;
    loop {
        let first = match conn.fill_buf().await {
            Ok([]) | Err(_) => return,
            Ok(b) => b[0],
        };
        let reply = if first != 0 {
            let mut line = Vec::new();
            if conn.read_until(b'\n', &mut line).await.is_err() {
                return;
            }
            match script.admin {
                Some(bytes) => {
                    let _ = conn.get_mut().write_all(bytes).await;
                    continue;
                }
                None => return,
            }
        } else {
            let mut head = [0u8; 12];
            if conn.read_exact(&mut head).await.is_err() {
                return;
            }
            let kind = u32::from_be_bytes([head[4], head[5], head[6], head[7]]);
            let len = u32::from_be_bytes([head[8], head[9], head[10], head[11]]) as usize;
            let mut body = vec![0u8; len];
            if conn.read_exact(&mut body).await.is_err() {
                return;
            }
            match kind {
                // SUBMIT_JOB and its BG, HIGH, HIGH_BG, LOW, LOW_BG variants.
                7 | 18 | 21 | 32 | 33 | 34 => {
                    jobs += 1;
                    script.submit.clone()
                }
                // GRAB_JOB, GRAB_JOB_UNIQ, GRAB_JOB_ALL.
                9 | 30 | 39 => script.grab.clone(),
                _ => Reply::Nothing,
            }
        };
        let handle = Bytes::from(format!("H:fake:{jobs}"));
        let (packets, close) = match reply {
            Reply::Packets(p) => (p, false),
            Reply::ThenClose(p) => (p, true),
            Reply::Nothing => (Vec::new(), false),
        };
        let mut out = BytesMut::new();
        for p in packets {
            with_handle(p, &handle).encode(&mut out);
        }
        if conn.get_mut().write_all(&out).await.is_err() || close {
            return;
        }
    }
}

fn with_handle(p: Response, handle: &Bytes) -> Response {
    let h = |x: Bytes| match x.strip_prefix(b"HANDLE") {
        Some(rest) => [&handle[..], rest].concat().into(),
        None => x,
    };
    match p {
        Response::JobCreated { handle } => Response::JobCreated { handle: h(handle) },
        Response::WorkFail { handle } => Response::WorkFail { handle: h(handle) },
        Response::WorkException { handle, data } => Response::WorkException {
            handle: h(handle),
            data,
        },
        Response::WorkComplete { handle, data } => Response::WorkComplete {
            handle: h(handle),
            data,
        },
        other => other,
    }
}
