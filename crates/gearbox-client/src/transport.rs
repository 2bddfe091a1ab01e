//! The byte stream under every connection: plain TCP or TLS over TCP.
//!
//! [`Stream`] and its halves are enums rather than boxed trait objects, so the plain path
//! costs one branch per read or write and keeps TCP's lock-free `into_split` halves; only
//! a TLS stream is split through tokio's shared halves (one TLS session serves both
//! directions).

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use crate::tls::TlsConfig;
use crate::{Error, Result, ServerAddr};

/// A connected stream, plain or TLS.
#[derive(Debug)]
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP, handshake done.
    Tls(Box<TlsStream<TcpStream>>),
}

/// The reading half of a [`Stream`].
#[derive(Debug)]
pub(crate) enum ReadHalf {
    Plain(OwnedReadHalf),
    Tls(tokio::io::ReadHalf<TlsStream<TcpStream>>),
}

/// The writing half of a [`Stream`].
#[derive(Debug)]
pub(crate) enum WriteHalf {
    Plain(OwnedWriteHalf),
    Tls(tokio::io::WriteHalf<TlsStream<TcpStream>>),
}

impl Stream {
    /// Whether this is a TLS stream.
    pub(crate) fn is_tls(&self) -> bool {
        matches!(self, Stream::Tls(_))
    }

    /// Splits into halves that a reader and a writer task can own.
    pub(crate) fn into_split(self) -> (ReadHalf, WriteHalf) {
        match self {
            Stream::Plain(s) => {
                let (r, w) = s.into_split();
                (ReadHalf::Plain(r), WriteHalf::Plain(w))
            }
            Stream::Tls(s) => {
                let (r, w) = tokio::io::split(*s);
                (ReadHalf::Tls(r), WriteHalf::Tls(w))
            }
        }
    }
}

/// Opens a TCP connection to `addr` (Nagle off) and, with `tls`, runs the TLS handshake;
/// both together within `limit`.
///
/// A TCP failure or timeout is [`Error::Unreachable`]; a TLS failure or a handshake that
/// does not finish in time is [`Error::Tls`] (or, for a host that cannot be a certificate
/// name, [`Error::TlsSetup`]).
pub(crate) async fn connect(
    addr: &ServerAddr,
    tls: Option<&TlsConfig>,
    limit: Duration,
) -> Result<Stream> {
    let unreachable = |source| Error::Unreachable {
        servers: addr.to_string(),
        source,
    };
    let deadline = tokio::time::Instant::now() + limit;
    let tcp = tokio::time::timeout_at(deadline, TcpStream::connect(addr.connect_string()))
        .await
        .map_err(|_| {
            unreachable(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("no connection within {limit:?}"),
            ))
        })?
        .map_err(unreachable)?;
    // Small packets (status updates, handshakes) should leave at once.
    let _ = tcp.set_nodelay(true);
    let Some(tls) = tls else {
        return Ok(Stream::Plain(tcp));
    };
    let name = tls.server_name_for(&addr.host)?;
    let shown = name.to_str().into_owned();
    let failed = |reason| Error::Tls {
        server: addr.to_string(),
        reason,
    };
    let handshake = TlsConnector::from(tls.rustls_config()).connect(name, tcp);
    let stream = tokio::time::timeout_at(deadline, handshake)
        .await
        .map_err(|_| {
            failed(format!(
                "no TLS handshake within {limit:?} of connecting; \
                 does the server speak TLS on this port?"
            ))
        })?
        .map_err(|e| failed(explain(&e, &shown)))?;
    let (_, session) = stream.get_ref();
    tracing::debug!(server = %addr, version = ?session.protocol_version(),
        cipher = ?session.negotiated_cipher_suite().map(|s| s.suite()), "TLS established");
    Ok(Stream::Tls(Box::new(stream)))
}

/// Whether `e` is a TLS failure (a rustls error carried in an I/O error).
pub(crate) fn is_tls_error(e: &io::Error) -> bool {
    e.get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
        .is_some()
}

/// A TLS failure in words, with what to do about it; `name` is the server name checked.
pub(crate) fn explain(e: &io::Error, name: &str) -> String {
    use rustls::{AlertDescription as A, CertificateError as C, Error as R};
    let Some(tls) = e
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<rustls::Error>())
    else {
        return match e.kind() {
            io::ErrorKind::UnexpectedEof | io::ErrorKind::ConnectionReset => format!(
                "the server closed the connection during the TLS handshake ({e}); \
                 does it speak TLS on this port, and does it accept this client's certificate?"
            ),
            _ => format!("{e}"),
        };
    };
    let hint = match tls {
        R::InvalidCertificate(C::UnknownIssuer) | R::InvalidCertificate(C::BadSignature) => {
            "the server's certificate is not signed by the CA given; \
             give the CA that issued it (--ssl-ca-file)"
                .to_string()
        }
        R::InvalidCertificate(C::NotValidForName)
        | R::InvalidCertificate(C::NotValidForNameContext { .. }) => format!(
            "the server's certificate is not valid for {name:?}; connect by a name the \
             certificate lists, or set the expected name (--ssl-server-name)"
        ),
        R::InvalidCertificate(C::Expired) | R::InvalidCertificate(C::ExpiredContext { .. }) => {
            "the server's certificate has expired; renew it".to_string()
        }
        R::InvalidCertificate(C::NotValidYet)
        | R::InvalidCertificate(C::NotValidYetContext { .. }) => {
            "the server's certificate is not valid yet; check both clocks".to_string()
        }
        R::AlertReceived(A::CertificateRequired) => {
            "the server requires a client certificate; give one (--ssl-certificate, --ssl-key)"
                .to_string()
        }
        R::AlertReceived(
            A::BadCertificate
            | A::UnknownCA
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::CertificateRevoked
            | A::AccessDenied,
        ) => "the server refused this client's certificate; \
              use one issued by the CA the server trusts, and not expired"
            .to_string(),
        R::AlertReceived(A::HandshakeFailure) => "the server refused the handshake; \
             it may require a client certificate, or share no TLS version or cipher with this client"
            .to_string(),
        R::InvalidMessage(_) | R::InappropriateMessage { .. } => {
            "the server did not answer with TLS; is this its TLS port (and TLS enabled on it)?"
                .to_string()
        }
        _ => String::new(),
    };
    if hint.is_empty() {
        format!("{tls}")
    } else {
        format!("{tls}: {hint}")
    }
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Tls(s) => Pin::new(s.as_mut()).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for ReadHalf {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ReadHalf::Plain(s) => Pin::new(s).poll_read(cx, buf),
            ReadHalf::Tls(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WriteHalf {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_write(cx, buf),
            WriteHalf::Tls(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_flush(cx),
            WriteHalf::Tls(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WriteHalf::Plain(s) => Pin::new(s).poll_shutdown(cx),
            WriteHalf::Tls(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}
