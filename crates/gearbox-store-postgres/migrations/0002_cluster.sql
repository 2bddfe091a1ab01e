-- The cluster mode's additions to gearbox's job table, run by PostgresClusterStore when one of
-- them is missing (under the same advisory lock as 0001_create_jobs.sql). Every statement is
-- idempotent. {table} is our table, {members}, {free}, {owner}, {timed} the derived names, all
-- quoted.
--
-- owner is the id of the cluster member holding the job in its core (queued, running or
-- waiting for its time there), NULL while the job is free for any member to claim. Rows a
-- single-server gearboxd writes have no owner: they are free.
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS owner TEXT NULL;

-- What claim scans: the free jobs of one function, highest priority first, FIFO within one.
CREATE INDEX IF NOT EXISTS {free} ON {table} (function, priority, seq) WHERE owner IS NULL;

-- What release, leave, the takeover of a dead member's jobs and the count of each member's
-- jobs look up: the held jobs only (few: about two per worker), not the free queue.
CREATE INDEX IF NOT EXISTS {owner} ON {table} (owner) WHERE owner IS NOT NULL;

-- Free jobs that wait for a time or a schedule (a dead member's timers), which any member
-- adopts at its poll: found without reading the free queue.
CREATE INDEX IF NOT EXISTS {timed} ON {table} (when_to_run, seq)
    WHERE owner IS NULL AND (when_to_run > 0 OR schedule IS NOT NULL);

-- The live members: each one's heartbeat, by the database's clock. A member whose heartbeat
-- is older than the dead-after bound is deleted by the next member to beat, and its jobs freed.
CREATE TABLE IF NOT EXISTS {members} (
    id        TEXT        PRIMARY KEY,
    address   TEXT        NOT NULL,
    heartbeat TIMESTAMPTZ NOT NULL,
    joined    TIMESTAMPTZ NOT NULL
);

-- Each member's load as it published it with its last heartbeat, for the cluster-wide admin
-- views (`cluster status`, `cluster members`): connections, workers and per function queued,
-- running and workers, in the binary encoding documented in src/cluster_status.rs. NULL
-- until the member's first heartbeat after it was added.
ALTER TABLE {members} ADD COLUMN IF NOT EXISTS status BYTEA NULL;
