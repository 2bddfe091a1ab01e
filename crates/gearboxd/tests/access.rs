//! The `[[access]]` rules of a config file, against the real `gearboxd` over plain TCP (the
//! peer is loopback): a rule for 127.0.0.0/8, and a rule that matches nothing. Raw packets,
//! gearbox's client and worker, the C `gearman`/`gearadmin` tools and Python's `gear` (the
//! last two skipped with a printed reason when not installed, required under `CI=true`).

mod support;

use gearbox_proto::PacketType::{
    CAN_DO, ECHO_REQ, ECHO_RES, ERROR, GRAB_JOB, JOB_CREATED, NO_JOB, SUBMIT_JOB, SUBMIT_JOB_BG,
};
use gearbox_testkit::{external, process};
use support::{Conn, Gearboxd, TempDir};

/// Loopback may submit to `allowed_*` and `other`, register for `allowed_*`, read admin state.
const LOCAL: &str = r#"
queue_type = "builtin"
[[access]]
name = "local"
peer = ["127.0.0.0/8", "::1"]
submit = ["allowed_*", "other"]
register = ["allowed_*"]
admin = "read"
"#;

/// A rule loopback does not match: loopback may do nothing.
const ELSEWHERE: &str = r#"
queue_type = "builtin"
[[access]]
name = "elsewhere"
peer = ["192.0.2.0/24"]
submit = ["*"]
register = ["*"]
admin = "write"
"#;

/// `gearboxd --config FILE` (warnings logged), listening on loopback.
fn start(dir: &TempDir, config: &str) -> Gearboxd {
    let path = dir.join("gearboxd.toml");
    std::fs::write(&path, config).unwrap();
    let path = path.to_str().unwrap().to_owned();
    Gearboxd::start(&[
        "-p",
        "0",
        "-L",
        "127.0.0.1",
        "--verbose",
        "WARNING",
        "--config",
        &path,
    ])
}

fn error(code: &str, text: &str) -> (gearbox_proto::PacketType, Vec<u8>) {
    (ERROR, format!("{code}\0{text}").into_bytes())
}

/// The connection still answers after a refusal.
fn still_works(c: &mut Conn) {
    c.send(ECHO_REQ, b"still here");
    assert_eq!(c.recv(), (ECHO_RES, b"still here".to_vec()));
}

#[test]
fn submits_outside_the_rule_are_refused_and_the_connection_stays() {
    let dir = TempDir::new();
    let server = start(&dir, LOCAL);
    let mut c = server.connect();
    c.send(SUBMIT_JOB_BG, b"allowed_resize\0\0x");
    assert_eq!(c.recv().0, JOB_CREATED);
    c.send(SUBMIT_JOB, b"secret\0\0x");
    assert_eq!(
        c.recv(),
        error(
            "PERMISSION_DENIED",
            "permission denied: may not submit to secret"
        )
    );
    still_works(&mut c);
    let log = server.wait_for_stderr(|l| l.contains("request refused by the access rules"));
    assert!(
        log.contains("rule=\"local\"") || log.contains("rule=local"),
        "{log}"
    );
    assert!(log.contains("secret"), "{log}");
    // The refusal is counted.
    let metrics = c.admin_listing("metrics");
    assert!(
        metrics.contains(&"gearbox_access_denied_total{what=\"submit\"} 1".to_string()),
        "{metrics:?}"
    );
}

#[test]
fn a_refused_registration_never_gets_the_job() {
    let dir = TempDir::new();
    let server = start(&dir, LOCAL);
    let mut worker = server.connect();
    worker.send(CAN_DO, b"other");
    assert_eq!(
        worker.recv(),
        error(
            "PERMISSION_DENIED",
            "permission denied: may not register for other"
        )
    );
    worker.send(CAN_DO, b"allowed_w");
    still_works(&mut worker); // no ERROR came for the allowed CAN_DO
    let mut client = server.connect();
    client.send(SUBMIT_JOB_BG, b"other\0\0payload");
    assert_eq!(client.recv().0, JOB_CREATED);
    worker.send(GRAB_JOB, b"");
    assert_eq!(worker.recv(), (NO_JOB, Vec::new()));
    let status = client.admin_listing("status");
    assert!(status.contains(&"other\t1\t0\t0".to_string()), "{status:?}");
}

#[test]
fn admin_reads_are_allowed_and_changes_refused() {
    let dir = TempDir::new();
    let server = start(&dir, LOCAL);
    let mut c = server.connect();
    assert!(c.admin("version").starts_with("OK "));
    assert_eq!(c.admin_listing("workers").len(), 1);
    for (line, name) in [
        ("maxqueue other 1", "maxqueue"),
        ("cancel job H:x:1", "cancel+job"),
        ("create function f", "create+function"),
        ("drop function f", "drop+function"),
        ("shutdown", "shutdown"),
    ] {
        assert_eq!(
            c.admin(line),
            format!("ERR PERMISSION_DENIED permission+denied:+{name}+needs+admin+write+access\r\n"),
            "{line}"
        );
    }
    assert!(c.admin_listing("status").is_empty(), "nothing was created");
}

#[test]
fn a_peer_no_rule_matches_may_do_nothing() {
    let dir = TempDir::new();
    let server = start(&dir, ELSEWHERE);
    let mut c = server.connect();
    c.send(SUBMIT_JOB_BG, b"anything\0\0x");
    assert_eq!(
        c.recv(),
        error(
            "PERMISSION_DENIED",
            "permission denied: may not submit to anything"
        )
    );
    c.send(CAN_DO, b"anything");
    assert_eq!(
        c.recv(),
        error(
            "PERMISSION_DENIED",
            "permission denied: may not register for anything"
        )
    );
    assert_eq!(
        c.admin("status"),
        "ERR PERMISSION_DENIED permission+denied:+status+needs+admin+read+access\r\n"
    );
    still_works(&mut c);
}

#[tokio::test]
async fn gearbox_client_and_worker_see_the_rules() {
    use gearbox_client::worker::{Job, JobError, StopReason, Worker};
    use gearbox_client::{Client, Error};

    let dir = TempDir::new();
    let server = start(&dir, LOCAL);
    let addr = server.addr.to_string();
    let worker = Worker::builder()
        .servers(&addr)
        .register("allowed_upper", |job: Job| async move {
            Ok::<_, JobError>(job.payload_str()?.to_uppercase())
        })
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(stopped));
    let client = Client::new(&addr).unwrap();
    let done = tokio::time::timeout(support::TIMEOUT, client.submit("allowed_upper", "hi"))
        .await
        .expect("answered");
    assert_eq!(done.unwrap(), "HI");
    match client.submit("secret", "hi").await {
        Err(Error::PermissionDenied(text)) => {
            assert_eq!(text, "permission denied: may not submit to secret")
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    stop.send(()).unwrap();
    assert!(running.await.unwrap().unwrap().is_clean());

    // A worker for a function it may not register for stops by itself.
    let refused = Worker::builder()
        .servers(&addr)
        .register("other", |_job: Job| async { Ok::<_, JobError>("") })
        .build()
        .unwrap();
    let reason = tokio::time::timeout(support::TIMEOUT, refused.run(std::future::pending::<()>()))
        .await
        .expect("the refused worker stops")
        .unwrap();
    assert!(
        matches!(&reason, StopReason::PermissionDenied { error } if error.contains("register for other")),
        "{reason:?}"
    );
}

#[tokio::test]
async fn the_c_tools_get_a_clean_error_and_do_not_hang() {
    let Some(gearman) = external::require("gearman", "Debian gearman-tools: the libgearman CLI")
    else {
        return;
    };
    let Some(gearadmin) = external::require("gearadmin", "Debian gearman-tools: the admin CLI")
    else {
        return;
    };
    let dir = TempDir::new();
    let server = start(&dir, LOCAL);
    let port = server.addr.port().to_string();
    let args = |extra: &[&str]| -> Vec<String> {
        ["-h", "127.0.0.1", "-p", &port]
            .iter()
            .chain(extra)
            .map(|s| s.to_string())
            .collect()
    };
    // process::run fails the test if the tool does not exit in time.
    let refused = process::run(&gearman, &args(&["-f", "secret"]), b"x").await;
    let said = format!("{}{}", refused.stdout, refused.stderr);
    // libgearman's CLI prints the server's error and exits (with status 0, as it does for
    // any job error).
    assert!(
        said.contains("PERMISSION_DENIED") && said.contains("may not submit to secret"),
        "{said}"
    );
    let allowed = process::run(&gearman, &args(&["-b", "-f", "allowed_x"]), b"x").await;
    allowed.assert_success("gearman -b -f allowed_x");
    let status = process::run(&gearadmin, &args(&["--status"]), b"").await;
    status.assert_success("gearadmin --status");
    assert!(
        status.stdout.contains("allowed_x\t1\t0\t0"),
        "{}",
        status.stdout
    );
    let drop = process::run(&gearadmin, &args(&["--drop-function", "allowed_x"]), b"").await;
    let said = format!("{}{}", drop.stdout, drop.stderr);
    assert!(said.contains("PERMISSION_DENIED"), "{said}");
}

/// Python's `gear` client: a refused submit raises at once (gear logs the ERROR packet and
/// gives up on the server), an allowed one gets its handle.
const GEAR_CLIENT: &str = r#"
import sys, gear
client = gear.Client("access-test")
client.addServer("127.0.0.1", int(sys.argv[1]))
client.waitForServer(10)
job = gear.Job(b"secret", b"x")
try:
    client.submitJob(job, timeout=10)
    print("SUBMITTED", job.handle)
except gear.GearmanError as e:
    print("REFUSED", e)
ok = gear.Job(b"allowed_py", b"x")
client.submitJob(ok, background=True, timeout=10)
print("CREATED", ok.handle.decode())
client.shutdown()
"#;

#[tokio::test]
async fn python_gear_gets_a_clean_error_and_does_not_hang() {
    let Some(python) = external::require_probed(
        "python3",
        "Python with the `gear` library",
        &["-c", "import gear"],
        |out| format!("python3 lacks the `gear` library: {}", out.stderr.trim()),
    )
    .await
    else {
        return;
    };
    let dir = TempDir::new();
    let server = start(&dir, LOCAL);
    let port = server.addr.port().to_string();
    let out = process::run(&python, &["-c", GEAR_CLIENT, &port], b"").await;
    out.assert_success("the gear client");
    assert!(out.stdout.contains("REFUSED"), "{out:?}");
    assert!(out.stdout.contains("CREATED H:"), "{out:?}");
    assert!(
        out.stderr.contains("PERMISSION_DENIED"),
        "gear logs the server's error: {out:?}"
    );
}
