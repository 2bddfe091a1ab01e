//! Cluster mode (`--cluster`, or `cluster = true` in the config file): [`ClusterSection`],
//! its flags and keys, flattened into [`crate::options::Options`]; and [`ClusterSettings`],
//! the checked result. How often a member polls the shared queue is the server library's
//! `cluster_poll_ms` (see [`crate::options::ServerSection`]).
//!
//! Several gearboxd servers share one PostgreSQL store (`-q libpq`): a job submitted to any
//! of them runs on a worker connected to any of them, and the jobs of a server that dies are
//! taken over by the others. See `docs/cluster.md`.

use std::net::SocketAddr;
use std::time::Duration;

use gearbox_store::cluster::ClusterMember;
use serde::{Deserialize, Serialize};

use crate::error::CliError;
use crate::store::StoreSettings;

/// The `--help` heading of the cluster settings.
const CLUSTER: &str = "Cluster (docs/cluster.md)";

/// How often a member heartbeats unless told otherwise, milliseconds.
pub const DEFAULT_HEARTBEAT_MS: u64 = 1000;
/// How stale a member's heartbeat may grow before the others take its jobs over, unless told
/// otherwise, milliseconds.
pub const DEFAULT_DEAD_AFTER_MS: u64 = 5000;

/// The cluster settings as a layer gives them (`None` or `false` = not given).
#[derive(Debug, Clone, Default, PartialEq, Eq, clap::Args, Serialize, Deserialize)]
#[serde(default)]
pub struct ClusterSection {
    /// Share the PostgreSQL store's queue with the other gearboxd servers started with
    /// --cluster on the same database and table: any server's workers run any server's
    /// background jobs, and a dead server's jobs are taken over (needs -q libpq).
    #[arg(long, help_heading = CLUSTER)]
    pub cluster: bool,

    /// This server's id in the cluster, unique and stable across restarts; jobs it holds are
    /// marked with it (default: HOSTNAME-PORT, PORT being the first bound Gearman port).
    #[arg(long, value_name = "ID", help_heading = CLUSTER)]
    pub cluster_id: Option<String>,

    /// Where the other servers reach this server's Gearman port (their bridges bring it the
    /// foreground jobs its workers can run), also shown in the cluster views (default: the
    /// first --listen address with its port, or HOSTNAME:PORT when listening on every
    /// address).
    #[arg(long, value_name = "HOST:PORT", help_heading = CLUSTER)]
    pub cluster_address: Option<String>,

    /// How often this server proves it is alive, milliseconds (default: 1000).
    #[arg(long, value_name = "MS", help_heading = CLUSTER)]
    pub cluster_heartbeat_ms: Option<u64>,

    /// A server whose last heartbeat is older than this is dead and its jobs are taken over
    /// by the others, milliseconds (default: 5000). Takeover completes within this plus one
    /// heartbeat and one poll (about 7 s by default).
    #[arg(long, value_name = "MS", help_heading = CLUSTER)]
    pub cluster_dead_after_ms: Option<u64>,
}

/// Checked cluster settings; the id and address may still need the bound port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterSettings {
    /// `--cluster-id`, if given.
    pub id: Option<String>,
    /// `--cluster-address`, if given.
    pub address: Option<String>,
    /// Heartbeat interval.
    pub heartbeat: Duration,
    /// Dead-after bound.
    pub dead_after: Duration,
}

impl ClusterSection {
    /// The checked settings, or `None` without `--cluster`. The other keys without it only
    /// warn.
    pub fn resolve(
        &self,
        store: &StoreSettings,
        warnings: &mut Vec<String>,
    ) -> Result<Option<ClusterSettings>, CliError> {
        if !self.cluster {
            let given = self.cluster_id.is_some()
                || self.cluster_address.is_some()
                || self.cluster_heartbeat_ms.is_some()
                || self.cluster_dead_after_ms.is_some();
            if given {
                warnings.push("the --cluster-* settings have no effect without --cluster".into());
            }
            return Ok(None);
        }
        if !matches!(store, StoreSettings::Postgres(_)) {
            return Err(CliError::Invalid(format!(
                "--cluster needs the PostgreSQL store that the servers share (-q libpq with \
                 --libpq-conninfo, or --store postgres://...), not {}",
                store.describe()
            )));
        }
        if let Some(id) = &self.cluster_id {
            let bad = id.is_empty()
                || id.len() > 64
                || !id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c));
            if bad {
                return Err(CliError::Invalid(format!(
                    "the cluster id {id:?} must be 1 to 64 letters, digits, '-', '_' or '.'"
                )));
            }
        }
        let heartbeat = self.cluster_heartbeat_ms.unwrap_or(DEFAULT_HEARTBEAT_MS);
        let dead_after = self.cluster_dead_after_ms.unwrap_or(DEFAULT_DEAD_AFTER_MS);
        if heartbeat == 0 || dead_after < 2 * heartbeat {
            return Err(CliError::Invalid(format!(
                "--cluster-dead-after-ms ({dead_after}) must be at least twice \
                 --cluster-heartbeat-ms ({heartbeat}), which must not be 0: one late heartbeat \
                 must not make a live server dead"
            )));
        }
        Ok(Some(ClusterSettings {
            id: self.cluster_id.clone(),
            address: self.cluster_address.clone(),
            heartbeat: Duration::from_millis(heartbeat),
            dead_after: Duration::from_millis(dead_after),
        }))
    }
}

impl ClusterSettings {
    /// This server's membership, once its first Gearman socket is bound at `bound`. The
    /// default address is `bound` itself, or the host name with its port when it listens
    /// on every address.
    pub fn member(&self, bound: SocketAddr) -> ClusterMember {
        let host = gearbox_server::config::hostname();
        let port = bound.port();
        let id = self.id.clone().unwrap_or_else(|| {
            let host: String = host
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' {
                        c
                    } else {
                        '-'
                    }
                })
                .collect();
            format!("{host}-{port}")
        });
        ClusterMember {
            id,
            address: self.address.clone().unwrap_or_else(|| match bound.ip() {
                ip if ip.is_unspecified() => format!("{host}:{port}"),
                _ => bound.to_string(),
            }),
            heartbeat: self.heartbeat,
            dead_after: self.dead_after,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn postgres() -> StoreSettings {
        StoreSettings::resolve_as(
            &crate::store::StoreSection {
                store: Some("postgres://u@127.0.0.1/db".into()),
                ..Default::default()
            },
            &Default::default(),
            None,
        )
        .unwrap()
        .0
    }

    #[test]
    fn cluster_needs_postgres_and_sane_bounds() {
        let on = ClusterSection {
            cluster: true,
            ..Default::default()
        };
        let mut warnings = Vec::new();
        let e = on
            .resolve(&StoreSettings::Builtin, &mut warnings)
            .unwrap_err();
        assert!(e.to_string().contains("-q libpq"), "{e}");
        let s = on.resolve(&postgres(), &mut warnings).unwrap().unwrap();
        assert_eq!(s.dead_after, Duration::from_millis(DEFAULT_DEAD_AFTER_MS));
        let m = s.member("0.0.0.0:4730".parse().unwrap());
        assert!(m.id.ends_with("-4730"), "{m:?}");
        assert!(
            m.address.ends_with(":4730") && !m.address.starts_with("0.0.0.0"),
            "{m:?}"
        );
        let m = s.member("127.0.0.1:4731".parse().unwrap());
        assert_eq!(m.address, "127.0.0.1:4731");
        let tight = ClusterSection {
            cluster_heartbeat_ms: Some(1000),
            cluster_dead_after_ms: Some(1500),
            ..on.clone()
        };
        assert!(tight.resolve(&postgres(), &mut warnings).is_err());
        let bad_id = ClusterSection {
            cluster_id: Some("a b".into()),
            ..on
        };
        assert!(bad_id.resolve(&postgres(), &mut warnings).is_err());
        assert!(warnings.is_empty());
        let off = ClusterSection {
            cluster_id: Some("x".into()),
            ..Default::default()
        };
        assert_eq!(off.resolve(&postgres(), &mut warnings).unwrap(), None);
        assert_eq!(warnings.len(), 1);
    }

    fn from_file(text: &str) -> Result<crate::settings::Settings, CliError> {
        use clap::Parser;
        let args = crate::args::Args::try_parse_from(["gearboxd"]).unwrap();
        let file = crate::config_file::parse(text).unwrap();
        crate::settings::Settings::from_parts(args, file)
    }

    #[test]
    fn cluster_is_a_config_file_key() {
        let s = from_file(
            "queue_type = \"libpq\"\nlibpq_conninfo = \"host=127.0.0.1\"\ncluster = true\n\
             cluster_id = \"gear1\"\ncluster_dead_after_ms = 9000\ncluster_poll_ms = 250\n",
        )
        .unwrap();
        let c = s.cluster.expect("cluster mode from the file");
        assert_eq!(c.id.as_deref(), Some("gear1"));
        assert_eq!(c.dead_after, Duration::from_secs(9));
        assert_eq!(s.server.cluster_poll_ms, 250);
        let e = from_file("cluster = true\n").unwrap_err();
        assert!(e.to_string().contains("-q libpq"), "{e}");
    }
}
