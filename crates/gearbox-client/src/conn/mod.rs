//! Connections to a list of servers: at most one multiplexed connection per server, opened
//! lazily, re-opened with exponential back-off after a failure, and server choice by ring
//! order from a starting index (the hash of a unique id).
//!
//! - [`io`]: the connection task itself (pipelined requests, WORK_* routing by handle).

pub(crate) mod io;

use std::time::Duration;

use bytes::Bytes;
use gearbox_proto::{Request, Response};
use tokio::sync::Mutex;
use tokio::time::Instant;

pub(crate) use self::io::{Conn, ConnEvent, Subscriber};
use crate::tls::TlsConfig;
use crate::transport;
use crate::{Error, Result, ServerAddr};

/// How connections are opened; fixed when the client is built.
#[derive(Debug, Clone)]
pub(crate) struct ConnOptions {
    /// Sent as SET_CLIENT_ID on every new connection.
    pub client_id: Option<Bytes>,
    /// Send `OPTION_REQ exceptions` on every new connection.
    pub exceptions: bool,
    /// Limit for the TCP connect, the TLS handshake and the option handshake.
    pub connect_timeout: Duration,
    /// First back-off after a failed connect.
    pub backoff_min: Duration,
    /// Longest back-off.
    pub backoff_max: Duration,
    /// TLS for every connection, when set.
    pub tls: Option<TlsConfig>,
}

impl ConnOptions {
    /// The back-off after `failures` failed connects in a row: doubling from the minimum.
    fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.backoff_min
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }
}

/// One server and its connection. The async mutex serialises connecting, so a burst of
/// requests to a server that is not connected yet opens one connection, not one each.
struct Slot {
    addr: ServerAddr,
    state: Mutex<SlotState>,
}

#[derive(Default)]
struct SlotState {
    conn: Option<Conn>,
    failures: u32,
    retry_at: Option<Instant>,
    last_error: String,
}

enum Attempt {
    Ready(Conn),
    BackOff(Instant, String),
    Failed(Error),
}

impl Slot {
    async fn attempt(&self, opts: &ConnOptions) -> Attempt {
        let mut st = self.state.lock().await;
        if let Some(c) = &st.conn {
            if !c.is_closed() {
                return Attempt::Ready(c.clone());
            }
            st.conn = None;
        }
        if let Some(at) = st.retry_at.filter(|at| *at > Instant::now()) {
            return Attempt::BackOff(at, st.last_error.clone());
        }
        match open(&self.addr, opts).await {
            Ok(c) => {
                st.failures = 0;
                st.retry_at = None;
                st.conn = Some(c.clone());
                Attempt::Ready(c)
            }
            Err(e) => {
                st.failures = st.failures.saturating_add(1);
                let wait = opts.backoff(st.failures);
                st.retry_at = Some(Instant::now() + wait);
                st.last_error = e.to_string();
                tracing::warn!(server = %self.addr, error = %e, failures = st.failures,
                    retry_in_ms = wait.as_millis() as u64, "cannot connect; backing off");
                Attempt::Failed(e)
            }
        }
    }
}

/// Connects (TCP, then TLS when configured) and performs the handshake (client id,
/// exceptions option).
///
/// Errors are [`Error::Unreachable`] for TCP and timeouts, [`Error::Tls`] or
/// [`Error::TlsSetup`] for TLS, and [`Error::Unreachable`] wrapping the reason when the
/// option handshake fails.
async fn open(addr: &ServerAddr, opts: &ConnOptions) -> Result<Conn> {
    use std::io::{Error as IoError, ErrorKind};
    let limit = opts.connect_timeout;
    let deadline = Instant::now() + limit;
    let unreachable = |source: IoError| Error::Unreachable {
        servers: addr.to_string(),
        source,
    };
    let timed_out = |what: &str| {
        unreachable(IoError::new(
            ErrorKind::TimedOut,
            format!("{addr}: {what} within {limit:?} (connect_timeout)"),
        ))
    };
    let stream = transport::connect(addr, opts.tls.as_ref(), limit)
        .await
        .map_err(|e| match e {
            Error::Unreachable { source, .. } => {
                unreachable(IoError::new(source.kind(), format!("{addr}: {source}")))
            }
            other => other,
        })?;
    let tls = stream.is_tls();
    let conn = Conn::spawn(addr.clone(), stream);
    let handshake_failed = |e: Error| match e {
        // Over TLS 1.3 a server refuses a client certificate after the client's side of the
        // handshake is done: the refusal arrives as the first read.
        Error::Disconnected { reason, .. } if tls && conn.closed_by_tls() => Error::Tls {
            server: addr.to_string(),
            reason,
        },
        e => unreachable(IoError::new(ErrorKind::ConnectionAborted, e.to_string())),
    };
    if let Some(id) = &opts.client_id {
        conn.send_only(Request::SetClientId { id: id.clone() })
            .await
            .map_err(handshake_failed)?;
    }
    if opts.exceptions {
        let option = Bytes::from_static(b"exceptions");
        let answer = tokio::time::timeout_at(deadline, conn.call(Request::OptionReq { option }))
            .await
            .map_err(|_| timed_out("no answer to OPTION_REQ exceptions"))?;
        match answer {
            Ok(Response::OptionRes { .. }) => {}
            Ok(other) => return Err(handshake_failed(conn.unexpected(&other))),
            Err(e @ Error::Server { .. }) => {
                tracing::warn!(server = %addr, error = %e,
                    "server refused the exceptions option; WORK_EXCEPTION will arrive as WORK_FAIL");
            }
            Err(e) => return Err(handshake_failed(e)),
        }
    }
    Ok(conn)
}

/// Every configured server, in the order given.
pub(crate) struct Pool {
    slots: Vec<Slot>,
    opts: ConnOptions,
}

impl Pool {
    /// A pool over `servers` (not empty); nothing is opened yet.
    pub(crate) fn new(servers: Vec<ServerAddr>, opts: ConnOptions) -> Pool {
        let slots = servers
            .into_iter()
            .map(|addr| Slot {
                addr,
                state: Mutex::default(),
            })
            .collect();
        Pool { slots, opts }
    }

    /// Number of servers.
    pub(crate) fn len(&self) -> usize {
        self.slots.len()
    }

    /// The `i`-th server.
    pub(crate) fn addr(&self, i: usize) -> &ServerAddr {
        &self.slots[i % self.slots.len()].addr
    }

    /// `host:port,host:port`, for error messages.
    fn list(&self) -> String {
        let names: Vec<String> = self.slots.iter().map(|s| s.addr.to_string()).collect();
        names.join(",")
    }

    /// A connection to server `start`, or the next one in ring order that can be reached.
    ///
    /// Servers in back-off are skipped. When none could be used but the soonest back-off ends
    /// within `connect_timeout`, that server is tried once more after it; otherwise the
    /// answer is [`Error::Unreachable`].
    pub(crate) async fn conn_from(&self, start: usize) -> Result<Conn> {
        let n = self.slots.len();
        let order: Vec<usize> = (0..n).map(|i| (start + i) % n).collect();
        self.first_of(&order).await
    }

    /// A connection to server `i` only (with the same back-off rules as [`Pool::conn_from`]).
    pub(crate) async fn conn_to(&self, i: usize) -> Result<Conn> {
        self.first_of(&[i % self.slots.len()]).await
    }

    async fn first_of(&self, order: &[usize]) -> Result<Conn> {
        let mut last: Option<std::io::Error> = None;
        // A TLS failure says more (wrong CA, refused certificate) than a later refused TCP
        // connect, so it wins.
        let mut tls_failure: Option<Error> = None;
        let mut soonest: Option<(Instant, usize, String)> = None;
        let mut failed = |e: Error, last: &mut Option<std::io::Error>| match e {
            Error::Unreachable { source, .. } => *last = Some(source),
            e => tls_failure = Some(e),
        };
        for &i in order {
            match self.slots[i].attempt(&self.opts).await {
                Attempt::Ready(c) => return Ok(c),
                Attempt::Failed(e) => failed(e, &mut last),
                Attempt::BackOff(at, why) => {
                    tracing::debug!(server = %self.slots[i].addr, "skipped: in back-off");
                    let sooner = match &soonest {
                        Some((s, ..)) => at < *s,
                        None => true,
                    };
                    if sooner {
                        soonest = Some((at, i, why));
                    }
                }
            }
        }
        if let Some((at, i, why)) = soonest {
            if at <= Instant::now() + self.opts.connect_timeout {
                tokio::time::sleep_until(at).await;
                match self.slots[i].attempt(&self.opts).await {
                    Attempt::Ready(c) => return Ok(c),
                    Attempt::Failed(e) => failed(e, &mut last),
                    Attempt::BackOff(..) => {}
                }
            }
            if last.is_none() && tls_failure.is_none() {
                let left = at.saturating_duration_since(Instant::now()).as_millis();
                let left = Duration::from_millis(u64::try_from(left).unwrap_or(u64::MAX));
                last = Some(std::io::Error::new(
                    std::io::ErrorKind::ConnectionRefused,
                    format!(
                        "{} is in back-off for another {left:?} after: {why}",
                        self.slots[i].addr
                    ),
                ));
            }
        }
        if let Some(e) = tls_failure {
            return Err(e);
        }
        let servers = if order.len() == self.slots.len() {
            self.list()
        } else {
            order
                .iter()
                .map(|&i| self.slots[i].addr.to_string())
                .collect::<Vec<_>>()
                .join(",")
        };
        Err(Error::Unreachable {
            servers,
            source: last.unwrap_or_else(|| std::io::Error::other("no server was tried")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_maximum() {
        let o = ConnOptions {
            client_id: None,
            exceptions: true,
            connect_timeout: Duration::from_secs(5),
            backoff_min: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            tls: None,
        };
        let got: Vec<u64> = (1..=6).map(|f| o.backoff(f).as_millis() as u64).collect();
        assert_eq!(got, [100, 200, 400, 800, 1000, 1000]);
        assert_eq!(o.backoff(u32::MAX), Duration::from_secs(1));
    }
}
