-- gearbox's own job table in PostgreSQL, created by PostgresStore::connect when it is missing
-- (under an advisory lock, so several gearboxd starting at once do not race).
-- {table} is replaced by the configured table name (default gearbox_jobs), already quoted.
--
-- seq grows with every new handle, so a scan in seq order replays the jobs in the order they
-- were first persisted. handle is the job's key: rewriting a job (ON CONFLICT (handle) DO
-- UPDATE) keeps its seq.
--
-- Reserved for the cluster mode (Store::claim / Store::release), not created yet:
--   owner        TEXT   NULL  -- the server holding the lease, NULL when free
--   lease_until  BIGINT NULL  -- UNIX seconds; an expired lease may be taken over
-- claim would be `UPDATE {table} SET owner = $me, lease_until = $t WHERE handle = $h AND
-- (owner IS NULL OR owner = $me OR lease_until < $now)`, granted when one row changed.
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
