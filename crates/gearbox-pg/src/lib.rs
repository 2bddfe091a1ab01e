//! # gearbox-pg: the PostgreSQL extension `gearbox`
//!
//! SQL functions that submit gearbox (Gearman) jobs, with the names of the MySQL UDFs
//! (`crates/gearbox-mysql-udf`): `gman_do*` (foreground, returns the result),
//! `gman_do*_background` (returns the handle), `gman_do*_background_on_commit` (submitted only
//! if the transaction commits) and `gman_servers_set`. The README lists them all.
//!
//! A backend must not start threads, so the extension speaks Gearman itself, synchronously,
//! over a blocking socket with a short read timeout: between two reads it checks for
//! interrupts, so `pg_cancel_backend` and `statement_timeout` stop a wait.
//!
//! # Layout
//!
//! - [`client`]: the synchronous Gearman client (one `TcpStream`, `gearbox-proto`'s codec);
//!   knows nothing of PostgreSQL.
//! - [`pool`]: this backend's cached connections, failover over the server list, one
//!   transparent reconnect.
//! - [`settings`]: the GUCs `gearbox.servers`, `gearbox.timeout`, `gearbox.connect_timeout`
//!   and the list `gman_servers_set` chose.
//! - [`sql`]: the `#[pg_extern]` functions, argument checks, SQL errors.
//! - [`on_commit`]: the queue of `*_on_commit` jobs and the transaction callbacks that send or
//!   discard it.

use pgrx::prelude::*;

pub mod client;
pub mod on_commit;
pub mod pool;
pub mod settings;
pub mod sql;

::pgrx::pg_module_magic!(name, version);

/// Called by PostgreSQL when a backend loads the library: registers the GUCs and the
/// transaction callbacks.
#[pg_guard]
pub extern "C-unwind" fn _PG_init() {
    settings::register();
    on_commit::register();
}

/// Raises the pending cancel or timeout ERROR, if any (the `tick` of every wait).
pub fn check_interrupts() {
    pgrx::check_for_interrupts!();
}
