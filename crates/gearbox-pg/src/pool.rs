//! This backend's connections, one per job server, reused across calls and transactions.
//!
//! A call takes a connection out of the cache and puts it back only when the call finished
//! cleanly. If the call fails, times out or is cancelled (a PostgreSQL ERROR unwinds through
//! it as a Rust panic), the connection is dropped, so a half-read connection is never reused.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use crate::client::{Conn, Error, Server};

thread_local! {
    // A backend is one thread; the cache lives as long as the backend.
    static CACHE: RefCell<HashMap<Server, Conn>> = RefCell::new(HashMap::new());
}

/// A connection to one of `servers`: a cached one if any (in list order), else a new one to
/// the first server that accepts (failover in list order). The flag says it was cached.
pub fn checkout(
    servers: &[Server],
    connect_timeout: Duration,
    tick: &mut dyn FnMut(),
) -> Result<(Conn, bool), Error> {
    let cached = CACHE.with(|c| {
        let mut c = c.borrow_mut();
        servers.iter().find_map(|s| c.remove(s))
    });
    if let Some(conn) = cached {
        return Ok((conn, true));
    }
    connect(servers, connect_timeout, tick).map(|c| (c, false))
}

/// A new connection to the first server of `servers` that accepts one.
pub fn connect(
    servers: &[Server],
    connect_timeout: Duration,
    tick: &mut dyn FnMut(),
) -> Result<Conn, Error> {
    let mut tried = Vec::new();
    for s in servers {
        match Conn::open(s, connect_timeout, tick) {
            Ok(c) => return Ok(c),
            Err(e) => tried.push(format!("{s}: {e}")),
        }
    }
    Err(Error::Unreachable { tried })
}

/// Puts a connection that finished its call cleanly back into the cache.
pub fn checkin(conn: Conn) {
    CACHE.with(|c| {
        c.borrow_mut().insert(conn.server().clone(), conn);
    });
}

/// Closes the cached connections to servers not in `keep`.
pub fn retain(keep: &[Server]) {
    CACHE.with(|c| c.borrow_mut().retain(|s, _| keep.contains(s)));
}

/// Runs `call` on a connection to one of `servers`. If a cached connection turns out to be
/// broken (the server restarted or closed it), it is replaced by a new one and `call` runs
/// once more; any other failure is returned as is and the connection is dropped.
pub fn with_conn<T>(
    servers: &[Server],
    connect_timeout: Duration,
    tick: &mut dyn FnMut(),
    mut call: impl FnMut(&mut Conn, &mut dyn FnMut()) -> Result<T, Error>,
) -> Result<T, Error> {
    let (mut conn, cached) = checkout(servers, connect_timeout, tick)?;
    match call(&mut conn, tick) {
        Ok(v) => {
            checkin(conn);
            Ok(v)
        }
        Err(Error::Io { .. }) if cached => {
            drop(conn);
            let mut conn = connect(servers, connect_timeout, tick)?;
            let v = call(&mut conn, tick)?;
            checkin(conn);
            Ok(v)
        }
        Err(e) => Err(e),
    }
}
