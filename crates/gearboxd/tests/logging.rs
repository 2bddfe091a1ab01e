//! The real `gearboxd`'s log output: `--log-format json` lines for a scripted workload
//! (connections, a job's lifecycle at debug, errors with their context), no colour codes off
//! a terminal or under `NO_COLOR`, `--log-filter`/`GEARBOXD_LOG`, and the slow-job warning.

mod support;

use std::process::{Command, Stdio};

use gearbox_proto::PacketType::{
    CAN_DO, GRAB_JOB_UNIQ, JOB_ASSIGN_UNIQ, JOB_CREATED, SUBMIT_JOB, WORK_COMPLETE, WORK_STATUS,
};
use serde_json::Value;
use support::{start_fails, Conn, Gearboxd};

/// `gearboxd` on loopback, any port, memory-only store, with `args`.
fn start(args: &[&str], env: &[(&str, &str)]) -> Gearboxd {
    let mut all = vec!["-p", "0", "-L", "127.0.0.1"];
    all.extend_from_slice(args);
    Gearboxd::start_with_env(&all, env)
}

/// Submits a foreground job; returns its handle.
fn submit(client: &mut Conn, function: &str, unique: &str) -> String {
    client.send(SUBMIT_JOB, format!("{function}\0{unique}\0data").as_bytes());
    let (ty, body) = client.recv();
    assert_eq!(ty, JOB_CREATED);
    String::from_utf8(body).unwrap()
}

/// Grabs one job as `worker` (which has CAN_DO'd its function); returns its handle.
fn grab(worker: &mut Conn) -> String {
    worker.send(GRAB_JOB_UNIQ, b"");
    let (ty, body) = worker.recv();
    assert_eq!(ty, JOB_ASSIGN_UNIQ, "{}", String::from_utf8_lossy(&body));
    let handle = body.split(|b| *b == 0).next().unwrap();
    String::from_utf8(handle.to_vec()).unwrap()
}

/// Every log line on stderr (all but the `listening on` line) parsed as a JSON object.
fn json_lines(server: &Gearboxd) -> Vec<Value> {
    server
        .stderr_text()
        .lines()
        .filter(|l| !l.starts_with(gearboxd::LISTENING_PREFIX))
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// The first line whose `message` is `message` and whose text fields include `fields`.
fn find<'a>(lines: &'a [Value], message: &str, fields: &[(&str, &str)]) -> Option<&'a Value> {
    lines
        .iter()
        .find(|l| l["message"] == message && fields.iter().all(|(k, v)| l[*k].as_str() == Some(v)))
}

#[test]
fn json_lines_carry_connections_job_lifecycle_and_error_context() {
    let mut server = start(&["--log-format", "json", "--verbose", "DEBUG"], &[]);
    let mut worker = server.connect();
    worker.send(CAN_DO, b"reverse");
    let mut client = server.connect();
    let handle = submit(&mut client, "reverse", "u-1");
    assert_eq!(grab(&mut worker), handle);
    worker.send(WORK_STATUS, format!("{handle}\x001\x002").as_bytes());
    assert_eq!(client.recv().0, WORK_STATUS);
    worker.send(WORK_COMPLETE, format!("{handle}\0atad").as_bytes());
    assert_eq!(client.recv().0, WORK_COMPLETE);
    // A result for a job that does not exist: ERROR JOB_NOT_FOUND, logged with the conn.
    worker.send(WORK_COMPLETE, b"H:nowhere:9\0x");
    assert_eq!(worker.recv().0, gearbox_proto::PacketType::ERROR);
    // Bad magic: the connection is closed, and the line says whose it was and why.
    let mut bad = std::net::TcpStream::connect(server.addr).unwrap();
    std::io::Write::write_all(&mut bad, b"\0XYZ\0\0\0\x01\0\0\0\0").unwrap();
    server.wait_for_stderr(|l| l.contains("closing connection after protocol error"));
    drop(client);
    server.wait_for_stderr(|l| l.contains("\"disconnected\""));
    server.stop_with(libc::SIGTERM);

    let lines = json_lines(&server);
    for l in &lines {
        for key in ["timestamp", "level", "target", "message"] {
            assert!(l.get(key).is_some(), "no `{key}` in {l}");
        }
    }
    let connected: Vec<_> = lines
        .iter()
        .filter(|l| l["message"] == "connected")
        .collect();
    assert_eq!(connected.len(), 3, "{lines:#?}");
    assert!(connected.iter().all(|l| l["peer"]
        .as_str()
        .is_some_and(|p| p.starts_with("127.0.0.1:"))
        && l["conn"].is_u64()));
    let fields = [
        ("handle", handle.as_str()),
        ("function", "reverse"),
        ("unique", "u-1"),
    ];
    for event in ["submitted", "queued", "assigned", "status", "completed"] {
        let line = find(&lines, &format!("job {event}"), &fields)
            .unwrap_or_else(|| panic!("no `job {event}` line for {handle}: {lines:#?}"));
        assert_eq!(line["level"], "DEBUG");
        assert_eq!(line["event"], event);
    }
    // The submitter and the worker are named by their connection ids.
    let conn_of =
        |event: &str| find(&lines, &format!("job {event}"), &fields).unwrap()["conn"].clone();
    assert_ne!(conn_of("submitted"), conn_of("assigned"));
    assert_eq!(conn_of("assigned"), conn_of("completed"));
    let error = find(&lines, "ERROR sent to peer", &[("code", "JobNotFound")]).expect("error line");
    assert_eq!(error["conn"], conn_of("assigned"));
    let protocol = find(&lines, "closing connection after protocol error", &[]).unwrap();
    assert!(protocol["peer"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(protocol["error"].as_str().is_some_and(|e| !e.is_empty()));
    assert!(find(&lines, "disconnected", &[]).unwrap()["peer"].is_string());
}

/// Lines of a text log at DEBUG, from a run with one connection.
fn text_log(env: &[(&str, &str)]) -> String {
    let mut server = start(&["--verbose", "DEBUG"], env);
    drop(server.connect());
    server.wait_for_stderr(|l| l.contains("disconnected"));
    server.stop_with(libc::SIGTERM)
}

#[test]
fn text_off_a_terminal_or_with_no_color_has_no_escape_codes() {
    for env in [&[][..], &[("NO_COLOR", "1")][..]] {
        let log = text_log(env);
        assert!(log.contains("connected"), "{log}");
        assert!(!log.contains('\x1b'), "escape codes with {env:?}: {log}");
    }
}

/// What gearboxd writes on a terminal (`script` gives it a pseudo-terminal) with `NO_COLOR`
/// set to `no_color`: its INFO line on opening the store, then its error on failing to (the
/// store is in a directory that does not exist, so it exits by itself); `None` without
/// `script`.
fn on_a_terminal(no_color: &str) -> Option<String> {
    if Command::new("script").arg("--version").output().is_err() {
        let why = "`script` (util-linux) not installed";
        assert!(std::env::var("CI").as_deref() != Ok("true"), "{why}");
        eprintln!("skipped: {why}");
        return None;
    }
    let inner = format!(
        "{} -p 0 -L 127.0.0.1 --verbose INFO --store sqlite:///nonexistent-dir/x.sqlite",
        env!("CARGO_BIN_EXE_gearboxd")
    );
    let out = Command::new("script")
        .args(["-qec", &inner, "/dev/null"])
        .env("NO_COLOR", no_color)
        .env_remove("JOURNAL_STREAM")
        .stdin(Stdio::null())
        .output()
        .expect("run script");
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn a_terminal_gets_colours_unless_no_color_is_set() {
    let Some(coloured) = on_a_terminal("") else {
        return;
    };
    assert!(coloured.contains("opening the job store"), "{coloured}");
    assert!(
        coloured.contains('\x1b'),
        "no colours on a terminal: {coloured}"
    );
    let plain = on_a_terminal("1").unwrap();
    assert!(plain.contains("opening the job store"), "{plain}");
    assert!(!plain.contains('\x1b'), "colours despite NO_COLOR: {plain}");
}

#[test]
fn log_filter_adds_targets_over_the_level_and_rejects_nonsense() {
    for (args, env) in [
        (&["--log-filter", "gearbox_server::net=debug"][..], &[][..]),
        (
            &[][..],
            &[("GEARBOXD_LOG", "gearbox_server::net=debug")][..],
        ),
    ] {
        let mut server = start(args, env);
        drop(server.connect());
        server.wait_for_stderr(|l| l.contains("disconnected"));
        let log = server.stop_with(libc::SIGTERM);
        // The net layer's debug lines, but not gearboxd's own INFO lines (level ERROR).
        assert!(log.contains("connected"), "{log}");
        assert!(!log.contains("opening the job store"), "{log}");
    }
    let err = start_fails(&["--log-filter", "gearbox_server=loud"]);
    assert!(err.contains("log filter `gearbox_server=loud`"), "{err}");
}

/// gearboxd logging JSON at WARNING with `args`, a worker of `function`, and a client.
fn warned(args: &[&str], function: &str) -> (Gearboxd, Conn, Conn) {
    let all = [&["--log-format", "json", "--verbose", "WARNING"][..], args].concat();
    let server = start(&all, &[]);
    let mut worker = server.connect();
    worker.send(CAN_DO, function.as_bytes());
    let client = server.connect();
    (server, worker, client)
}

/// Waits for the WARN line containing `needle` and checks that it names the job (`handle`,
/// `function`) and its worker's address.
fn warning(server: &Gearboxd, needle: &str, handle: &str, function: &str) -> Value {
    let line = server.wait_for_stderr(|l| l.contains(needle));
    let line: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(line["level"], "WARN");
    assert_eq!(line["handle"], handle);
    assert_eq!(line["function"], function);
    assert_eq!(line["peer"], "127.0.0.1");
    line
}

#[test]
fn slow_job_warning_fires_for_a_job_past_the_threshold_only() {
    let (server, mut worker, mut client) = warned(&["--slow-job-warning", "1"], "slow");
    // The quick job finishes at once; its warning (had it one) would fall due before the
    // slow job's, so the slow job's warning proves the quick one's was disarmed.
    let quick = submit(&mut client, "slow", "quick");
    assert_eq!(grab(&mut worker), quick);
    worker.send(WORK_COMPLETE, format!("{quick}\0").as_bytes());
    assert_eq!(client.recv().0, WORK_COMPLETE);
    let slow = submit(&mut client, "slow", "slow");
    assert_eq!(grab(&mut worker), slow);
    let line = warning(&server, "slow job", &slow, "slow");
    assert!(line["running_ms"].as_u64().unwrap() >= 1000, "{line}");
    assert_eq!(line["threshold_ms"], 1000);
    let warnings = || server.stderr_text().matches("slow job").count();
    assert_eq!(warnings(), 1, "{}", server.stderr_text());
    assert!(!server.stderr_text().contains(&format!("\"{quick}\"")));
}

/// What gearboxd logs at INFO, into a file standing in for the journal's stream, with
/// `JOURNAL_STREAM` naming that file (`matching`) or another inode; it exits by itself (its
/// store is in a directory that does not exist).
fn with_journal_stream(matching: bool) -> String {
    use std::os::unix::fs::MetadataExt;
    let dir = support::TempDir::new();
    let path = dir.join("stream");
    let file = std::fs::File::create(&path).unwrap();
    let meta = file.metadata().unwrap();
    let ino = if matching { meta.ino() } else { meta.ino() + 1 };
    let status = Command::new(env!("CARGO_BIN_EXE_gearboxd"))
        .args(["-p", "0", "-L", "127.0.0.1", "--verbose", "INFO"])
        .args(["--store", "sqlite:///nonexistent-dir/x.sqlite"])
        .env("JOURNAL_STREAM", format!("{}:{ino}", meta.dev()))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(file)
        .status()
        .unwrap();
    assert_eq!(status.code(), Some(1));
    std::fs::read_to_string(&path).unwrap()
}

#[test]
fn on_the_journal_text_lines_have_no_timestamp() {
    let journal = with_journal_stream(true);
    let line = journal
        .lines()
        .find(|l| l.contains("opening the job store"))
        .unwrap_or_else(|| panic!("{journal}"));
    assert!(line.trim_start().starts_with("INFO gearboxd:"), "{line}");
    let elsewhere = with_journal_stream(false);
    let line = elsewhere
        .lines()
        .find(|l| l.contains("opening the job store"))
        .unwrap_or_else(|| panic!("{elsewhere}"));
    assert!(line.starts_with("20"), "no timestamp: {line}");
}

#[test]
fn stuck_worker_warning_names_the_silent_worker_and_its_job() {
    let (server, mut worker, mut client) = warned(&["--stuck-worker-warning", "1"], "quiet");
    let handle = submit(&mut client, "quiet", "q-1");
    assert_eq!(grab(&mut worker), handle);
    let line = warning(&server, "stuck worker", &handle, "quiet");
    assert_eq!(line["unique"], "q-1");
    assert!(line["silent_ms"].as_u64().unwrap() >= 1000, "{line}");
    assert!(
        !server.stderr_text().contains("slow job"),
        "slow-job default is 300 s"
    );
}
