//! The `gearman` drop-in: libgearman's command-line client and worker, with the same flags
//! ([`args`]), the same output, ordering and exit statuses, so scripts written for the C tool
//! keep working.
//!
//! - Client mode ([`client`]): each data argument (or standard input whole, or one job per
//!   line with `-n`/`-N`, or an empty payload with `-s`) is submitted to every `-f` function;
//!   results and WORK_DATA are written to standard output as they arrive, warnings and
//!   exception data to standard error, `N% Complete` lines for WORK_STATUS, `Job failed` (standard error, exit
//!   status 1) for WORK_FAIL. Connection problems and ERROR packets print libgearman's
//!   messages ([`message`], with the server's error code) and, as the C tool does, still
//!   exit 0.
//! - Worker mode ([`worker`], `-w`): serves every `-f` function, one job at a time, running the
//!   command per job (payload on standard input, standard output is the result, a non-zero
//!   exit sends the output as data and then WORK_FAIL); without a command it prints each
//!   payload. `-c N` exits after N jobs.
//! - [`servers`]: the server list from `GEARMAN_SERVERS`, `GEARMAN_SERVER` and `-h`/`-p`.
//! - [`message`]: libgearman's error messages, byte for byte.
//! - [`stdio`]: C stdio buffering, for identical output order.
//!
//! Deliberate differences from the C tool (all listed in docs/differences.md): `-n`/`-N`
//! workers send each output line once (the C tool resends all earlier lines with each one); a
//! WORK_STATUS with denominator 0 prints `0% Complete` (the C tool dies of a division by
//! zero); gearmand's malformed WORK_FAIL (its stand-in for an exception) is `Job failed` (the C
//! tool hangs); a worker with no reachable server retries once a second (the C tool spins).
//!
//! `-S` connects over TLS with the CA, client certificate and key from `GEARBOX_SSL_CA_FILE`,
//! `GEARBOX_SSL_CERTIFICATE`, `GEARBOX_SSL_KEY` (or libgearman's `GEARMAND_CA_CERTIFICATE`,
//! `GEARMAN_CLIENT_PEM`, `GEARMAN_CLIENT_KEY`); see [`crate::tls`]. A failed handshake is
//! printed once on standard error (libgearman only says it could not connect).

pub mod args;
pub mod client;
pub mod message;
pub mod servers;
pub mod stdio;
pub mod worker;

use std::ffi::OsString;
use std::io::Write;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};

use gearbox_client::raw::RawConnection;
use gearbox_client::TlsConfig;

pub use self::args::Args;
use self::servers::{ListError, Server, Servers};
use self::stdio::ewrite;

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
    let tls = match crate::tls::TlsArgs::from_env().and_then(|t| t.enable(args.ssl).config()) {
        Ok(tls) => tls,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "gearman: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    if args.daemon {
        if let Err(code) = daemonize() {
            return code;
        }
    }
    let pid_file = match &args.pid_file {
        Some(path) => match std::fs::write(path, format!("{}\n", std::process::id())) {
            Ok(()) => PidFile(Some(path.into())),
            Err(_) => return ExitCode::FAILURE,
        },
        None => PidFile(None),
    };
    let servers = match Servers::from_env(&args, args.worker) {
        Ok(s) => s,
        Err(ListError::Create(what)) => {
            // The C tool dies of an uncaught exception here: same words, same signal.
            ewrite(servers::uncaught(what).as_bytes());
            std::process::abort();
        }
        Err(ListError::Add {
            label,
            error,
            from_env,
        }) => {
            ewrite(error.line(label).as_bytes());
            // The worker exits 1 for a bad -h/-p; everything else returns normally.
            return ExitCode::from(u8::from(args.worker && !from_env));
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(_) => return ExitCode::FAILURE,
    };
    let end = if args.worker {
        runtime.block_on(worker::run(&args, servers, tls))
    } else {
        worker::End::Exit(runtime.block_on(client::run(&args, servers, tls)))
    };
    runtime.shutdown_background();
    match end {
        worker::End::Exit(code) => ExitCode::from(code),
        worker::End::Signal(sig) => {
            drop(pid_file);
            die_of(sig)
        }
    }
}

/// Connects to `addr`, one address of `server`, over TLS when `tls` is given (the
/// certificate checked against the host as given, not the address). The first TLS failure
/// is printed on standard error.
async fn open(
    server: &Server,
    addr: SocketAddr,
    tls: Option<&TlsConfig>,
) -> gearbox_client::Result<RawConnection> {
    static TLS_REPORTED: AtomicBool = AtomicBool::new(false);
    let tls = match tls.map(|t| t.or_server_name(&server.host)).transpose() {
        Ok(tls) => tls,
        Err(e) => {
            if !TLS_REPORTED.swap(true, Ordering::Relaxed) {
                ewrite(format!("gearman: {e}\n").as_bytes());
            }
            return Err(e);
        }
    };
    let result = RawConnection::connect_with(&addr.to_string(), tls.as_ref()).await;
    if let Err(e @ (gearbox_client::Error::Tls { .. } | gearbox_client::Error::TlsSetup { .. })) =
        &result
    {
        if !TLS_REPORTED.swap(true, Ordering::Relaxed) {
            ewrite(format!("gearman: {e}\n").as_bytes());
        }
    }
    result
}

/// Ends the process by `sig` with its default action, so the parent sees the same status
/// as for the C tool, which has no handler.
fn die_of(sig: i32) -> ExitCode {
    // SAFETY: restoring the default action and raising a signal at ourselves; the runtime
    // and its threads are already shut down.
    unsafe {
        libc::signal(sig, libc::SIG_DFL);
        libc::raise(sig);
    }
    ExitCode::from(128 + sig as u8)
}
