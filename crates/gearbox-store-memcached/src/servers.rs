//! The server list (`--libmemcached-servers`) and which server holds a key.
//!
//! The list is read as libmemcached's `memcached_servers_parse` reads gearmand's flag: entries
//! separated by commas (or spaces), each `host`, `host:port` or `host:port:weight`, IPv6
//! addresses in brackets (`[::1]:11211`). libmemcached's configuration-string spelling
//! `--SERVER=host:port` is accepted too. The weight only matters to ketama distribution, which
//! gearmand does not turn on: it is read and ignored.
//!
//! A key goes where libmemcached puts it with gearmand's settings (libmemcached's defaults):
//! the one-at-a-time hash of the key, modulo the number of servers, in the order listed. So
//! gearmand and gearboxd given the same list find each other's keys.

use std::fmt;

use crate::MemcachedError;

/// The memcached port used when an entry has none.
pub const DEFAULT_PORT: u16 = 11211;

/// One memcached server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// Host name or address (without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
}

impl Server {
    /// `host:port`, the way the client connects (IPv6 in brackets).
    pub fn address(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }
}

impl fmt::Display for Server {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.address())
    }
}

/// Reads a server list in libmemcached's syntax (see the module documentation).
pub fn parse_servers(list: &str) -> Result<Vec<Server>, MemcachedError> {
    let bad = |entry: &str, why: &str| MemcachedError::ServerList {
        entry: entry.to_owned(),
        reason: why.to_owned(),
    };
    let mut servers = Vec::new();
    for entry in list.split([',', ' ', '\t', '\n']).filter(|e| !e.is_empty()) {
        let spec = strip_config_prefix(entry);
        let (host, rest) = match spec.strip_prefix('[') {
            Some(v6) => {
                let (host, after) = v6
                    .split_once(']')
                    .ok_or_else(|| bad(entry, "unclosed `[`"))?;
                (host, after.strip_prefix(':'))
            }
            None => match spec.split_once(':') {
                Some((h, r)) => (h, Some(r)),
                None => (spec, None),
            },
        };
        if host.is_empty() {
            return Err(bad(entry, "no host"));
        }
        let port = match rest.map(|r| r.split(':').next().unwrap_or("")) {
            None | Some("") => DEFAULT_PORT,
            Some(p) => p
                .parse::<u16>()
                .ok()
                .filter(|p| *p != 0)
                .ok_or_else(|| bad(entry, "the port is not a number from 1 to 65535"))?,
        };
        if let Some(weight) = rest.and_then(|r| r.split_once(':')).map(|(_, w)| w) {
            if weight.parse::<u32>().is_err() {
                return Err(bad(entry, "the weight after the port is not a number"));
            }
        }
        servers.push(Server {
            host: host.to_owned(),
            port,
        });
    }
    if servers.is_empty() {
        return Err(MemcachedError::NoServers);
    }
    Ok(servers)
}

/// `--SERVER=x` (libmemcached's configuration strings, any case) is `x`.
fn strip_config_prefix(entry: &str) -> &str {
    const PREFIX: &str = "--server=";
    match entry.get(..PREFIX.len()) {
        Some(p) if p.eq_ignore_ascii_case(PREFIX) => &entry[PREFIX.len()..],
        _ => entry,
    }
}

/// The index of the server that holds `key` among `count` servers (libmemcached's default:
/// one-at-a-time hash, modulo).
pub fn server_for(key: &[u8], count: usize) -> usize {
    if count <= 1 {
        return 0;
    }
    (one_at_a_time(key) as usize) % count
}

/// Bob Jenkins' one-at-a-time hash, as libhashkit computes it: each byte is read as a C
/// `char`, which is signed on the platforms gearmand runs on, so bytes from 0x80 up are
/// sign-extended.
fn one_at_a_time(key: &[u8]) -> u32 {
    let mut value: u32 = 0;
    for &b in key {
        value = value.wrapping_add(b as i8 as i32 as u32);
        value = value.wrapping_add(value << 10);
        value ^= value >> 6;
    }
    value = value.wrapping_add(value << 3);
    value ^= value >> 11;
    value.wrapping_add(value << 15)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(host: &str, port: u16) -> Server {
        Server {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn libmemcached_server_lists() {
        assert_eq!(parse_servers("localhost").unwrap(), [s("localhost", 11211)]);
        assert_eq!(
            parse_servers("127.0.0.1:11212,cache:11213").unwrap(),
            [s("127.0.0.1", 11212), s("cache", 11213)]
        );
        assert_eq!(
            parse_servers("a:1:10, b:2 --SERVER=c:3").unwrap(),
            [s("a", 1), s("b", 2), s("c", 3)]
        );
        assert_eq!(parse_servers("[::1]:5").unwrap(), [s("::1", 5)]);
        assert_eq!(s("::1", 5).address(), "[::1]:5");
    }

    #[test]
    fn bad_server_lists_say_what_is_wrong() {
        assert!(matches!(
            parse_servers(" , "),
            Err(MemcachedError::NoServers)
        ));
        for (list, why) in [
            (":11211", "no host"),
            ("a:port", "port"),
            ("a:0", "port"),
            ("a:1:w", "weight"),
            ("[::1:5", "unclosed"),
        ] {
            let e = parse_servers(list).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(list), "{list}: {e}");
        }
    }

    /// Values computed by Debian's libhashkit2 (`libhashkit_one_at_a_time`), bytes above
    /// 0x7f included.
    #[test]
    fn one_at_a_time_matches_libhashkit() {
        assert_eq!(one_at_a_time(b"apple"), 2297466611);
        assert_eq!(one_at_a_time(b"beat"), 3902465932);
        assert_eq!(one_at_a_time(b"gear_work-u1"), 586273442);
        assert_eq!(one_at_a_time(b"\xff\x80x"), 73856013);
        assert_eq!(one_at_a_time(b""), 0);
        assert_eq!(server_for(b"anything", 1), 0);
    }
}
