//! # gearbox-testkit: helpers for tests
//!
//! ## Layout
//!
//! - [`TestServer`]: an in-process gearbox server on `127.0.0.1:0` (or, to restart one, on a
//!   given address), stopped on demand.
//! - [`RawConn`]: a raw packet connection that sends typed requests or arbitrary bytes and
//!   reads typed responses and admin text, every read bounded by a timeout so a broken server
//!   fails the test instead of hanging it.
//! - [`build`]: short constructors for requests in tests.
//! - [`external`]: finding third-party programs (gearmand, gearman, gearadmin, python3 with
//!   gear) and skipping with a printed reason when one is missing outside CI.
//! - [`gearmand`]: the real C++ gearmand on a free loopback port, for differential tests.
//! - [`process`]: child processes (third-party tools) killed on drop, every wait bounded.
//! - [`conformance`]: the store conformance suite, run against every store.
//! - [`servers`]: throwaway database servers for the store tests (PostgreSQL, MariaDB,
//!   Redis), each on a free 127.0.0.1 port in a temporary directory, stopped on drop, and
//!   SKIPPED when not installed (a failure under CI).

pub mod build;
pub mod conformance;
pub mod external;
pub mod gearmand;
pub mod process;
pub mod servers;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use gearbox_proto::{ClientCodec, Request, Response};
use gearbox_server::{Config, ShutdownMode};
use gearbox_store::{MemoryStore, Store};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tokio_util::codec::Decoder;

/// How long any single read in a test may take before the test fails.
pub const READ_TIMEOUT: Duration = Duration::from_secs(10);

/// An in-process gearbox server on an ephemeral loopback port.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<ShutdownMode>>,
    handle: Option<JoinHandle<Result<(), gearbox_server::ServerError>>>,
}

impl TestServer {
    /// Starts a server with default settings and handle prefix `H:test`.
    pub async fn start() -> TestServer {
        TestServer::start_with(Config {
            job_handle_prefix: Some("H:test".into()),
            ..Config::default()
        })
        .await
    }

    /// Starts a server with `config`.
    pub async fn start_with(config: Config) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        TestServer::serve(listener, config)
    }

    /// Starts a server on `addr`, typically the address of a server just stopped (a restart).
    /// The old listener is released by its aborted accept task, which may run a moment after
    /// `stop` returned, so `AddrInUse` is retried (yielding, then briefly pausing) for 5 s.
    pub async fn start_on(addr: SocketAddr, config: Config) -> TestServer {
        TestServer::serve(bind_retrying(addr).await, config)
    }

    /// Starts a server that keeps background jobs in `store` (replaying what it holds).
    pub async fn start_with_store(config: Config, store: Arc<dyn Store>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        TestServer::serve_with(listener, config, store)
    }

    /// Starts a server on `addr` (see [`TestServer::start_on`]) with a store.
    pub async fn start_on_with_store(
        addr: SocketAddr,
        config: Config,
        store: Arc<dyn Store>,
    ) -> TestServer {
        TestServer::serve_with(bind_retrying(addr).await, config, store)
    }

    fn serve(listener: TcpListener, config: Config) -> TestServer {
        TestServer::serve_with(listener, config, Arc::new(MemoryStore::new()))
    }

    fn serve_with(listener: TcpListener, config: Config, store: Arc<dyn Store>) -> TestServer {
        let addr = listener.local_addr().expect("local addr");
        let (tx, rx) = oneshot::channel();
        let handle = tokio::spawn(gearbox_server::run_with_store(
            vec![listener],
            config,
            store,
            async move { rx.await.unwrap_or(ShutdownMode::Immediate) },
        ));
        TestServer {
            addr,
            stop: Some(tx),
            handle: Some(handle),
        }
    }

    /// Opens a raw connection.
    pub async fn connect(&self) -> RawConn {
        RawConn::connect(self.addr).await
    }

    /// Port as a string, for command-line tools.
    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Asks the server to stop and waits until it has.
    pub async fn stop(mut self, mode: ShutdownMode) {
        if let Some(tx) = self.stop.take() {
            let _ = tx.send(mode);
        }
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), h)
                .await
                .expect("server stops within 30 s")
                .expect("server task")
                .expect("server result");
        }
    }

    /// Waits for the server to stop by itself (e.g. after an admin `shutdown`).
    pub async fn wait_stopped(mut self) {
        if let Some(h) = self.handle.take() {
            tokio::time::timeout(Duration::from_secs(30), h)
                .await
                .expect("server stops within 30 s")
                .expect("server task")
                .expect("server result");
        }
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Some(h) = self.handle.take() {
            h.abort();
        }
    }
}

/// Binds `addr`, typically the address of a server just stopped. The old listener is released
/// by its aborted accept task, which may run a moment after `stop` returned, so `AddrInUse` is
/// retried (yielding, then briefly pausing) for 5 s.
async fn bind_retrying(addr: SocketAddr) -> TcpListener {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    let mut tries = 0u32;
    loop {
        match TcpListener::bind(addr).await {
            Ok(listener) => return listener,
            Err(e) if e.kind() == std::io::ErrorKind::AddrInUse => {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "{addr} still in use: {e}"
                );
                tries += 1;
                if tries < 100 {
                    tokio::task::yield_now().await;
                } else {
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            }
            Err(e) => panic!("bind {addr}: {e}"),
        }
    }
}

/// A raw connection to any Gearman server.
pub struct RawConn {
    stream: TcpStream,
    buf: BytesMut,
    codec: ClientCodec,
}

impl RawConn {
    /// Connects to `addr`.
    pub async fn connect(addr: SocketAddr) -> RawConn {
        let stream = TcpStream::connect(addr).await.expect("connect to server");
        stream.set_nodelay(true).expect("nodelay");
        RawConn {
            stream,
            buf: BytesMut::new(),
            codec: ClientCodec::default(),
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
            let n = tokio::time::timeout(READ_TIMEOUT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("server answered within the read timeout")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
        }
    }

    /// Proves that nothing else was queued for this connection: sends ECHO_REQ and asserts
    /// that the very next packet is its ECHO_RES.
    pub async fn assert_quiet(&mut self) {
        let data = bytes::Bytes::from_static(b"quiet-probe");
        self.send(&Request::EchoReq { data: data.clone() }).await;
        assert_eq!(self.recv().await, Response::EchoRes { data });
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

    /// Sends an admin line and reads a listing up to and including its `.\n` line.
    pub async fn admin_list(&mut self, line: &str) -> String {
        self.send_admin(line).await;
        let mut all = String::new();
        loop {
            let l = self.read_line().await;
            all.push_str(&l);
            if l == ".\n" || l.starts_with("ERR") {
                return all;
            }
        }
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
