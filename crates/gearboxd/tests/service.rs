//! gearboxd under systemd: the shipped unit passes `systemd-analyze verify`, and gearboxd run
//! as that unit runs it (`Type=notify`, `StateDirectory=`, started in `/`) sends READY=1 only
//! once its port accepts and the stored jobs are back, keeps them in `$STATE_DIRECTORY`, and
//! sends STOPPING=1 when told to stop.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Command, Stdio};

use gearbox_testkit::external;
use support::jobs::{submit, SUBMIT_JOB_BG};
use support::{Conn, Gearboxd, TempDir, TIMEOUT};

const UNIT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/systemd/gearboxd.service");

#[test]
fn the_unit_passes_systemd_analyze_verify() {
    let Some(analyze) = external::require("systemd-analyze", "verifies the systemd unit") else {
        return;
    };
    let unit = std::fs::read_to_string(UNIT).unwrap();
    for line in [
        "Type=notify",
        "StateDirectory=gearbox",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
    ] {
        assert!(unit.lines().any(|l| l == line), "{line} missing");
    }
    // verify checks that ExecStart's program exists: a copy names the binary just built.
    let exec = "ExecStart=/usr/sbin/gearboxd ";
    assert!(unit.contains(exec), "the packaged path changed");
    let dir = TempDir::new();
    let copy = dir.join("gearboxd.service");
    let built = format!("ExecStart={} ", env!("CARGO_BIN_EXE_gearboxd"));
    std::fs::write(&copy, unit.replace(exec, &built)).unwrap();
    let out = Command::new(analyze)
        .arg("verify")
        .arg(&copy)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    // Unknown keys and bad values are only warnings: there must be none.
    assert!(err.trim().is_empty(), "{err}");
}

/// `gearboxd ARGS` as systemd starts the unit: in `/`, with `$STATE_DIRECTORY` and
/// `$NOTIFY_SOCKET`, no `--data-dir`.
fn as_the_unit(state: &Path, notify: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gearboxd"));
    cmd.current_dir("/")
        .args(["-p", "0", "-L", "127.0.0.1"])
        .args(args)
        .env_remove("GEARMAND_PORT")
        .env_remove("GEARBOXD_CONFIG")
        .env("STATE_DIRECTORY", state)
        .env("NOTIFY_SOCKET", notify);
    cmd
}

/// The next notification, as `KEY=value` lines.
fn next_message(socket: &UnixDatagram) -> String {
    let mut buf = [0u8; 4096];
    let n = socket
        .recv(&mut buf)
        .expect("a notification within the timeout");
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn ready_comes_once_the_port_accepts_and_the_stored_jobs_are_back() {
    let dir = TempDir::new();
    let state = dir.join("state");
    std::fs::create_dir(&state).unwrap();
    let notify_path = dir.join("notify");
    let notify = UnixDatagram::bind(&notify_path).unwrap();
    notify.set_read_timeout(Some(TIMEOUT)).unwrap();

    // A first run stores a background job.
    let mut first = Gearboxd::start_command(as_the_unit(&state, &notify_path, &[]));
    let handle = submit(&mut first.connect(), SUBMIT_JOB_BG, "stored_fn", "u1", b"x");
    assert!(next_message(&notify).contains("READY=1"));
    first.stop_with(libc::SIGTERM);
    assert!(next_message(&notify).contains("STOPPING=1"));
    // In $STATE_DIRECTORY, nothing in /.
    assert!(state.join("gearbox.sqlite").is_file());
    assert!(!Path::new("/gearbox-data").exists());

    // The second run: at READY=1, the port accepts and the job is listed.
    let mut second = as_the_unit(&state, &notify_path, &[])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let ready = next_message(&notify);
    assert!(ready.lines().any(|l| l == "READY=1"), "{ready}");
    let addr = ready
        .lines()
        .find_map(|l| l.strip_prefix("STATUS=serving on "))
        .unwrap_or_else(|| panic!("no status: {ready}"))
        .split(", ")
        .next()
        .unwrap()
        .parse()
        .unwrap();
    let listed = Conn::connect(addr).admin_listing("status");
    assert!(
        listed.iter().any(|l| l.starts_with("stored_fn\t1\t0\t")),
        "{listed:?} (handle {handle})"
    );
    // SAFETY: kill has no memory-safety preconditions; the pid is our child's.
    unsafe { libc::kill(second.id() as libc::pid_t, libc::SIGTERM) };
    assert!(next_message(&notify).contains("STOPPING=1"));
    assert!(second.wait().unwrap().success());
}
