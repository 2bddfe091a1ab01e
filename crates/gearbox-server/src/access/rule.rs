//! One `[[access]]` rule as the config file gives it, and its compiled form.

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use globset::{GlobBuilder, GlobSet, GlobSetBuilder};
use ipnet::{IpNet, Ipv4Net};
use serde::{Deserialize, Serialize};

use super::{AccessError, AdminLevel, Grants, Patterns};

/// One `[[access]]` table of the config file: whom it matches, and what it grants.
///
/// A rule matches a connection when every matcher it gives matches: `cert` (one of the
/// certificate's names matches one of the patterns) and `peer` (the peer address is in one of
/// the networks). A rule with neither matches every connection (a catch-all). What a rule
/// does not grant is refused: no `submit` key means no submitting.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AccessRule {
    /// Shown in logs when the rule refuses something (default: `rule N`, counted from 1).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Glob patterns (`*`, `?`, `[a-z]`, `{a,b}`), case-insensitive, matched against the
    /// client certificate's common name and subject alternative names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cert: Vec<String>,
    /// Networks (`10.0.0.0/8`, `fd00::/8`) or single addresses the peer must be in.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub peer: Vec<String>,
    /// Glob patterns of the functions jobs may be submitted to (case-sensitive).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub submit: Vec<String>,
    /// Glob patterns of the functions a worker may register for (CAN_DO, CAN_DO_TIMEOUT).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub register: Vec<String>,
    /// Admin commands allowed: `none` (default), `read` (listings, version, metrics) or
    /// `write` (also cancel, maxqueue, create/drop function, shutdown).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub admin: Option<String>,
}

/// A rule ready to match: its matchers and the grants it gives.
#[derive(Debug, Clone)]
pub(super) struct Compiled {
    cert: Option<GlobSet>,
    peer: Vec<IpNet>,
    pub(super) grants: Arc<Grants>,
}

impl Compiled {
    /// Checks and compiles rule number `index` (from 0).
    pub(super) fn new(index: usize, rule: &AccessRule) -> Result<Compiled, AccessError> {
        let name = rule
            .name
            .clone()
            .unwrap_or_else(|| format!("rule {}", index + 1));
        let bad = |what: String| AccessError {
            rule: name.clone(),
            problem: what,
        };
        let cert = if rule.cert.is_empty() {
            None
        } else {
            Some(globs(&rule.cert, true).map_err(|e| bad(format!("cert: {e}")))?)
        };
        let peer = rule
            .peer
            .iter()
            .map(|p| network(p))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| bad(format!("peer: {e}")))?;
        let submit = globs(&rule.submit, false).map_err(|e| bad(format!("submit: {e}")))?;
        let register = globs(&rule.register, false).map_err(|e| bad(format!("register: {e}")))?;
        let admin = match rule.admin.as_deref().map(str::trim) {
            None => AdminLevel::None,
            Some(level) => AdminLevel::parse(level).ok_or_else(|| {
                bad(format!(
                    "admin: `{level}` is not an admin level; use none, read or write"
                ))
            })?,
        };
        Ok(Compiled {
            cert,
            peer,
            grants: Arc::new(Grants {
                rule: name.into(),
                submit: Patterns::Set(submit),
                register: Patterns::Set(register),
                admin,
            }),
        })
    }

    /// Whether the rule applies to a peer at `peer` with certificate names `identity`.
    pub(super) fn matches(&self, identity: &[String], peer: Option<IpAddr>) -> bool {
        let cert_ok = match &self.cert {
            None => true,
            Some(set) => identity.iter().any(|name| set.is_match(Path::new(name))),
        };
        let peer_ok = self.peer.is_empty()
            || peer.is_some_and(|ip| {
                let ip = ip.to_canonical();
                self.peer.iter().any(|net| net.contains(&ip))
            });
        cert_ok && peer_ok
    }
}

/// One set of glob patterns; `*` also matches `/` and `.` (names are not paths).
fn globs(patterns: &[String], case_insensitive: bool) -> Result<GlobSet, String> {
    let mut set = GlobSetBuilder::new();
    for p in patterns {
        let glob = GlobBuilder::new(p)
            .case_insensitive(case_insensitive)
            .literal_separator(false)
            .backslash_escape(true)
            .build()
            .map_err(|e| format!("`{p}` is not a valid pattern: {}", e.kind()))?;
        set.add(glob);
    }
    set.build().map_err(|e| e.to_string())
}

/// A network (`10.0.0.0/8`) or a single address (`192.0.2.7`, `::1`). An IPv4-mapped IPv6
/// network is read as the IPv4 network it covers, as peers are compared in that form.
fn network(text: &str) -> Result<IpNet, String> {
    let t = text.trim();
    let net = match t.parse::<IpNet>() {
        Ok(net) => net,
        Err(_) => t
            .parse::<IpAddr>()
            .map(IpNet::from)
            .map_err(|_| format!("`{t}` is neither an address nor a network (ADDR/PREFIX)"))?,
    };
    Ok(match net {
        IpNet::V6(v6) if v6.prefix_len() >= 96 => match v6.addr().to_ipv4_mapped() {
            Some(v4) => Ipv4Net::new(v4, v6.prefix_len() - 96)
                .map(IpNet::V4)
                .unwrap_or(net),
            None => net,
        },
        other => other,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(toml_text: &str) -> Result<Compiled, AccessError> {
        let rule: AccessRule = toml::from_str(toml_text).expect("rule parses");
        Compiled::new(0, &rule)
    }

    #[test]
    fn bad_patterns_networks_and_levels_name_the_rule() {
        for (text, want) in [
            (
                "name = \"ops\"\npeer = [\"10.0.0.0/33\"]",
                "access rule `ops`: peer: `10.0.0.0/33` is neither an address nor a network",
            ),
            (
                "cert = [\"[abc\"]",
                "access rule `rule 1`: cert: `[abc` is not a valid pattern",
            ),
            (
                "name = \"w\"\nregister = [\"{a,\"]",
                "access rule `w`: register: `{a,` is not a valid pattern",
            ),
            (
                "name = \"x\"\nadmin = \"root\"",
                "access rule `x`: admin: `root` is not an admin level; use none, read or write",
            ),
        ] {
            let e = rule(text).unwrap_err().to_string();
            assert!(e.starts_with(want), "{text:?}: {e}");
        }
    }

    #[test]
    fn peers_match_networks_single_addresses_and_mapped_ipv4() {
        let r = rule("peer = [\"10.1.0.0/16\", \"192.0.2.7\", \"::ffff:172.16.0.0/108\"]").unwrap();
        let m = |ip: &str| r.matches(&[], Some(ip.parse().unwrap()));
        assert!(m("10.1.2.3"));
        assert!(m("::ffff:10.1.2.3"));
        assert!(m("192.0.2.7"));
        assert!(m("172.16.9.9"));
        assert!(!m("10.2.0.1"));
        assert!(!m("192.0.2.8"));
        assert!(!m("::1"));
        assert!(!r.matches(&[], None));
    }

    #[test]
    fn cert_patterns_ignore_case_and_need_some_name_to_match() {
        let r = rule("cert = [\"*.workers.example.com\", \"admin\"]").unwrap();
        let names = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(r.matches(&names(&["Resize-1.Workers.Example.COM"]), None));
        assert!(r.matches(&names(&["x", "ADMIN"]), None));
        assert!(!r.matches(&names(&["workers.example.com"]), None));
        assert!(!r.matches(&[], None));
    }

    #[test]
    fn both_matchers_must_match_and_none_matches_everyone() {
        let r = rule("cert = [\"a\"]\npeer = [\"127.0.0.0/8\"]").unwrap();
        let a = vec!["a".to_string()];
        assert!(r.matches(&a, Some("127.0.0.1".parse().unwrap())));
        assert!(!r.matches(&a, Some("10.0.0.1".parse().unwrap())));
        assert!(!r.matches(&[], Some("127.0.0.1".parse().unwrap())));
        let all = rule("name = \"everyone\"").unwrap();
        assert!(all.matches(&[], None));
    }

    #[test]
    fn unknown_keys_are_refused() {
        let e = toml::from_str::<AccessRule>("submits = [\"x\"]").unwrap_err();
        assert!(e.to_string().contains("unknown field `submits`"), "{e}");
    }
}
