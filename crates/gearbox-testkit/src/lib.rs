//! # gearbox-testkit: helpers for tests
//!
//! ## Layout
//!
//! - [`TestServer`]: an in-process gearbox server on `127.0.0.1:0` (or, to restart one, on a
//!   given address), stopped on demand.
//! - [`RawConn`] ([`conn`]): a raw packet connection that sends typed requests or arbitrary
//!   bytes and reads typed responses and admin text, every read bounded by a timeout so a
//!   broken server fails the test instead of hanging it; with the steps most tests take
//!   (submit, expect an ERROR, drain what is queued, admin lines).
//! - [`build`]: short constructors for requests and responses in tests, and [`build::Work`],
//!   one WORK_* packet as a worker sends it and as the server forwards it.
//! - [`target`]: [`Target`], a server of either kind (gearbox or the real gearmand), for
//!   tests that run one scenario against both, and [`on_both_servers!`], which makes such a
//!   scenario two tests.
//! - [`poll`]: [`Poller`], bounded polling of state that only shows through a query.
//! - [`external`]: finding third-party programs (gearmand, gearman, gearadmin, python3 with
//!   gear) and skipping with a printed reason when one is missing outside CI.
//! - [`gearmand`]: the real C++ gearmand on a free loopback port, for differential tests.
//! - [`process`]: child processes (third-party tools) killed on drop, every wait bounded.
//! - [`conformance`]: the store conformance suite, run against every store.
//! - [`servers`]: throwaway database servers for the store tests (PostgreSQL, MariaDB,
//!   Redis), each on a free 127.0.0.1 port in a temporary directory, stopped on drop, and
//!   SKIPPED when not installed (a failure under CI).
//! - [`tls`]: [`tls::TestPki`], test certificates (CA, server, clients, another CA's, an
//!   expired one) generated per test and written as PEM files; the server's TLS from them
//!   ([`TestServer::start_tls`]) and client configurations ([`RawConn::connect_tls`]).
//! - [`tls_proxy`]: [`tls_proxy::TlsProxy`], a TLS terminator (optionally requiring client
//!   certificates) in front of a plain server, for testing TLS clients.

pub mod build;
pub mod conformance;
pub mod conn;
pub mod external;
pub mod gearmand;
pub mod poll;
pub mod process;
pub mod servers;
pub mod target;
pub mod tls;
pub mod tls_proxy;

pub use conn::RawConn;
pub use poll::Poller;
pub use target::Target;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use gearbox_server::{Config, Listener, ServerTls, ShutdownMode};
use gearbox_store::{MemoryStore, Store};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

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

    /// Starts a server with `config` whose one listener speaks TLS with `tls`.
    pub async fn start_tls(config: Config, tls: Arc<ServerTls>) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind 127.0.0.1:0");
        TestServer::serve_listener(
            Listener::tls(listener, tls),
            config,
            Arc::new(MemoryStore::new()),
        )
    }

    /// Starts a server on `addr`, typically the address of a server just stopped (a restart):
    /// its listeners are closed by the time `stop` returns.
    pub async fn start_on(addr: SocketAddr, config: Config) -> TestServer {
        TestServer::serve(bind_again(addr).await, config)
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
        TestServer::serve_with(bind_again(addr).await, config, store)
    }

    fn serve(listener: TcpListener, config: Config) -> TestServer {
        TestServer::serve_with(listener, config, Arc::new(MemoryStore::new()))
    }

    fn serve_with(listener: TcpListener, config: Config, store: Arc<dyn Store>) -> TestServer {
        TestServer::serve_listener(listener.into(), config, store)
    }

    fn serve_listener(listener: Listener, config: Config, store: Arc<dyn Store>) -> TestServer {
        let addr = listener.tcp.local_addr().expect("local addr");
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

    /// Opens a raw TLS connection with `config` (see [`RawConn::connect_tls`]).
    pub async fn connect_tls(&self, config: Arc<rustls::ClientConfig>) -> RawConn {
        RawConn::connect_tls(self.addr, config).await
    }

    /// Opens `N` raw connections, in order: `let [mut admin, mut c] = server.connections().await`.
    pub async fn connections<const N: usize>(&self) -> [RawConn; N] {
        RawConn::connect_many(self.addr).await
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
        self.wait_stopped().await;
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

/// Binds `addr`, typically the address of a server just stopped: the server closes its
/// listeners before its `run` returns, so the port is free at once (no retry on
/// `AddrInUse`: one would hide a listener left open).
async fn bind_again(addr: SocketAddr) -> TcpListener {
    TcpListener::bind(addr)
        .await
        .unwrap_or_else(|e| panic!("bind {addr} right after its server stopped: {e}"))
}
