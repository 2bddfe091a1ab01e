//! Helpers for the `gearbox` tool tests: the built binary, `gearman`/`gearadmin` symlinks to
//! it in a scratch directory, the C tools, both servers, and comparisons of two runs.
#![allow(dead_code)] // each test file uses a different part

pub mod fake;

use std::ffi::OsStr;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use gearbox_proto::{Request, Response};
use gearbox_testkit::gearmand::Gearmand;
use gearbox_testkit::process::{Finished, Proc};
use gearbox_testkit::{external, RawConn, TestServer};
use tokio::process::Command;

/// A scratch directory holding `gearman` and `gearadmin` symlinks to the built `gearbox`
/// (under Cargo's per-target temporary directory, so `cargo clean` removes it).
pub fn links() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("tool-links-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("scratch dir");
        for name in ["gearman", "gearadmin"] {
            std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gearbox"), dir.join(name))
                .expect("symlink");
        }
        dir
    })
}

/// Our drop-in `tool` (`gearman` or `gearadmin`): a symlink of that name to `gearbox`.
pub fn our(tool: &str) -> PathBuf {
    links().join(tool)
}

/// The C tools, or `None` (skip, reason printed) outside CI.
pub fn c_tool(tool: &str) -> Option<PathBuf> {
    external::require(tool, "Debian gearman-tools, to compare the drop-in with")
}

/// A command with a clean Gearman environment and `argv[0]` set to `arg0`.
pub fn command(program: impl AsRef<OsStr>, arg0: &str, args: &[&str]) -> Command {
    let mut c = Command::new(program);
    c.arg0(arg0)
        .args(args)
        .env_remove("GEARMAN_SERVER")
        .env_remove("GEARMAN_SERVERS")
        .env_remove("GEARBOX_HTTP")
        // TLS settings (tests/tool_tls.rs sets them where it means to).
        .env_remove("GEARBOX_SSL")
        .env_remove("GEARBOX_SSL_CA_FILE")
        .env_remove("GEARBOX_SSL_CERTIFICATE")
        .env_remove("GEARBOX_SSL_KEY")
        .env_remove("GEARBOX_SSL_SERVER_NAME")
        .env_remove("GEARMAND_CA_CERTIFICATE")
        .env_remove("GEARMAN_CLIENT_PEM")
        .env_remove("GEARMAN_CLIENT_KEY")
        .env_remove("POSIXLY_CORRECT");
    c
}

/// Runs to completion with `stdin`.
pub async fn run(mut cmd: Command, stdin: &[u8]) -> Finished {
    cmd.kill_on_drop(true);
    let mut p = Proc::spawn_cmd(cmd);
    if !stdin.is_empty() {
        p.write_stdin(stdin).await;
    }
    p.finish().await
}

/// `gearbox ARGS` (the modern tool) against `servers`.
pub fn gearbox(servers: &str, args: &[&str]) -> Command {
    let mut c = command(env!("CARGO_BIN_EXE_gearbox"), "gearbox", &["-s", servers]);
    c.args(args);
    c
}

/// `pid(1234)` in libgearman's messages becomes `pid(N)`: the one thing two runs may differ in.
pub fn no_pid(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find("pid(") {
        out.push_str(&rest[..i + 4]);
        rest = rest[i + 4..].trim_start_matches(|c: char| c.is_ascii_digit());
        out.push('N');
    }
    out + rest
}

/// What two runs must agree on: exit status, standard output, standard error.
pub fn assert_same(what: &str, c: &Finished, ours: &Finished) {
    assert_eq!(
        (c.status.code(), &c.stdout, &c.stderr),
        (ours.status.code(), &ours.stdout, &ours.stderr),
        "{what}: the C tool (left) and ours (right) differ"
    );
}

/// A server of either kind.
pub enum Server {
    /// In-process gearbox.
    Gearbox(TestServer),
    /// Debian's gearmand.
    Gearmand(Gearmand),
}

impl Server {
    /// gearbox, and gearmand when installed.
    pub async fn both() -> Vec<Server> {
        let mut v = vec![Server::Gearbox(TestServer::start().await)];
        if let Some(g) = Gearmand::start().await {
            v.push(Server::Gearmand(g));
        }
        v
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        match self {
            Server::Gearbox(s) => s.addr,
            Server::Gearmand(g) => g.addr,
        }
    }

    /// The port as text.
    pub fn port(&self) -> String {
        self.addr().port().to_string()
    }

    /// `127.0.0.1:PORT`.
    pub fn list(&self) -> String {
        self.addr().to_string()
    }

    /// For messages.
    pub fn name(&self) -> &'static str {
        match self {
            Server::Gearbox(_) => "gearbox",
            Server::Gearmand(_) => "gearmand",
        }
    }

    /// Whether this is gearbox.
    pub fn is_gearbox(&self) -> bool {
        matches!(self, Server::Gearbox(_))
    }

    /// A raw connection.
    pub async fn raw(&self) -> RawConn {
        RawConn::connect(self.addr()).await
    }

    /// Polls `admin` until `pred` holds for its reply (a listing), for at most 20 s.
    pub async fn wait_admin(&self, admin: &str, what: &str, pred: impl Fn(&str) -> bool) -> String {
        let mut c = self.raw().await;
        let mut pause = Duration::from_millis(2);
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let reply = c.admin_list(admin).await;
            if pred(&reply) {
                return reply;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{}: timed out waiting for {what}; last {admin}: {reply:?}",
                self.name()
            );
            tokio::time::sleep(pause).await;
            pause = (pause * 2).min(Duration::from_millis(50));
        }
    }

    /// Waits until `function` has `n` registered workers.
    pub async fn wait_workers(&self, function: &str, n: usize) {
        let needle = format!("{function}\t");
        self.wait_admin("status", "workers to register", |s| {
            s.lines()
                .any(|l| l.starts_with(&needle) && l.rsplit('\t').next() == Some(&n.to_string()))
        })
        .await;
    }

    /// Waits until the server lists exactly `n` connections (so a finished tool's
    /// connection is gone before the next tool runs); the polling connection counts.
    pub async fn wait_connections(&self, n: usize) {
        self.wait_admin("workers", "connections to settle", |s| {
            s.lines().count() == n + 1
        })
        .await;
    }
}

/// Submits a background job on a raw connection; returns its handle.
pub async fn submit_bg(c: &mut RawConn, function: &str, unique: &str, data: &str) -> String {
    let req = gearbox_testkit::build::submit(
        function,
        unique,
        data,
        gearbox_proto::Priority::Normal,
        true,
    );
    c.send(&req).await;
    match c.recv().await {
        Response::JobCreated { handle } => String::from_utf8_lossy(&handle).into_owned(),
        other => panic!("expected JOB_CREATED, got {other:?}"),
    }
}

/// A raw worker: registers `function`, then waits (PRE_SLEEP/NOOP) for a job and returns
/// its handle and payload.
pub async fn raw_worker_take(w: &mut RawConn, function: &str) -> (bytes::Bytes, bytes::Bytes) {
    w.send(&Request::CanDo {
        function: gearbox_testkit::build::b(function),
    })
    .await;
    loop {
        w.send(&Request::GrabJob).await;
        match w.recv().await {
            Response::JobAssign { handle, data, .. } => return (handle, data),
            Response::NoJob => {
                w.send(&Request::PreSleep).await;
                match w.recv().await {
                    Response::Noop => {}
                    other => panic!("expected NOOP, got {other:?}"),
                }
            }
            other => panic!("expected JOB_ASSIGN or NO_JOB, got {other:?}"),
        }
    }
}
