//! `--daemon`: detaching into the background the way a `Type=forking` service manager expects,
//! and telling the service manager (`Type=notify`) when gearboxd is ready and when it stops.
//!
//! [`detach`] forks (before any thread exists), the child starts a new session (`setsid`) and
//! forks again, so the daemon is no session leader and can never get a controlling terminal;
//! the daemon changes to `/` and reads standard input from `/dev/null`. The starting process
//! waits on a pipe: it exits 0 when the daemon says it is ready (sockets bound, store replayed,
//! pid file written: [`Detached::ready`]), and 1 if the pipe closes first (the daemon stopped
//! on an error, which it printed on the standard error it still shares, as it printed its
//! warnings and `gearboxd listening on` lines). Standard output and error go to `/dev/null`
//! once ready (logs go to `--log-file` or syslog).

use std::fs::File;
use std::io::{PipeWriter, Read, Write};
use std::os::fd::AsRawFd;

use nix::unistd::{fork, setsid, ForkResult};

use crate::error::CliError;

/// What the daemon writes on the pipe when it is ready.
const READY: u8 = b'R';

/// The daemon's end of the ready pipe.
#[derive(Debug)]
pub struct Detached {
    pipe: Option<PipeWriter>,
}

/// Detaches: returns only in the daemon process. The starting process exits from here, with
/// the daemon's outcome. Must be called while the process has a single thread.
pub fn detach() -> Result<Detached, CliError> {
    let (mut reader, writer) = std::io::pipe().map_err(|source| CliError::Process {
        what: "create the daemon's ready pipe",
        source,
    })?;
    // SAFETY: the process has one thread (main calls this before any runtime or thread
    // exists), so the child may run any code.
    match unsafe { fork() }.map_err(|e| process("fork", e))? {
        ForkResult::Parent { child } => {
            drop(writer);
            let mut got = Vec::new();
            let _ = reader.read_to_end(&mut got);
            // The intermediate child exits at once; reap it.
            let _ = nix::sys::wait::waitpid(child, None);
            let code = if got.first() == Some(&READY) { 0 } else { 1 };
            std::process::exit(code);
        }
        ForkResult::Child => {}
    }
    drop(reader);
    setsid().map_err(|e| process("start a new session (setsid)", e))?;
    // SAFETY: still a single thread, in the child of the fork above.
    match unsafe { fork() }.map_err(|e| process("fork a second time", e))? {
        // SAFETY: _exit ends the intermediate process without running anything of the
        // parent's (no atexit handlers, no buffered output flushed twice).
        ForkResult::Parent { .. } => unsafe { libc::_exit(0) },
        ForkResult::Child => {}
    }
    std::env::set_current_dir("/").map_err(|source| CliError::Process {
        what: "change to the root directory",
        source,
    })?;
    redirect_to_null(&[libc::STDIN_FILENO])?;
    Ok(Detached { pipe: Some(writer) })
}

impl Detached {
    /// Points standard output and error at `/dev/null` (so that nothing waiting for their end,
    /// a pipe or a shell's `$(...)`, waits for the daemon), then tells the starting process
    /// that the daemon serves, which lets it exit 0.
    pub fn ready(&mut self) -> Result<(), CliError> {
        redirect_to_null(&[libc::STDOUT_FILENO, libc::STDERR_FILENO])?;
        if let Some(mut pipe) = self.pipe.take() {
            // A starter that is gone (killed while waiting) does not stop the daemon.
            if let Err(e) = pipe.write_all(&[READY]) {
                tracing::warn!(error = %e, "the process that started the daemon is gone");
            }
        }
        Ok(())
    }
}

fn redirect_to_null(fds: &[libc::c_int]) -> Result<(), CliError> {
    let null = File::options()
        .read(true)
        .write(true)
        .open("/dev/null")
        .map_err(|source| CliError::Process {
            what: "open /dev/null",
            source,
        })?;
    for fd in fds {
        // SAFETY: both descriptors are open; dup2 replaces `fd` atomically.
        if unsafe { libc::dup2(null.as_raw_fd(), *fd) } < 0 {
            return Err(CliError::Process {
                what: "redirect standard input/output to /dev/null",
                source: std::io::Error::last_os_error(),
            });
        }
    }
    Ok(())
}

fn process(what: &'static str, e: nix::Error) -> CliError {
    CliError::Process {
        what,
        source: std::io::Error::from(e),
    }
}

/// Tells systemd (when it started gearboxd with `Type=notify`: `NOTIFY_SOCKET` is set) that
/// gearboxd is ready, with a status line. Without `NOTIFY_SOCKET`, does nothing.
pub fn notify_ready(status: &str) {
    let states = [
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(status),
    ];
    if let Err(e) = sd_notify::notify(false, &states) {
        tracing::warn!(error = %e, "cannot tell systemd that gearboxd is ready");
    }
}

/// Tells systemd that gearboxd is stopping. Without `NOTIFY_SOCKET`, does nothing.
pub fn notify_stopping() {
    if let Err(e) = sd_notify::notify(false, &[sd_notify::NotifyState::Stopping]) {
        tracing::warn!(error = %e, "cannot tell systemd that gearboxd is stopping");
    }
}
