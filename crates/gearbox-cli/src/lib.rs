//! # The `gearbox` tool
//!
//! One binary, three personalities, chosen by the name it was invoked under (the basename of
//! `argv[0]`, so a symlink is enough):
//!
//! - `gearbox` (any other name): modern subcommands with human tables or `--json`
//!   (`submit`, `work`, `status`, `workers`, `jobs`, `cancel`, `maxqueue`, `watch`, `top`,
//!   `bench`).
//! - `gearman`: the libgearman command-line client and worker, same flags and output.
//! - `gearadmin`: the admin tool, same flags and byte-for-byte the same output.
//!
//! ## Layout
//!
//! - [`cli`]: the clap definition of the modern subcommands.
//! - [`admin_cmds`]: `status`, `workers`, `jobs`, `cancel`, `maxqueue`.
//! - [`cluster_cmd`]: `cluster [--members]`, the cluster-wide views of a gearboxd cluster.
//! - [`submit`]: `submit`, with progress and data chunks shown as they arrive.
//! - [`work`]: `work FUNCTION -- COMMAND`, and [`command`], running a command per job.
//! - [`watch`]: the live table.
//! - [`top`]: the dashboard's numbers in the terminal (full screen, or frames for scripts).
//! - [`http_api`]: a blocking client of gearboxd's HTTP JSON API, for `top` and `watch --http`.
//! - [`bench`](mod@bench): the load generator (`gearbox bench fg|bg|sweep`).
//! - [`output`]: column tables and JSON values.
//! - [`gearadmin`]: the `gearadmin` drop-in; [`gearman`]: the `gearman` drop-in.
//! - [`tls`]: [`tls::TlsArgs`], the `--ssl*` flags and `GEARBOX_SSL*` variables of every
//!   personality (the drop-ins' `-S` uses them too).
//! - [`gai`]: host/port resolution with the C library's exact error texts.

pub mod admin_cmds;
pub mod bench;
pub mod cli;
pub mod cluster_cmd;
pub mod command;
pub mod gai;
pub mod gearadmin;
pub mod gearman;
pub mod http_api;
pub mod output;
pub mod submit;
pub mod tls;
pub mod top;
pub mod watch;
pub mod work;

use std::ffi::OsString;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use clap::Parser;

/// Which tool the binary acts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Personality {
    /// The modern `gearbox` subcommands.
    Gearbox,
    /// The `gearman` drop-in.
    Gearman,
    /// The `gearadmin` drop-in.
    Gearadmin,
}

impl Personality {
    /// Chooses by the basename of `argv0`.
    ///
    /// ```
    /// use gearbox_cli::Personality;
    /// assert_eq!(Personality::of("/usr/local/bin/gearadmin".as_ref()), Personality::Gearadmin);
    /// assert_eq!(Personality::of("gearbox".as_ref()), Personality::Gearbox);
    /// ```
    pub fn of(argv0: &std::ffi::OsStr) -> Personality {
        match Path::new(argv0).file_name().and_then(|n| n.to_str()) {
            Some("gearman") => Personality::Gearman,
            Some("gearadmin") => Personality::Gearadmin,
            _ => Personality::Gearbox,
        }
    }
}

/// The binary's entry point.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    let argv0 = args.first().cloned().unwrap_or_default();
    match Personality::of(&argv0) {
        Personality::Gearman => gearman::main(args),
        Personality::Gearadmin => gearadmin::main(args),
        Personality::Gearbox => modern(args),
    }
}

/// The environment variable holding the log filter of the modern subcommands (`tracing`
/// `EnvFilter` syntax, default `warn`), e.g. `GEARBOX_LOG=gearbox_client=debug`.
pub const LOG_ENV: &str = "GEARBOX_LOG";

/// Runs the modern subcommands; errors are printed as `gearbox: error: ...` with status 1.
/// Library warnings (a worker's server going away, ...) go to standard error. The drop-in
/// personalities log nothing, so their output stays the C tools'.
fn modern(args: Vec<OsString>) -> ExitCode {
    let cli = cli::Cli::parse_from(args);
    let filter = tracing_subscriber::EnvFilter::try_from_env(LOG_ENV)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .try_init();
    // The load generator picks its own thread count: it shares the machine with the server.
    let threads = match &cli.command {
        cli::Command::Bench(b) => b.threads(),
        _ => 2,
    };
    let mut builder = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut b = tokio::runtime::Builder::new_multi_thread();
        b.worker_threads(threads);
        b
    };
    let runtime = match builder.enable_all().build() {
        Ok(rt) => rt,
        Err(e) => return fail(&anyhow::anyhow!("cannot start the Tokio runtime: {e}")),
    };
    let result = runtime.block_on(cli::run(cli));
    // Commands may leave blocked readers (stdin for `watch`): do not wait for them.
    runtime.shutdown_background();
    match result {
        Ok(code) => code,
        Err(e) => fail(&e),
    }
}

fn fail(e: &anyhow::Error) -> ExitCode {
    let _ = writeln!(std::io::stderr(), "gearbox: error: {e:#}");
    ExitCode::FAILURE
}
