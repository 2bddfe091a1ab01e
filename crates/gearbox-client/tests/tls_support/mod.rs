//! The TLS client scenarios, each a `pub async fn` over a [`TlsEndpoint`]: any Gearman server
//! reachable over TLS with the test PKI's server certificate (`localhost`, `127.0.0.1`).
//! `client_tls.rs` runs them against the testkit's TLS proxy in front of a plain server; the
//! same functions run unchanged against gearboxd's own TLS listener.
#![allow(dead_code)] // Each test binary uses a different subset.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use gearbox_client::admin::{Admin, DEFAULT_TIMEOUT};
use gearbox_client::raw::RawConnection;
use gearbox_client::worker::{Job, JobError, StopReason, Worker};
use gearbox_client::{Client, Error, TaskEvent, TlsConfig};
use gearbox_proto::{Request, Response};
use gearbox_testkit::tls::TestPki;
use gearbox_testkit::Poller;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// Longest any step may take.
pub const WAIT: Duration = Duration::from_secs(20);

/// A TLS server under test.
pub struct TlsEndpoint<'a> {
    /// Its TLS address (on 127.0.0.1).
    pub addr: SocketAddr,
    /// The certificates: the server presents `pki.server`.
    pub pki: &'a TestPki,
    /// Whether it requires a client certificate signed by `pki.ca`.
    pub requires_client_cert: bool,
}

impl TlsEndpoint<'_> {
    /// `127.0.0.1:port`.
    pub fn list(&self) -> String {
        self.addr.to_string()
    }

    /// `localhost:port`.
    pub fn by_name(&self) -> String {
        format!("localhost:{}", self.addr.port())
    }

    /// TLS settings that the server accepts: its CA, and the client certificate.
    pub fn tls(&self) -> TlsConfig {
        self.builder().build().expect("TLS config")
    }

    /// A builder with the CA and the client certificate set.
    pub fn builder(&self) -> gearbox_client::TlsConfigBuilder {
        TlsConfig::builder()
            .ca_file(&self.pki.ca)
            .client_cert_files(&self.pki.client.cert, &self.pki.client.key)
    }

    /// A client with [`TlsEndpoint::tls`].
    pub fn client(&self) -> Client {
        self.client_with(self.tls())
    }

    /// A client with `tls`, connecting once (no back-off wait between tries).
    pub fn client_with(&self, tls: TlsConfig) -> Client {
        Client::builder()
            .servers(&self.list())
            .tls(tls)
            .connect_timeout(Duration::from_secs(5))
            .build()
            .expect("client")
    }
}

/// Bounds `f` by [`WAIT`].
pub async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(WAIT, f)
        .await
        .unwrap_or_else(|_| panic!("{what}: nothing within {WAIT:?}"))
}

/// A worker of the worker API, running in a task until stopped.
pub struct TlsWorker {
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<gearbox_client::Result<StopReason>>,
}

impl TlsWorker {
    /// Stops the worker and checks it stopped cleanly.
    pub async fn stop(mut self) {
        let _ = self.stop.take().expect("running").send(());
        let reason = within("worker stop", self.task).await.expect("join");
        assert!(reason.is_ok(), "worker ended with {reason:?}");
    }
}

/// Starts a worker over TLS serving `reverse` (sends one WORK_DATA chunk and a WORK_STATUS
/// before completing) and `note` (reports each payload on the returned channel).
pub fn tls_worker(ep: &TlsEndpoint<'_>) -> (TlsWorker, mpsc::UnboundedReceiver<Bytes>) {
    let (seen, rx) = mpsc::unbounded_channel();
    let worker = Worker::builder()
        .servers(&ep.list())
        .tls(ep.tls())
        .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(100))
        .register("reverse", |job: Job| async move {
            job.send_data("first half").await?;
            job.send_status(1, 2).await?;
            Ok::<_, JobError>(job.payload().iter().rev().copied().collect::<Vec<u8>>())
        })
        .register("note", move |job: Job| {
            let seen = seen.clone();
            async move {
                let _ = seen.send(job.payload().clone());
                Ok::<_, JobError>("noted")
            }
        })
        .build()
        .expect("worker");
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(worker.run(stopped));
    (
        TlsWorker {
            stop: Some(stop),
            task,
        },
        rx,
    )
}

/// A foreground job over TLS, client and worker both on TLS: the WORK_DATA chunk, the
/// WORK_STATUS and the result arrive in order.
pub async fn foreground_round_trip(ep: &TlsEndpoint<'_>) {
    let (worker, _) = tls_worker(ep);
    let client = ep.client();
    let mut task = within("submit", client.job("reverse", "hello tls").start())
        .await
        .expect("job created over TLS");
    let mut events = Vec::new();
    while let Some(ev) = within("events", task.next_event()).await {
        events.push(ev.expect("event"));
    }
    assert!(
        matches!(&events[0], TaskEvent::Created { .. }),
        "{events:?}"
    );
    assert_eq!(
        events[1..],
        [
            TaskEvent::Data(Bytes::from_static(b"first half")),
            TaskEvent::Status {
                numerator: 1,
                denominator: 2
            },
            TaskEvent::Complete(Bytes::from_static(b"slt olleh")),
        ]
    );
    worker.stop().await;
}

/// A background job over TLS reaches the TLS worker with its payload intact.
pub async fn background_round_trip(ep: &TlsEndpoint<'_>) {
    let (worker, mut seen) = tls_worker(ep);
    let client = ep.client();
    let payload = vec![0u8, 1, 2, 255, b'\n', 0];
    let handle = within("submit", client.submit_background("note", payload.clone()))
        .await
        .expect("background job over TLS");
    assert!(!handle.is_empty());
    let got = within("worker gets the job", seen.recv())
        .await
        .expect("job");
    assert_eq!(&got[..], &payload[..]);
    worker.stop().await;
}

/// The admin protocol over TLS: version, and a status listing that shows a TLS worker.
pub async fn admin_over_tls(ep: &TlsEndpoint<'_>) {
    let (worker, _) = tls_worker(ep);
    let tls = ep.tls();
    let mut admin = within(
        "admin connect",
        Admin::connect_with(ep.list().parse().unwrap(), DEFAULT_TIMEOUT, Some(&tls)),
    )
    .await
    .expect("admin over TLS");
    assert!(!within("version", admin.version())
        .await
        .expect("version")
        .is_empty());
    // The worker registers in the background: poll until the listing shows it.
    let mut poll = Poller::new("the TLS worker in the status listing");
    loop {
        let status = within("status", admin.status()).await.expect("status");
        if status
            .iter()
            .any(|s| s.function == "reverse" && s.workers >= 1)
        {
            break;
        }
        poll.again().await;
    }
    let servers = [ep.list().parse().unwrap()];
    let all = gearbox_client::admin::cluster_status_with(&servers, DEFAULT_TIMEOUT, Some(&tls));
    let all = within("cluster status", all).await;
    let status = all[&servers[0]].as_ref().expect("cluster status over TLS");
    assert!(status.iter().any(|s| s.function == "reverse"), "{status:?}");
    worker.stop().await;
}

/// The raw connection over TLS: an ECHO round trip.
pub async fn raw_over_tls(ep: &TlsEndpoint<'_>) {
    let tls = ep.tls();
    let mut conn = within(
        "raw connect",
        RawConnection::connect_with(&ep.list(), Some(&tls)),
    )
    .await
    .expect("raw over TLS");
    assert!(conn.is_tls());
    let data = Bytes::from_static(b"ping over tls");
    conn.send(&Request::EchoReq { data: data.clone() })
        .await
        .expect("send");
    match within("echo", conn.recv()).await.expect("recv") {
        Response::EchoRes { data: got } => assert_eq!(got, data),
        other => panic!("expected ECHO_RES, got {other:?}"),
    }
}

fn expect_tls(result: gearbox_client::Result<Bytes>, needle: &str) -> String {
    match result {
        Err(e @ Error::Tls { .. }) => {
            let text = e.to_string();
            assert!(text.contains(needle), "{needle:?} not in {text:?}");
            text
        }
        other => panic!("expected Error::Tls containing {needle:?}, got {other:?}"),
    }
}

/// A CA that did not sign the server's certificate: every API refuses with `Error::Tls`.
pub async fn wrong_ca_is_refused(ep: &TlsEndpoint<'_>) {
    let mut wrong = TlsConfig::builder().ca_file(&ep.pki.other_ca);
    if ep.requires_client_cert {
        wrong = wrong.client_cert_files(&ep.pki.client.cert, &ep.pki.client.key);
    }
    let wrong = wrong.build().expect("config");
    let client = ep.client_with(wrong.clone());
    expect_tls(
        within("echo", client.echo("x")).await,
        "not signed by the CA",
    );
    let admin = Admin::connect_with(ep.list().parse().unwrap(), DEFAULT_TIMEOUT, Some(&wrong));
    assert!(matches!(
        within("admin", admin).await,
        Err(Error::Tls { .. })
    ));
    let list = ep.list();
    let raw = RawConnection::connect_with(&list, Some(&wrong));
    assert!(matches!(within("raw", raw).await, Err(Error::Tls { .. })));
}

/// The server name is checked: by default against the host connected to; a wrong override
/// is refused, a right one accepted.
pub async fn server_name_is_checked(ep: &TlsEndpoint<'_>) {
    let wrong = ep
        .builder()
        .server_name("other.test")
        .build()
        .expect("config");
    let text = expect_tls(
        within("echo", ep.client_with(wrong).echo("x")).await,
        "other.test",
    );
    assert!(text.contains("--ssl-server-name"), "{text}");
    let right = ep
        .builder()
        .server_name("localhost")
        .build()
        .expect("config");
    let echoed = within("echo", ep.client_with(right).echo("ok")).await;
    assert_eq!(echoed.expect("override accepted"), "ok");
    let by_name = Client::builder()
        .servers(&ep.by_name())
        .tls(ep.tls())
        .build()
        .expect("client");
    assert_eq!(
        within("echo", by_name.echo("n")).await.expect("by name"),
        "n"
    );
}

/// Certificate files that do not exist are `Error::TlsSetup` naming the file, at build time.
pub async fn missing_files_are_setup_errors(pki: &TestPki) {
    let missing = pki.dir().join("no-such-client.pem");
    let err = TlsConfig::builder()
        .ca_file(&pki.ca)
        .client_cert_files(&missing, &pki.client.key)
        .build()
        .expect_err("missing certificate");
    assert!(matches!(err, Error::TlsSetup { .. }), "{err:?}");
    assert!(err.to_string().contains("no-such-client.pem"), "{err}");
    let err = TlsConfig::builder().build().expect_err("no CA");
    assert!(err.to_string().contains("--ssl-ca-file"), "{err}");
    let err = TlsConfig::builder()
        .ca_file(&pki.ca)
        .client_cert_files(&pki.client.cert, &pki.server.key)
        .build()
        .expect_err("key of another certificate");
    assert!(matches!(err, Error::TlsSetup { .. }), "{err:?}");
    let err = TlsConfig::builder()
        .ca_file(&pki.client.key)
        .build()
        .expect_err("a key is no CA");
    assert!(err.to_string().contains("no certificate"), "{err}");
}

/// With a server that requires client certificates: none, one from another CA and an expired
/// one are all refused, as `Error::Tls`.
pub async fn bad_client_certs_are_refused(ep: &TlsEndpoint<'_>) {
    assert!(ep.requires_client_cert);
    let pki = ep.pki;
    let configs = [
        TlsConfig::builder().ca_file(&pki.ca),
        TlsConfig::builder()
            .ca_file(&pki.ca)
            .client_cert_files(&pki.other_client.cert, &pki.other_client.key),
        TlsConfig::builder()
            .ca_file(&pki.ca)
            .client_cert_files(&pki.expired_client.cert, &pki.expired_client.key),
    ];
    for config in configs {
        let client = ep.client_with(config.build().expect("config"));
        let result = within("echo", client.echo("x")).await;
        match result {
            Err(e @ Error::Tls { .. }) => assert!(e.to_string().contains("certificate"), "{e}"),
            other => panic!("expected Error::Tls, got {other:?}"),
        }
    }
}

/// A client whose connection is lost reconnects over TLS and goes on working.
pub async fn reconnects_over_tls(ep: &TlsEndpoint<'_>, cut: impl FnOnce()) {
    let client = ep.client();
    assert_eq!(within("echo", client.echo("a")).await.expect("first"), "a");
    cut();
    // The next call may see the old connection fail; a later one uses a new connection.
    let mut poll = Poller::new("an echo over a new TLS connection");
    loop {
        match within("echo", client.echo("b")).await {
            Ok(b) => {
                assert_eq!(b, "b");
                break;
            }
            Err(Error::Disconnected { .. } | Error::Unreachable { .. }) => poll.again().await,
            Err(e) => panic!("unexpected error after the cut: {e}"),
        }
    }
}

/// A worker whose connection is lost reconnects over TLS and serves the next job.
pub async fn worker_reconnects_over_tls(ep: &TlsEndpoint<'_>, cut: impl FnOnce()) {
    let (worker, mut seen) = tls_worker(ep);
    let client = ep.client();
    // Foreground, so the job is complete at the server before the cut (a job cut while it
    // runs is handed out again).
    let noted = within("first job", client.submit("note", "one")).await;
    assert_eq!(noted.expect("first job"), "noted");
    assert_eq!(within("first", seen.recv()).await.expect("job"), "one");
    cut();
    // Submitted after the cut: only a worker that reconnected can take it.
    let mut poll = Poller::new("a background submit over a new TLS connection");
    loop {
        match within("submit", client.submit_background("note", "two")).await {
            Ok(_) => break,
            Err(Error::Disconnected { .. } | Error::Unreachable { .. }) => poll.again().await,
            Err(e) => panic!("unexpected error after the cut: {e}"),
        }
    }
    assert_eq!(within("second", seen.recv()).await.expect("job"), "two");
    worker.stop().await;
}

/// Connections opened one after another with one config (as a client's reconnects and a
/// worker's slots do) all succeed: the second one must not try to resume the first's
/// session, which OpenSSL servers verifying client certificates can refuse.
pub async fn sequential_connections_share_a_config(ep: &TlsEndpoint<'_>) {
    let tls = ep.tls();
    let list = ep.list();
    for i in 0..3u8 {
        let mut conn = within(
            "raw connect",
            RawConnection::connect_with(&list, Some(&tls)),
        )
        .await
        .unwrap_or_else(|e| panic!("connection {i}: {e}"));
        let data = Bytes::from(vec![b'a' + i]);
        conn.send(&Request::EchoReq { data: data.clone() })
            .await
            .expect("send");
        match within("echo", conn.recv()).await {
            Ok(Response::EchoRes { data: got }) => assert_eq!(got, data),
            other => panic!("connection {i}: expected ECHO_RES, got {other:?}"),
        }
    }
}

/// Python's `gear` (OpenSSL underneath) as a TLS client with a client certificate, served by
/// a gearbox TLS worker: the data chunk, the status and the result reach it. Skipped (with
/// the reason printed) without python3 and gear, except under `CI=true`.
pub async fn python_gear_client(ep: &TlsEndpoint<'_>) {
    let Some(python) = gearbox_testkit::external::require_probed(
        "python3",
        "Python's gear as a third-party TLS client",
        &["-c", "import gear"],
        |out| {
            format!(
                "python3 lacks gear ({}); pip install gear",
                out.stderr.trim()
            )
        },
    )
    .await
    else {
        return;
    };
    let (worker, _) = tls_worker(ep);
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/scripts/gear_tls_client.py"
    );
    let p = |p: &std::path::Path| p.to_str().expect("UTF-8 path").to_string();
    let args = [
        script.to_string(),
        p(&ep.pki.ca),
        p(&ep.pki.client.cert),
        p(&ep.pki.client.key),
        ep.addr.port().to_string(),
    ];
    let out = gearbox_testkit::process::run(&python, &args, b"").await;
    out.assert_success("gear_tls_client.py");
    assert_eq!(
        out.stdout, "data [b'first half', b'raeg olleh']\nstatus 1 2\nALL OK\n",
        "{out:?}"
    );
    worker.stop().await;
}
