//! Throwaway database servers for the store tests: each started from Debian's binaries on a
//! free 127.0.0.1 port in a temporary directory, waited for until it answers, and stopped
//! when dropped.
//!
//! When a server's binaries are missing, its `start` prints `SKIPPED: ...` and returns `None`,
//! except under CI ([`crate::external::in_ci`]), where it panics: there they must be installed
//! (`.ci/install-deps`).
//!
//! - [`postgres`]: PostgreSQL (`apt-get install postgresql`).
//! - [`mariadb`]: MariaDB (`apt-get install mariadb-server`).
//! - [`redis`]: `redis-server` (`apt-get install redis-server`).
//! - [`memcached`]: `memcached` (`apt-get install memcached`).
//! - [`proxy`]: a TCP proxy that cuts the network to a server, for outages.

pub mod mariadb;
pub mod memcached;
pub mod postgres;
pub mod proxy;
pub mod redis;

use std::net::TcpListener;

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("bind a free port")
        .port()
}

/// Reports that `test` cannot run because of `msg`: panics under CI, otherwise prints
/// `SKIPPED: <test>: <msg>` (on stdout and stderr).
fn skip(test: &str, msg: &str) {
    if crate::external::in_ci() {
        panic!("CI=true but {test} cannot run: {msg}");
    }
    println!("SKIPPED: {test}: {msg}");
    eprintln!("SKIPPED: {test}: {msg}");
}
