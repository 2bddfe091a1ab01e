//! The GUCs (`gearbox.servers`, `gearbox.timeout`, `gearbox.connect_timeout`) and this
//! backend's server list (`gman_servers_set`).

use std::cell::RefCell;
use std::ffi::CString;
use std::time::{Duration, Instant};

use pgrx::guc::{GucContext, GucFlags, GucRegistry, GucSetting};

use crate::client::{parse_servers, Server};

/// The server list when neither `gearbox.servers` nor `gman_servers_set` says otherwise.
pub const DEFAULT_SERVERS: &str = "127.0.0.1:4730";

/// `gearbox.servers`: the default server list of every call.
pub static SERVERS: GucSetting<Option<CString>> =
    GucSetting::<Option<CString>>::new(Some(c"127.0.0.1:4730"));
/// `gearbox.timeout`: ms a call waits for the server's and the worker's answers; 0: no limit.
pub static TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(0);
/// `gearbox.connect_timeout`: ms to connect to one server of the list.
pub static CONNECT_TIMEOUT_MS: GucSetting<i32> = GucSetting::<i32>::new(5000);

thread_local! {
    /// The list `gman_servers_set` chose for this backend; `None`: `gearbox.servers`.
    static BACKEND_SERVERS: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Registers the GUCs (from `_PG_init`).
pub fn register() {
    GucRegistry::define_string_guc(
        c"gearbox.servers",
        c"Gearman job servers the gman_* functions use, host[:port],... (tried in order).",
        c"gman_servers_set() overrides it for the backend. The port defaults to 4730.",
        &SERVERS,
        GucContext::Userset,
        GucFlags::default(),
    );
    GucRegistry::define_int_guc(
        c"gearbox.timeout",
        c"How long a gman_* call waits for the job server and the worker; 0: no limit.",
        c"A foreground call counts from the submit to the result; a background call until the \
          server acknowledges the job. statement_timeout and pg_cancel_backend work regardless.",
        &TIMEOUT_MS,
        0,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
    GucRegistry::define_int_guc(
        c"gearbox.connect_timeout",
        c"How long connecting to one job server may take before the next one is tried.",
        c"",
        &CONNECT_TIMEOUT_MS,
        1,
        i32::MAX,
        GucContext::Userset,
        GucFlags::UNIT_MS,
    );
}

/// The servers the next call uses.
pub fn servers() -> Result<Vec<Server>, crate::client::Error> {
    let own = BACKEND_SERVERS.with(|s| s.borrow().clone());
    match own {
        Some(list) => parse_servers(&list),
        None => parse_servers(&guc_servers()),
    }
}

fn guc_servers() -> String {
    SERVERS
        .get()
        .and_then(|s| s.into_string().ok())
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_SERVERS.to_owned())
}

/// Sets this backend's list (`None` or blank: back to `gearbox.servers`) and returns the list
/// now in use. Cached connections to servers no longer listed are closed.
pub fn set_servers(list: Option<&str>) -> Result<String, crate::client::Error> {
    let list = list.map(str::trim).filter(|l| !l.is_empty());
    let parsed = parse_servers(list.map_or_else(guc_servers, str::to_owned).as_str())?;
    BACKEND_SERVERS.with(|s| *s.borrow_mut() = list.map(str::to_owned));
    crate::pool::retain(&parsed);
    Ok(parsed
        .iter()
        .map(|s| s.0.as_str())
        .collect::<Vec<_>>()
        .join(","))
}

/// `gearbox.timeout`, `None` when 0.
pub fn timeout() -> Option<Duration> {
    let ms = TIMEOUT_MS.get();
    (ms > 0).then(|| Duration::from_millis(ms as u64))
}

/// The deadline of a call starting now.
pub fn deadline() -> Option<Instant> {
    timeout().map(|t| Instant::now() + t)
}

/// `gearbox.connect_timeout`.
pub fn connect_timeout() -> Duration {
    Duration::from_millis(CONNECT_TIMEOUT_MS.get().max(1) as u64)
}
