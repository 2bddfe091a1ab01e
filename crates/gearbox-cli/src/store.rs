//! The job store: which one (`-q`, `--store`, `--data-dir`, `--libsqlite3-db`,
//! `--libsqlite3-table`, `--durability` and their config-file keys, resolved into
//! [`StoreSettings`]) and opening it before the server binds ([`open`]).
//!
//! `builtin` keeps jobs in memory only and is the default for now; SQLite becomes the default
//! once the PostgreSQL, MySQL and Redis queues land. Those queue types (gearmand's `libpq`,
//! `mysql`, `redis`) are refused with a "not available yet" error until then.
//!
//! # Which layer wins
//!
//! Each key follows flags > config file > default, except that two groups of keys are taken
//! from one layer as a whole, so a flag can override the file without contradicting it:
//! the queue's kind (`queue_type`, `store`) and the database's location (`store`,
//! `libsqlite3_db`) come from the command line if it gives any key of the group, else from the
//! file. Within one layer, keys that disagree (`-q builtin --store sqlite:x`) are an error.
//!
//! # One server per store
//!
//! [`open`] takes an exclusive `flock` on `<database>.lock` (which holds the owner's pid), so
//! a second gearboxd on the same store stops at start-up instead of running the same jobs and
//! handing out the same handles.
//!
//! # Migration from gearmand
//!
//! If the SQLite database holds gearmand's queue table (`--libsqlite3-table`, gearmand's own
//! default `gearman_queue`), its jobs are moved into gearboxd's table at start-up, in one
//! transaction that also empties gearmand's table. They get handles `<prefix>:<n>` numbered
//! after the highest stored handle of this prefix, so they cannot collide with stored jobs.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use anyhow::Context;
use bytes::Bytes;
use gearbox_store::{
    Batch, BoxFuture, Durability, SqliteStore, Store, StoreError, StoredJob,
    DEFAULT_GEARMAND_TABLE, DEFAULT_TABLE,
};

use crate::error::CliError;

/// The data directory unless `--data-dir` says otherwise (relative to the working directory).
pub const DEFAULT_DATA_DIR: &str = "gearbox-data";

/// The SQLite file's name inside the data directory.
pub const SQLITE_FILE_NAME: &str = "gearbox.sqlite";

/// Where background jobs are kept, after precedence and checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreSettings {
    /// In memory only: queued jobs are lost when gearboxd stops (gearmand's `builtin`).
    Builtin,
    /// A SQLite database file.
    Sqlite(SqliteSettings),
}

/// The SQLite queue's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SqliteSettings {
    /// The database file.
    pub path: PathBuf,
    /// The data directory to create before opening, when the file is the data directory's.
    pub data_dir: Option<PathBuf>,
    /// gearmand's queue table to import from, if it exists.
    pub gearmand_table: String,
    /// Whether the table was named by the user (then a table that is not in gearmand's
    /// format is an error; gearmand's default name is only imported from if it fits).
    pub gearmand_table_given: bool,
    /// How hard commits try to survive crashes.
    pub durability: Durability,
}

/// The store keys of one layer (the command line, or the config file); `None` = not given.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StoreKeys {
    /// `-q` / `queue_type`.
    pub queue_type: Option<String>,
    /// `--store` / `store`: a URL.
    pub store: Option<String>,
    /// `--data-dir` / `data_dir`.
    pub data_dir: Option<PathBuf>,
    /// `--libsqlite3-db` / `libsqlite3_db`.
    pub libsqlite3_db: Option<PathBuf>,
    /// `--libsqlite3-table` / `libsqlite3_table`.
    pub libsqlite3_table: Option<String>,
    /// `--durability` / `durability`.
    pub durability: Option<Durability>,
}

/// The kinds of store this release has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Builtin,
    Sqlite,
}

/// What a `--store` URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Url {
    Builtin,
    Sqlite(PathBuf),
}

impl Url {
    fn kind(&self) -> Kind {
        match self {
            Url::Builtin => Kind::Builtin,
            Url::Sqlite(_) => Kind::Sqlite,
        }
    }
}

/// Queues planned for a later release: (names, what it is).
const PLANNED: [(&[&str], &str); 3] = [
    (&["libpq", "postgres", "postgresql", "pg"], "PostgreSQL"),
    (&["mysql", "libmysql", "mariadb"], "MySQL/MariaDB"),
    (&["redis", "libhiredis", "hiredis"], "Redis"),
];

/// gearmand queues gearboxd will not have.
const UNSUPPORTED: [&str; 3] = ["libmemcached", "libtokyocabinet", "libdrizzle"];

fn not_yet(name: &str, what: &str) -> CliError {
    CliError::Invalid(format!(
        "queue type `{name}` ({what}) is not available yet: this release keeps jobs in memory \
         (`builtin`) or in SQLite (`libsqlite3`); the PostgreSQL, MySQL/MariaDB and Redis queues \
         come in a later release"
    ))
}

fn parse_queue_type(name: &str) -> Result<Kind, CliError> {
    let lower = name.to_ascii_lowercase();
    match lower.as_str() {
        "builtin" | "memory" => return Ok(Kind::Builtin),
        "libsqlite3" | "sqlite" | "sqlite3" => return Ok(Kind::Sqlite),
        _ => {}
    }
    if let Some((_, what)) = PLANNED
        .iter()
        .find(|(names, _)| names.contains(&lower.as_str()))
    {
        return Err(not_yet(name, what));
    }
    if UNSUPPORTED.contains(&lower.as_str()) {
        return Err(CliError::Invalid(format!(
            "queue type `{name}` is gearmand's and is not supported by gearboxd: use \
             `libsqlite3` (or `builtin` to keep jobs in memory only)"
        )));
    }
    Err(CliError::Invalid(format!(
        "unknown queue type `{name}`: use `builtin` (memory only) or `libsqlite3` (also \
         `sqlite`)"
    )))
}

fn parse_url(url: &str) -> Result<Url, CliError> {
    let (scheme, rest) = url.split_once(':').unwrap_or((url, ""));
    let scheme = scheme.to_ascii_lowercase();
    match scheme.as_str() {
        "builtin" | "memory" if rest.is_empty() || rest == "//" => Ok(Url::Builtin),
        "sqlite" | "sqlite3" => {
            // `sqlite:///abs/file` and `sqlite://rel/file` as well as `sqlite:rel/file`.
            let path = rest.strip_prefix("//").unwrap_or(rest);
            if path.is_empty() {
                return Err(CliError::Invalid(format!(
                    "store URL `{url}` names no file: use sqlite:///absolute/path.sqlite or \
                     sqlite:relative/path.sqlite"
                )));
            }
            if path.contains('?') {
                return Err(CliError::Invalid(format!(
                    "store URL `{url}`: parameters (`?...`) are not supported; set the \
                     durability with --durability"
                )));
            }
            Ok(Url::Sqlite(PathBuf::from(path)))
        }
        _ => {
            let planned = match scheme.as_str() {
                "postgres" | "postgresql" => Some("PostgreSQL"),
                "mysql" | "mariadb" => Some("MySQL/MariaDB"),
                "redis" | "rediss" => Some("Redis"),
                _ => None,
            };
            match planned {
                Some(what) => Err(CliError::Invalid(format!(
                    "store URL `{url}`: {what} is not available yet; this release keeps jobs in \
                     memory (`memory:`) or in SQLite (`sqlite:///path/file.sqlite`)"
                ))),
                None => Err(CliError::Invalid(format!(
                    "unknown store URL `{url}`: use sqlite:///absolute/path.sqlite, \
                     sqlite:relative/path.sqlite or memory:"
                ))),
            }
        }
    }
}

impl StoreSettings {
    /// Combines the command line's keys with the config file's; also returns warnings for
    /// command-line flags that have no effect with the chosen store.
    pub fn resolve(
        cli: StoreKeys,
        file: StoreKeys,
    ) -> Result<(StoreSettings, Vec<String>), CliError> {
        // The kind: both keys from the command line if it gives either, else from the file.
        let (queue_type, kind_url) = if cli.queue_type.is_some() || cli.store.is_some() {
            (cli.queue_type.clone(), cli.store.clone())
        } else {
            (file.queue_type.clone(), file.store.clone())
        };
        let by_name = queue_type.as_deref().map(parse_queue_type).transpose()?;
        let by_url = kind_url.as_deref().map(parse_url).transpose()?;
        let kind = match (by_name, &by_url) {
            (Some(k), Some(u)) if k != u.kind() => {
                return Err(CliError::Invalid(format!(
                    "queue type `{}` and store URL `{}` disagree: give one of them",
                    queue_type.unwrap_or_default(),
                    kind_url.unwrap_or_default()
                )))
            }
            (_, Some(u)) => u.kind(),
            (Some(k), None) => k,
            (None, None) => Kind::Builtin,
        };

        let mut warnings = Vec::new();
        if kind == Kind::Builtin {
            let unused = [
                (cli.data_dir.is_some(), "--data-dir"),
                (cli.libsqlite3_db.is_some(), "--libsqlite3-db"),
                (cli.libsqlite3_table.is_some(), "--libsqlite3-table"),
                (cli.durability.is_some(), "--durability"),
            ];
            for (given, flag) in unused {
                if given {
                    warnings.push(format!(
                        "{flag} has no effect with the builtin queue (jobs are kept in memory \
                         only); add `-q libsqlite3` to keep them in SQLite"
                    ));
                }
            }
            return Ok((StoreSettings::Builtin, warnings));
        }

        // The location: both keys from the command line if it gives either, else from the file.
        let (location_url, db) = if cli.store.is_some() || cli.libsqlite3_db.is_some() {
            (cli.store, cli.libsqlite3_db)
        } else {
            (file.store, file.libsqlite3_db)
        };
        let url_path = match location_url.as_deref().map(parse_url).transpose()? {
            Some(Url::Sqlite(path)) => Some(path),
            _ => None,
        };
        let (path, data_dir) = match (url_path, db) {
            (Some(u), Some(d)) if u != d => {
                return Err(CliError::Invalid(format!(
                    "the store URL names {} and --libsqlite3-db names {}: give one of them",
                    u.display(),
                    d.display()
                )))
            }
            (Some(p), _) | (None, Some(p)) => (p, None),
            (None, None) => {
                let dir = cli
                    .data_dir
                    .or(file.data_dir)
                    .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR));
                if dir.as_os_str().is_empty() {
                    return Err(CliError::Invalid(
                        "the data directory name is empty (use `.` for the working directory)"
                            .into(),
                    ));
                }
                (dir.join(SQLITE_FILE_NAME), Some(dir))
            }
        };
        if path.as_os_str().is_empty() {
            return Err(CliError::Invalid("the SQLite file name is empty".into()));
        }
        let given_table = cli.libsqlite3_table.or(file.libsqlite3_table);
        let gearmand_table_given = given_table.is_some();
        let gearmand_table = given_table.unwrap_or_else(|| DEFAULT_GEARMAND_TABLE.to_owned());
        if gearmand_table == DEFAULT_TABLE {
            return Err(CliError::Invalid(format!(
                "--libsqlite3-table `{DEFAULT_TABLE}` is gearboxd's own table; name gearmand's \
                 queue table (gearmand's default: {DEFAULT_GEARMAND_TABLE})"
            )));
        }
        Ok((
            StoreSettings::Sqlite(SqliteSettings {
                path,
                data_dir,
                gearmand_table,
                gearmand_table_given,
                durability: cli.durability.or(file.durability).unwrap_or_default(),
            }),
            warnings,
        ))
    }

    /// A short description for logs: `builtin` or `sqlite FILE (durability ...)`.
    pub fn describe(&self) -> String {
        match self {
            StoreSettings::Builtin => "builtin (in memory only)".into(),
            StoreSettings::Sqlite(s) => {
                format!("sqlite {} (durability {})", s.path.display(), s.durability)
            }
        }
    }
}

/// An opened store, ready for [`gearbox_server::run_with_store`].
pub struct OpenedStore {
    /// What the server gets: `None` for the builtin queue.
    pub store: Option<Arc<dyn Store>>,
    /// Jobs moved from gearmand's table at this start-up.
    pub imported: usize,
    sqlite: Option<Arc<SqliteStore>>,
    /// Released when gearboxd exits, after the store is closed.
    _lock: Option<StoreLock>,
}

impl std::fmt::Debug for OpenedStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OpenedStore")
            .field("store", &self.store.as_ref().map(|s| s.name().to_owned()))
            .field("imported", &self.imported)
            .finish()
    }
}

impl OpenedStore {
    /// Finishes the store's pending writes and closes it (a clean SQLite shutdown).
    pub async fn close(&self) {
        if let Some(sqlite) = &self.sqlite {
            sqlite.close().await;
        }
    }
}

/// Opens the store `settings` names: creates the data directory, opens (or creates) the
/// database, reads its jobs and imports gearmand's queue table if there is one. New handles
/// for imported jobs start with `handle_prefix`.
///
/// Errors name the directory or file at fault.
pub async fn open(settings: &StoreSettings, handle_prefix: &str) -> anyhow::Result<OpenedStore> {
    let s = match settings {
        StoreSettings::Builtin => {
            return Ok(OpenedStore {
                store: None,
                imported: 0,
                sqlite: None,
                _lock: None,
            })
        }
        StoreSettings::Sqlite(s) => s,
    };
    if let Some(dir) = &s.data_dir {
        std::fs::create_dir_all(dir).map_err(|source| CliError::DataDir {
            path: dir.clone(),
            source,
        })?;
    }
    let lock = StoreLock::acquire(&s.path)?;
    let path = s.path.clone();
    let durability = s.durability;
    let sqlite =
        tokio::task::spawn_blocking(move || SqliteStore::open(&path, DEFAULT_TABLE, durability))
            .await
            .context("the task opening the job store failed")?
            .map_err(|e| about(e, &s.path))?;
    let sqlite = Arc::new(sqlite);
    let started = std::time::Instant::now();
    let jobs = sqlite.load().await.map_err(|e| about(e, &s.path))?;
    tracing::info!(
        store = %s.path.display(),
        jobs = jobs.len(),
        elapsed_ms = started.elapsed().as_millis() as u64,
        "read the stored jobs"
    );
    let first = next_number(&jobs, handle_prefix);
    let imported = import(&sqlite, s, handle_prefix, first).await?;
    // The server loads the jobs again only if the import added some.
    let preloaded = (imported == 0).then_some(jobs);
    let store = Arc::new(Preloaded {
        inner: sqlite.clone(),
        jobs: Mutex::new(preloaded),
    });
    Ok(OpenedStore {
        store: Some(store),
        imported,
        sqlite: Some(sqlite),
        _lock: lock,
    })
}

/// An exclusive `flock` on `<database>.lock`, held while gearboxd runs (the kernel releases
/// it when the process ends, however it ends). Two servers on one store would replay and run
/// the same jobs and hand out the same new handles, overwriting each other's jobs.
#[derive(Debug)]
struct StoreLock {
    _file: std::fs::File,
}

impl StoreLock {
    /// Locks the database's lock file and writes our pid in it; `None` for `:memory:`.
    fn acquire(db: &Path) -> Result<Option<StoreLock>, CliError> {
        use std::io::{Read, Seek, Write};
        use std::os::fd::AsRawFd;
        if db == Path::new(":memory:") {
            return Ok(None);
        }
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let failed = |source| CliError::StoreLock {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(failed)?;
        // SAFETY: flock has no memory-safety preconditions; the descriptor is open.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::WouldBlock {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = Some(pid.trim().to_owned()).filter(|p| !p.is_empty());
                return Err(CliError::StoreInUse {
                    path: db.to_owned(),
                    pid,
                });
            }
            return Err(failed(err));
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(failed)?;
        Ok(Some(StoreLock { _file: file }))
    }
}

/// Moves gearmand's queue table into ours; handles `<prefix>:<first>`, `<prefix>:<first+1>`...
async fn import(
    sqlite: &SqliteStore,
    s: &SqliteSettings,
    prefix: &str,
    first: u64,
) -> anyhow::Result<usize> {
    let prefix = prefix.to_owned();
    let mut n = first;
    let new_handle = move || {
        let handle = Bytes::from(format!("{prefix}:{n}"));
        n += 1;
        handle
    };
    match sqlite.import_gearmand(&s.gearmand_table, new_handle).await {
        Ok(count) => Ok(count),
        Err(e @ StoreError::NotGearmandTable { .. }) if !s.gearmand_table_given => {
            // Only gearmand's default name was tried; the user's table happens to have it.
            tracing::warn!(store = %s.path.display(), error = %e, "not importing it");
            Ok(0)
        }
        Err(e) => Err(anyhow::Error::new(e).context(format!(
            "cannot import gearmand's queue table `{}` from {}",
            s.gearmand_table,
            s.path.display()
        ))),
    }
}

/// The number after the highest `<prefix>:<n>` handle among `jobs` (1 if none).
fn next_number(jobs: &[StoredJob], prefix: &str) -> u64 {
    jobs.iter()
        .filter_map(|j| {
            let n = j
                .handle
                .strip_prefix(prefix.as_bytes())?
                .strip_prefix(b":")?;
            std::str::from_utf8(n).ok()?.parse::<u64>().ok()
        })
        .max()
        .map_or(1, |n| n.saturating_add(1))
}

/// A store error that names `path` (the store's own messages usually do already).
fn about(e: StoreError, path: &Path) -> anyhow::Error {
    let shown = path.display().to_string();
    if e.to_string().contains(&shown) {
        anyhow::Error::new(e)
    } else {
        anyhow::Error::new(e).context(format!("job store {shown}"))
    }
}

/// The SQLite store with the jobs read at start-up kept for the server's first `load`, so
/// the database is read once.
struct Preloaded {
    inner: Arc<SqliteStore>,
    jobs: Mutex<Option<Vec<StoredJob>>>,
}

impl Store for Preloaded {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn is_durable(&self) -> bool {
        self.inner.is_durable()
    }

    fn load(&self) -> BoxFuture<'_, Vec<StoredJob>> {
        let preloaded = self.jobs.lock().unwrap_or_else(|e| e.into_inner()).take();
        match preloaded {
            Some(jobs) => Box::pin(std::future::ready(Ok(jobs))),
            None => self.inner.load(),
        }
    }

    fn commit(&self, batch: Batch) -> BoxFuture<'_, ()> {
        self.inner.commit(batch)
    }

    fn claim(&self, handle: Bytes) -> BoxFuture<'_, bool> {
        self.inner.claim(handle)
    }

    fn release(&self, handle: Bytes) -> BoxFuture<'_, ()> {
        self.inner.release(handle)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(queue_type: Option<&str>, store: Option<&str>) -> StoreKeys {
        StoreKeys {
            queue_type: queue_type.map(Into::into),
            store: store.map(Into::into),
            ..StoreKeys::default()
        }
    }

    fn resolve(cli: StoreKeys, file: StoreKeys) -> Result<StoreSettings, String> {
        StoreSettings::resolve(cli, file)
            .map(|(s, _)| s)
            .map_err(|e| e.to_string())
    }

    fn sqlite_path(s: StoreSettings) -> PathBuf {
        match s {
            StoreSettings::Sqlite(s) => s.path,
            StoreSettings::Builtin => panic!("builtin"),
        }
    }

    #[test]
    fn builtin_is_the_default() {
        let s = resolve(StoreKeys::default(), StoreKeys::default()).unwrap();
        assert_eq!(s, StoreSettings::Builtin);
        for name in ["builtin", "BUILTIN", "memory"] {
            assert_eq!(
                resolve(keys(Some(name), None), StoreKeys::default()).unwrap(),
                StoreSettings::Builtin
            );
        }
        for url in ["memory:", "builtin", "builtin:"] {
            assert_eq!(
                resolve(keys(None, Some(url)), StoreKeys::default()).unwrap(),
                StoreSettings::Builtin
            );
        }
    }

    #[test]
    fn sqlite_lives_in_the_data_dir_by_default() {
        let s = resolve(keys(Some("libsqlite3"), None), StoreKeys::default()).unwrap();
        let StoreSettings::Sqlite(s) = s else {
            panic!("not sqlite")
        };
        assert_eq!(s.path, Path::new(DEFAULT_DATA_DIR).join(SQLITE_FILE_NAME));
        assert_eq!(s.data_dir.as_deref(), Some(Path::new(DEFAULT_DATA_DIR)));
        assert_eq!(s.durability, Durability::Fsync);
        assert_eq!(s.gearmand_table, DEFAULT_GEARMAND_TABLE);
        assert!(!s.gearmand_table_given);

        let cli = StoreKeys {
            queue_type: Some("sqlite".into()),
            data_dir: Some("/var/lib/gb".into()),
            durability: Some(Durability::Normal),
            libsqlite3_table: Some("q".into()),
            ..StoreKeys::default()
        };
        let StoreSettings::Sqlite(s) = resolve(cli, StoreKeys::default()).unwrap() else {
            panic!("not sqlite")
        };
        assert_eq!(s.path, Path::new("/var/lib/gb/gearbox.sqlite"));
        assert_eq!(s.durability, Durability::Normal);
        assert_eq!(
            (s.gearmand_table.as_str(), s.gearmand_table_given),
            ("q", true)
        );
    }

    #[test]
    fn urls_and_libsqlite3_db_name_the_file() {
        let path = |url| sqlite_path(resolve(keys(None, Some(url)), StoreKeys::default()).unwrap());
        assert_eq!(
            path("sqlite:///var/lib/q.sqlite"),
            Path::new("/var/lib/q.sqlite")
        );
        assert_eq!(path("sqlite:q.sqlite"), Path::new("q.sqlite"));
        assert_eq!(path("sqlite://d/q.sqlite"), Path::new("d/q.sqlite"));
        assert_eq!(path("SQLITE3:/abs.db"), Path::new("/abs.db"));
        let cli = StoreKeys {
            queue_type: Some("libsqlite3".into()),
            libsqlite3_db: Some("/tmp/gearmand.db".into()),
            ..StoreKeys::default()
        };
        let StoreSettings::Sqlite(s) = resolve(cli, StoreKeys::default()).unwrap() else {
            panic!("not sqlite")
        };
        assert_eq!(s.path, Path::new("/tmp/gearmand.db"));
        assert_eq!(s.data_dir, None, "no data directory is created");
    }

    #[test]
    fn the_command_line_overrides_the_file_by_group() {
        let file = StoreKeys {
            store: Some("sqlite:///file.sqlite".into()),
            durability: Some(Durability::None),
            ..StoreKeys::default()
        };
        // `-q builtin` beats the file's URL instead of contradicting it.
        assert_eq!(
            resolve(keys(Some("builtin"), None), file.clone()).unwrap(),
            StoreSettings::Builtin
        );
        // The file chooses SQLite, the flag its file.
        let cli = StoreKeys {
            libsqlite3_db: Some("/flag.sqlite".into()),
            ..StoreKeys::default()
        };
        assert_eq!(
            sqlite_path(resolve(cli, file.clone()).unwrap()),
            Path::new("/flag.sqlite")
        );
        // The flag chooses SQLite, the file its file and durability.
        let StoreSettings::Sqlite(s) = resolve(keys(Some("libsqlite3"), None), file).unwrap()
        else {
            panic!("not sqlite")
        };
        assert_eq!(s.path, Path::new("/file.sqlite"));
        assert_eq!(s.durability, Durability::None);
    }

    #[test]
    fn contradictions_and_unknown_names_are_errors() {
        let e = resolve(
            keys(Some("builtin"), Some("sqlite:x")),
            StoreKeys::default(),
        )
        .unwrap_err();
        assert!(e.contains("disagree"), "{e}");
        let cli = StoreKeys {
            store: Some("sqlite:///a".into()),
            libsqlite3_db: Some("/b".into()),
            ..StoreKeys::default()
        };
        let e = resolve(cli, StoreKeys::default()).unwrap_err();
        assert!(e.contains("/a") && e.contains("/b"), "{e}");
        for q in ["libpq", "mysql", "MySQL", "redis", "postgres"] {
            let e = resolve(keys(Some(q), None), StoreKeys::default()).unwrap_err();
            assert!(e.contains(q) && e.contains("not available yet"), "{e}");
        }
        for url in ["postgres://u@h/db", "mysql://h/db", "redis://h"] {
            let e = resolve(keys(None, Some(url)), StoreKeys::default()).unwrap_err();
            assert!(e.contains("not available yet"), "{e}");
        }
        let e = resolve(keys(Some("libmemcached"), None), StoreKeys::default()).unwrap_err();
        assert!(e.contains("not supported"), "{e}");
        let e = resolve(keys(Some("disk"), None), StoreKeys::default()).unwrap_err();
        assert!(e.contains("unknown queue type `disk`"), "{e}");
        for url in ["sqlite:", "sqlite://", "sqlite:///x?mode=rwc", "file:///x"] {
            assert!(
                resolve(keys(None, Some(url)), StoreKeys::default()).is_err(),
                "{url}"
            );
        }
        let cli = StoreKeys {
            queue_type: Some("libsqlite3".into()),
            libsqlite3_table: Some(DEFAULT_TABLE.into()),
            ..StoreKeys::default()
        };
        assert!(resolve(cli, StoreKeys::default()).is_err());
    }

    #[test]
    fn sqlite_flags_warn_with_the_builtin_queue() {
        let cli = StoreKeys {
            data_dir: Some("d".into()),
            durability: Some(Durability::Normal),
            ..StoreKeys::default()
        };
        let (s, warnings) = StoreSettings::resolve(cli, StoreKeys::default()).unwrap();
        assert_eq!(s, StoreSettings::Builtin);
        assert_eq!(warnings.len(), 2, "{warnings:?}");
        assert!(warnings[0].starts_with("--data-dir has no effect"));
    }

    #[test]
    fn imported_handles_continue_after_the_highest_stored_one() {
        let jobs = [
            StoredJob::new("H:me:7", "f", ""),
            StoredJob::new("H:me:12", "f", ""),
            StoredJob::new("H:other:99", "f", ""),
            StoredJob::new("H:me:x", "f", ""),
        ];
        assert_eq!(next_number(&jobs, "H:me"), 13);
        assert_eq!(next_number(&jobs, "H:none"), 1);
        assert_eq!(next_number(&[], "H:me"), 1);
    }
}
