//! A throwaway PostgreSQL server for the tests, started from Debian's binaries
//! (`apt-get install postgresql`) in a temporary directory and stopped on drop.
//!
//! When the binaries are missing, [`PgServer::start`] prints `SKIPPED: ...` and returns `None`,
//! except under CI (`CI=true`), where it panics: there they must be installed
//! (`.ci/install-deps`).

#![allow(dead_code)]

use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use bytes::Bytes;
use gearbox_proto::Priority;
use gearbox_store::StoredJob;

/// The superuser initdb creates; trust authentication on 127.0.0.1, so no password.
pub const USER: &str = "gearbox";

/// A PostgreSQL server running in its own temporary directory.
pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    /// Run the server's tools as this user (`postgres` when we are root; initdb refuses root).
    run_as: Option<String>,
}

impl PgServer {
    /// Initialises a cluster and starts it, or returns `None` (after printing `SKIPPED`)
    /// when PostgreSQL is not installed outside CI.
    pub fn start(test: &str) -> Option<PgServer> {
        let Some(bin) = find_bin() else {
            let msg = "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin \
                       (apt-get install postgresql, or run .ci/install-deps)";
            if std::env::var("CI").is_ok_and(|v| v == "true") {
                panic!("{msg}");
            }
            println!("SKIPPED: {test}: {msg}");
            eprintln!("SKIPPED: {test}: {msg}");
            return None;
        };
        let root = unsafe { libc::geteuid() } == 0;
        let run_as = root.then(|| "postgres".to_owned());
        let dir = tempfile::Builder::new()
            .prefix("gearbox-pg-")
            .tempdir()
            .unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
        if root {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(status.success(), "chown of the data directory failed");
        }
        let server = PgServer {
            bin,
            port: free_port(),
            dir,
            run_as,
        };
        let out = server.tool(
            "initdb",
            &[
                "-D",
                server.data().to_str().unwrap(),
                "-U",
                USER,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-sync",
                "--no-instructions",
            ],
        );
        assert!(out.status.success(), "initdb failed: {}", text(&out));
        server.start_again();
        Some(server)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A conninfo string for our database on 127.0.0.1.
    pub fn conninfo(&self) -> String {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname=postgres connect_timeout=5",
            self.port
        )
    }

    /// Starts the server (after [`PgServer::stop`]) and waits until it accepts connections.
    pub fn start_again(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("server.log");
        let out = self.tool(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-l",
                log.to_str().unwrap(),
                "-o",
                &opts,
                "-w",
                "-t",
                "60",
                "start",
            ],
        );
        assert!(
            out.status.success(),
            "pg_ctl start failed: {}\n{}",
            text(&out),
            std::fs::read_to_string(&log).unwrap_or_default()
        );
        self.wait_ready();
    }

    /// Stops the server (`pg_ctl stop -m fast`) and waits until it is down.
    pub fn stop(&self) {
        self.pg_ctl_stop("fast");
    }

    fn pg_ctl_stop(&self, mode: &str) -> Output {
        self.tool(
            "pg_ctl",
            &[
                "-D",
                self.data().to_str().unwrap(),
                "-m",
                mode,
                "-w",
                "-t",
                "60",
                "stop",
            ],
        )
    }

    /// Connects until the server answers a query, for at most 30 seconds. Runs on its own
    /// thread and runtime, so that it can be called from async tests.
    fn wait_ready(&self) {
        let conninfo = self.conninfo();
        std::thread::scope(|s| {
            s.spawn(|| {
                let deadline = Instant::now() + Duration::from_secs(30);
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                loop {
                    let attempt = rt.block_on(async {
                        let (client, conn) =
                            tokio_postgres::connect(&conninfo, tokio_postgres::NoTls).await?;
                        tokio::spawn(conn);
                        client.simple_query("SELECT 1").await.map(|_| ())
                    });
                    match attempt {
                        Ok(()) => return,
                        Err(e) if Instant::now() > deadline => {
                            panic!("PostgreSQL is not ready: {e}")
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            })
            .join()
            .unwrap()
        });
    }

    /// A plain client for setting up and inspecting tables.
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.conninfo(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    /// Runs one of the server's tools, as `postgres` when we are root.
    fn tool(&self, name: &str, args: &[&str]) -> Output {
        let program = self.bin.join(name);
        let mut cmd = match &self.run_as {
            Some(user) => {
                let mut c = Command::new("runuser");
                c.args(["-u", user, "--"]).arg(&program);
                c
            }
            None => Command::new(&program),
        };
        cmd.args(args).current_dir(self.dir.path());
        cmd.output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", program.display()))
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        // Immediate: the data directory is thrown away anyway.
        let _ = self.pg_ctl_stop("immediate");
    }
}

/// The newest `/usr/lib/postgresql/<version>/bin` holding initdb, pg_ctl and postgres.
fn find_bin() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            let bin = e.path().join("bin");
            ["initdb", "pg_ctl", "postgres"]
                .iter()
                .all(|t| bin.join(t).is_file())
                .then_some((version, bin))
        })
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// Job `n`: handle `H:test:<n>`, a binary payload and the priority `n % 3`.
pub fn job(n: usize) -> StoredJob {
    StoredJob {
        handle: Bytes::from(format!("H:test:{n}")),
        function: Bytes::from_static(b"work"),
        unique: Bytes::from(format!("u{n}")),
        priority: Priority::ALL[n % 3],
        data: Bytes::from(vec![0, (n % 256) as u8, 0xff]),
        when_to_run: 0,
        schedule: None,
        reducer: None,
    }
}

/// The handles of `jobs`, as strings.
pub fn handles(jobs: &[StoredJob]) -> Vec<String> {
    jobs.iter()
        .map(|j| String::from_utf8_lossy(&j.handle).into_owned())
        .collect()
}
