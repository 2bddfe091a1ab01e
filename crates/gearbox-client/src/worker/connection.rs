//! One worker connection to one server: connect, register (CAN_DO / CAN_DO_TIMEOUT,
//! SET_CLIENT_ID), prove the server answers (ECHO), and a writer task that owns the socket's
//! write half so handlers and the grab loop can queue packets concurrently, in order.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use gearbox_proto::{ClientCodec, Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_util::codec::FramedRead;

use super::builder::Settings;
use crate::transport::{self, ReadHalf, WriteHalf};
use crate::{Error, ServerAddr};

/// How long connecting and registering may take before the attempt counts as failed.
pub(crate) const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long closing waits for queued packets (the last results) to be written.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);
/// Packets queued for one connection before senders wait (back-pressure on handlers).
const OUTBOUND_CAPACITY: usize = 256;
/// Bytes gathered from the queue into one write.
const WRITE_BATCH: usize = 64 * 1024;
/// The ECHO payload that ends the handshake.
const HELLO: &[u8] = b"gearbox-worker-hello";

/// A registered, live connection.
pub(crate) struct Connection {
    /// Packets from the server.
    pub reader: FramedRead<ReadHalf, ClientCodec>,
    /// Queue to the writer task.
    pub out: mpsc::Sender<Request>,
    /// The writer task; it ends when every sender is gone or it was told to close (after
    /// writing what was queued, and a FIN), or when a write fails.
    pub writer: JoinHandle<io::Result<()>>,
    /// Tells the writer to stop taking packets, flush and close.
    close: Option<oneshot::Sender<()>>,
}

impl Connection {
    /// Connects to `addr` and registers every function of `settings`, within
    /// [`HANDSHAKE_TIMEOUT`].
    pub(crate) async fn open(addr: &ServerAddr, settings: &Settings) -> Result<Connection, Error> {
        match tokio::time::timeout(HANDSHAKE_TIMEOUT, Self::open_inner(addr, settings)).await {
            Ok(r) => r,
            Err(_) => Err(Error::Disconnected {
                server: addr.to_string(),
                reason: format!("no answer to the handshake within {HANDSHAKE_TIMEOUT:?}"),
            }),
        }
    }

    async fn open_inner(addr: &ServerAddr, settings: &Settings) -> Result<Connection, Error> {
        let stream = transport::connect(addr, settings.tls.as_ref(), HANDSHAKE_TIMEOUT).await?;
        let (read, write) = stream.into_split();
        let (out, rx) = mpsc::channel(OUTBOUND_CAPACITY);
        let (close, closed) = oneshot::channel();
        let writer = tokio::spawn(write_loop(write, rx, closed));
        let mut conn = Connection {
            reader: FramedRead::new(read, ClientCodec::default()),
            out,
            writer,
            close: Some(close),
        };
        for (name, reg) in &settings.functions {
            let req = match reg.timeout_ms {
                None => Request::CanDo {
                    function: name.clone(),
                },
                // Whole seconds, rounded up, as Perl's, PHP's and Python's workers send it
                // (the unit gearbox reads by default; gearmand 1.1.20 reads milliseconds).
                Some(ms) => Request::CanDoTimeout {
                    function: name.clone(),
                    timeout: ms.div_ceil(1000).to_string().into(),
                },
            };
            conn.send(addr, req).await?;
        }
        if let Some(id) = &settings.client_id {
            conn.send(addr, Request::SetClientId { id: id.clone() })
                .await?;
        }
        let hello = Bytes::from_static(HELLO);
        conn.send(
            addr,
            Request::EchoReq {
                data: hello.clone(),
            },
        )
        .await?;
        // Neither CAN_DO nor SET_CLIENT_ID has a reply; an ERROR means one was refused.
        loop {
            // Over TLS 1.3 a refused client certificate shows as this first read:
            // `read_packet` makes it `Error::Tls`.
            match conn.next_packet(addr).await? {
                Response::EchoRes { data } if data == hello => return Ok(conn),
                Response::Error { code, text } => {
                    conn.writer.abort();
                    return Err(Error::from_server(&code, &text));
                }
                other => {
                    tracing::debug!(server = %addr, packet = ?other, "ignored during handshake")
                }
            }
        }
    }

    /// Writes what is queued (results of jobs that just finished), then closes the
    /// connection. Packets queued later (by abandoned jobs) fail as on a lost connection.
    pub(crate) async fn close(mut self, addr: &ServerAddr) {
        if let Some(close) = self.close.take() {
            let _ = close.send(());
        }
        drop(self.out);
        match tokio::time::timeout(FLUSH_TIMEOUT, &mut self.writer).await {
            Ok(Ok(Ok(()))) => {}
            Ok(Ok(Err(e))) => {
                tracing::warn!(server = %addr, error = %e, "flushing before close failed")
            }
            Ok(Err(e)) => tracing::error!(server = %addr, error = %e, "writer task failed"),
            Err(_) => {
                tracing::warn!(server = %addr, "queued packets not written within {FLUSH_TIMEOUT:?}; closing anyway");
                self.writer.abort();
            }
        }
    }

    /// Queues `req`; fails when the writer has stopped.
    pub(crate) async fn send(&self, addr: &ServerAddr, req: Request) -> Result<(), Error> {
        self.out.send(req).await.map_err(|_| Error::Disconnected {
            server: addr.to_string(),
            reason: "writing to the server failed".into(),
        })
    }

    /// The next packet; a closed connection or undecodable bytes are errors.
    pub(crate) async fn next_packet(&mut self, addr: &ServerAddr) -> Result<Response, Error> {
        read_packet(&mut self.reader, addr).await
    }
}

/// The next packet from `reader`; a closed connection or undecodable bytes are errors.
pub(crate) async fn read_packet(
    reader: &mut FramedRead<ReadHalf, ClientCodec>,
    addr: &ServerAddr,
) -> Result<Response, Error> {
    match reader.next().await {
        Some(Ok(r)) => Ok(r),
        Some(Err(gearbox_proto::ProtoError::Io(e))) if transport::is_tls_error(&e) => {
            Err(Error::Tls {
                server: addr.to_string(),
                reason: transport::explain(&e, &addr.host),
            })
        }
        Some(Err(source)) => Err(Error::Protocol {
            server: addr.to_string(),
            source,
        }),
        None => Err(Error::Disconnected {
            server: addr.to_string(),
            reason: "the server closed the connection".into(),
        }),
    }
}

/// Writes queued packets, batching whatever is already queued into one write. Once every
/// sender is gone or `close` fires, it writes what is still queued and shuts the write side
/// down (FIN).
async fn write_loop(
    mut w: WriteHalf,
    mut rx: mpsc::Receiver<Request>,
    mut close: oneshot::Receiver<()>,
) -> io::Result<()> {
    let mut buf = BytesMut::new();
    let mut closing = false;
    loop {
        let req = tokio::select! {
            biased;
            req = rx.recv() => match req {
                Some(req) => req,
                None => break,
            },
            _ = &mut close, if !closing => {
                // Refuse new packets; those already queued are still received above.
                rx.close();
                closing = true;
                continue;
            }
        };
        req.encode(&mut buf);
        while buf.len() < WRITE_BATCH {
            match rx.try_recv() {
                Ok(more) => more.encode(&mut buf),
                Err(_) => break,
            }
        }
        w.write_all(&buf).await?;
        // Free on TCP; TLS may hold written records until it.
        w.flush().await?;
        buf.clear();
    }
    w.shutdown().await
}

/// A server address as a shared label for logs and jobs.
pub(crate) fn label(addr: &ServerAddr) -> Arc<str> {
    addr.to_string().into()
}
