//! Which servers `gearman` talks to, read as the C tool and libgearman read them.
//!
//! 1. `GEARMAN_SERVERS`, when set (even empty), is added when the client or worker is
//!    created. If any entry does not resolve, creation fails and the C tool dies of an
//!    uncaught exception (its message, then `SIGABRT`).
//! 2. Then `GEARMAN_SERVER`, when set (even empty), is added *instead of* `-h`/`-p`; an entry
//!    that does not resolve prints `Error occurred while parsing GEARMAN_SERVER : ...`.
//! 3. Otherwise `-h` (default `localhost`) and `-p` (0 or missing: 4730) are added; failure
//!    prints `gearman_client_add_server : ...` (`gearman_worker_add_server`, exit status 1).
//!
//! A list is `host[:port],...` split exactly as libgearman splits it: the host runs to the
//! first `:` or `,` (so there are no IPv6 brackets: `[::1]:4730` is host `[`), the port to the
//! next `,` and is read with `atoi` (garbage or 0: the default port), an empty host is
//! `localhost`, and a trailing comma adds one more `localhost:4730`. Each entry is resolved when
//! it is added. libgearman keeps its servers newest first and gives a job to the first that
//! accepts a connection, so [`Servers::order`] is the reverse of the order they were added.

use std::net::SocketAddr;

use super::args::{atoi, Args};
use super::message::LibError;
use crate::gai;

/// libgearman's default port, as the service string it uses.
pub const DEFAULT_SERVICE: &str = "4730";

/// The longest host libgearman keeps (`NI_MAXHOST - 1`) and the longest port text
/// (`NI_MAXSERV - 1`).
const MAX_HOST: usize = 1024;
const MAX_SERVICE: usize = 31;

/// One server as libgearman names it in its messages: the host and service strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Server {
    /// The host as given (`localhost` when empty).
    pub host: String,
    /// The port as text (`4730` for 0).
    pub service: String,
    /// Its addresses, in `getaddrinfo`'s order.
    pub addrs: Vec<SocketAddr>,
}

impl Server {
    /// Resolves `host`/`port` with libgearman's defaults; `Err` is libgearman's message.
    pub fn add(host: &str, port: u16) -> Result<Server, LibError> {
        let host = if host.is_empty() { "localhost" } else { host };
        let service = if port == 0 {
            DEFAULT_SERVICE.to_string()
        } else {
            port.to_string()
        };
        match gai::resolve(host, &service) {
            Ok(addrs) => Ok(Server {
                host: host.to_string(),
                service,
                addrs,
            }),
            Err(e) if e.is_again() => Err(LibError::at(
                "lookup",
                "GEARMAN_TIMEOUT",
                format!("Nameserver timed out while looking up {host}:{service}"),
                "libgearman/connection.cc:641",
            )),
            Err(e) => Err(LibError::getaddrinfo(format!(
                "{host}:{service} getaddrinfo:{}",
                e.text
            ))),
        }
    }

    /// `host:service`, as in libgearman's messages.
    pub fn name(&self) -> String {
        format!("{}:{}", self.host, self.service)
    }
}

/// Splits a server list as libgearman's `gearman_parse_servers` does: (host, port) pairs.
///
/// ```
/// use gearbox_cli::gearman::servers::parse_list;
/// assert_eq!(parse_list("a:1,b"), vec![("a".into(), 1), ("b".into(), 0)]);
/// assert_eq!(parse_list("[::1]:4731"), vec![("[".into(), 0)]);
/// assert_eq!(parse_list("a,"), vec![("a".into(), 0), ("".into(), 0)]);
/// ```
pub fn parse_list(list: &str) -> Vec<(String, u16)> {
    let bytes = list.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    loop {
        let start = i;
        while i < bytes.len() && bytes[i] != b',' && bytes[i] != b':' {
            i += 1;
        }
        let host = &bytes[start..i.min(start + MAX_HOST)];
        let mut port: &[u8] = b"";
        if i < bytes.len() && bytes[i] == b':' {
            i += 1;
            let p = i;
            while i < bytes.len() && bytes[i] != b',' {
                i += 1;
            }
            port = &bytes[p..i.min(p + MAX_SERVICE)];
        }
        // `atoi` into an `in_port_t`: truncated to 16 bits as C does.
        out.push((
            String::from_utf8_lossy(host).into_owned(),
            atoi(port) as u16,
        ));
        if i >= bytes.len() {
            return out;
        }
        i += 1;
    }
}

/// Why the server list could not be built.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListError {
    /// `GEARMAN_SERVERS` failed: the C tool dies of `std::runtime_error` (this is `what()`).
    Create(&'static str),
    /// `GEARMAN_SERVER` or `-h`/`-p` failed: print `gearman: LABEL : MESSAGE`.
    Add {
        /// The C tool's label.
        label: &'static str,
        /// libgearman's message.
        error: LibError,
        /// Whether it came from `GEARMAN_SERVER` (the worker then exits 0, else 1).
        from_env: bool,
    },
}

/// The servers of one `gearman` run, in the order they were added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Servers(pub Vec<Server>);

impl Servers {
    /// Reads `GEARMAN_SERVERS`, `GEARMAN_SERVER` and `-h`/`-p` (see the module doc);
    /// `worker` picks the worker's labels.
    pub fn from_env(args: &Args, worker: bool) -> Result<Servers, ListError> {
        let (create, add) = if worker {
            (
                "gearman_worker_create() failed",
                "gearman_worker_add_server",
            )
        } else {
            (
                "gearman_client_create() failed",
                "gearman_client_add_server",
            )
        };
        let mut list = Vec::new();
        if let Some(env) = std::env::var_os("GEARMAN_SERVERS") {
            for (host, port) in parse_list(&env.to_string_lossy()) {
                list.push(Server::add(&host, port).map_err(|_| ListError::Create(create))?);
            }
        }
        if let Some(env) = std::env::var_os("GEARMAN_SERVER") {
            for (host, port) in parse_list(&env.to_string_lossy()) {
                list.push(Server::add(&host, port).map_err(|error| ListError::Add {
                    label: "Error occurred while parsing GEARMAN_SERVER",
                    error,
                    from_env: true,
                })?);
            }
        } else {
            let host = args.host.as_deref().unwrap_or("");
            list.push(
                Server::add(host, args.port).map_err(|error| ListError::Add {
                    label: add,
                    error,
                    from_env: false,
                })?,
            );
        }
        Ok(Servers(list))
    }

    /// The order libgearman tries them in: the last added first.
    pub fn order(&self) -> impl Iterator<Item = &Server> {
        self.0.iter().rev()
    }

    /// The one named when none can be reached: the last tried, i.e. the first added.
    pub fn last_tried(&self) -> &Server {
        &self.0[0]
    }
}

/// What the C tool prints when `GEARMAN_SERVERS` makes creation fail, before `SIGABRT`.
pub fn uncaught(what: &str) -> String {
    format!(
        "terminate called after throwing an instance of 'std::runtime_error'\n  what():  {what}\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_split_as_libgearman_splits_them() {
        assert_eq!(parse_list(""), vec![(String::new(), 0)]);
        assert_eq!(
            parse_list("h:70000,:12,x:abc"),
            vec![("h".into(), 4464), ("".into(), 12), ("x".into(), 0)]
        );
        assert_eq!(parse_list("h:1:2"), vec![("h".into(), 1)]);
        assert_eq!(parse_list(",,"), vec![("".into(), 0); 3]);
    }

    #[test]
    fn defaults_and_names() {
        let s = Server::add("", 0).unwrap();
        assert_eq!(s.name(), "localhost:4730");
        let s = Server::add("127.0.0.1", 1).unwrap();
        assert_eq!(s.name(), "127.0.0.1:1");
        let e = Server::add("[", 0).unwrap_err().to_string();
        assert!(e.starts_with("[:4730 getaddrinfo:"), "{e}");
    }
}
