//! The real C++ gearmand (Debian's `gearman-job-server`, `/usr/sbin/gearmand`), started on a
//! free loopback port for differential tests and killed when the guard drops.
//!
//! Note `/usr/bin/gearmand` on Debian is a different (Perl) server; we always run the C++ one.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use tokio::net::TcpStream;
use tokio::process::{Child, Command};

use crate::{external, RawConn};

/// Where Debian installs the C++ gearmand.
pub const GEARMAND_PATH: &str = "/usr/sbin/gearmand";

/// How long gearmand may take to accept its first connection.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// Start attempts: a port found free may be taken by someone else before gearmand binds it.
const START_ATTEMPTS: u32 = 5;

static LOG_SEQ: AtomicU32 = AtomicU32::new(0);

/// A running gearmand on `127.0.0.1:<free port>`, with the in-memory (`builtin`) queue.
pub struct Gearmand {
    /// Where it listens.
    pub addr: SocketAddr,
    child: Child,
    log: PathBuf,
}

impl Gearmand {
    /// Starts gearmand with default settings. `None` (after printing why) when it is not
    /// installed and we are not under CI; see [`external::require`].
    pub async fn start() -> Option<Gearmand> {
        Gearmand::start_with(&[]).await
    }

    /// Starts gearmand with extra command-line arguments (e.g. `["--job-retries", "1"]`);
    /// `-q` among them replaces the `builtin` queue.
    pub async fn start_with(extra: &[&str]) -> Option<Gearmand> {
        let bin = external::require(GEARMAND_PATH, "the C++ gearmand for differential tests")?;
        let mut last_log = String::new();
        for _ in 0..START_ATTEMPTS {
            let port = free_port();
            let log = std::env::temp_dir().join(format!(
                "gearbox-gearmand-{}-{}.log",
                std::process::id(),
                LOG_SEQ.fetch_add(1, Ordering::Relaxed)
            ));
            let mut cmd = Command::new(&bin);
            cmd.arg("-p")
                .arg(port.to_string())
                .args(["-L", "127.0.0.1"])
                .args(
                    (!extra.contains(&"-q"))
                        .then_some(["-q", "builtin"])
                        .into_iter()
                        .flatten(),
                )
                .arg(format!("--log-file={}", log.display()))
                .args(extra)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .kill_on_drop(true);
            let child = cmd
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {bin:?}: {e}"));
            let addr = SocketAddr::from(([127, 0, 0, 1], port));
            let mut g = Gearmand { addr, child, log };
            if g.wait_ready().await {
                return Some(g);
            }
            // It exited (most likely the port was taken meanwhile): try another port.
            last_log = g.log_text();
        }
        panic!("gearmand did not start after {START_ATTEMPTS} attempts; last log:\n{last_log}");
    }

    /// Waits until gearmand accepts connections and answers `getpid` with its own pid.
    /// False if it exited first; panics if it neither exits nor answers in time.
    async fn wait_ready(&mut self) -> bool {
        let deadline = Instant::now() + START_TIMEOUT;
        let mut backoff = Duration::from_millis(5);
        loop {
            if let Ok(Some(_)) = self.child.try_wait() {
                return false;
            }
            if let Ok(stream) = TcpStream::connect(self.addr).await {
                // Make sure the listener is ours, not another process that took the port
                // (ours then fails to bind and exits). Any failure of the probe — refused,
                // reset, closed, a foreign answer — means: kill it and try another port.
                let expected = self.child.id().map(|pid| format!("OK {pid}\n"));
                if expected.is_some() && probe_getpid(stream).await == expected {
                    return true;
                }
                let _ = self.child.kill().await;
                return false;
            }
            assert!(
                Instant::now() < deadline,
                "gearmand did not accept connections within {START_TIMEOUT:?}; log:\n{}",
                self.log_text()
            );
            // Polling a not-yet-listening port: the only readiness signal gearmand gives.
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_millis(100));
        }
    }

    /// The gearmand process id.
    pub fn pid(&self) -> u32 {
        self.child.id().expect("gearmand is running")
    }

    /// Port as a string, for command-line tools.
    pub fn port(&self) -> String {
        self.addr.port().to_string()
    }

    /// Opens a raw connection.
    pub async fn connect(&self) -> RawConn {
        RawConn::connect(self.addr).await
    }

    /// gearmand's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Gearmand {
    fn drop(&mut self) {
        crate::process::reap(&mut self.child);
        if std::thread::panicking() {
            eprintln!(
                "gearmand log ({}):\n{}",
                self.log.display(),
                self.log_text()
            );
        }
        let _ = std::fs::remove_file(&self.log);
    }
}

/// Sends `getpid` on `stream` and returns the reply line, or `None` if the peer fails to
/// answer one line within the start timeout.
async fn probe_getpid(mut stream: TcpStream) -> Option<String> {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let exchange = async {
        stream.write_all(b"getpid\r\n").await.ok()?;
        let mut line = String::new();
        let n = BufReader::new(&mut stream)
            .read_line(&mut line)
            .await
            .ok()?;
        (n > 0).then_some(line)
    };
    tokio::time::timeout(START_TIMEOUT, exchange)
        .await
        .ok()
        .flatten()
}

/// A loopback port that was free a moment ago (bound to port 0, then released).
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    l.local_addr().expect("local addr").port()
}
