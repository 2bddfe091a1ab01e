//! The peers that may change the server through HTTP (`http_allow`): cancel, maxqueue, and any
//! later request that changes state. Reads are open to every peer that reaches the listener,
//! unless the `[[access]]` rules restrict them (see `access`).

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use ipnet::{IpNet, Ipv4Net};

use super::api::ApiError;

/// The networks whose peers may change state; an IPv4-mapped IPv6 peer (`::ffff:a.b.c.d`, as a
/// dual-stack socket reports an IPv4 client) is matched as its IPv4 address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowList(Vec<IpNet>);

impl AllowList {
    /// The default: loopback only (`127.0.0.0/8` and `::1`), like the admin `shutdown`.
    pub fn loopback() -> AllowList {
        AllowList(vec![
            "127.0.0.0/8".parse().expect("a valid network"),
            "::1/128".parse().expect("a valid network"),
        ])
    }

    /// Parses each entry as a network (`10.0.0.0/8`, `fd00::/8`) or a single address
    /// (`192.0.2.7`, `::1`); the error names the entry at fault.
    pub fn parse<S: AsRef<str>>(entries: &[S]) -> Result<AllowList, String> {
        entries
            .iter()
            .map(|e| {
                let e = e.as_ref().trim();
                let net = match e.parse::<IpNet>() {
                    Ok(net) => net,
                    Err(_) => e.parse::<IpAddr>().map(IpNet::from).map_err(|_| {
                        format!("`{e}` is neither an address nor a network (ADDR/PREFIX)")
                    })?,
                };
                Ok(canonical(net))
            })
            .collect::<Result<_, _>>()
            .map(AllowList)
    }

    /// Whether `peer` is in one of the networks.
    pub fn permits(&self, peer: IpAddr) -> bool {
        let peer = peer.to_canonical();
        self.0.iter().any(|net| net.contains(&peer))
    }

    /// `Ok` if `peer` may do `what`; otherwise logs a warning and returns the `403` error that
    /// names the peer and the setting to change.
    pub(crate) fn check(&self, peer: SocketAddr, what: &'static str) -> Result<(), ApiError> {
        if self.permits(peer.ip()) {
            return Ok(());
        }
        let peer = peer.ip().to_canonical();
        tracing::warn!(%peer, what, allowed = %self, "http request refused: peer not in http_allow");
        Err(ApiError::Forbidden { what, peer })
    }
}

impl Default for AllowList {
    fn default() -> AllowList {
        AllowList::loopback()
    }
}

impl fmt::Display for AllowList {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nets: Vec<String> = self.0.iter().map(IpNet::to_string).collect();
        f.write_str(&nets.join(", "))
    }
}

/// An IPv4-mapped IPv6 network (`::ffff:10.0.0.0/104`) as the IPv4 network it covers, so it
/// matches the peers it names once they are compared as IPv4.
fn canonical(net: IpNet) -> IpNet {
    match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        _ => net,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn the_default_allows_loopback_only() {
        let l = AllowList::default();
        for ok in ["127.0.0.1", "127.8.0.1", "::1", "::ffff:127.0.0.1"] {
            assert!(l.permits(ip(ok)), "{ok}");
        }
        for no in ["10.0.0.1", "2001:db8::1", "::ffff:192.0.2.1", "0.0.0.0"] {
            assert!(!l.permits(ip(no)), "{no}");
        }
    }

    #[test]
    fn networks_and_single_addresses_match_across_families() {
        let l = AllowList::parse(&[
            "10.0.0.0/8",
            "192.0.2.7",
            "fd00::/8",
            "::ffff:198.51.100.0/120",
        ])
        .unwrap();
        for ok in [
            "10.1.2.3",
            "::ffff:10.9.9.9",
            "192.0.2.7",
            "fd12::5",
            "198.51.100.9",
            "::ffff:198.51.100.200",
        ] {
            assert!(l.permits(ip(ok)), "{ok}");
        }
        for no in [
            "11.0.0.1",
            "192.0.2.8",
            "fe80::1",
            "127.0.0.1",
            "::1",
            "198.51.101.1",
        ] {
            assert!(!l.permits(ip(no)), "{no}");
        }
    }

    #[test]
    fn a_bad_entry_is_named() {
        let e = AllowList::parse(&["10.0.0.0/8", "10.0.0.0/33"]).unwrap_err();
        assert!(e.contains("`10.0.0.0/33`"), "{e}");
        assert!(AllowList::parse(&["localhost"]).is_err());
    }

    #[test]
    fn a_refusal_names_the_peer_and_the_setting() {
        let l = AllowList::parse(&["10.0.0.0/8"]).unwrap();
        assert!(l.check("10.0.0.1:80".parse().unwrap(), "cancel").is_ok());
        let e = l
            .check("[::ffff:192.0.2.1]:5".parse().unwrap(), "cancel")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cancel") && e.contains("from 192.0.2.1:"), "{e}");
        assert!(
            e.contains("http_allow") && e.contains("--http-allow"),
            "{e}"
        );
    }
}
