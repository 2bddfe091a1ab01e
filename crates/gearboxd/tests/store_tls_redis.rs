//! The real binary with its Redis and MariaDB stores over TLS, against throwaway servers
//! started with test certificates ([`TestPki`]): jobs survive a restart over TLS, a client
//! certificate is presented when the server requires one, another CA's server is refused,
//! and the Redis password (from a file, the environment or a URL with special characters)
//! works and is never printed. Missing server binaries print SKIPPED (a failure with
//! CI=true).

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;

use gearbox_testkit::servers::redis::RedisServer;
use gearbox_testkit::tls::TestPki;
use support::jobs::restart_keeps_background_jobs;
use support::store_tls::{cmdline, fails, start};
use support::{Gearboxd, TempDir};

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

/// Sends one command to Redis on `port` (plain TCP) and returns the first line of its answer.
fn redis_command(port: u16, args: &[&str]) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut command = format!("*{}\r\n", args.len());
    for a in args {
        command.push_str(&format!("${}\r\n{a}\r\n", a.len()));
    }
    stream.write_all(command.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let mut byte = [0u8];
    while !answer.ends_with(b"\r\n") {
        stream.read_exact(&mut byte).unwrap();
        answer.push(byte[0]);
    }
    String::from_utf8_lossy(&answer).trim_end().to_owned()
}

#[test]
fn redis_password_from_a_file_the_environment_or_a_url_is_never_shown() {
    let pki = TestPki::new();
    let Some(redis) = RedisServer::start_tls(
        "redis_password_from_a_file_the_environment_or_a_url_is_never_shown",
        &pki.ca,
        &pki.server,
        false,
    ) else {
        return;
    };
    const SECRET: &str = "pw/with@odd%chars:x";
    assert_eq!(
        redis_command(redis.port(), &["CONFIG", "SET", "requirepass", SECRET]),
        "+OK"
    );
    let port = redis.tls_port().unwrap().to_string();
    let ca = pki.ca.to_str().unwrap();
    let store = [
        "-q",
        "redis",
        "--redis-port",
        port.as_str(),
        "--redis-ca-file",
        ca,
    ];
    let never_shown = |mut server: Gearboxd| {
        let line = cmdline(server.pid());
        assert!(!line.contains("odd"), "{line}");
        let out = server.stop_with(libc::SIGTERM);
        assert!(!out.contains("odd") && !out.contains("%40"), "{out}");
    };
    // Without the password: refused, and the error says why.
    let err = fails(&store, &[]);
    assert!(err.contains("NOAUTH"), "{err}");
    let dir = TempDir::new();
    let file = dir.join("redis-password");
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    let with_file = [
        &store[..],
        &["--store-password-file", file.to_str().unwrap()],
    ]
    .concat();
    never_shown(start(&with_file, &[]));
    never_shown(start(&store, &[("GEARBOX_STORE_PASSWORD", SECRET)]));
    never_shown(start(&store, &[("REDISCLI_AUTH", SECRET)]));
    let err = fails(&store, &[("REDISCLI_AUTH", "wrong-odd-secret")]);
    assert!(!err.contains("wrong-odd-secret"), "{err}");
    // In a rediss:// URL, percent-encoded; the command line warns that ps shows it.
    let url = format!("rediss://:pw%2Fwith%40odd%25chars%3Ax@127.0.0.1:{port}/0");
    let mut server = start(&["--store", &url, "--redis-ca-file", ca], &[]);
    server.wait_for_stderr(|l| l.contains("password is given on the command line"));
    let line = server.wait_for_stderr(|l| l.contains("rediss://127.0.0.1"));
    assert!(!line.contains("odd"), "{line}");
    let out = server.stop_with(libc::SIGTERM);
    assert!(!out.contains("odd") && !out.contains("%40"), "{out}");
}
