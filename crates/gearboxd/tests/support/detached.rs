//! Starting `gearboxd --daemon` as a service manager does: the starting process must exit by
//! itself; the daemon is then found through its pid file.

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, ExitStatus};

use gearboxd::LISTENING_PREFIX;

use super::{wait_until, TIMEOUT};

/// What the starting process left: its exit status and everything it (and the daemon, until
/// ready) wrote on standard error.
pub struct Started {
    /// The starting process's exit status.
    pub status: ExitStatus,
    /// Its standard error, and the daemon's until it was ready.
    pub stderr: String,
}

impl Started {
    /// The first address of the `gearboxd listening on` lines.
    pub fn addr(&self) -> SocketAddr {
        let line = self
            .stderr
            .lines()
            .find(|l| l.starts_with(LISTENING_PREFIX))
            .unwrap_or_else(|| panic!("no listening line: {}", self.stderr));
        line[LISTENING_PREFIX.len()..].parse().unwrap()
    }
}

/// Runs `cmd` (a `gearboxd --daemon` command line) until the starting process exits, within
/// [`TIMEOUT`]; standard error must reach its end then too (the daemon lets go of it).
pub fn run_starter(cmd: Command) -> Started {
    let mut child = super::spawn_piping_stderr(cmd);
    let mut pipe = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    let mut status = None;
    let exited = wait_until(TIMEOUT, || {
        status = child.try_wait().unwrap();
        status.is_some()
    });
    if !exited {
        let _ = child.kill();
    }
    assert!(exited, "the starting process did not exit");
    let stderr = rx
        .recv_timeout(TIMEOUT)
        .expect("standard error still held open after the start");
    Started {
        status: status.unwrap(),
        stderr,
    }
}

/// The pid a pid file holds.
pub fn read_pid(path: &Path) -> i32 {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("pid file {}: {e}", path.display()));
    assert!(text.ends_with('\n'), "{text:?}");
    text.trim().parse().unwrap()
}

/// The state letter of process `pid` (`R`, `S`, `Z`, ...), `None` if there is none.
pub fn state(pid: i32) -> Option<char> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(") ")?.1.chars().next()
}

/// A field of `/proc/PID/status` (`Uid`, `Gid`, `Groups`, `PPid`), as its text.
pub fn status_field(pid: i32, name: &str) -> String {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("no {name} in {status}"))
        .trim()
        .to_owned()
}

/// The session id of process `pid`.
pub fn session(pid: i32) -> i32 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let fields: Vec<&str> = stat.rsplit_once(") ").unwrap().1.split(' ').collect();
    // After the name: state, ppid, pgrp, session.
    fields[3].parse().unwrap()
}

/// Sends SIGTERM to `pid` and waits until it has exited (gone, or a zombie of its reaper).
pub fn terminate(pid: i32) {
    // SAFETY: kill has no memory-safety preconditions.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    assert!(
        wait_until(TIMEOUT, || matches!(state(pid), None | Some('Z'))),
        "daemon {pid} still running after SIGTERM"
    );
}

/// A detached daemon, killed on drop if it still runs (a failing test leaves none behind).
pub struct Daemon(pub i32);

impl Daemon {
    /// The daemon whose pid the pid file at `path` holds.
    pub fn from_pid_file(path: &Path) -> Daemon {
        Daemon(read_pid(path))
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        if matches!(state(self.0), Some(s) if s != 'Z') {
            // SAFETY: kill has no memory-safety preconditions.
            unsafe { libc::kill(self.0, libc::SIGKILL) };
        }
    }
}
