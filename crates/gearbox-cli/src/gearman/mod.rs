//! The `gearman` drop-in: libgearman's command-line client and worker, with the same flags
//! ([`args`]), the same output, ordering and exit statuses, so scripts written for the C tool
//! keep working.
//!
//! - Client mode ([`client`]): each data argument (or standard input whole, or one job per
//!   line with `-n`/`-N`, or an empty payload with `-s`) is submitted to every `-f` function;
//!   results and WORK_DATA are written to standard output as they arrive, warnings to
//!   standard error, `N% Complete` lines for WORK_STATUS, `Job failed` (standard error, exit
//!   status 1) for WORK_FAIL. Connection problems print libgearman's messages and, as the C
//!   tool does, still exit 0.
//! - Worker mode ([`worker`], `-w`): serves every `-f` function, one job at a time, running the
//!   command per job (payload on standard input, standard output is the result, a non-zero
//!   exit sends the output as data and then WORK_FAIL); without a command it prints each
//!   payload. `-c N` exits after N jobs.
//! - [`stdio`]: C stdio buffering, for identical output order.
//!
//! Deliberate differences from the C tool (see the README): `-n`/`-N` workers send each
//! output line once (the C tool resends all earlier lines with each one); a WORK_STATUS with
//! denominator 0 prints `0% Complete` (the C tool dies of a division by zero); an exception
//! is reported as `Job failed` (the C tool never asks for exceptions, and hangs on gearmand's
//! malformed fallback); `-S` is accepted and ignored.

pub mod args;
pub mod client;
pub mod stdio;
pub mod worker;

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

pub use self::args::Args;
use super::gai;

/// The default port, used for `-p 0` or a missing port as libgearman does.
pub const DEFAULT_PORT: u16 = 4730;

/// One server as libgearman names it in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// Host as given.
    pub host: String,
    /// Port (0 replaced by the default).
    pub port: u16,
}

/// The servers: `GEARMAN_SERVER` (`host[:port],...`) when set, else `-h`/`-p`. The flag says
/// whether they came from the environment.
pub fn targets(args: &Args) -> (Vec<Target>, bool) {
    if let Some(list) = std::env::var("GEARMAN_SERVER")
        .ok()
        .filter(|v| !v.is_empty())
    {
        let parsed = list
            .split(',')
            .filter(|s| !s.is_empty())
            .map(|s| {
                let (host, port) = match s.strip_prefix('[').and_then(|r| r.split_once(']')) {
                    Some((h, rest)) => (h, rest.strip_prefix(':').unwrap_or("")),
                    None => match s.split_once(':') {
                        Some((h, p)) if !p.contains(':') => (h, p),
                        _ => (s, ""),
                    },
                };
                let port = match args::atoi(port.as_bytes()) as u16 {
                    0 => DEFAULT_PORT,
                    p => p,
                };
                Target {
                    host: host.to_string(),
                    port,
                }
            })
            .collect();
        return (parsed, true);
    }
    let port = if args.port == 0 {
        DEFAULT_PORT
    } else {
        args.port
    };
    let host = args.host.clone().unwrap_or_else(|| "localhost".into());
    (vec![Target { host, port }], false)
}

/// Checks every target resolves; the error is libgearman's message line.
pub fn resolve_all(targets: &[Target], label: &str) -> Result<(), String> {
    for t in targets {
        if let Err(e) = gai::resolve(&t.host, &t.port.to_string()) {
            return Err(format!(
                "gearman: {label} : {}:{} getaddrinfo:{e} pid({})\n",
                t.host,
                t.port,
                std::process::id()
            ));
        }
    }
    Ok(())
}

/// libgearman's message for a server that refused the connection.
pub fn could_not_connect(label: &str, t: &Target) -> String {
    format!(
        "gearman: {label} : flush(GEARMAN_COULD_NOT_CONNECT) Connection to {}:{} failed -> \
         libgearman/connection.cc:724: pid({})\n",
        t.host,
        t.port,
        std::process::id()
    )
}

/// libgearman's message for a `-t` timeout.
pub fn timed_out(label: &str, servers: usize, pipe: bool) -> String {
    format!(
        "gearman: {label} : gearman_wait(GEARMAN_TIMEOUT) timeout reached, {servers} servers \
         were poll(), no servers were available, pipe:{pipe} -> libgearman/universal.cc:346: \
         pid({})\n",
        std::process::id()
    )
}

/// A pid file holding `PID\n`, removed on drop.
struct PidFile(Option<std::path::PathBuf>);

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Some(p) = &self.0 {
            let _ = std::fs::remove_file(p);
        }
    }
}

/// `-d`: fork, let the parent exit 0, start a session, stdio to /dev/null. Runs before any
/// thread exists.
fn daemonize() -> Result<(), ExitCode> {
    // SAFETY: called while the process is single-threaded (before the runtime starts), so
    // fork is safe; the child only calls async-signal-safe functions before returning.
    unsafe {
        match libc::fork() {
            -1 => return Err(ExitCode::FAILURE),
            0 => {}
            _ => libc::_exit(0),
        }
        if libc::setsid() == -1 {
            return Err(ExitCode::FAILURE);
        }
        let fd = libc::open(c"/dev/null".as_ptr(), libc::O_RDWR);
        if fd != -1 {
            libc::dup2(fd, 0);
            libc::dup2(fd, 1);
            libc::dup2(fd, 2);
            libc::close(fd);
        }
    }
    Ok(())
}

/// Runs `gearman` with the full argument vector.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let name = argv
        .first()
        .map(|a| a.to_string_lossy().into_owned())
        .unwrap_or_else(|| "gearman".into());
    let args = Args::parse(argv.get(1..).unwrap_or_default());
    if args.usage {
        // `-H` exits 0, but like the C tool it prints to standard error when the command line
        // is also wrong (no `-f`).
        let text = args.usage_text(&name);
        let _ = if args.is_error {
            write!(std::io::stderr(), "{text}")
        } else {
            write!(std::io::stdout(), "{text}")
        };
        return ExitCode::SUCCESS;
    }
    if args.is_error {
        let _ = write!(std::io::stderr(), "{}", args.usage_text(&name));
        return ExitCode::FAILURE;
    }
    if args.daemon {
        if let Err(code) = daemonize() {
            return code;
        }
    }
    let _pid = match &args.pid_file {
        Some(path) => match std::fs::write(path, format!("{}\n", std::process::id())) {
            Ok(()) => PidFile(Some(path.into())),
            Err(_) => return ExitCode::FAILURE,
        },
        None => PidFile(None),
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return ExitCode::FAILURE,
    };
    let code = if args.worker {
        runtime.block_on(worker::run(&args))
    } else {
        runtime.block_on(client::run(&args))
    };
    runtime.shutdown_background();
    ExitCode::from(code)
}
