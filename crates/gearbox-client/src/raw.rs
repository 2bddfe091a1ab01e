//! A bare protocol connection: requests out, responses in, nothing in between.
//!
//! [`RawConnection`] is what the [`Client`](crate::Client) and [`Worker`](crate::Worker) are
//! built from, exposed for programs that need to control every packet and every write: load
//! generators (`gearbox bench`), protocol probes and tests. It runs no task of its own, routes
//! nothing and retries nothing. Requests are encoded into a write buffer with
//! [`queue`](RawConnection::queue) and leave in one `write` per [`flush`](RawConnection::flush),
//! so a caller decides between "one write per packet" (what libgearman does) and batching many
//! packets into one write.
//!
//! ```no_run
//! # async fn f() -> gearbox_client::Result<()> {
//! use bytes::Bytes;
//! use gearbox_client::raw::RawConnection;
//! use gearbox_proto::{Request, Response};
//!
//! let mut conn = RawConnection::connect("127.0.0.1:4730").await?;
//! conn.send(&Request::EchoReq { data: Bytes::from_static(b"ping") }).await?;
//! assert!(matches!(conn.recv().await?, Response::EchoRes { .. }));
//! # Ok(()) }
//! ```

use bytes::BytesMut;
use gearbox_proto::{ClientCodec, Request, Response};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::codec::Decoder;

use crate::transport::{self, Stream};
use crate::{Error, Result, ServerAddr, TlsConfig};

/// Longest wait for the TCP connect, and then for the TLS handshake, of
/// [`RawConnection::connect_with`].
pub const CONNECT_LIMIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Initial size of the read and write buffers.
const BUFFER: usize = 16 * 1024;

/// One TCP (or TLS) connection speaking the binary protocol, with explicit writes.
#[derive(Debug)]
pub struct RawConnection {
    stream: Stream,
    server: String,
    codec: ClientCodec,
    read: BytesMut,
    write: BytesMut,
}

impl RawConnection {
    /// Connects to `addr` (`host:port`) with Nagle's algorithm off.
    pub async fn connect(addr: &str) -> Result<RawConnection> {
        RawConnection::connect_with(addr, None).await
    }

    /// Connects to `addr` (`host:port`, Nagle off), over TLS when `tls` is given; the
    /// server name checked is the host part of `addr` unless the config overrides it. A
    /// failed handshake is [`Error::Tls`]. The TCP connect and the handshake each get
    /// [`CONNECT_LIMIT`]; wrap the call in a timeout for a shorter one.
    pub async fn connect_with(addr: &str, tls: Option<&TlsConfig>) -> Result<RawConnection> {
        let server: ServerAddr = addr.parse()?;
        let stream = transport::connect(&server, tls, CONNECT_LIMIT)
            .await
            .map_err(|e| match e {
                Error::Unreachable { source, .. } => Error::Unreachable {
                    servers: addr.to_string(),
                    source,
                },
                e => e,
            })?;
        Ok(RawConnection {
            stream,
            server: addr.to_string(),
            codec: ClientCodec::default(),
            read: BytesMut::with_capacity(BUFFER),
            write: BytesMut::with_capacity(BUFFER),
        })
    }

    /// Whether the connection runs over TLS.
    pub fn is_tls(&self) -> bool {
        self.stream.is_tls()
    }

    /// The address this connection was opened to.
    pub fn server(&self) -> &str {
        &self.server
    }

    /// Encodes `request` into the write buffer; nothing is sent until [`flush`](Self::flush).
    pub fn queue(&mut self, request: &Request) {
        request.encode(&mut self.write);
    }

    /// Bytes queued and not yet flushed.
    pub fn queued(&self) -> usize {
        self.write.len()
    }

    /// Sends everything queued, in one write when the socket takes it.
    pub async fn flush(&mut self) -> Result<()> {
        if self.write.is_empty() {
            return Ok(());
        }
        let mut result = self.stream.write_all(&self.write).await;
        if result.is_ok() {
            // Free on TCP; TLS may hold written records until it.
            result = self.stream.flush().await;
        }
        self.write.clear();
        result.map_err(|e| disconnected(&self.server, &e.to_string()))
    }

    /// Queues `request` and flushes: one write for this packet (and anything queued before).
    pub async fn send(&mut self, request: &Request) -> Result<()> {
        self.queue(request);
        self.flush().await
    }

    /// The next response, reading from the socket as needed.
    ///
    /// Cancel-safe: bytes read before a cancellation stay buffered for the next call.
    pub async fn recv(&mut self) -> Result<Response> {
        loop {
            if let Some(response) = self.try_recv()? {
                return Ok(response);
            }
            let n = self
                .stream
                .read_buf(&mut self.read)
                .await
                .map_err(|e| disconnected(&self.server, &e.to_string()))?;
            if n == 0 {
                return Err(disconnected(
                    &self.server,
                    "the server closed the connection",
                ));
            }
        }
    }

    /// The next response if a whole one is already buffered; never reads the socket.
    ///
    /// After [`recv`](Self::recv) returns, call this until `None` to handle everything that
    /// arrived in the same read before writing again.
    pub fn try_recv(&mut self) -> Result<Option<Response>> {
        self.codec
            .decode(&mut self.read)
            .map_err(|source| Error::Protocol {
                server: self.server.clone(),
                source,
            })
    }
}

fn disconnected(server: &str, reason: &str) -> Error {
    Error::Disconnected {
        server: server.to_string(),
        reason: reason.to_string(),
    }
}
