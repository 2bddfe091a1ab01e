//! [`Target`]: a server of either kind, the in-process gearbox or the real gearmand, for tests
//! that run one scenario against both and compare, or assert each server's documented
//! behaviour where they deliberately differ.

use std::net::SocketAddr;

use gearbox_server::{Config, ShutdownMode};

use crate::gearmand::Gearmand;
use crate::{RawConn, TestServer};

/// A running server of either kind.
pub enum Target {
    /// The in-process gearbox.
    Gearbox(TestServer),
    /// The real C++ gearmand.
    Gearmand(Gearmand),
}

impl Target {
    /// An in-process gearbox with default settings (handle prefix `H:test`).
    pub async fn gearbox() -> Target {
        Target::Gearbox(TestServer::start().await)
    }

    /// An in-process gearbox with `config`.
    pub async fn gearbox_with(config: Config) -> Target {
        Target::Gearbox(TestServer::start_with(config).await)
    }

    /// The real gearmand, or `None` (reason printed) when it is not installed outside CI.
    pub async fn gearmand() -> Option<Target> {
        Some(Target::Gearmand(Gearmand::start().await?))
    }

    /// The real gearmand with extra command-line arguments, or `None` as for
    /// [`Target::gearmand`].
    pub async fn gearmand_with(args: &[&str]) -> Option<Target> {
        Some(Target::Gearmand(Gearmand::start_with(args).await?))
    }

    /// gearbox, then gearmand when it is installed (outside CI a missing one is skipped).
    pub async fn both() -> Vec<Target> {
        let mut v = vec![Target::gearbox().await];
        v.extend(Target::gearmand().await);
        v
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Target::Gearbox(s) => s.addr,
            Target::Gearmand(g) => g.addr,
        }
    }

    /// `127.0.0.1:port`, for a client's or worker's server list.
    pub fn list(&self) -> String {
        self.addr().to_string()
    }

    /// Port as a string, for command-line tools.
    pub fn port(&self) -> String {
        self.addr().port().to_string()
    }

    /// Whether this is gearbox (for the documented, deliberate differences).
    pub fn is_gearbox(&self) -> bool {
        matches!(self, Target::Gearbox(_))
    }

    /// Whether this is the real gearmand.
    pub fn is_gearmand(&self) -> bool {
        !self.is_gearbox()
    }

    /// `gearbox` or `gearmand`, for assertion messages.
    pub fn name(&self) -> &'static str {
        if self.is_gearbox() {
            "gearbox"
        } else {
            "gearmand"
        }
    }

    /// The process id the server reports for `getpid`.
    pub fn pid(&self) -> u32 {
        match self {
            Target::Gearbox(_) => std::process::id(),
            Target::Gearmand(g) => g.pid(),
        }
    }

    /// Opens a raw connection.
    pub async fn connect(&self) -> RawConn {
        RawConn::connect(self.addr()).await
    }

    /// Opens `N` raw connections, in order: `let [mut admin, mut c] = t.connections().await`.
    pub async fn connections<const N: usize>(&self) -> [RawConn; N] {
        RawConn::connect_many(self.addr()).await
    }

    /// Stops the server (gearbox: immediate shutdown, waited for; gearmand: killed), closing
    /// every connection.
    pub async fn stop(self) {
        match self {
            Target::Gearbox(s) => s.stop(ShutdownMode::Immediate).await,
            Target::Gearmand(g) => drop(g),
        }
    }

    /// Expects gearmand's observed behaviour from both servers.
    pub fn expect_same(&self, what: &str, actual: &str, gearmand: &str) {
        assert_eq!(actual, gearmand, "{}: {what}", self.name());
    }

    /// Expects `gearmand` from gearmand and `gearbox` from gearbox: for a documented,
    /// deliberate difference.
    pub fn expect_differs(&self, what: &str, actual: &str, gearmand: &str, gearbox: &str) {
        let want = if self.is_gearbox() { gearbox } else { gearmand };
        assert_eq!(
            actual,
            want,
            "{}: {what} (a documented difference)",
            self.name()
        );
    }
}

/// Runs each `async fn(Target)` scenario against gearbox and against the real gearmand (the
/// latter skipped with a printed reason when it is not installed outside CI), as two tests in
/// a module named after the scenario: `scenario::gearbox` and `scenario::gearmand`. Each runs
/// on a two-thread runtime, so blocking handlers and background tasks make progress.
///
/// ```ignore
/// async fn echo_works(server: Target) { /* ... */ }
/// on_both_servers!(echo_works);
/// ```
#[macro_export]
macro_rules! on_both_servers {
    ($($case:ident),* $(,)?) => {$(
        mod $case {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn gearbox() {
                super::$case($crate::Target::gearbox().await).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn gearmand() {
                if let Some(server) = $crate::Target::gearmand().await {
                    super::$case(server).await;
                }
            }
        }
    )*};
}
