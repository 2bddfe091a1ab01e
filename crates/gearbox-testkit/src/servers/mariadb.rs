//! A throwaway MariaDB server, started from Debian's binaries (`apt-get install
//! mariadb-server`) in a temporary directory and killed on drop; [`MariaDb::start_tls`]
//! serves TLS with test certificates.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;

use super::{free_port, skip};
use crate::tls::CertFiles;

/// The database the tests use (created at start-up).
pub const DB: &str = "gearbox";

/// A MariaDB server running in its own temporary directory, without grant tables (any user,
/// no password), listening on 127.0.0.1 only.
pub struct MariaDb {
    server: PathBuf,
    dir: tempfile::TempDir,
    /// The TCP port on 127.0.0.1.
    pub port: u16,
    child: Mutex<Option<Child>>,
    /// More server options (TLS).
    extra: Vec<String>,
    /// Whether the grant tables are loaded (needed for user-defined functions).
    grants: bool,
}

impl MariaDb {
    /// Initialises a data directory and starts the server, or returns `None` (after printing
    /// `SKIPPED`) when MariaDB is not installed outside CI.
    pub fn start(test: &str) -> Option<MariaDb> {
        Self::start_with(test, Vec::new())
    }

    /// [`MariaDb::start`] with TLS: `server` is the server's certificate and key, `ca` the CA
    /// of client certificates. Plain connections are still accepted.
    pub fn start_tls(test: &str, ca: &Path, server: &CertFiles) -> Option<MariaDb> {
        let extra = vec![
            format!("--ssl-cert={}", server.cert.display()),
            format!("--ssl-key={}", server.key.display()),
            format!("--ssl-ca={}", ca.display()),
        ];
        Self::start_with(test, extra)
    }

    /// [`MariaDb::start`] with user-defined functions: `--plugin-dir` is `plugin_dir`, and the
    /// grant tables are loaded (MariaDB refuses `CREATE FUNCTION` without them); `root` has
    /// no password.
    pub fn start_with_plugins(test: &str, plugin_dir: &Path) -> Option<MariaDb> {
        Self::start_with_plugins_and(test, plugin_dir, &[])
    }

    /// [`MariaDb::start_with_plugins`] with more server options (such as
    /// `--thread-handling=pool-of-threads`).
    pub fn start_with_plugins_and(
        test: &str,
        plugin_dir: &Path,
        options: &[&str],
    ) -> Option<MariaDb> {
        let mut extra = vec![format!("--plugin-dir={}", plugin_dir.display())];
        extra.extend(options.iter().map(|o| o.to_string()));
        Self::start_opts(test, extra, true)
    }

    fn start_with(test: &str, extra: Vec<String>) -> Option<MariaDb> {
        Self::start_opts(test, extra, false)
    }

    fn start_opts(test: &str, extra: Vec<String>, grants: bool) -> Option<MariaDb> {
        let (Some(server), Some(install)) = (
            find(&["mariadbd", "mysqld"]),
            find(&["mariadb-install-db", "mysql_install_db"]),
        ) else {
            skip(
                test,
                "MariaDB server binaries (mariadbd, mariadb-install-db) not found \
                 (apt-get install mariadb-server, or run .ci/install-deps)",
            );
            return None;
        };
        let dir = tempfile::Builder::new()
            .prefix("gearbox-mariadb-")
            .tempdir()
            .unwrap();
        let data = dir.path().join("data");
        // A temporary directory of its own: servers bootstrapping at once in a shared /tmp
        // collide on temporary table names.
        let tmp = dir.path().join("tmp");
        std::fs::create_dir(&tmp).unwrap();
        let out = Command::new(&install)
            .env("TMPDIR", &tmp)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", data.display()))
            .args([
                "--auth-root-authentication-method=normal",
                "--user=root",
                "--skip-test-db",
            ])
            .current_dir(dir.path())
            .output()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", install.display()));
        assert!(
            out.status.success(),
            "{} failed: {}{}",
            install.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let db = MariaDb {
            server,
            port: free_port(),
            dir,
            child: Mutex::new(None),
            extra,
            grants,
        };
        db.start_again();
        Some(db)
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// `mysql://root@127.0.0.1:<port>/gearbox`.
    pub fn url(&self) -> String {
        format!("mysql://root@127.0.0.1:{}/{DB}", self.port)
    }

    /// Starts the server (again, on the same port and data directory, after
    /// [`MariaDb::kill`]) and waits until it accepts connections.
    pub fn start_again(&self) {
        let dir = self.dir.path();
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("server.log"))
            .unwrap();
        let child = Command::new(&self.server)
            .arg("--no-defaults")
            .arg(format!("--datadir={}", self.data().display()))
            .arg(format!("--socket={}", dir.join("sock").display()))
            .arg(format!("--pid-file={}", dir.join("pid").display()))
            .arg(format!("--port={}", self.port))
            .arg(format!("--tmpdir={}", dir.join("tmp").display()))
            .args([
                "--bind-address=127.0.0.1",
                "--user=root",
                "--skip-name-resolve",
                "--innodb-buffer-pool-size=32M",
            ])
            .args((!self.grants).then_some("--skip-grant-tables"))
            .args(&self.extra)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.server.display()));
        *self.child.lock().unwrap() = Some(child);
        self.wait_ready();
    }

    /// Kills the server with SIGKILL (a crash) and waits until it is gone.
    pub fn kill(&self) {
        if let Some(mut child) = self.child.lock().unwrap().take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Connects until the server answers, for at most 60 seconds, then creates the database.
    /// Runs on its own thread and runtime, so that it can be called from async tests.
    fn wait_ready(&self) {
        let url = format!("mysql://root@127.0.0.1:{}/", self.port);
        let log = self.dir.path().join("server.log");
        std::thread::scope(|s| {
            s.spawn(|| {
                let deadline = Instant::now() + Duration::from_secs(60);
                let rt = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                loop {
                    let attempt = rt.block_on(async {
                        let mut conn = mysql_async::Conn::from_url(url.as_str()).await?;
                        conn.query_drop(format!("CREATE DATABASE IF NOT EXISTS {DB}"))
                            .await?;
                        conn.disconnect().await
                    });
                    match attempt {
                        Ok(()) => return,
                        Err(e) if Instant::now() > deadline => panic!(
                            "MariaDB is not ready: {e}\n{}",
                            std::fs::read_to_string(&log).unwrap_or_default()
                        ),
                        Err(_) => std::thread::sleep(Duration::from_millis(100)),
                    }
                }
            })
            .join()
            .unwrap()
        });
    }

    /// A plain connection to the test database, for setting up and inspecting tables (on
    /// the caller's runtime).
    pub async fn conn(&self) -> mysql_async::Conn {
        mysql_async::Conn::from_url(self.url().as_str())
            .await
            .unwrap()
    }
}

impl Drop for MariaDb {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The first of `names` found in /usr/sbin, /usr/bin or `PATH`.
fn find(names: &[&str]) -> Option<PathBuf> {
    let mut dirs: Vec<PathBuf> = vec!["/usr/sbin".into(), "/usr/bin".into()];
    if let Some(path) = std::env::var_os("PATH") {
        dirs.extend(std::env::split_paths(&path));
    }
    names.iter().find_map(|name| {
        dirs.iter()
            .map(|d| d.join(name))
            .find(|p| Path::new(p).is_file())
    })
}
