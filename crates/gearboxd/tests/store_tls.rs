//! The real binary with its store over TLS, against throwaway PostgreSQL and Redis servers
//! started with test certificates ([`TestPki`]): background jobs survive a restart over
//! TLS, a server certificate from another CA or for another host is refused with a clear
//! error, client certificates are presented when the server requires them, and the
//! password (from a file, the environment, or a URL with special characters) works and is
//! never printed nor on the command line. Missing server binaries print SKIPPED (a failure
//! with CI=true).

mod support;

use gearbox_testkit::servers::postgres::{PgServer, USER};
use gearbox_testkit::servers::redis::RedisServer;
use gearbox_testkit::tls::TestPki;
use support::jobs::restart_keeps_background_jobs;
use support::{run_to_exit, Gearboxd};

fn start(store: &[&str], env: &[(&str, &str)]) -> Gearboxd {
    let mut args = vec![
        "-p",
        "0",
        "-L",
        "127.0.0.1",
        "--job-handle-prefix",
        "H:tls",
        "--verbose",
        "INFO",
    ];
    args.extend_from_slice(store);
    Gearboxd::start_with_env(&args, env)
}

/// Runs gearboxd expecting its start to fail; returns its standard error.
fn fails(store: &[&str], env: &[(&str, &str)]) -> String {
    let mut args = vec!["-p", "0", "-L", "127.0.0.1"];
    args.extend_from_slice(store);
    let out = run_to_exit(&args, env);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{store:?}: {err}");
    assert!(err.starts_with("gearboxd: error: "), "{err}");
    err
}

/// The TLS sessions PostgreSQL has open for gearboxd.
fn tls_sessions(pg: &PgServer) -> Vec<String> {
    pg.query(
        "SELECT s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE s.ssl AND a.application_name = 'gearboxd'",
    )
}

/// What the process list shows of `pid`.
fn cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    String::from_utf8_lossy(&raw).replace('\0', " ")
}

#[test]
fn postgres_verify_full_jobs_survive_a_restart_over_tls() {
    let pki = TestPki::new();
    let Some(pg) = PgServer::start_tls(
        "postgres_verify_full_jobs_survive_a_restart_over_tls",
        &pki.ca,
        &pki.server,
        "trust",
    ) else {
        return;
    };
    let conninfo = format!(
        "host=localhost port={} user={USER} dbname=postgres sslmode=verify-full sslrootcert={}",
        pg.port,
        pki.ca.display()
    );
    let url = format!(
        "postgres://{USER}@127.0.0.1:{}/postgres?sslmode=verify-full&sslrootcert={}",
        pg.port,
        pki.ca.display()
    );
    let first = || {
        let server = start(&["-q", "libpq", "--libpq-conninfo", &conninfo], &[]);
        let sessions = tls_sessions(&pg);
        assert!(!sessions.is_empty(), "gearboxd's connection is not TLS");
        assert!(
            sessions.iter().all(|v| v.starts_with("TLSv1.")),
            "{sessions:?}"
        );
        let line = server.wait_for_stderr(|l| l.contains("sslmode=verify-full"));
        assert!(line.contains("postgres"), "{line}");
        server
    };
    restart_keeps_background_jobs(&first, &|| start(&["--store", &url], &[]));
}

#[test]
fn postgres_refuses_another_cas_certificate_and_another_hosts() {
    let pki = TestPki::new();
    // A certificate from the right CA, for a name that is not the host connected to.
    let elsewhere = pki.server_cert("elsewhere", "db.example", &["db.example"]);
    let Some(pg) = PgServer::start_tls(
        "postgres_refuses_another_cas_certificate_and_another_hosts",
        &pki.ca,
        &elsewhere,
        "trust",
    ) else {
        return;
    };
    let conninfo = |mode: &str, ca: &std::path::Path| {
        format!(
            "host=127.0.0.1 port={} user={USER} dbname=postgres sslmode={mode} sslrootcert={}",
            pg.port,
            ca.display()
        )
    };
    let err = fails(
        &[
            "-q",
            "libpq",
            "--libpq-conninfo",
            &conninfo("verify-ca", &pki.other_ca),
        ],
        &[],
    );
    assert!(
        err.contains("cannot open the PostgreSQL job store"),
        "{err}"
    );
    assert!(
        err.contains("invalid peer certificate: UnknownIssuer"),
        "{err}"
    );
    let err = fails(
        &[
            "-q",
            "libpq",
            "--libpq-conninfo",
            &conninfo("verify-full", &pki.ca),
        ],
        &[],
    );
    assert!(
        err.contains("certificate not valid for name \"127.0.0.1\""),
        "{err}"
    );
    // verify-ca checks the chain only: the same certificate is accepted.
    let server = start(
        &[
            "-q",
            "libpq",
            "--libpq-conninfo",
            &conninfo("verify-ca", &pki.ca),
        ],
        &[],
    );
    assert!(!tls_sessions(&pg).is_empty());
    support::jobs::stop(server);
    // No CA file for a verify mode is refused before connecting.
    let err = fails(
        &[
            "--store",
            &format!(
                "postgres://{USER}@127.0.0.1:{}/postgres?sslmode=verify-full",
                pg.port
            ),
        ],
        &[],
    );
    assert!(err.contains("needs a CA file"), "{err}");
}

#[test]
fn postgres_client_certificate_required_by_the_server() {
    let pki = TestPki::new();
    let Some(pg) = PgServer::start_tls(
        "postgres_client_certificate_required_by_the_server",
        &pki.ca,
        &pki.server,
        "cert",
    ) else {
        return;
    };
    // pg_hba's `cert`: the certificate's common name is the user.
    let me = pki.client_cert("gearbox-user", USER, &[USER]);
    let base = format!(
        "host=127.0.0.1 port={} user={USER} dbname=postgres sslmode=verify-full sslrootcert={}",
        pg.port,
        pki.ca.display()
    );
    let err = fails(&["-q", "libpq", "--libpq-conninfo", &base], &[]);
    assert!(
        err.contains("cannot open the PostgreSQL job store"),
        "{err}"
    );
    let with_cert = format!(
        "{base} sslcert={} sslkey={}",
        me.cert.display(),
        me.key.display()
    );
    let server = start(&["-q", "libpq", "--libpq-conninfo", &with_cert], &[]);
    assert!(!tls_sessions(&pg).is_empty());
    support::jobs::stop(server);
    // Another CA's certificate with the same name is refused by the server.
    let other = format!(
        "{base} sslcert={} sslkey={}",
        pki.other_client.cert.display(),
        pki.other_client.key.display()
    );
    fails(&["-q", "libpq", "--libpq-conninfo", &other], &[]);
}

#[test]
fn postgres_password_from_a_file_the_environment_or_a_url_is_never_shown() {
    let pki = TestPki::new();
    let Some(pg) = PgServer::start_tls(
        "postgres_password_from_a_file_the_environment_or_a_url_is_never_shown",
        &pki.ca,
        &pki.server,
        "scram-sha-256",
    ) else {
        return;
    };
    const SECRET: &str = "pw/with@odd%chars:x";
    pg.query(&format!("ALTER USER {USER} PASSWORD '{SECRET}'"));
    let conninfo = format!(
        "host=127.0.0.1 port={} user={USER} dbname=postgres sslmode=verify-full sslrootcert={}",
        pg.port,
        pki.ca.display()
    );
    let store = ["-q", "libpq", "--libpq-conninfo", conninfo.as_str()];
    let never_shown = |server: Gearboxd| {
        assert!(
            !cmdline(server.pid()).contains("odd"),
            "{}",
            cmdline(server.pid())
        );
        let mut server = server;
        let out = server.stop_with(libc::SIGTERM);
        assert!(!out.contains("odd") && !out.contains("%40"), "{out}");
    };
    // Without a password the server refuses.
    let err = fails(&store, &[]);
    assert!(err.contains("password"), "{err}");
    assert!(!err.contains("odd"), "{err}");
    // From a file (with its final newline).
    let dir = tempfile_dir();
    let file = dir.join("pg-password");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let mut with_file = store.to_vec();
    with_file.extend(["--store-password-file", file.to_str().unwrap()]);
    never_shown(start(&with_file, &[]));
    // From gearboxd's variable, and from libpq's.
    never_shown(start(&store, &[("GEARBOX_STORE_PASSWORD", SECRET)]));
    never_shown(start(&store, &[("PGPASSWORD", SECRET)]));
    // A wrong one: refused, and not printed either.
    let err = fails(&store, &[("PGPASSWORD", "wrong-odd-secret")]);
    assert!(!err.contains("wrong-odd-secret"), "{err}");
    // In a URL, percent-encoded: `/`, `@`, `%` and `:`.
    let url = format!(
        "postgres://{USER}:pw%2Fwith%40odd%25chars%3Ax@127.0.0.1:{}/postgres?sslmode=require",
        pg.port
    );
    // (A password on the command line is in the process list: that is why the file and the
    // variables exist. Only the output is checked here.)
    let mut server = start(&["--store", &url], &[]);
    let line = server.wait_for_stderr(|l| l.contains("sslmode=require"));
    assert!(!line.contains("odd"), "{line}");
    let out = server.stop_with(libc::SIGTERM);
    assert!(!out.contains("odd") && !out.contains("%40"), "{out}");
    std::fs::remove_dir_all(dir).unwrap();
}

/// A fresh directory under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "gearbox-store-tls-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    ));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn redis_over_tls_with_a_client_certificate_keeps_jobs_across_a_restart() {
    let pki = TestPki::new();
    let Some(redis) = RedisServer::start_tls(
        "redis_over_tls_with_a_client_certificate_keeps_jobs_across_a_restart",
        &pki.ca,
        &pki.server,
        true,
    ) else {
        return;
    };
    let port = redis.tls_port().unwrap().to_string();
    let url = format!("rediss://127.0.0.1:{port}/0");
    let (ca, cert, key) = (
        pki.ca.to_str().unwrap(),
        pki.client.cert.to_str().unwrap(),
        pki.client.key.to_str().unwrap(),
    );
    let with_url = [
        "--store",
        url.as_str(),
        "--redis-ca-file",
        ca,
        "--redis-cert-file",
        cert,
        "--redis-key-file",
        key,
    ];
    let with_flags = [
        "-q",
        "redis",
        "--redis-server",
        "localhost",
        "--redis-port",
        port.as_str(),
        "--redis-tls",
        "--redis-ca-file",
        ca,
        "--redis-cert-file",
        cert,
        "--redis-key-file",
        key,
    ];
    let first = || {
        let server = start(&with_url, &[]);
        server.wait_for_stderr(|l| l.contains("rediss://127.0.0.1"));
        server
    };
    restart_keeps_background_jobs(&first, &|| start(&with_flags, &[]));
    // Without the client certificate the server hangs up; another CA's server is refused.
    let err = fails(&["--store", &url, "--redis-ca-file", ca], &[]);
    assert!(err.contains("cannot open the Redis job store"), "{err}");
    let err = fails(
        &[
            "--store",
            &url,
            "--redis-ca-file",
            pki.other_ca.to_str().unwrap(),
            "--redis-cert-file",
            cert,
            "--redis-key-file",
            key,
        ],
        &[],
    );
    assert!(err.contains("UnknownIssuer"), "{err}");
    // A missing CA file is named.
    let err = fails(
        &["--store", &url, "--redis-ca-file", "/nonexistent/ca.pem"],
        &[],
    );
    assert!(err.contains("/nonexistent/ca.pem"), "{err}");
}

#[test]
fn mariadb_verify_identity_jobs_survive_a_restart_and_another_ca_is_refused() {
    use gearbox_testkit::servers::mariadb::{MariaDb, DB};
    let pki = TestPki::new();
    let Some(db) = MariaDb::start_tls(
        "mariadb_verify_identity_jobs_survive_a_restart_and_another_ca_is_refused",
        &pki.ca,
        &pki.server,
    ) else {
        return;
    };
    let port = db.port.to_string();
    let ca = pki.ca.to_str().unwrap();
    let store = |mode: &'static str, ca: &str| -> Vec<String> {
        [
            "-q",
            "mysql",
            "--mysql-host",
            "localhost",
            "--mysql-port",
            &port,
            "--mysql-user",
            "root",
            "--mysql-db",
            DB,
            "--mysql-ssl-mode",
            mode,
            "--mysql-ssl-ca",
            ca,
        ]
        .iter()
        .map(|s| s.to_string())
        .collect()
    };
    fn args(v: &[String]) -> Vec<&str> {
        v.iter().map(String::as_str).collect()
    }
    let verify = store("VERIFY_IDENTITY", ca);
    let first = || {
        let server = start(&args(&verify), &[]);
        server.wait_for_stderr(|l| l.contains("ssl-mode=VERIFY_IDENTITY"));
        server
    };
    restart_keeps_background_jobs(&first, &|| start(&args(&verify), &[]));
    let other = store("VERIFY_CA", pki.other_ca.to_str().unwrap());
    let err = fails(&args(&other), &[]);
    assert!(
        err.contains("cannot open the MySQL/MariaDB job store"),
        "{err}"
    );
    assert!(err.contains("UnknownIssuer"), "{err}");
}
