//! The cluster mode's names and SQL text: the members table, the indexes, the wake channel
//! and the statements of claim, release, heartbeat, view and leave.

use gearbox_store::sql::WRITE_COLUMNS;

use crate::sql::IDENTIFIERS;

/// The cluster migration; `{table}`, `{members}`, `{free}` and `{owner}` are replaced by the
/// quoted names.
const CREATE_CLUSTER: &str = include_str!("../migrations/0002_cluster.sql");

/// The names derived from our table's name, unquoted.
#[derive(Debug, Clone)]
pub(crate) struct Names {
    /// The members table.
    pub members: String,
    /// The partial index of free jobs.
    pub free: String,
    /// The partial index of held jobs, by owner.
    pub owner: String,
    /// The partial index of free jobs that wait for a time or a schedule.
    pub timed: String,
    /// The partial unique index on (function, unique_key).
    pub unique: String,
    /// The LISTEN/NOTIFY channel.
    pub channel: String,
}

impl Names {
    /// The names for our table `table` (a valid identifier of at most 63 bytes).
    pub(crate) fn new(table: &str) -> Names {
        Names {
            members: derived(table, "_members"),
            free: derived(table, "_free"),
            owner: derived(table, "_held"),
            timed: derived(table, "_timed"),
            unique: derived(table, "_unique"),
            channel: derived(table, "_wake"),
        }
    }
}

/// `{table}{suffix}`, kept within PostgreSQL's 63 bytes: a table name too long for that is
/// cut and followed by a hash of the whole name, so that two long names stay apart.
fn derived(table: &str, suffix: &str) -> String {
    let max = IDENTIFIERS.0;
    if table.len() + suffix.len() <= max {
        return format!("{table}{suffix}");
    }
    // FNV-1a: stable across builds and platforms, unlike the std hasher.
    let hash = table.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    let tag = format!("_{:08x}", hash as u32);
    // Table names are ASCII, so any byte is a character boundary.
    let keep = max - suffix.len() - tag.len();
    format!("{}{tag}{suffix}", &table[..keep])
}

/// Quotes a name that is known to be a valid identifier.
fn q(name: &str) -> String {
    format!("\"{name}\"")
}

/// The cluster statements for one table, built once.
#[derive(Debug, Clone)]
pub(crate) struct ClusterSql {
    /// The names, unquoted.
    pub names: Names,
    /// The migration (several statements).
    pub migrate: String,
    /// Whether the migration has run: one row, true when everything it makes exists.
    pub migrated: String,
    /// Creates the unique index.
    pub unique_index: String,
    /// `LISTEN` on the channel.
    pub listen: String,
    /// Writes jobs as `$9`'s, replacing the fields of an existing handle.
    pub upsert_owned: String,
    /// Writes jobs as `$9`'s unless their handle or their function and unique id exist;
    /// returns the handles written.
    pub insert_unique: String,
    /// The handle of each (function `$1[i]`, unique id `$2[i]`), NULL when none, in order.
    pub find_unique: String,
    /// Claims free due jobs for the wants `$1` (functions) and `$2` (counts), plus up to `$4`
    /// timed ones, for member `$3`; returns the jobs with their seq.
    pub claim: String,
    /// Frees the handles `$1` held by member `$2`.
    pub release: String,
    /// Frees every job of member `$1`.
    pub free_own: String,
    /// `pg_notify` on the channel.
    pub notify: String,
    /// The member `$1`'s age in milliseconds, by the database clock.
    pub member_age: String,
    /// Upserts member `$1` at address `$2` with a fresh heartbeat and the encoded load `$3`;
    /// true when inserted.
    pub beat: String,
    /// Deletes the members silent for more than `$1` milliseconds; returns their ids.
    pub reap: String,
    /// Frees the jobs of owners that are not members; returns (owner, count) rows.
    pub free_orphans: String,
    /// Deletes member `$1`.
    pub remove_member: String,
    /// Every member: id, address, milliseconds since its heartbeat, jobs held, encoded load.
    pub members: String,
    /// Free jobs per function, most first.
    pub free_by_function: String,
}

impl ClusterSql {
    /// The statements on our table `name` (unquoted), quoted as `quoted`.
    pub(crate) fn new(name: &str, quoted: &str) -> ClusterSql {
        let names = Names::new(name);
        let t = quoted;
        let m = q(&names.members);
        let migrate = CREATE_CLUSTER
            .replace("{table}", t)
            .replace("{members}", &m)
            .replace("{free}", &q(&names.free))
            .replace("{owner}", &q(&names.owner))
            .replace("{timed}", &q(&names.timed));
        let migrated = "SELECT EXISTS (SELECT 1 FROM information_schema.columns \
               WHERE table_schema = current_schema() AND table_name = $1 AND column_name = 'owner') \
             AND to_regclass($2) IS NOT NULL AND to_regclass($3) IS NOT NULL \
             AND to_regclass($4) IS NOT NULL AND to_regclass($5) IS NOT NULL \
             AND to_regclass($7) IS NOT NULL \
             AND EXISTS (SELECT 1 FROM information_schema.columns \
               WHERE table_schema = current_schema() AND table_name = $6 \
               AND column_name = 'status')"
            .to_owned();
        let rows = "SELECT h, f, u, p, d, w, s, r, $9::text FROM UNNEST($1::text[], \
                    $2::bytea[], $3::bytea[], $4::int[], $5::bytea[], $6::bigint[], \
                    $7::text[], $8::bytea[]) WITH ORDINALITY AS x(h, f, u, p, d, w, s, r, n) \
                    ORDER BY n";
        let insert = format!("INSERT INTO {t} ({WRITE_COLUMNS}, owner) {rows}");
        let upsert_owned = format!(
            "{insert} {}, owner = excluded.owner",
            gearbox_store::sql::ON_CONFLICT_UPDATE
        );
        let claimed = format!("{WRITE_COLUMNS}, seq");
        // The database's clock, in whole UNIX seconds as when_to_run is.
        let now = "floor(extract(epoch from now()))::bigint";
        let due = format!("owner IS NULL AND when_to_run <= {now} AND schedule IS NULL");
        let claim = format!(
            "WITH picked AS ( \
               SELECT j.seq FROM UNNEST($1::bytea[], $2::bigint[]) AS w(f, n), LATERAL ( \
                 SELECT seq FROM {t} WHERE {due} AND function = w.f \
                 ORDER BY priority, seq LIMIT w.n FOR UPDATE SKIP LOCKED) AS j \
               UNION ALL \
               SELECT seq FROM (SELECT seq FROM {t} WHERE owner IS NULL \
                 AND (when_to_run > 0 OR schedule IS NOT NULL) \
                 AND (when_to_run > {now} OR schedule IS NOT NULL) \
                 ORDER BY when_to_run, seq LIMIT $4 FOR UPDATE SKIP LOCKED) AS timed) \
             UPDATE {t} SET owner = $3 WHERE seq IN (SELECT seq FROM picked) \
             RETURNING {claimed}"
        );
        ClusterSql {
            migrate,
            migrated,
            unique_index: format!(
                "CREATE UNIQUE INDEX IF NOT EXISTS {} ON {t} (function, unique_key) \
                 WHERE unique_key <> ''",
                q(&names.unique)
            ),
            listen: format!("LISTEN {}", q(&names.channel)),
            insert_unique: format!("{insert} ON CONFLICT DO NOTHING RETURNING handle"),
            upsert_owned,
            find_unique: format!(
                "SELECT j.handle FROM UNNEST($1::bytea[], $2::bytea[]) WITH ORDINALITY \
                 AS x(f, u, n) LEFT JOIN {t} AS j ON j.function = x.f AND j.unique_key = x.u \
                 ORDER BY x.n"
            ),
            claim,
            release: format!(
                "UPDATE {t} SET owner = NULL WHERE handle = ANY($1::text[]) AND owner = $2"
            ),
            free_own: format!("UPDATE {t} SET owner = NULL WHERE owner = $1"),
            notify: "SELECT pg_notify($1, '')".into(),
            member_age: format!(
                "SELECT (extract(epoch from (now() - heartbeat)) * 1000)::bigint \
                 FROM {m} WHERE id = $1"
            ),
            beat: format!(
                "INSERT INTO {m} (id, address, heartbeat, joined, status) \
                 VALUES ($1, $2, now(), now(), $3) \
                 ON CONFLICT (id) DO UPDATE SET heartbeat = now(), address = excluded.address, \
                 status = excluded.status \
                 RETURNING (xmax = 0)"
            ),
            reap: format!(
                "DELETE FROM {m} WHERE heartbeat < now() - $1::bigint * interval '1 millisecond' \
                 RETURNING id"
            ),
            free_orphans: format!(
                "WITH gone AS (SELECT seq, owner FROM {t} AS j WHERE owner IS NOT NULL \
                   AND NOT EXISTS (SELECT 1 FROM {m} AS m WHERE m.id = j.owner) FOR UPDATE), \
                 freed AS (UPDATE {t} AS j SET owner = NULL FROM gone WHERE j.seq = gone.seq \
                   RETURNING gone.owner AS was) \
                 SELECT was, count(*) FROM freed GROUP BY was ORDER BY was"
            ),
            remove_member: format!("DELETE FROM {m} WHERE id = $1"),
            members: format!(
                "SELECT m.id, m.address, \
                   greatest((extract(epoch from (now() - m.heartbeat)) * 1000)::bigint, 0), \
                   (SELECT count(*) FROM {t} AS j WHERE j.owner = m.id), m.status \
                 FROM {m} AS m ORDER BY m.id"
            ),
            free_by_function: format!(
                "SELECT function, count(*) FROM {t} WHERE owner IS NULL \
                 GROUP BY function ORDER BY count(*) DESC, function"
            ),
            names,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn derived_names_fit_in_63_bytes() {
        let n = Names::new("gearbox_jobs");
        assert_eq!(n.members, "gearbox_jobs_members");
        assert_eq!(n.channel, "gearbox_jobs_wake");
        let long_a = format!("{}a", "x".repeat(62));
        let long_b = format!("{}b", "x".repeat(62));
        let (a, b) = (Names::new(&long_a), Names::new(&long_b));
        for name in [
            &a.members, &a.free, &a.owner, &a.timed, &a.unique, &a.channel,
        ] {
            assert!(name.len() <= 63, "{name}");
        }
        assert_ne!(a.members, b.members);
        assert!(a.unique.ends_with("_unique"));
    }
}
