//! A private `redis-server` (`apt-get install redis-server`): a free port on 127.0.0.1, a
//! temporary directory, no RDB snapshots, an append-only file fsynced on every write. Killed
//! on drop. [`RedisServer::start_tls`] adds a TLS port with test certificates.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, skip};
use crate::tls::CertFiles;

const BINARY: &str = "/usr/bin/redis-server";

/// A running `redis-server` and its data directory.
pub struct RedisServer {
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
    /// The TLS port and the arguments that set it up, if started with TLS.
    tls: Option<(u16, Vec<String>)>,
}

impl RedisServer {
    /// Starts a server and waits until it answers `PING`, or returns `None` (after printing
    /// `SKIPPED`) when redis-server is not installed outside CI.
    pub fn start(test: &str) -> Option<RedisServer> {
        Self::start_with(test, None)
    }

    /// [`RedisServer::start`] with a TLS port as well (see [`RedisServer::tls_port`]):
    /// `server` is the server's certificate and key, `ca` the CA that client certificates
    /// must chain to, and `client_certs` whether clients must present one
    /// (`tls-auth-clients`). The plain port stays open for the tests' own inspection.
    pub fn start_tls(
        test: &str,
        ca: &Path,
        server: &CertFiles,
        client_certs: bool,
    ) -> Option<RedisServer> {
        let args = vec![
            "--tls-cert-file".to_owned(),
            server.cert.display().to_string(),
            "--tls-key-file".to_owned(),
            server.key.display().to_string(),
            "--tls-ca-cert-file".to_owned(),
            ca.display().to_string(),
            "--tls-auth-clients".to_owned(),
            if client_certs { "yes" } else { "no" }.to_owned(),
        ];
        Self::start_with(test, Some((free_port(), args)))
    }

    /// The TLS port, if started with [`RedisServer::start_tls`].
    pub fn tls_port(&self) -> Option<u16> {
        self.tls.as_ref().map(|(port, _)| *port)
    }

    fn start_with(test: &str, tls: Option<(u16, Vec<String>)>) -> Option<RedisServer> {
        if !Path::new(BINARY).exists() {
            skip(
                test,
                &format!(
                    "{BINARY} not found (apt-get install redis-server, or run .ci/install-deps)"
                ),
            );
            return None;
        }
        let mut server = RedisServer {
            child: None,
            port: free_port(),
            dir: tempfile::Builder::new()
                .prefix("gearbox-redis-")
                .tempdir()
                .expect("temporary directory for redis-server"),
            tls,
        };
        server.spawn();
        Some(server)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Kills the server with SIGKILL (as in a crash) and waits until it is gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same port and directory, so it replays its
    /// append-only file.
    pub fn restart(&mut self) {
        self.kill();
        self.spawn();
    }

    fn spawn(&mut self) {
        let log = self.dir.path().join("redis.log");
        let mut command = Command::new(BINARY);
        if let Some((port, args)) = &self.tls {
            command.arg("--tls-port").arg(port.to_string()).args(args);
        }
        let child = command
            .arg("--port")
            .arg(self.port.to_string())
            .args(["--bind", "127.0.0.1"])
            .arg("--dir")
            .arg(self.dir.path())
            .args(["--save", ""])
            .args(["--appendonly", "yes"])
            .args(["--appendfsync", "always"])
            .args(["--daemonize", "no"])
            .arg("--logfile")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if ping(self.port) {
                return;
            }
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("redis-server exited at start-up ({status}):\n{log}");
            }
            assert!(
                Instant::now() < deadline,
                "redis-server on port {} did not answer PING within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// True when a server on `port` answers `PING` with `+PONG` (and is done loading its AOF).
fn ping(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"PING\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(n) => buf[..n].starts_with(b"+PONG"),
        Err(_) => false,
    }
}
