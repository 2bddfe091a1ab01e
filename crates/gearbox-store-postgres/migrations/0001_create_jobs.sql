-- gearbox's own job table in PostgreSQL, created by PostgresStore::connect when it is missing
-- (under an advisory lock, so several gearboxd starting at once do not race).
-- {table} is replaced by the configured table name (default gearbox_jobs), already quoted.
--
-- seq grows with every new handle, so a scan in seq order replays the jobs in the order they
-- were first persisted. handle is the job's key: rewriting a job (ON CONFLICT (handle) DO
-- UPDATE) keeps its seq.
--
-- The cluster mode (PostgresClusterStore) adds an owner column, its indexes, a unique index on
-- (function, unique_key) and a members table: see 0002_cluster.sql. This file is unchanged by
-- it, and a single-server store works on a table that has them (its rows are free: no owner).
CREATE TABLE IF NOT EXISTS {table} (
    seq         BIGSERIAL PRIMARY KEY,
    handle      TEXT      NOT NULL UNIQUE,
    function    BYTEA     NOT NULL,
    unique_key  BYTEA     NOT NULL,
    priority    INT       NOT NULL,
    data        BYTEA     NOT NULL,
    when_to_run BIGINT    NOT NULL DEFAULT 0,
    schedule    TEXT      NULL,
    reducer     BYTEA     NULL
);
