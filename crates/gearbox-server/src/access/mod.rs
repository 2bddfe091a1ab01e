//! Access control: which identities may submit to which functions, register as workers for
//! which, and run which admin commands (the `[[access]]` rules of the config file).
//!
//! An [`AccessPolicy`] is the ordered list of rules, checked when the configuration is read.
//! When a connection opens, [`AccessPolicy::resolve`] picks the first rule that matches its
//! certificate names and peer address; the connection keeps that rule's [`Grants`] for its
//! life, and the core asks them before each submit, CAN_DO and admin command. With no rules at
//! all everything is allowed (the behaviour before access control existed); with rules, a
//! connection no rule matches may do nothing.
//!
//! - this file: the policy, the grants, the admin levels.
//! - `rule`: [`AccessRule`] (one `[[access]]` table) and its compiled matcher.

use std::net::IpAddr;
use std::path::Path;
use std::sync::{Arc, LazyLock};

use globset::GlobSet;
use serde::{Deserialize, Serialize};

mod rule;

pub use gearbox_proto::AdminAccess;
pub use rule::AccessRule;
use rule::Compiled;

/// A rule that cannot be used: its name and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("access rule `{rule}`: {problem}; fix the [[access]] table in the config file")]
pub struct AccessError {
    /// The rule's name (or `rule N`).
    pub rule: String,
    /// What is wrong.
    pub problem: String,
}

/// How much of the admin protocol a rule allows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdminLevel {
    /// No admin command.
    None,
    /// Commands that only read ([`AdminAccess::Read`]).
    Read,
    /// Every command, including those that change state ([`AdminAccess::Write`]).
    Write,
}

impl AdminLevel {
    fn parse(s: &str) -> Option<AdminLevel> {
        [AdminLevel::None, AdminLevel::Read, AdminLevel::Write]
            .into_iter()
            .find(|l| l.name().eq_ignore_ascii_case(s))
    }

    /// The level's name in the config file.
    pub fn name(self) -> &'static str {
        match self {
            AdminLevel::None => "none",
            AdminLevel::Read => "read",
            AdminLevel::Write => "write",
        }
    }
}

/// Function-name patterns: any name, or the names a glob set matches.
#[derive(Debug, Clone)]
enum Patterns {
    Any,
    Set(GlobSet),
}

impl Patterns {
    fn allows(&self, function: &[u8]) -> bool {
        match self {
            Patterns::Any => true,
            Patterns::Set(set) => set.is_match(bytes_path(function)),
        }
    }
}

/// A function name (any bytes) as the path a glob set matches.
fn bytes_path(name: &[u8]) -> &Path {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        Path::new(std::ffi::OsStr::from_bytes(name))
    }
    #[cfg(not(unix))]
    {
        // Non-UTF-8 names match no pattern there.
        Path::new(std::str::from_utf8(name).unwrap_or("\u{fffd}"))
    }
}

/// What one connection may do: the grants of the rule that matched it.
#[derive(Debug, Clone)]
pub struct Grants {
    /// The rule's name, for logs.
    rule: Arc<str>,
    submit: Patterns,
    register: Patterns,
    admin: AdminLevel,
}

impl Grants {
    /// Everything: what every connection may do when there are no rules.
    pub fn all() -> Arc<Grants> {
        // Shared: every connection of a server without rules (the default) gets these, so a
        // connect costs a reference count, not an allocation.
        static ALL: LazyLock<Arc<Grants>> = LazyLock::new(|| {
            Arc::new(Grants {
                rule: "(no access rules)".into(),
                submit: Patterns::Any,
                register: Patterns::Any,
                admin: AdminLevel::Write,
            })
        });
        ALL.clone()
    }

    /// Nothing: what a connection no rule matches may do.
    fn nothing() -> Arc<Grants> {
        static NOTHING: LazyLock<Arc<Grants>> = LazyLock::new(|| {
            Arc::new(Grants {
                rule: "(no rule matched)".into(),
                submit: Patterns::Set(GlobSet::empty()),
                register: Patterns::Set(GlobSet::empty()),
                admin: AdminLevel::None,
            })
        });
        NOTHING.clone()
    }

    /// The name of the rule these grants come from, for logs.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// Whether jobs may be submitted to `function`.
    pub fn may_submit(&self, function: &[u8]) -> bool {
        self.submit.allows(function)
    }

    /// Whether a worker may register for `function`.
    pub fn may_register(&self, function: &[u8]) -> bool {
        self.register.allows(function)
    }

    /// Whether an admin command needing `needed` may run.
    pub fn may_admin(&self, needed: AdminAccess) -> bool {
        match needed {
            AdminAccess::Nothing => true,
            AdminAccess::Read => self.admin >= AdminLevel::Read,
            AdminAccess::Write => self.admin >= AdminLevel::Write,
        }
    }

    /// The admin level granted.
    pub fn admin(&self) -> AdminLevel {
        self.admin
    }
}

/// The `[[access]]` rules, checked and compiled; first match wins. Read from the config file
/// as a list of [`AccessRule`]s (which it also writes back as); a bad pattern, network or admin
/// level is an error there that names the rule.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(try_from = "Vec<AccessRule>", into = "Vec<AccessRule>")]
pub struct AccessPolicy {
    rules: Arc<[AccessRule]>,
    compiled: Arc<[Compiled]>,
}

impl AccessPolicy {
    /// Checks and compiles `rules`.
    pub fn new(rules: Vec<AccessRule>) -> Result<AccessPolicy, AccessError> {
        let compiled = rules
            .iter()
            .enumerate()
            .map(|(i, r)| Compiled::new(i, r))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(AccessPolicy {
            rules: rules.into(),
            compiled: compiled.into(),
        })
    }

    /// The rules as given.
    pub fn rules(&self) -> &[AccessRule] {
        &self.rules
    }

    /// Whether there are no rules (everything is allowed).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The grants of a peer at `peer` (as text; an unparsable address matches no `peer`
    /// network) with certificate names `identity`: those of the first rule that matches,
    /// everything when there are no rules, nothing when no rule matches.
    pub fn resolve(&self, identity: &[String], peer: &str) -> Arc<Grants> {
        self.resolve_ip(identity, peer.parse().ok())
    }

    /// [`AccessPolicy::resolve`] with the peer address parsed.
    pub fn resolve_ip(&self, identity: &[String], peer: Option<IpAddr>) -> Arc<Grants> {
        if self.compiled.is_empty() {
            return Grants::all();
        }
        self.compiled
            .iter()
            .find(|c| c.matches(identity, peer))
            .map_or_else(Grants::nothing, |c| c.grants.clone())
    }
}

impl PartialEq for AccessPolicy {
    fn eq(&self, other: &AccessPolicy) -> bool {
        self.rules == other.rules
    }
}

impl Eq for AccessPolicy {}

impl TryFrom<Vec<AccessRule>> for AccessPolicy {
    type Error = AccessError;

    fn try_from(rules: Vec<AccessRule>) -> Result<AccessPolicy, AccessError> {
        AccessPolicy::new(rules)
    }
}

impl From<AccessPolicy> for Vec<AccessRule> {
    fn from(p: AccessPolicy) -> Vec<AccessRule> {
        p.rules.to_vec()
    }
}

#[cfg(test)]
mod tests;
