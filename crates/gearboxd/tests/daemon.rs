//! `--daemon`, `--user` and `--syslog` on the real binary: the starting process exits 0 only
//! once the detached daemon serves (and 1 with the error when it cannot start), the pid file
//! holds the daemon's pid and goes at SIGTERM, relative paths keep their meaning, the user is
//! switched after binding, and log records reach a syslog socket.

mod support;

use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::Command;

use gearbox_testkit::external;
use support::detached::{run_starter, session, state, status_field, terminate, Daemon};
use support::{Conn, TempDir, TIMEOUT};

/// Detached, memory queue, loopback.
const LOOPBACK_DAEMON: [&str; 5] = ["-d", "-q", "builtin", "-L", "127.0.0.1"];

fn gearboxd(cwd: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gearboxd"));
    cmd.current_dir(cwd)
        .args(args)
        .env_remove("GEARMAND_PORT")
        .env_remove("GEARBOXD_CONFIG")
        .env_remove("STATE_DIRECTORY")
        .env_remove("NOTIFY_SOCKET");
    cmd
}

fn version(addr: std::net::SocketAddr) -> String {
    let mut conn = Conn::connect(addr);
    conn.admin("version")
}

#[test]
fn the_starter_exits_once_the_daemon_serves_and_sigterm_removes_the_pid_file() {
    let dir = TempDir::new();
    // Relative paths, resolved against the directory gearboxd was started in.
    let args = [
        "-d",
        "-p",
        "0",
        "-L",
        "127.0.0.1",
        "-P",
        "g.pid",
        "-l",
        "g.log",
    ];
    let started = run_starter(gearboxd(
        dir.path(),
        &[&args[..], &["--verbose", "INFO"]].concat(),
    ));
    assert!(started.status.success(), "{}", started.stderr);
    // At the starter's exit, everything is in place.
    let daemon = Daemon::from_pid_file(&dir.join("g.pid"));
    let pid = daemon.0;
    assert_eq!(
        state(pid).map(|s| s != 'Z'),
        Some(true),
        "daemon {pid} not running"
    );
    assert!(version(started.addr()).starts_with("OK "));
    // Detached: in a session it does not lead, in /, reading /dev/null.
    assert_ne!(session(pid), pid);
    assert_eq!(
        std::fs::read_link(format!("/proc/{pid}/cwd")).unwrap(),
        Path::new("/")
    );
    for fd in 0..3 {
        let target = std::fs::read_link(format!("/proc/{pid}/fd/{fd}")).unwrap();
        assert_eq!(target, Path::new("/dev/null"), "fd {fd}");
    }
    // The default SQLite queue is in the starting directory, not in /.
    assert!(dir.join("gearbox-data/gearbox.sqlite").is_file());
    terminate(pid);
    assert!(!dir.join("g.pid").exists(), "pid file left behind");
    let log = std::fs::read_to_string(dir.join("g.log")).unwrap();
    assert!(
        log.contains(&format!("pid={pid}")) && log.contains("gearboxd stopped"),
        "{log}"
    );
}

#[test]
fn a_daemon_that_cannot_start_fails_the_starter_with_its_error() {
    let dir = TempDir::new();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    starter_fails(
        &dir,
        &[&LOOPBACK_DAEMON[..], &["-p", &port, "-P", "g.pid"]].concat(),
        "gearboxd: error: cannot listen on 127.0.0.1",
    );
    // A store that cannot be opened, after binding: the same.
    starter_fails(
        &dir,
        &[
            "-d",
            "-p",
            "0",
            "-L",
            "127.0.0.1",
            "--libsqlite3-db",
            "/nonexistent/dir/q.db",
        ],
        "/nonexistent/dir/q.db",
    );
    assert!(!dir.join("g.pid").exists());
}

/// Runs the daemon's starter in `dir`, expecting exit status 1 and `error` on stderr.
fn starter_fails(dir: &TempDir, args: &[&str], error: &str) {
    let started = run_starter(gearboxd(dir.path(), args));
    assert_eq!(started.status.code(), Some(1), "{}", started.stderr);
    assert!(started.stderr.contains(error), "{}", started.stderr);
}

/// `nobody`'s uid and gid.
fn nobody() -> (u32, u32) {
    let name = std::ffi::CString::new("nobody").unwrap();
    // SAFETY: getpwnam reads a NUL-terminated name; the record is copied out at once.
    let pw = unsafe { libc::getpwnam(name.as_ptr()) };
    assert!(!pw.is_null(), "no user nobody");
    // SAFETY: non-null, as just checked.
    unsafe { ((*pw).pw_uid, (*pw).pw_gid) }
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// A free port below 1024 on 127.0.0.1 (only root can bind one), found by binding.
fn free_privileged_port() -> u16 {
    (600..1000)
        .find(|p| std::net::TcpListener::bind(("127.0.0.1", *p)).is_ok())
        .expect("a free port below 1024")
}

#[test]
fn user_is_switched_after_binding_a_privileged_port() {
    if !is_root() {
        assert!(!external::in_ci(), "CI=true but the --user test needs root");
        eprintln!("SKIPPED: switching users needs root");
        return;
    }
    let (uid, gid) = nobody();
    let dir = TempDir::new();
    let files = dir.join("files");
    std::fs::create_dir(&files).unwrap();
    std::os::unix::fs::chown(&files, Some(uid), Some(gid)).unwrap();
    let port = free_privileged_port().to_string();
    let (pid_file, log) = (files.join("g.pid"), files.join("g.log"));
    let (pid_path, log_path) = (pid_file.to_str().unwrap(), log.to_str().unwrap());
    let own = ["-u", "nobody", "-p", &port, "-P", pid_path, "-l", log_path];
    let args = [&LOOPBACK_DAEMON[..], &own].concat();
    let started = run_starter(gearboxd(dir.path(), &args));
    assert!(started.status.success(), "{}", started.stderr);
    let daemon = Daemon::from_pid_file(&pid_file);
    let pid = daemon.0;
    let ids = |field| status_field(pid, field);
    // Real, effective, saved and filesystem ids; and nobody's groups only (no root group).
    assert_eq!(ids("Uid"), format!("{uid}\t{uid}\t{uid}\t{uid}"));
    assert_eq!(ids("Gid"), format!("{gid}\t{gid}\t{gid}\t{gid}"));
    assert!(
        !ids("Groups").split_whitespace().any(|g| g == "0"),
        "{}",
        ids("Groups")
    );
    assert_eq!(started.addr().port().to_string(), port);
    assert!(version(started.addr()).starts_with("OK "));
    // The pid file and the log were created as nobody.
    use std::os::unix::fs::MetadataExt;
    for f in [&pid_file, &log] {
        assert_eq!(std::fs::metadata(f).unwrap().uid(), uid, "{}", f.display());
    }
    terminate(pid);
    assert!(!pid_file.exists(), "nobody could not remove its pid file");
}

#[test]
fn an_unknown_user_or_a_switch_without_root_is_an_error() {
    let dir = TempDir::new();
    let out = gearboxd(dir.path(), &["--check-args", "-u", "no-such-user-gearboxd"])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("no such user `no-such-user-gearboxd`"),
        "{err}"
    );
    if !is_root() {
        return;
    }
    let Some(setpriv) = external::require("setpriv", "runs gearboxd as nobody") else {
        return;
    };
    let (uid, gid) = nobody();
    let out = Command::new(setpriv)
        .args([
            format!("--reuid={uid}"),
            format!("--regid={gid}"),
            "--clear-groups".into(),
        ])
        .arg(env!("CARGO_BIN_EXE_gearboxd"))
        .args(["-q", "builtin", "-p", "0", "-L", "127.0.0.1", "-u", "root"])
        .current_dir("/")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("must be root to switch users"), "{err}");
}

#[test]
fn syslog_records_carry_the_daemons_pid_and_the_line_severity() {
    let dir = TempDir::new();
    let socket = dir.join("log");
    let syslogd = UnixDatagram::bind(&socket).unwrap();
    syslogd.set_read_timeout(Some(TIMEOUT)).unwrap();
    let mut cmd = gearboxd(
        dir.path(),
        &[
            &LOOPBACK_DAEMON[..],
            &[
                "-p",
                "0",
                "-P",
                "g.pid",
                "--syslog",
                "--verbose",
                "INFO",
                "--round-robin",
            ],
        ]
        .concat(),
    );
    cmd.env(gearboxd::syslog_target::SOCKET_ENV, &socket);
    let started = run_starter(cmd);
    assert!(started.status.success(), "{}", started.stderr);
    let daemon = Daemon::from_pid_file(&dir.join("g.pid"));
    let pid = daemon.0;
    let mut records = Vec::new();
    let mut buf = [0u8; 4096];
    while !records
        .iter()
        .any(|r: &String| r.contains("gearboxd started"))
    {
        let n = syslogd.recv(&mut buf).expect("a record within the timeout");
        records.push(String::from_utf8_lossy(&buf[..n]).into_owned());
    }
    terminate(pid);
    let tag = format!("gearboxd[{pid}]: ");
    let started_line = records
        .iter()
        .find(|r| r.contains("gearboxd started"))
        .unwrap();
    // facility user (1) * 8 + info (6)
    assert!(started_line.starts_with("<14>"), "{started_line}");
    assert!(started_line.contains(&tag), "{started_line}");
    // The warning for --round-robin, at severity warning (4).
    let warning = records
        .iter()
        .find(|r| r.contains("--round-robin is ignored"));
    assert!(
        warning.is_some_and(|w| w.starts_with("<12>") && w.contains(&tag)),
        "{records:?}"
    );
}

#[test]
fn syslog_that_cannot_be_reached_is_a_start_up_error() {
    let dir = TempDir::new();
    let mut cmd = gearboxd(
        dir.path(),
        &["--syslog", "-q", "builtin", "-p", "0", "-L", "127.0.0.1"],
    );
    cmd.env(
        gearboxd::syslog_target::SOCKET_ENV,
        dir.join("nothing-here"),
    );
    let out = cmd.output().unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(
        err.contains("cannot reach syslog at") && err.contains("nothing-here"),
        "{err}"
    );
}
