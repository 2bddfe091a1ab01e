//! Every personality over TLS, against the testkit's TLS proxy (requiring client
//! certificates) in front of an in-process gearbox: `gearbox submit`/`work`, the admin
//! subcommands, `watch`, `top` and `bench` with the `--ssl*` flags or the `GEARBOX_SSL*`
//! variables; `gearman -S` with libgearman's variables; `gearadmin -S`/`--ssl`; and the
//! errors for a wrong CA, a missing CA and half a client certificate.

mod tool_support;

use gearbox_testkit::process::Proc;
use gearbox_testkit::tls::TestPki;
use gearbox_testkit::tls_proxy::{Handshake, TlsProxy, TlsProxyOptions};
use gearbox_testkit::TestServer;
use tokio::process::Command;
use tool_support::{command, gearbox, our, run, Server};

/// A plain gearbox, a TLS proxy requiring client certificates in front of it, certificates.
struct Setup {
    plain: Server,
    proxy: TlsProxy,
    pki: TestPki,
}

impl Setup {
    async fn new() -> Setup {
        let pki = TestPki::new();
        let server = TestServer::start().await;
        let opts = TlsProxyOptions::new(&pki.server).require_client_cert(&pki.ca);
        let proxy = TlsProxy::start(server.addr, opts).await;
        Setup {
            plain: Server::Gearbox(server),
            proxy,
            pki,
        }
    }

    /// `127.0.0.1:PORT` of the TLS side.
    fn list(&self) -> String {
        self.proxy.addr.to_string()
    }

    /// `--ssl-ca-file CA --ssl-certificate CERT --ssl-key KEY` (implying `--ssl`).
    fn flags(&self) -> Vec<String> {
        let p = &self.pki;
        [
            "--ssl-ca-file",
            p.ca.to_str().unwrap(),
            "--ssl-certificate",
            p.client.cert.to_str().unwrap(),
            "--ssl-key",
            p.client.key.to_str().unwrap(),
        ]
        .map(String::from)
        .to_vec()
    }

    /// `gearbox -s TLS FLAGS ARGS`.
    fn gearbox(&self, args: &[&str]) -> Command {
        let flags = self.flags();
        let mut all: Vec<&str> = flags.iter().map(String::as_str).collect();
        all.extend_from_slice(args);
        gearbox(&self.list(), &all)
    }

    /// `cmd` with the certificates in `GEARBOX_SSL_*` (`gearbox`) variables.
    fn gearbox_env(&self, cmd: &mut Command) {
        cmd.env("GEARBOX_SSL", "1")
            .env("GEARBOX_SSL_CA_FILE", &self.pki.ca)
            .env("GEARBOX_SSL_CERTIFICATE", &self.pki.client.cert)
            .env("GEARBOX_SSL_KEY", &self.pki.client.key);
    }

    /// `cmd` with the certificates in libgearman's variables.
    fn libgearman_env(&self, cmd: &mut Command) {
        cmd.env("GEARMAND_CA_CERTIFICATE", &self.pki.ca)
            .env("GEARMAN_CLIENT_PEM", &self.pki.client.cert)
            .env("GEARMAN_CLIENT_KEY", &self.pki.client.key);
    }

    /// Every handshake at the proxy presented a client certificate.
    fn assert_all_mtls(&self) {
        let hs = self.proxy.handshakes();
        assert!(!hs.is_empty(), "no TLS connection at all");
        for h in hs {
            assert!(
                matches!(
                    h,
                    Handshake::Accepted {
                        client_cert: Some(_),
                        ..
                    }
                ),
                "{h:?}"
            );
        }
    }
}

#[tokio::test]
async fn submit_and_work_over_mtls() {
    let s = Setup::new().await;
    let worker =
        Proc::spawn_cmd(s.gearbox(&["work", "up", "--count", "2", "--", "tr", "a-z", "A-Z"]));
    s.plain.wait_workers("up", 1).await;
    let out = run(s.gearbox(&["submit", "up", "hello"]), b"").await;
    assert_eq!(
        (out.status.code(), out.stdout.as_str()),
        (Some(0), "HELLO"),
        "{out:?}"
    );
    let out = run(s.gearbox(&["submit", "-b", "up", "later"]), b"").await;
    out.assert_success("gearbox submit -b over TLS");
    worker
        .finish()
        .await
        .assert_success("gearbox work over TLS");
    s.assert_all_mtls();
}

#[tokio::test]
async fn admin_watch_top_and_bench_with_environment_variables() {
    let s = Setup::new().await;
    for args in [
        &["status"][..],
        &["workers", "--all"],
        &["jobs"],
        &["watch", "--iterations", "1"],
        &["top", "--once"],
        &["bench", "fg", "-n", "20", "-c", "2", "-w", "1"],
    ] {
        let mut cmd = gearbox(&s.list(), args);
        s.gearbox_env(&mut cmd);
        let out = run(cmd, b"").await;
        out.assert_success(&format!("gearbox {args:?} over TLS"));
    }
    s.assert_all_mtls();
    // Without the variables the same command speaks plain TCP to the TLS port and fails.
    let out = run(gearbox(&s.list(), &["status"]), b"").await;
    assert!(!out.status.success(), "{out:?}");
}

#[tokio::test]
async fn gearman_dash_s_with_libgearman_variables() {
    let s = Setup::new().await;
    let port = s.proxy.addr.port().to_string();
    let mut w = command(
        our("gearman"),
        "gearman",
        &[
            "-S",
            "-h",
            "localhost",
            "-p",
            &port,
            "-w",
            "-f",
            "up",
            "-c",
            "1",
            "--",
            "tr",
            "a-z",
            "A-Z",
        ],
    );
    s.libgearman_env(&mut w);
    let worker = Proc::spawn_cmd(w);
    s.plain.wait_workers("up", 1).await;
    let mut c = command(
        our("gearman"),
        "gearman",
        &["-S", "-h", "127.0.0.1", "-p", &port, "-f", "up", "hello"],
    );
    s.libgearman_env(&mut c);
    let out = run(c, b"").await;
    assert_eq!(
        (out.status.code(), out.stdout.as_str()),
        (Some(0), "HELLO"),
        "{out:?}"
    );
    worker.finish().await.assert_success("gearman -S -w");
    s.assert_all_mtls();
}

#[tokio::test]
async fn gearadmin_dash_s_and_ssl() {
    let s = Setup::new().await;
    let port = s.proxy.addr.port().to_string();
    for flag in ["-S", "--ssl"] {
        let mut cmd = command(
            our("gearadmin"),
            "gearadmin",
            &[
                flag,
                "-h",
                "localhost",
                "-p",
                &port,
                "--status",
                "--server-version",
            ],
        );
        s.libgearman_env(&mut cmd);
        let out = run(cmd, b"").await;
        out.assert_success(&format!("gearadmin {flag}"));
        assert!(out.stdout.ends_with(".\n"), "{out:?}");
    }
    // GEARBOX_SSL alone turns TLS on, without -S.
    let mut cmd = command(
        our("gearadmin"),
        "gearadmin",
        &["-h", "127.0.0.1", "-p", &port, "--workers"],
    );
    s.gearbox_env(&mut cmd);
    run(cmd, b"")
        .await
        .assert_success("gearadmin with GEARBOX_SSL");
    s.assert_all_mtls();
}

#[tokio::test]
async fn tls_errors_say_what_to_do() {
    let s = Setup::new().await;
    let other = s.pki.other_ca.to_str().unwrap();
    let cert = s.pki.client.cert.to_str().unwrap();
    let key = s.pki.client.key.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &[
                "--ssl-ca-file",
                other,
                "--ssl-certificate",
                cert,
                "--ssl-key",
                key,
                "status",
            ],
            "not signed by the CA",
        ),
        (&["--ssl", "status"], "--ssl-ca-file"),
        (
            &["--ssl-ca-file", other, "--ssl-certificate", cert, "status"],
            "--ssl-key",
        ),
        (
            &["--ssl-ca-file", "/nonexistent/ca.pem", "status"],
            "/nonexistent/ca.pem",
        ),
    ];
    for (args, needle) in cases {
        let out = run(gearbox(&s.list(), args), b"").await;
        assert!(!out.status.success(), "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(needle),
            "{args:?}: {needle:?} not in {}",
            out.stderr
        );
    }
    let port = s.proxy.addr.port().to_string();
    let out = run(
        command(
            our("gearadmin"),
            "gearadmin",
            &["-S", "-p", &port, "--status"],
        ),
        b"",
    )
    .await;
    assert!(!out.status.success(), "{out:?}");
    assert!(out.stderr.contains("--ssl-ca-file"), "{}", out.stderr);
}
