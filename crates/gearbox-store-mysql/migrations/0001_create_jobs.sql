-- gearbox's own job table in MySQL/MariaDB, created by MysqlStore::connect when it is missing.
-- {table} is replaced by the configured table name (default gearbox_jobs), already quoted.
--
-- seq grows with every new handle, so a scan in seq order replays the jobs in the order they
-- were first persisted. handle is the job's key: rewriting a job (INSERT ... ON DUPLICATE KEY
-- UPDATE) keeps its seq. Every byte column is binary, so NULs and non-UTF-8 bytes survive.
CREATE TABLE IF NOT EXISTS {table} (
    seq         BIGINT          NOT NULL AUTO_INCREMENT PRIMARY KEY,
    handle      VARBINARY(255)  NOT NULL,
    function    VARBINARY(512)  NOT NULL,
    unique_key  VARBINARY(255)  NOT NULL,
    priority    INT             NOT NULL,
    data        LONGBLOB        NOT NULL,
    when_to_run BIGINT          NOT NULL DEFAULT 0,
    schedule    TEXT CHARACTER SET utf8mb4 NULL,
    reducer     BLOB            NULL,
    UNIQUE KEY handle_key (handle)
) ENGINE = InnoDB
