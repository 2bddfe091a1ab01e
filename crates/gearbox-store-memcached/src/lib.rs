//! The memcached job store for gearbox (`-q libmemcached`), in gearmand's format.
//!
//! # Layout
//!
//! - this file: [`MemcachedOptions`], [`MemcachedStore`] and the error enum.
//! - `servers`: the server list in libmemcached's syntax ([`parse_servers`]) and which server
//!   holds a key (libmemcached's default placement).
//! - `encode`: key names, gearmand's item format, gearbox's own job record.
//! - `backend`: the [`gearbox_store::driver::Backend`]: connect, write a batch.
//! - `replay`: listing the keys and reading the jobs back.
//!
//! # Keys
//!
//! Every key starts with a prefix, `gear_` unless configured otherwise (gearmand's
//! `--libmemcached-prefix` and its default):
//!
//! - `<prefix><function>-<unique>`: the job as gearmand's libmemcached queue writes it. The
//!   value is the job's data, the item's flags its priority (`0` high, `1` normal, `2` low),
//!   no expiry. gearmand reads these back at start-up, and so does this store: a queue
//!   left by gearmand is replayed by gearboxd, and the other way round.
//! - `<prefix>~gb~<n>`: gearbox's record of the job with sequence number `n`: its handle,
//!   when it is due, and what gearmand's format cannot hold (schedule, reducer; the data too
//!   when the job has no gearmand item). gearmand skips these keys (they have no `-`).
//! - `<prefix>~gb~seq`: the counter sequence numbers come from; `<prefix>~gb~low`: no live
//!   record has a lower number.
//!
//! A job gets a gearmand item only when gearmand could read it back (see
//! `Keys::gearmand`): it has a unique id other than `-`, a function name without `-`, no
//! schedule or reducer, and is due at once. Other jobs are only in gearbox's record, which
//! gearmand does not see. Keys go to the server libmemcached would choose with gearmand's
//! settings (one-at-a-time hash, modulo the number of servers).
//!
//! # Replay
//!
//! [`Store::load`] reads gearbox's records by number, from the low mark to the counter, and
//! each record's gearmand item by key: jobs come back in the order they were first
//! persisted, with their handles. A record whose gearmand item is gone (gearmand ran the
//! job, or memcached evicted it) is dropped. memcached cannot list its keys through
//! get/set, and this client crate has no listing of its own beyond `lru_crawler metadump`
//! (memcached 1.4.31 and later), which is used for what only a listing can find: gearmand's
//! items that no record claims. They come after gearbox's jobs, in the order memcached
//! stored them (their CAS numbers), with handles `<handle prefix>:<n>` numbered after the
//! highest stored handle. The crawler can miss items its LRU maintainer moves during the
//! crawl: such a job stays in memcached and comes back at a later start. A server started
//! with `-X` (no listing) gives gearbox's jobs back, not gearmand's.
//!
//! # Durability
//!
//! memcached is a cache. `Ok` from [`Store::commit`] means memcached has stored the items,
//! in memory only: a restart of memcached loses every job; when memcached runs out of memory
//! it evicts the least recently used items without telling anyone (start it with `-M` so
//! that it refuses writes instead, which this store reports as a full store); and a key of
//! another program under the same prefix can overwrite a job. Use it where gearmand's
//! libmemcached queue was used; for jobs that must survive, use the SQLite store (the
//! default) or a database server.
//!
//! # Failures
//!
//! As with every store on the shared [`gearbox_store::driver`], an unreachable server fails
//! commits at once with [`StoreError::Unavailable`] and the driver reconnects with back-off.
//! memcached has no transactions: a batch is written item by item (gearmand items before
//! records, removals first), and a batch that fails half-way is not acknowledged; applying
//! it again gives the same state.
//!
//! [`Store::load`]: gearbox_store::Store::load
//! [`Store::commit`]: gearbox_store::Store::commit

#![warn(missing_docs)]

mod backend;
mod encode;
mod replay;
mod servers;

use std::time::Duration;

use gearbox_store::driver::{Backoff, Driver, DriverStore};
use gearbox_store::StoreError;

use backend::Memcached;
pub use servers::{parse_servers, Server, DEFAULT_PORT};

/// The key prefix used unless another is configured (gearmand's `--libmemcached-prefix`
/// default).
pub const DEFAULT_PREFIX: &str = "gear_";

/// The server list used unless another is configured.
pub const DEFAULT_SERVERS: &str = "127.0.0.1:11211";

/// What is wrong with a server list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MemcachedError {
    /// An entry of the list cannot be read.
    #[error("memcached server `{entry}`: {reason}; use host[:port] entries separated by commas")]
    ServerList {
        /// The entry as written.
        entry: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The list names no server.
    #[error("the memcached server list is empty: name at least one host[:port]")]
    NoServers,
    /// memcached is out of memory and refuses new items (it runs with `-M`).
    #[error("memcached is full and refuses new items ({0}): give it more memory (-m) or let workers finish jobs; background jobs are refused until then")]
    Full(String),
    /// The key prefix cannot be part of a memcached key.
    #[error("memcached key prefix {0:?}: use at most 200 printable characters without spaces")]
    Prefix(String),
}

/// Where and how to connect, and which keys to use.
#[derive(Debug, Clone)]
pub struct MemcachedOptions {
    /// The servers, in gearmand's order (keys are placed by their position).
    pub servers: Vec<Server>,
    /// Prefix of every key (`--libmemcached-prefix`).
    pub prefix: String,
    /// Handles of jobs found in gearmand's format get `<handle_prefix>:<n>`.
    pub handle_prefix: String,
    /// How long to wait for a TCP connection (and the first answer).
    pub connect_timeout: Duration,
    /// How long to wait for an answer; past it the operation fails and the connection is
    /// replaced.
    pub response_timeout: Duration,
    /// The longest pause between two reconnection attempts.
    pub max_backoff: Duration,
}

impl MemcachedOptions {
    /// Options for `servers` (libmemcached's syntax, see [`parse_servers`]), with
    /// [`DEFAULT_PREFIX`], handle prefix `H:memcached`, a 2 s connect timeout, a 5 s
    /// response timeout and back-off up to 5 s.
    pub fn new(servers: &str) -> Result<Self, MemcachedError> {
        Ok(MemcachedOptions {
            servers: parse_servers(servers)?,
            prefix: DEFAULT_PREFIX.to_owned(),
            handle_prefix: "H:memcached".to_owned(),
            connect_timeout: Duration::from_secs(2),
            response_timeout: Duration::from_secs(5),
            max_backoff: Duration::from_secs(5),
        })
    }

    /// Sets the key prefix.
    pub fn prefix(mut self, prefix: impl Into<String>) -> Self {
        self.prefix = prefix.into();
        self
    }

    /// Sets the prefix of the handles given to jobs found in gearmand's format.
    pub fn handle_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.handle_prefix = prefix.into();
        self
    }

    /// Sets the longest pause between reconnection attempts.
    pub fn max_backoff(mut self, max_backoff: Duration) -> Self {
        self.max_backoff = max_backoff;
        self
    }

    /// Sets the response timeout.
    pub fn response_timeout(mut self, timeout: Duration) -> Self {
        self.response_timeout = timeout;
        self
    }

    /// `memcached://host:port[,host:port...]`: how the store names itself in logs and
    /// errors.
    pub fn location(&self) -> String {
        let list: Vec<String> = self.servers.iter().map(Server::address).collect();
        format!("memcached://{}", list.join(","))
    }

    /// An error unless the prefix can start a memcached key.
    pub fn check(&self) -> Result<(), MemcachedError> {
        let p = self.prefix.as_bytes();
        if p.len() > 200 || !p.iter().all(u8::is_ascii_graphic) {
            return Err(MemcachedError::Prefix(self.prefix.clone()));
        }
        if self.servers.is_empty() {
            return Err(MemcachedError::NoServers);
        }
        Ok(())
    }
}

/// A [`Store`](gearbox_store::Store) in memcached. See the [crate documentation](crate) for
/// the keys, replay and what memcached's eviction means for durability.
#[derive(Debug)]
pub struct MemcachedStore {
    driver: Driver<Memcached>,
    prefix: String,
}

impl MemcachedStore {
    /// Connects to every server (each must answer `version`) and starts the writer task.
    /// Must be called within a tokio runtime.
    ///
    /// Fails with [`StoreError::Unavailable`] when a server cannot be reached now, so that a
    /// wrong address is noticed at start-up; once connected, the store reconnects on its own.
    pub async fn connect(options: MemcachedOptions) -> Result<Self, StoreError> {
        let location = options.location();
        options.check().map_err(|e| StoreError::Backend {
            location: location.clone(),
            source: std::sync::Arc::new(e),
        })?;
        let backoff = Backoff {
            first: Duration::from_millis(50),
            max: options.max_backoff.max(Duration::from_millis(50)),
        };
        let prefix = options.prefix.clone();
        let backend = Memcached::new(options, location.clone());
        let driver = Driver::start(backend, location, backoff).await?;
        Ok(MemcachedStore { driver, prefix })
    }

    /// The key prefix.
    pub fn prefix(&self) -> &str {
        &self.prefix
    }
}

impl DriverStore for MemcachedStore {
    type Backend = Memcached;

    fn driver(&self) -> &Driver<Memcached> {
        &self.driver
    }
}
