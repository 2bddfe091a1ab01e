//! The settings every connection shares: the server list (`gman_servers_set`), the limit of
//! foreground calls (`gman_timeout_set`), and one client per server list.
//!
//! They are process-wide, as in the classic gearman UDFs: MariaDB's thread pool moves a
//! connection between threads and runs many connections on one thread, so per-thread values
//! would leak from one connection to another at random. A map keyed by connection id
//! (`thd_get_thread_id`) would be per connection, but the UDF API has no disconnect hook, so
//! its entries could never be freed; one shared value, set at deployment, is what the
//! functions are used for anyway.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use gearbox_client::blocking::Client;

/// The servers used until `gman_servers_set` is called.
pub const DEFAULT_SERVERS: &str = "127.0.0.1:4730";

/// What `gman_servers_set` and `gman_timeout_set` set, for every connection.
struct Settings {
    /// The `host[:port],...` list; `None`: [`DEFAULT_SERVERS`].
    servers: Option<String>,
    /// The limit of foreground calls; `None`: no limit.
    timeout: Option<Duration>,
}

/// Behind a std mutex: held only to read or replace a value, never while a job runs.
static SETTINGS: Mutex<Settings> = Mutex::new(Settings {
    servers: None,
    timeout: None,
});

fn settings() -> MutexGuard<'static, Settings> {
    // A panic while holding the lock leaves plain values behind; keep going.
    SETTINGS.lock().unwrap_or_else(|e| e.into_inner())
}

/// The current server list.
pub fn servers() -> String {
    settings()
        .servers
        .clone()
        .unwrap_or_else(|| DEFAULT_SERVERS.to_owned())
}

/// Replaces the server list (after checking that a client can be built for it).
pub fn set_servers(list: &str) -> Result<(), String> {
    client(list)?;
    settings().servers = Some(list.to_owned());
    Ok(())
}

/// The current limit of foreground calls.
pub fn timeout() -> Option<Duration> {
    settings().timeout
}

/// Replaces the limit of foreground calls.
pub fn set_timeout(limit: Option<Duration>) {
    settings().timeout = limit;
}

/// The client of a server list. One per list, shared by all connections: a client keeps its
/// connections and a runtime thread, so it is built once and cloned (cheaply) per call.
pub fn client(servers: &str) -> Result<Client, String> {
    static CLIENTS: OnceLock<Mutex<HashMap<String, Client>>> = OnceLock::new();
    let mut clients = CLIENTS
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(c) = clients.get(servers) {
        return Ok(c.clone());
    }
    let c = Client::new(servers).map_err(|e| format!("servers {servers:?}: {e}"))?;
    clients.insert(servers.to_owned(), c.clone());
    Ok(c)
}
