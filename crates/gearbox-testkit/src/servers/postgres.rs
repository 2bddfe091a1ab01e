//! A throwaway PostgreSQL server, started from Debian's binaries (`apt-get install postgresql`)
//! in a temporary directory and stopped on drop; [`PgServer::start_tls`] also serves TLS with
//! test certificates.

use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use super::{free_port, skip};
use crate::tls::CertFiles;

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
    /// More `-c` settings for the server (TLS).
    extra: String,
}

impl PgServer {
    /// Initialises a cluster and starts it, or returns `None` (after printing `SKIPPED`)
    /// when PostgreSQL is not installed outside CI.
    pub fn start(test: &str) -> Option<PgServer> {
        let Some(bin) = find_bin() else {
            skip(
                test,
                "PostgreSQL server binaries not found under /usr/lib/postgresql/*/bin \
                 (apt-get install postgresql, or run .ci/install-deps)",
            );
            return None;
        };
        // SAFETY: geteuid has no preconditions.
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
            extra: String::new(),
        };
        server.init();
        server.start_again();
        Some(server)
    }

    /// [`PgServer::start`] with TLS: `server` is the server's certificate and key, `ca` the
    /// CA that client certificates must chain to. Plain connections (the helpers'
    /// [`PgServer::conninfo`]) are trusted as before; TLS connections on 127.0.0.1 must pass
    /// `ssl_auth`, a pg_hba method: `trust`, `cert` (a client certificate whose common name is
    /// the user, [`USER`]) or `scram-sha-256` (set a password with [`PgServer::query`]).
    pub fn start_tls(
        test: &str,
        ca: &std::path::Path,
        server: &CertFiles,
        ssl_auth: &str,
    ) -> Option<PgServer> {
        let mut pg = PgServer::start(test)?;
        pg.stop();
        let dir = pg.dir.path();
        let copy = |from: &std::path::Path, name: &str| {
            let to = dir.join(name);
            std::fs::copy(from, &to).unwrap();
            std::fs::set_permissions(&to, std::fs::Permissions::from_mode(0o600)).unwrap();
            to
        };
        let (cert, key, ca) = (
            copy(&server.cert, "server.pem"),
            copy(&server.key, "server.key"),
            copy(ca, "ca.pem"),
        );
        if pg.run_as.is_some() {
            let status = Command::new("chown")
                .args(["postgres:postgres"])
                .args([&cert, &key, &ca])
                .status()
                .unwrap();
            assert!(status.success(), "chown of the certificate files failed");
        }
        let hba = format!(
            "local all all trust\nhostnossl all all 127.0.0.1/32 trust\n\
             hostssl all all 127.0.0.1/32 {ssl_auth}\n"
        );
        let hba_file = pg.data().join("pg_hba.conf");
        std::fs::write(&hba_file, hba).unwrap();
        if pg.run_as.is_some() {
            let status = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&hba_file)
                .status()
                .unwrap();
            assert!(status.success(), "chown of pg_hba.conf failed");
        }
        pg.extra = format!(
            " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={} -c ssl_ca_file={}",
            cert.display(),
            key.display(),
            ca.display()
        );
        pg.start_again();
        Some(pg)
    }

    /// Creates the cluster (initdb).
    fn init(&self) {
        let server = self;
        let data = server.data();
        let out = server.tool(
            "initdb",
            &[
                "-D",
                data.to_str().unwrap(),
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

    /// The same database as a URL.
    pub fn url(&self) -> String {
        format!("postgres://{USER}@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (after [`PgServer::stop`]) and waits until it accepts connections.
    pub fn start_again(&self) {
        let opts = format!(
            "-c listen_addresses=127.0.0.1 -p {} -k {}{}",
            self.port,
            self.dir.path().display(),
            self.extra
        );
        let log = self.dir.path().join("server.log");
        let data = self.data();
        let out = self.tool(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
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
        let data = self.data();
        self.tool(
            "pg_ctl",
            &[
                "-D",
                data.to_str().unwrap(),
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

    /// A plain client for setting up and inspecting tables (on the caller's runtime).
    pub async fn client(&self) -> tokio_postgres::Client {
        let (client, conn) = tokio_postgres::connect(&self.conninfo(), tokio_postgres::NoTls)
            .await
            .unwrap();
        tokio::spawn(conn);
        client
    }

    /// Runs `sql` (one or more statements) and returns the first column of every row. Runs
    /// on its own thread and runtime, so that it can be called from sync and async tests.
    pub fn query(&self, sql: &str) -> Vec<String> {
        let conninfo = self.conninfo();
        std::thread::scope(|s| {
            s.spawn(|| {
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                rt.block_on(async {
                    let (client, conn) = tokio_postgres::connect(&conninfo, tokio_postgres::NoTls)
                        .await
                        .unwrap();
                    tokio::spawn(conn);
                    let rows = client.simple_query(sql).await.unwrap();
                    rows.into_iter()
                        .filter_map(|m| match m {
                            tokio_postgres::SimpleQueryMessage::Row(r) => {
                                Some(r.get(0).unwrap_or("").to_owned())
                            }
                            _ => None,
                        })
                        .collect()
                })
            })
            .join()
            .unwrap()
        })
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

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}
