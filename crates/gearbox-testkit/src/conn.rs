//! [`RawConn`]: a raw packet connection to any Gearman server, plain or TLS, with the
//! packet-level steps almost every test takes (submit and read JOB_CREATED, expect an ERROR,
//! drain what is queued, admin lines). Every read is bounded by [`READ_TIMEOUT`].

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{Bytes, BytesMut};
use gearbox_proto::{ClientCodec, Request, Response};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_util::codec::Decoder;

use crate::build::b;
use crate::READ_TIMEOUT;

/// A byte stream a [`RawConn`] runs over: a TCP socket or a TLS stream on one.
pub trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}

impl<S: AsyncRead + AsyncWrite + Unpin + Send> Stream for S {}

/// A raw connection to any Gearman server.
pub struct RawConn {
    stream: Box<dyn Stream>,
    buf: BytesMut,
    codec: ClientCodec,
}

impl RawConn {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect(addr).await.expect("connect to server");
        stream.set_nodelay(true).expect("nodelay");
        RawConn::over(stream)
    }

    /// A connection over an established stream (a TLS stream, say).
    pub fn over(stream: impl Stream + 'static) -> RawConn {
        RawConn {
            stream: Box::new(stream),
            buf: BytesMut::new(),
            codec: ClientCodec::default(),
        }
    }

    /// Connects to `addr` over TLS with `config`, checking the server's certificate for
    /// `localhost`; panics if the handshake fails.
    pub async fn connect_tls(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> RawConn {
        match RawConn::try_connect_tls(addr, config).await {
            Ok(c) => c,
            Err(e) => panic!("TLS handshake with {addr}: {e}"),
        }
    }

    /// Connects to `addr` over TLS with `config` (server name `localhost`); the handshake's
    /// error if it fails. (With TLS 1.3 a client certificate is checked after the client's
    /// side of the handshake is done: a refusal then shows as the first read failing.)
    pub async fn try_connect_tls(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
    ) -> std::io::Result<RawConn> {
        let tcp = TcpStream::connect(addr).await?;
        tcp.set_nodelay(true)?;
        let name = rustls_pki_types::ServerName::try_from("localhost").expect("a DNS name");
        let connect = tokio_rustls::TlsConnector::from(config).connect(name, tcp);
        let stream = tokio::time::timeout(READ_TIMEOUT, connect)
            .await
            .map_err(|_| std::io::Error::other("TLS handshake timed out"))??;
        Ok(RawConn::over(stream))
    }

    /// Sends ECHO_REQ and returns whether its ECHO_RES came back (false if the connection
    /// failed or closed instead): whether the server serves this connection.
    pub async fn echo_works(&mut self) -> bool {
        let mut b = BytesMut::new();
        let data = Bytes::from_static(b"echo-check");
        Request::EchoReq { data: data.clone() }.encode(&mut b);
        if self.stream.write_all(&b).await.is_err() || self.stream.flush().await.is_err() {
            return false;
        }
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(Response::EchoRes { data: d })) => return d == data,
                Ok(Some(_)) | Err(_) => return false,
                Ok(None) => {}
            }
            match tokio::time::timeout(READ_TIMEOUT, self.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return false,
            }
        }
    }

    /// Opens `N` connections to `addr`, in order (e.g. `let [mut admin, mut client] = ...`).
    pub async fn connect_many<const N: usize>(addr: SocketAddr) -> [RawConn; N] {
        let mut conns = Vec::with_capacity(N);
        for _ in 0..N {
            conns.push(RawConn::connect(addr).await);
        }
        match conns.try_into() {
            Ok(conns) => conns,
            Err(_) => unreachable!("exactly N connections were opened"),
        }
    }

    /// Sends one request.
    pub async fn send(&mut self, req: &Request) {
        let mut b = BytesMut::new();
        req.encode(&mut b);
        self.send_raw(&b).await;
    }

    /// Sends arbitrary bytes.
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("write to server");
        self.stream.flush().await.expect("flush to server");
    }

    /// Reads the next packet; panics after [`READ_TIMEOUT`] or if the connection closes.
    pub async fn recv(&mut self) -> Response {
        match self.recv_or_close().await {
            Some(r) => r,
            None => panic!("connection closed while waiting for a packet"),
        }
    }

    /// Reads the next packet, or `None` if the server closed the connection.
    pub async fn recv_or_close(&mut self) -> Option<Response> {
        loop {
            if let Some(r) = self
                .codec
                .decode(&mut self.buf)
                .expect("valid packet from server")
            {
                return Some(r);
            }
            if !self.read_more().await {
                return None;
            }
        }
    }

    /// Sends `req` and returns the next packet.
    pub async fn ask(&mut self, req: &Request) -> Response {
        self.send(req).await;
        self.recv().await
    }

    /// Sends a submit request and returns the handle from its JOB_CREATED; panics on any
    /// other reply.
    pub async fn submit(&mut self, req: &Request) -> Bytes {
        match self.ask(req).await {
            Response::JobCreated { handle } => handle,
            other => panic!("expected JOB_CREATED, got {other:?}"),
        }
    }

    /// Sends `req` and expects an ERROR with `code`.
    pub async fn expect_error(&mut self, req: &Request, code: &str) {
        match self.ask(req).await {
            Response::Error { code: c, .. } => assert_eq!(c, b(code), "error code"),
            other => panic!("expected ERROR {code}, got {other:?}"),
        }
    }

    /// Sends OPTION_REQ `exceptions` and expects it acknowledged, so this connection
    /// receives WORK_EXCEPTION.
    pub async fn enable_exceptions(&mut self) {
        let option = b("exceptions");
        let req = Request::OptionReq {
            option: option.clone(),
        };
        assert_eq!(self.ask(&req).await, Response::OptionRes { option });
    }

    /// Proves that nothing else was queued for this connection: sends ECHO_REQ and asserts
    /// that the very next packet is its ECHO_RES.
    pub async fn assert_quiet(&mut self) {
        let data = Bytes::from_static(b"quiet-probe");
        self.send(&Request::EchoReq { data: data.clone() }).await;
        assert_eq!(self.recv().await, Response::EchoRes { data });
    }

    /// Every packet that arrives before the reply to an echo probe: proves exactly what was
    /// queued for this connection so far.
    pub async fn drain(&mut self) -> Vec<Response> {
        let probe = b("drain-probe");
        self.send(&Request::EchoReq {
            data: probe.clone(),
        })
        .await;
        let mut got = Vec::new();
        loop {
            match self.recv().await {
                Response::EchoRes { data } if data == probe => return got,
                r => got.push(r),
            }
        }
    }

    async fn read_more(&mut self) -> bool {
        let n = tokio::time::timeout(READ_TIMEOUT, self.stream.read_buf(&mut self.buf))
            .await
            .expect("server answered within the read timeout")
            .unwrap_or(0);
        n > 0
    }

    /// Sends an admin line (with `\r\n` appended unless `line` ends in `\n`) and reads a
    /// one-line reply, returned with its line ending.
    pub async fn admin_line(&mut self, line: &str) -> String {
        self.send_admin(line).await;
        self.read_line().await
    }

    /// Sends an admin line and reads a listing up to and including its `.\n` line (or the
    /// `ERR` line refusing it).
    pub async fn admin_list(&mut self, line: &str) -> String {
        self.send_admin(line).await;
        let first = self.read_line().await;
        if first.starts_with("ERR") {
            return first;
        }
        self.read_listing(first).await
    }

    /// Sends an admin line and reads whatever reply it gets: one `OK`/`ERR` line, or a
    /// listing through its `.` line.
    pub async fn admin(&mut self, line: &str) -> String {
        self.send_admin(line).await;
        let first = self.read_line().await;
        if first.starts_with("OK") || first.starts_with("ERR") || first == ".\n" {
            return first;
        }
        self.read_listing(first).await
    }

    /// Reads lines onto `all` (a listing's lines so far) through the `.\n` line.
    async fn read_listing(&mut self, mut all: String) -> String {
        while !all.ends_with("\n.\n") && all != ".\n" {
            all.push_str(&self.read_line().await);
        }
        all
    }

    async fn send_admin(&mut self, line: &str) {
        let mut s = line.to_string();
        if !s.ends_with('\n') {
            s.push_str("\r\n");
        }
        self.send_raw(s.as_bytes()).await;
    }

    /// Reads one text line including its `\n`.
    pub async fn read_line(&mut self) -> String {
        String::from_utf8_lossy(&self.read_line_bytes().await).into_owned()
    }

    /// Reads one line including its `\n`, as raw bytes (admin replies echo what was sent,
    /// which need not be UTF-8).
    pub async fn read_line_bytes(&mut self) -> Vec<u8> {
        loop {
            if let Some(pos) = self.buf.iter().position(|b| *b == b'\n') {
                return self.buf.split_to(pos + 1).to_vec();
            }
            assert!(
                self.read_more().await,
                "connection closed while waiting for a line"
            );
        }
    }

    /// Reads until the server closes the connection; returns what arrived meanwhile.
    pub async fn read_to_close(&mut self) -> Vec<u8> {
        while self.read_more().await {}
        self.buf.split().to_vec()
    }
}
