//! Listening sockets: which addresses `--listen`/`--port` name, and binding them with
//! SO_REUSEADDR, the configured backlog and, if asked, TCP keepalive.
//!
//! - No `--listen`: `0.0.0.0`, plus `[::]` where IPv6 is available (IPv6 sockets are always
//!   IPv6-only, so the two never collide).
//! - `--listen` takes an IP (`127.0.0.1`, `::1`, `[::1]`), an address with a port
//!   (`127.0.0.1:4731`, `[::1]:4731`), or a host name (`localhost`, `localhost:4731`), which
//!   binds every address it resolves to; at least one of them must bind.
//! - With port 0, the first socket gets a free port and later ones try that same port first,
//!   so `-p 0` on several addresses usually yields one port.
//! - Keepalive is set on the listening socket; Linux copies it to every accepted connection.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

use std::net::TcpListener;

use socket2::{Domain, Protocol, Socket, TcpKeepalive, Type};

use crate::error::CliError;
use crate::settings::Keepalive;

/// One address to bind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target {
    /// The address (port 0 = any free port).
    pub addr: SocketAddr,
    /// Whether failing to bind it is only logged (the default `[::]`, resolved host names).
    pub optional: bool,
}

/// The addresses `listen` (as given to `--listen`; empty = every interface) and `port` name.
pub fn targets(listen: &[String], port: u16) -> Result<Vec<Target>, CliError> {
    if listen.is_empty() {
        return Ok(vec![
            Target {
                addr: (Ipv4Addr::UNSPECIFIED, port).into(),
                optional: false,
            },
            Target {
                addr: (Ipv6Addr::UNSPECIFIED, port).into(),
                optional: true,
            },
        ]);
    }
    let mut out: Vec<Target> = Vec::new();
    for spec in listen {
        for t in parse_one(spec.trim(), port)? {
            match out.iter_mut().find(|o| o.addr == t.addr) {
                Some(o) => o.optional &= t.optional,
                None => out.push(t),
            }
        }
    }
    Ok(out)
}

fn parse_one(spec: &str, port: u16) -> Result<Vec<Target>, CliError> {
    if let Ok(addr) = spec.parse::<SocketAddr>() {
        return Ok(vec![Target {
            addr,
            optional: false,
        }]);
    }
    let bare = spec
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .unwrap_or(spec);
    if let Ok(ip) = bare.parse::<IpAddr>() {
        return Ok(vec![Target {
            addr: (ip, port).into(),
            optional: false,
        }]);
    }
    if spec.is_empty() {
        return Err(CliError::Invalid("empty --listen address".into()));
    }
    let (host, port) = match spec.rsplit_once(':') {
        Some((h, p)) if !h.contains(':') => match p.parse::<u16>() {
            Ok(p) => (h, p),
            Err(_) => {
                return Err(CliError::Invalid(format!(
                    "invalid --listen address `{spec}`: `{p}` is not a port number"
                )))
            }
        },
        _ => (spec, port),
    };
    let resolve_err = |source| CliError::Resolve {
        host: host.to_owned(),
        source,
    };
    let addrs = (host, port).to_socket_addrs().map_err(resolve_err)?;
    let targets: Vec<_> = addrs
        .map(|addr| Target {
            addr,
            optional: true,
        })
        .collect();
    if targets.is_empty() {
        return Err(resolve_err(std::io::Error::other("no addresses")));
    }
    Ok(targets)
}

/// Binds every target (listening, non-blocking). A required one that fails is an error; an
/// optional one is logged. Needs no runtime: [`into_tokio`] hands them to one.
pub fn bind_all(
    targets: &[Target],
    backlog: u32,
    keepalive: Option<Keepalive>,
) -> Result<Vec<TcpListener>, CliError> {
    let mut listeners = Vec::with_capacity(targets.len());
    let mut first_free_port = None;
    for t in targets {
        let mut result = Err(std::io::Error::other("not tried"));
        if let (0, Some(p)) = (t.addr.port(), first_free_port) {
            result = bind_one(SocketAddr::new(t.addr.ip(), p), backlog, keepalive);
        }
        if result.is_err() {
            result = bind_one(t.addr, backlog, keepalive);
        }
        match result {
            Ok(l) => {
                if t.addr.port() == 0 && first_free_port.is_none() {
                    first_free_port = l.local_addr().ok().map(|a| a.port());
                }
                listeners.push(l);
            }
            Err(e) if t.optional => {
                tracing::info!(addr = %t.addr, error = %e, "not listening on this address")
            }
            Err(source) => {
                return Err(CliError::Bind {
                    addr: t.addr,
                    source,
                })
            }
        }
    }
    if listeners.is_empty() {
        let all: Vec<_> = targets.iter().map(|t| t.addr.to_string()).collect();
        return Err(CliError::Invalid(format!(
            "none of {} could be bound",
            all.join(", ")
        )));
    }
    Ok(listeners)
}

fn bind_one(
    addr: SocketAddr,
    backlog: u32,
    keepalive: Option<Keepalive>,
) -> std::io::Result<TcpListener> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if let Some(k) = keepalive {
        // Accepted sockets inherit these options from the listener.
        socket.set_keepalive(true)?;
        set_keepalive_timing(&socket, k)?;
    }
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(i32::try_from(backlog).unwrap_or(i32::MAX))?;
    Ok(socket.into())
}

#[cfg(target_os = "linux")]
fn set_keepalive_timing(socket: &Socket, k: Keepalive) -> std::io::Result<()> {
    let secs = |s: u32| std::time::Duration::from_secs(u64::from(s));
    let mut params = TcpKeepalive::new();
    if let Some(idle) = k.idle {
        params = params.with_time(secs(idle));
    }
    if let Some(interval) = k.interval {
        params = params.with_interval(secs(interval));
    }
    if let Some(count) = k.count {
        params = params.with_retries(count);
    }
    socket.set_tcp_keepalive(&params)
}

#[cfg(not(target_os = "linux"))]
fn set_keepalive_timing(_socket: &Socket, k: Keepalive) -> std::io::Result<()> {
    if k != Keepalive::default() {
        tracing::warn!("keepalive timing is only supported on Linux; using the system's");
    }
    Ok(())
}

/// The bound sockets as Tokio listeners. Must run inside a Tokio runtime.
pub fn into_tokio(listeners: Vec<TcpListener>) -> Result<Vec<tokio::net::TcpListener>, CliError> {
    listeners
        .into_iter()
        .map(|l| {
            let addr = l.local_addr();
            tokio::net::TcpListener::from_std(l).map_err(|source| CliError::Bind {
                addr: addr.unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0))),
                source,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addrs(listen: &[&str], port: u16) -> Vec<(String, bool)> {
        let listen: Vec<String> = listen.iter().map(|s| (*s).to_owned()).collect();
        targets(&listen, port)
            .unwrap()
            .into_iter()
            .map(|t| (t.addr.to_string(), t.optional))
            .collect()
    }

    #[test]
    fn default_is_every_interface_with_ipv6_optional() {
        assert_eq!(
            addrs(&[], 4730),
            [("0.0.0.0:4730".into(), false), ("[::]:4730".into(), true)]
        );
    }

    #[test]
    fn ips_with_and_without_ports() {
        assert_eq!(
            addrs(
                &[
                    "127.0.0.1",
                    "::1",
                    "[::2]",
                    "10.0.0.1:99",
                    "[::3]:98",
                    "127.0.0.1"
                ],
                7
            ),
            [
                ("127.0.0.1:7".to_owned(), false),
                ("[::1]:7".into(), false),
                ("[::2]:7".into(), false),
                ("10.0.0.1:99".into(), false),
                ("[::3]:98".into(), false),
            ]
        );
    }

    #[test]
    fn host_names_resolve_and_are_optional() {
        let got = addrs(&["localhost:4999"], 7);
        assert!(got.contains(&("127.0.0.1:4999".into(), true)), "{got:?}");
        assert!(targets(&["localhost:http".into()], 7).is_err());
        assert!(targets(&["".into()], 7).is_err());
    }

    #[test]
    fn port_zero_binds_a_free_port_shared_where_possible() {
        let t = targets(&["127.0.0.1".into(), "127.0.0.2".into()], 0).unwrap();
        let ls = bind_all(&t, 8, None).unwrap();
        let ports: Vec<_> = ls.iter().map(|l| l.local_addr().unwrap().port()).collect();
        assert_ne!(ports[0], 0);
        assert_eq!(ports[0], ports[1]);
    }

    #[test]
    fn busy_port_is_a_clear_error() {
        let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let t = targets(&[busy.local_addr().unwrap().to_string()], 0).unwrap();
        let e = bind_all(&t, 8, Some(Keepalive::default())).unwrap_err();
        assert!(
            e.to_string()
                .contains(&busy.local_addr().unwrap().to_string()),
            "{e}"
        );
    }
}
