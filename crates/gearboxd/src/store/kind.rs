//! Queue types as gearmand names them ([`QueueType`], `-q` and `queue_type`), and the kinds of
//! store this gearboxd has (`Kind`): which cargo features were built in.

use std::str::FromStr;

use crate::error::CliError;

/// A queue type, by gearmand's name (`-q`, `queue_type`). Names are read in any case, with
/// aliases; gearmand's queues that gearboxd does not have are read too, so that choosing one
/// is refused with a reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueType {
    /// `builtin` (also `memory`): jobs in memory only.
    Builtin,
    /// `libsqlite3` (also `sqlite`, `sqlite3`): a SQLite file.
    Libsqlite3,
    /// `libpq` (also `postgres`, `postgresql`, `pg`): a PostgreSQL table.
    Libpq,
    /// `redis` (also `libhiredis`, `hiredis`): Redis keys.
    Redis,
    /// `mysql` (also `libmysql`, `mariadb`): a MySQL/MariaDB table.
    Mysql,
    /// `libmemcached` (also `memcached`): memcached keys in gearmand's format.
    Libmemcached,
    /// gearmand's `libtokyocabinet`: refused, with the way to move its jobs.
    Libtokyocabinet,
    /// gearmand's `libdrizzle`: refused.
    Libdrizzle,
}

/// The queue types gearboxd has, as the error messages suggest them.
const KNOWN: &str = "`builtin` (memory only), `libsqlite3` (also `sqlite`), `libpq` (also \
                     `postgres`), `redis`, `mysql` (also `mariadb`) or `libmemcached` (also \
                     `memcached`)";

/// Why `-q libtokyocabinet` is refused, and what to do instead.
pub(super) const TOKYO_CABINET: &str = "queue type `libtokyocabinet` is not supported: \
     gearboxd has no Tokyo Cabinet queue. Use the embedded SQLite store, the default (leave \
     out -q; jobs are kept in gearbox-data/gearbox.sqlite, see --data-dir). To move the jobs \
     queued in gearmand's Tokyo Cabinet file, see \"Moving a Tokyo Cabinet queue\" in \
     docs/job-store.md (contrib/tokyocabinet-to-gearman resubmits them)";

impl QueueType {
    /// Each queue type with its names, gearmand's first.
    const NAMES: [(QueueType, &'static [&'static str]); 8] = [
        (QueueType::Builtin, &["builtin", "memory"]),
        (QueueType::Libsqlite3, &["libsqlite3", "sqlite", "sqlite3"]),
        (QueueType::Libpq, &["libpq", "postgres", "postgresql", "pg"]),
        (QueueType::Redis, &["redis", "libhiredis", "hiredis"]),
        (QueueType::Mysql, &["mysql", "libmysql", "mariadb"]),
        (QueueType::Libmemcached, &["libmemcached", "memcached"]),
        (QueueType::Libtokyocabinet, &["libtokyocabinet"]),
        (QueueType::Libdrizzle, &["libdrizzle"]),
    ];

    /// gearmand's name.
    pub fn name(self) -> &'static str {
        Self::NAMES
            .iter()
            .find(|(t, _)| *t == self)
            .map_or("", |(_, names)| names[0])
    }
}

crate::layers::by_name!(QueueType);

impl FromStr for QueueType {
    type Err = String;

    /// Reads a name or an alias, in any case.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let lower = s.trim().to_ascii_lowercase();
        Self::NAMES
            .iter()
            .find(|(_, names)| names.contains(&lower.as_str()))
            .map(|(t, _)| *t)
            .ok_or_else(|| format!("unknown queue type `{s}`: use {KNOWN}"))
    }
}

/// The kinds of store gearboxd has (whether or not this build has them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Kind {
    Builtin,
    Sqlite,
    Postgres,
    Redis,
    Mysql,
    Memcached,
}

impl TryFrom<QueueType> for Kind {
    type Error = CliError;

    /// gearmand's queues that gearboxd does not have are an error.
    fn try_from(q: QueueType) -> Result<Kind, CliError> {
        match q {
            QueueType::Builtin => Ok(Kind::Builtin),
            QueueType::Libsqlite3 => Ok(Kind::Sqlite),
            QueueType::Libpq => Ok(Kind::Postgres),
            QueueType::Redis => Ok(Kind::Redis),
            QueueType::Mysql => Ok(Kind::Mysql),
            QueueType::Libmemcached => Ok(Kind::Memcached),
            QueueType::Libtokyocabinet => Err(CliError::Invalid(TOKYO_CABINET.into())),
            QueueType::Libdrizzle => Err(CliError::Invalid(format!(
                "queue type `{q}` is gearmand's and is not supported by gearboxd: use {KNOWN}"
            ))),
        }
    }
}

impl Kind {
    /// The `-q` name to suggest for this kind.
    pub(super) fn queue_type(self) -> QueueType {
        match self {
            Kind::Builtin => QueueType::Builtin,
            Kind::Sqlite => QueueType::Libsqlite3,
            Kind::Postgres => QueueType::Libpq,
            Kind::Redis => QueueType::Redis,
            Kind::Mysql => QueueType::Mysql,
            Kind::Memcached => QueueType::Libmemcached,
        }
    }

    /// What it is, for messages.
    pub(super) fn what(self) -> &'static str {
        match self {
            Kind::Builtin => "builtin",
            Kind::Sqlite => "SQLite",
            Kind::Postgres => "PostgreSQL",
            Kind::Redis => "Redis",
            Kind::Mysql => "MySQL/MariaDB",
            Kind::Memcached => "memcached",
        }
    }

    /// The cargo feature that builds this kind in, and whether this build has it.
    fn feature(self) -> Option<(&'static str, bool)> {
        match self {
            Kind::Builtin => None,
            Kind::Sqlite => Some(("sqlite", cfg!(feature = "sqlite"))),
            Kind::Postgres => Some(("postgres", cfg!(feature = "postgres"))),
            Kind::Redis => Some(("redis", cfg!(feature = "redis"))),
            Kind::Mysql => Some(("mysql", cfg!(feature = "mysql"))),
            Kind::Memcached => Some(("memcached", cfg!(feature = "memcached"))),
        }
    }

    /// An error unless this gearboxd was built with this kind of store.
    pub(super) fn built_in(self) -> Result<(), CliError> {
        match self.feature() {
            Some((feature, false)) => Err(CliError::Invalid(format!(
                "this gearboxd was built without {} support; rebuild with --features {feature}",
                self.what()
            ))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gearmands_names_and_aliases_in_any_case() {
        for (name, expected) in [
            ("builtin", QueueType::Builtin),
            ("MEMORY", QueueType::Builtin),
            ("sqlite3", QueueType::Libsqlite3),
            ("PostgreSQL", QueueType::Libpq),
            ("pg", QueueType::Libpq),
            ("hiredis", QueueType::Redis),
            ("libhiredis", QueueType::Redis),
            ("MariaDB", QueueType::Mysql),
            ("libmysql", QueueType::Mysql),
            ("libdrizzle", QueueType::Libdrizzle),
            ("Memcached", QueueType::Libmemcached),
        ] {
            assert_eq!(name.parse::<QueueType>(), Ok(expected), "{name}");
        }
        for (t, names) in QueueType::NAMES {
            assert_eq!(t.to_string().parse::<QueueType>(), Ok(t));
            assert_eq!(t.name(), names[0]);
        }
        let e = "disk".parse::<QueueType>().unwrap_err();
        assert!(e.contains("unknown queue type `disk`"), "{e}");
    }

    #[test]
    fn gearmands_other_queues_are_refused() {
        for q in ["libtokyocabinet", "libdrizzle"] {
            let e = Kind::try_from(q.parse::<QueueType>().unwrap()).unwrap_err();
            assert!(e.to_string().contains("not supported"), "{e}");
        }
        for (t, _) in &QueueType::NAMES[..6] {
            assert_eq!(Kind::try_from(*t).unwrap().queue_type(), *t);
        }
    }

    #[test]
    fn kinds_not_built_in_say_which_feature_to_build() {
        assert!(Kind::Builtin.built_in().is_ok());
        for kind in [
            Kind::Sqlite,
            Kind::Postgres,
            Kind::Redis,
            Kind::Mysql,
            Kind::Memcached,
        ] {
            match (kind.feature(), kind.built_in()) {
                (Some((_, true)), Ok(())) => {}
                (Some((feature, false)), Err(e)) => {
                    let e = e.to_string();
                    assert!(e.contains(&format!("--features {feature}")), "{e}");
                    assert!(e.contains(kind.what()), "{e}");
                }
                other => panic!("{kind:?}: {other:?}"),
            }
        }
    }
}
