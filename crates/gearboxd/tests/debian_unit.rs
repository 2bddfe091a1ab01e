//! Debian's `gearman-job-server` unit with gearboxd standing in for `/usr/sbin/gearmand`.
//!
//! There is no systemd here: the test runs the unit's `ExecStart` as systemd would for
//! `Type=forking`: the command line read from the installed unit, `$PARAMS` from its
//! `EnvironmentFile`, the binary replaced by gearboxd, absolute paths moved under a temporary
//! directory (made by the test as `ExecStartPre` makes `/run/gearman`, owned by the unit's
//! `User=`), in `/`, as that user when the test runs as root. Two flags are added: `--port=0`
//! (the tests use no fixed port) and `--data-dir` (the SQLite queue would otherwise go to
//! `/var/lib/gearbox`). The starting process must exit 0 only once the daemon serves, with
//! the pid file holding the live daemon's pid; SIGTERM to that pid stops it and removes the
//! pid file, as gearmand does.

mod support;

use std::os::unix::fs::chown;
use std::path::{Path, PathBuf};
use std::process::Command;

use gearbox_testkit::external;
use support::detached::{run_starter, state, terminate, Daemon};
use support::{Conn, TempDir};

const UNIT: &str = "/lib/systemd/system/gearman-job-server.service";
const DEFAULTS: &str = "/etc/default/gearman-job-server";

/// The value of `KEY=` in the unit's `[Service]` section.
fn unit_key<'a>(unit: &'a str, key: &str) -> &'a str {
    unit.lines()
        .find_map(|l| l.strip_prefix(&format!("{key}=")))
        .unwrap_or_else(|| panic!("no {key}= in the unit"))
}

/// `PARAMS="..."` of the environment file, its backslash-newlines joined.
fn params(defaults: &str) -> Vec<String> {
    let joined = defaults.replace("\\\n", " ");
    let line = joined
        .lines()
        .find(|l| l.starts_with("PARAMS="))
        .expect("PARAMS= in the environment file");
    let value = line["PARAMS=".len()..].trim().trim_matches('"');
    value.split_whitespace().map(str::to_owned).collect()
}

/// `word` with an absolute path after `=` (or as the whole word) moved under `root`.
fn redirect(word: &str, root: &Path) -> String {
    let (prefix, path) = match word.split_once('=') {
        Some((flag, p)) if p.starts_with('/') => (format!("{flag}="), p),
        _ if word.starts_with('/') => (String::new(), word),
        _ => return word.to_owned(),
    };
    format!("{prefix}{}", root.join(&path[1..]).display())
}

/// The unit's user's uid and gid, if it exists.
fn user(name: &str) -> Option<(u32, u32)> {
    let c = std::ffi::CString::new(name).unwrap();
    // SAFETY: getpwnam reads a NUL-terminated name; the record is copied out at once.
    let pw = unsafe { libc::getpwnam(c.as_ptr()) };
    // SAFETY: checked non-null.
    (!pw.is_null()).then(|| unsafe { ((*pw).pw_uid, (*pw).pw_gid) })
}

#[test]
fn debians_gearman_job_server_unit_runs_gearboxd_as_gearmand() {
    let (Some(_), Some(_)) = (
        external::require(
            UNIT,
            "Debian's gearman-job-server unit, from gearman-job-server",
        ),
        external::require(DEFAULTS, "its environment file"),
    ) else {
        return;
    };
    let unit = std::fs::read_to_string(UNIT).unwrap();
    assert_eq!(unit_key(&unit, "Type"), "forking");
    let exec: Vec<&str> = unit_key(&unit, "ExecStart").split_whitespace().collect();
    assert_eq!(exec[0], "/usr/sbin/gearmand");
    let root = TempDir::new();
    let mut argv: Vec<String> = Vec::new();
    for word in &exec[1..] {
        if *word == "$PARAMS" {
            argv.extend(params(&std::fs::read_to_string(DEFAULTS).unwrap()));
        } else {
            argv.push((*word).to_owned());
        }
    }
    assert!(argv.iter().any(|w| w == "--daemon"), "{argv:?}");
    let mut argv: Vec<String> = argv.iter().map(|w| redirect(w, root.path())).collect();
    let data = root.join("var/lib/gearbox");
    argv.push("--port=0".into());
    argv.push(format!("--data-dir={}", data.display()));
    // The directories the unit and the package provide, owned by the unit's user.
    let pid_file = PathBuf::from(redirect(unit_key(&unit, "PIDFile"), root.path()));
    let owner = unit_key(&unit, "User");
    // SAFETY: geteuid has no preconditions.
    let as_user = (unsafe { libc::geteuid() } == 0)
        .then(|| user(owner))
        .flatten();
    for arg in &argv {
        if let Some((_, path)) = arg.split_once('=').filter(|(_, p)| p.starts_with('/')) {
            let dir = if arg.starts_with("--data-dir=") {
                PathBuf::from(path)
            } else {
                Path::new(path).parent().unwrap().to_owned()
            };
            std::fs::create_dir_all(&dir).unwrap();
            if let Some((uid, gid)) = as_user {
                chown(&dir, Some(uid), Some(gid)).unwrap();
            }
        }
    }
    let mut cmd = match as_user {
        Some((uid, gid)) => {
            let setpriv = external::require("setpriv", "runs the unit as its User=").unwrap();
            let mut c = Command::new(setpriv);
            c.args([
                format!("--reuid={uid}"),
                format!("--regid={gid}"),
                "--init-groups".into(),
            ])
            .arg(env!("CARGO_BIN_EXE_gearboxd"));
            c
        }
        None => Command::new(env!("CARGO_BIN_EXE_gearboxd")),
    };
    cmd.args(&argv)
        .current_dir("/")
        .env_remove("GEARMAND_PORT")
        .env_remove("GEARBOXD_CONFIG")
        .env_remove("STATE_DIRECTORY");
    let started = run_starter(cmd);
    assert!(started.status.success(), "{argv:?}: {}", started.stderr);
    let daemon = Daemon::from_pid_file(&pid_file);
    let pid = daemon.0;
    assert_eq!(
        state(pid).map(|s| s != 'Z'),
        Some(true),
        "daemon {pid} not running"
    );
    let mut conn = Conn::connect(started.addr());
    assert!(conn.admin("version").starts_with("OK "));
    assert!(data.join("gearbox.sqlite").is_file());
    let log = argv
        .iter()
        .find_map(|a| a.strip_prefix("--log-file="))
        .unwrap();
    terminate(pid);
    assert!(!pid_file.exists(), "pid file left behind");
    let log = std::fs::read_to_string(log).unwrap();
    assert!(log.is_empty() || !log.contains("ERROR"), "{log}");
}
