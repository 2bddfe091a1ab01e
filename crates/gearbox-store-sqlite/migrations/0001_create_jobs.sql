-- gearbox's own job table, created by SqliteStore::open when it is missing.
-- {table} is replaced by the configured table name (default gearbox_jobs), already quoted.
--
-- seq is the row id (INTEGER PRIMARY KEY): it grows with every new handle, so a scan in
-- seq order replays the jobs in the order they were first persisted, with no sort and no
-- extra index. handle is the job's key (UNIQUE): rewriting a job keeps its seq.
CREATE TABLE IF NOT EXISTS {table} (
    seq         INTEGER PRIMARY KEY,
    handle      TEXT    NOT NULL UNIQUE,
    function    BLOB    NOT NULL,
    unique_key  BLOB    NOT NULL,
    priority    INTEGER NOT NULL,
    data        BLOB    NOT NULL,
    when_to_run INTEGER NOT NULL DEFAULT 0,
    schedule    TEXT    NULL,
    reducer     BLOB    NULL
);
