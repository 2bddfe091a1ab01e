//! The real binary with its PostgreSQL store over TLS, against throwaway servers started
//! with test certificates ([`TestPki`]): background jobs survive a restart over
//! TLS, a server certificate from another CA or for another host is refused with a clear
//! error, client certificates are presented when the server requires them, and the
//! password (from a file, the environment, or a URL with special characters) works and is
//! never printed nor on the command line. Missing server binaries print SKIPPED (a failure
//! with CI=true). Redis and MariaDB: `store_tls_redis.rs`.

mod support;

use gearbox_testkit::servers::postgres::{PgServer, USER};
use gearbox_testkit::tls::TestPki;
use support::jobs::restart_keeps_background_jobs;
use support::store_tls::{cmdline, fails, start};
use support::{Gearboxd, TempDir};

/// The TLS sessions PostgreSQL has open for gearboxd.
fn tls_sessions(pg: &PgServer) -> Vec<String> {
    pg.query(
        "SELECT s.version FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE s.ssl AND a.application_name = 'gearboxd'",
    )
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
    let dir = TempDir::new();
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
}
