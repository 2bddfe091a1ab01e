//! # gearboxd: the job server daemon's parts
//!
//! The `gearbox` command (client, worker, admin, and the `gearman`/`gearadmin` drop-ins) is
//! the `gearbox-cli` crate; this crate is `gearboxd` alone.
//!
//! `src/main.rs` wires these together: it parses flags, resolves the settings (reading the
//! config files), detaches (`--daemon`, before any thread exists), binds, switches user
//! (`--user`), installs logging, builds the Tokio runtime, installs the signal handlers, opens
//! the job store, writes the pid file, reports the bound addresses, says it is ready (to
//! systemd, and to the process that started a daemon) and runs
//! [`gearbox_server::run_with_store`] until a signal stops it, then closes the store.
//!
//! ## Layout
//!
//! - [`options`]: [`Options`], every setting a flag and a config-file key can both give, each
//!   defined once as a field that clap and serde both derive from (its flag, key, environment
//!   variable, help text and type), in sections; the store's section is
//!   [`store::StoreSection`].
//! - [`args`]: the clap command line, named as gearmand names it: [`Options`] flattened, plus
//!   the flags that exist only there (the config-file path, `-v`, `--check-args`, gearmand's
//!   process flags).
//! - [`config_file`]: the TOML file, a layer of [`Options`] (`gearboxd.example.toml`
//!   documents every key).
//! - [`layers`]: the generic layering: a layer's given keys as a TOML table, one layer over
//!   another, a table back into a struct naming the key at fault.
//! - [`settings`]: flags > environment > file > defaults, checked once into [`Settings`].
//! - [`log_format`]: `--log-format` (text or JSON lines) and `--log-filter` directives.
//! - [`level`]: gearmand's verbosity names (`ERROR`, `INFO`, ...) and their `tracing` levels.
//! - [`logging`]: standard error or a log file that SIGHUP reopens; the subscriber set-up.
//! - [`listen`]: which addresses to bind, and binding them (backlog, SO_REUSEADDR, keepalive).
//! - [`signals`]: SIGTERM/SIGINT/SIGUSR1 as shutdown futures, SIGHUP as a log reopen and a
//!   TLS reload.
//! - [`tls`]: TLS on the Gearman port (`--ssl`, `--ssl-port`, ...): [`tls::TlsSection`] and
//!   its checked [`tls::TlsSettings`].
//! - [`store`]: which job store (`-q`, `--store`, `--data-dir`, `--libsqlite3-*`, `--libpq-*`,
//!   `--redis-*`, `--mysql-*`, `--durability`), opening it before binding with the drivers
//!   the cargo features build in, and importing gearmand's queue table.
//! - [`cluster`]: cluster mode (`--cluster`, `--cluster-id`, ...): [`cluster::ClusterSection`]
//!   and its checked [`cluster::ClusterSettings`].
//! - [`process`]: the pid file and the open-file limit.
//! - [`daemon`]: `--daemon` (fork, setsid, fork, the ready pipe) and systemd's READY=1 and
//!   STOPPING=1 (`Type=notify`).
//! - [`privileges`]: `--user`, after binding.
//! - [`syslog_target`]: log lines to syslog (`--syslog`).
//! - [`gearmand_conf`]: gearmand's `--config-file` (default `/etc/gearmand.conf`).
//! - [`compat`]: gearmand's flags without an effect here (warned).
//! - [`error`]: the [`CliError`] enum.
//!
//! ## What the binary prints
//!
//! Once every socket is bound (and before the first connection is served), `gearboxd` writes
//! one line per listening socket to standard error, whatever the log level and log file:
//!
//! ```text
//! gearboxd listening on 127.0.0.1:43121
//! ```
//!
//! With `--ssl-port`, each TLS listening socket gets a line of its own:
//!
//! ```text
//! gearboxd tls listening on 127.0.0.1:43122
//! ```
//!
//! (With `--ssl` alone the Gearman ports speak TLS and keep the first form.)
//! Test harnesses start it with `-p 0` and read the port from that line. The same addresses
//! are also logged at INFO as `listening addr=...`. Errors that stop the start-up are printed
//! as `gearboxd: error: ...` with a non-zero exit status; a signal-driven stop exits 0, an
//! immediate one within [`IMMEDIATE_STOP_LIMIT`] even if some connection does not close.

#![warn(missing_docs)]

pub mod args;
pub mod cluster;
pub mod compat;
pub mod config_file;
pub mod daemon;
pub mod error;
pub mod gearmand_conf;
pub mod http;
pub mod layers;
pub mod level;
pub mod listen;
pub mod log_format;
pub mod logging;
pub mod options;
pub mod privileges;
pub mod process;
pub mod settings;
pub mod signals;
pub mod store;
pub mod syslog_target;
pub mod tls;

pub use args::Args;
pub use error::CliError;
pub use options::Options;
pub use settings::Settings;

/// How long an immediate stop (SIGTERM, SIGINT) may take to flush and close connections before
/// `gearboxd` exits without waiting for them.
pub const IMMEDIATE_STOP_LIMIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The prefix of the line reporting each bound address on standard error.
pub const LISTENING_PREFIX: &str = "gearboxd listening on ";

/// The prefix of the line reporting each `--ssl-port` address on standard error.
pub const TLS_LISTENING_PREFIX: &str = "gearboxd tls listening on ";
