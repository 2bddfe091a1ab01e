//! Server lists: `host[:port],host[:port]` as every Gearman library reads them (default port
//! 4730), from a string or from the `GEARMAN_SERVERS` environment variable.

use std::fmt;
use std::str::FromStr;

use crate::Error;

/// The port Gearman servers listen on unless told otherwise.
pub const DEFAULT_PORT: u16 = 4730;

/// One server address as given by the user (resolved when connecting).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerAddr {
    /// Host name or IP address (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl ServerAddr {
    /// A server at `host:port`.
    pub fn new(host: impl Into<String>, port: u16) -> ServerAddr {
        ServerAddr {
            host: host.into(),
            port,
        }
    }

    /// `host:port` in the form `tokio::net::TcpStream::connect` takes.
    pub fn connect_string(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for ServerAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.connect_string())
    }
}

impl FromStr for ServerAddr {
    type Err = Error;

    /// Parses `host`, `host:port`, `[v6]`, `[v6]:port` or a bare IPv6 address.
    fn from_str(s: &str) -> Result<ServerAddr, Error> {
        let s = s.trim();
        let bad = |why: &str| Error::InvalidArgument(format!("server address {s:?}: {why}"));
        if s.is_empty() {
            return Err(bad("empty"));
        }
        let port = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| bad("port is not a number from 0 to 65535"))
        };
        if let Some(rest) = s.strip_prefix('[') {
            let (host, after) = rest.split_once(']').ok_or_else(|| bad("missing ']'"))?;
            let port = match after.strip_prefix(':') {
                Some(p) => port(p)?,
                None if after.is_empty() => DEFAULT_PORT,
                None => return Err(bad("unexpected text after ']'")),
            };
            return Ok(ServerAddr::new(host, port));
        }
        match s.rsplit_once(':') {
            // More than one colon and no brackets: a bare IPv6 address.
            Some((host, _)) if host.contains(':') => Ok(ServerAddr::new(s, DEFAULT_PORT)),
            Some((host, p)) if !host.is_empty() => Ok(ServerAddr::new(host, port(p)?)),
            Some(_) => Err(bad("missing host")),
            None => Ok(ServerAddr::new(s, DEFAULT_PORT)),
        }
    }
}

/// Parses a comma-separated server list; empty entries are ignored.
pub fn parse_servers(list: &str) -> Result<Vec<ServerAddr>, Error> {
    let servers: Vec<ServerAddr> = list
        .split(',')
        .filter(|s| !s.trim().is_empty())
        .map(str::parse)
        .collect::<Result<_, _>>()?;
    if servers.is_empty() {
        return Err(Error::NoServers);
    }
    Ok(servers)
}

/// The list in `GEARMAN_SERVERS`, if set and not empty.
pub fn servers_from_env() -> Option<Result<Vec<ServerAddr>, Error>> {
    let v = std::env::var("GEARMAN_SERVERS").ok()?;
    if v.trim().is_empty() {
        return None;
    }
    Some(parse_servers(&v))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_form() {
        let l = parse_servers("a, b:1, [::1]:7, [fe80::1], 10.0.0.1:4731, ::1,").unwrap();
        assert_eq!(
            l,
            vec![
                ServerAddr::new("a", 4730),
                ServerAddr::new("b", 1),
                ServerAddr::new("::1", 7),
                ServerAddr::new("fe80::1", 4730),
                ServerAddr::new("10.0.0.1", 4731),
                ServerAddr::new("::1", 4730),
            ]
        );
        assert_eq!(l[2].connect_string(), "[::1]:7");
        assert_eq!(l[1].to_string(), "b:1");
    }

    #[test]
    fn refuses_bad_lists() {
        assert!(matches!(parse_servers(""), Err(Error::NoServers)));
        assert!(matches!(parse_servers(" , "), Err(Error::NoServers)));
        for bad in ["a:x", "a:70000", ":1", "[::1", "[::1]x"] {
            assert!(
                matches!(parse_servers(bad), Err(Error::InvalidArgument(_))),
                "{bad}"
            );
        }
    }
}
