//! The real binary and its signals: SIGTERM/SIGINT stop it, SIGUSR1 stops it once the work is
//! done, SIGHUP reopens the log file; the pid file lives exactly as long as the process.

mod support;

use gearbox_proto::PacketType::{
    CAN_DO, ECHO_REQ, ECHO_RES, GRAB_JOB_UNIQ, JOB_ASSIGN_UNIQ, JOB_CREATED, SUBMIT_JOB_BG,
    WORK_COMPLETE,
};
use support::{wait_until, Gearboxd, TempDir, TIMEOUT};

fn loopback(extra: &[&str]) -> Gearboxd {
    let mut args = vec!["-p", "0", "-L", "127.0.0.1"];
    args.extend_from_slice(extra);
    Gearboxd::start(&args)
}

fn file_contains(path: &std::path::Path, needle: &str) -> bool {
    std::fs::read_to_string(path).is_ok_and(|s| s.contains(needle))
}

#[test]
fn sigterm_exits_zero_promptly() {
    let mut server = loopback(&[]);
    server.stop_with(libc::SIGTERM);
}

#[test]
fn sigint_exits_zero_promptly() {
    let mut server = loopback(&[]);
    // An idle open connection (known to the server: it answered) does not hold up the stop.
    let mut idle = server.connect();
    idle.send(ECHO_REQ, b"x");
    assert_eq!(idle.recv().0, ECHO_RES);
    server.stop_with(libc::SIGINT);
}

#[test]
fn sigterm_exits_within_the_stop_limit_even_if_a_peer_does_not_read() {
    let mut server = loopback(&["--verbose", "WARNING", "--max-unsent", "1000000000"]);
    let mut deaf = server.connect();
    // 48 MiB of echoes that the client never reads: more than the socket buffers hold, so
    // the server's writer is stuck and an immediate stop cannot flush.
    let chunk = vec![b'x'; 1 << 20];
    for _ in 0..48 {
        deaf.send(ECHO_REQ, &chunk);
    }
    let stderr = server.stop_with(libc::SIGTERM);
    assert!(stderr.contains("still open after the stop limit"));
}

#[test]
fn sigusr1_waits_for_the_queued_job_to_complete() {
    let mut server = loopback(&["--verbose", "INFO"]);
    let mut client = server.connect();
    client.send(SUBMIT_JOB_BG, b"reverse\0\0hello");
    let (ty, handle) = client.recv();
    assert_eq!(ty, JOB_CREATED);

    let mut worker = server.connect();
    worker.send(CAN_DO, b"reverse");
    worker.send(ECHO_REQ, b"sync");
    assert_eq!(worker.recv(), (ECHO_RES, b"sync".to_vec()));

    server.signal(libc::SIGUSR1);
    server.wait_for_stderr(|l| l.contains("shutting down") && l.contains("Graceful"));
    assert!(server.running(), "stopped with a job queued");

    worker.send(GRAB_JOB_UNIQ, b"");
    let (ty, assigned) = worker.recv();
    assert_eq!(ty, JOB_ASSIGN_UNIQ);
    let mut expected = handle.clone();
    expected.extend_from_slice(b"\0reverse\0\0hello");
    assert_eq!(assigned, expected);
    assert!(server.running(), "stopped with a job running");

    let mut complete = handle;
    complete.extend_from_slice(b"\0olleh");
    worker.send(WORK_COMPLETE, &complete);
    server.wait_for_clean_exit();
}

#[test]
fn second_sigterm_ends_a_graceful_stop_that_cannot_finish() {
    let mut server = loopback(&["--verbose", "INFO"]);
    let mut client = server.connect();
    client.send(SUBMIT_JOB_BG, b"nobody-does-this\0\0x");
    assert_eq!(client.recv().0, JOB_CREATED);
    server.signal(libc::SIGUSR1);
    server.wait_for_stderr(|l| l.contains("shutting down") && l.contains("Graceful"));
    assert!(server.running());
    let stderr = server.stop_with(libc::SIGTERM);
    assert!(stderr.contains("stopped without waiting"));
}

#[test]
fn sighup_reopens_the_log_file() {
    let dir = TempDir::new();
    let log = dir.join("gearboxd.log");
    let rotated = dir.join("gearboxd.log.1");
    let mut server = loopback(&["--log-file", log.to_str().unwrap(), "--verbose", "DEBUG"]);
    // The listening line still reached stderr (start() read the port from it); the log file
    // has the library's own line.
    assert!(wait_until(TIMEOUT, || file_contains(
        &log,
        "listening addr="
    )));

    std::fs::rename(&log, &rotated).unwrap();
    server.signal(libc::SIGHUP);
    assert!(
        wait_until(TIMEOUT, || file_contains(&log, "log file reopened")),
        "no new log file; stderr:\n{}",
        server.stderr_text()
    );

    let mut conn = server.connect();
    conn.send(ECHO_REQ, b"x");
    assert_eq!(conn.recv().0, ECHO_RES);
    assert!(wait_until(TIMEOUT, || file_contains(&log, "connected")));
    let old = std::fs::read_to_string(&rotated).unwrap();
    assert!(old.contains("reopening log file"), "{old}");
    assert!(!old.contains("connected"), "{old}");

    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    assert!(file_contains(&log, "gearboxd stopped"));
}

#[test]
fn pid_file_is_written_at_start_and_removed_at_exit() {
    let dir = TempDir::new();
    let pid_file = dir.join("gearboxd.pid");
    let mut server = loopback(&["--pid-file", pid_file.to_str().unwrap()]);
    assert_eq!(
        std::fs::read_to_string(&pid_file).unwrap(),
        format!("{}\n", server.pid())
    );
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success());
    assert!(!pid_file.exists());
}
