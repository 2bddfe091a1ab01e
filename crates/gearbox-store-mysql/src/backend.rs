//! The MySQL side of the store's driver: connecting, the batch transaction, loading and the
//! gearmand import. The task itself (order, reconnection, outage logging, counters) is
//! [`gearbox_store::driver`].
//!
//! A batch is written as one `DELETE ... WHERE handle IN (...)` and one multi-row
//! `INSERT ... ON DUPLICATE KEY UPDATE` (split into chunks only when very large). A
//! connection that died silently is noticed by the next statement, which fails with
//! [`StoreError::Unavailable`].

use std::sync::Arc;

use bytes::Bytes;
use gearbox_store::driver::{Backend, Imported};
use gearbox_store::sql::{GearmandRow, SqlTable};
use gearbox_store::{sql as shared, Batch, Durability, HandleMaker, StoreError, StoredJob};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Params, Row, Value};

use crate::sql::{self, classify};
use crate::{MysqlOptions, DEFAULT_CONNECT_TIMEOUT};

/// The most rows in one INSERT or handles in one DELETE (8 placeholders a row stays far
/// below the protocol's 65,535).
const MAX_ROWS: usize = 2000;

/// Payload bytes after which an INSERT is split, to stay below `max_allowed_packet`.
const MAX_STATEMENT_BYTES: usize = 4 << 20;

/// What the writer task needs to talk to MySQL.
pub struct Mysql {
    /// Where the server is.
    pub(crate) opts: MysqlOptions,
    /// The database and our table in it.
    pub(crate) at: SqlTable,
}

impl Backend for Mysql {
    const NAME: &'static str = "mysql";
    type Conn = Conn;
    type Control = ();

    /// Handles and unique ids longer than 255 bytes, function names longer than 512 and
    /// reducers longer than 65,535 do not fit their columns: refused.
    fn refuse(job: &StoredJob) -> Option<StoreError> {
        let reason = if job.handle.len() > sql::MAX_HANDLE {
            "handle is longer than 255 bytes"
        } else if job.function.len() > sql::MAX_FUNCTION {
            "function name is longer than 512 bytes"
        } else if job.unique.len() > sql::MAX_UNIQUE {
            "unique id is longer than 255 bytes"
        } else if job.reducer.as_ref().is_some_and(|r| r.len() > 65_535) {
            "reducer is longer than 65535 bytes"
        } else {
            return None;
        };
        Some(shared::invalid_row(&job.handle, reason))
    }

    /// Connects, creates our table if missing and checks its columns.
    async fn connect(&mut self) -> Result<Conn, StoreError> {
        let connecting = Conn::new(self.opts.driver_opts());
        let connecting = tokio::time::timeout(DEFAULT_CONNECT_TIMEOUT, connecting);
        let location = self.at.location.clone();
        let db = |e| classify(e, &location);
        let mut conn = match connecting.await {
            Ok(conn) => conn.map_err(db)?,
            Err(elapsed) => {
                let timed_out = std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("connecting timed out: {elapsed}"),
                );
                return Err(StoreError::unavailable(&location, timed_out));
            }
        };
        // Strict mode: a value that does not fit is an error, never silently cut.
        conn.query_drop(
            "SET SESSION sql_mode = CONCAT_WS(',', @@SESSION.sql_mode, 'STRICT_ALL_TABLES')",
        )
        .await
        .map_err(db)?;
        // Fewer gap locks when several servers share the table.
        conn.query_drop("SET SESSION TRANSACTION ISOLATION LEVEL READ COMMITTED")
            .await
            .map_err(db)?;
        // Our table: created if missing, its columns checked if not.
        conn.query_drop(sql::CREATE_JOBS.replace("{table}", &self.at.quoted))
            .await
            .map_err(db)?;
        let have: Vec<String> = conn
            .exec(sql::COLUMNS_OF, (self.at.name.as_str(),))
            .await
            .map_err(db)?;
        shared::check_our_columns(&self.at.name, &have)?;
        if self.at.durability == Durability::Fsync {
            let flush: Option<i64> = conn
                .query_first("SELECT @@GLOBAL.innodb_flush_log_at_trx_commit")
                .await
                .map_err(db)?;
            if flush != Some(1) {
                tracing::warn!(store = %location, innodb_flush_log_at_trx_commit = ?flush, "durability fsync asked, but the server does not flush its log at each commit: set innodb_flush_log_at_trx_commit = 1");
            }
        }
        Ok(conn)
    }

    fn check_table(&self, table: &str) -> Result<(), StoreError> {
        sql::quote_ident(table).map(drop)
    }

    /// One transaction with the batch's net effect: one DELETE and one multi-row upsert
    /// (each split only when very large).
    async fn apply(&mut self, conn: &mut Conn, batch: Arc<Batch>) -> Result<(), StoreError> {
        let net = batch.net_effect();
        // A handle too long for the key column was never stored: nothing to delete.
        let deletes: Vec<_> = net
            .removed
            .iter()
            .filter(|h| h.len() <= sql::MAX_HANDLE)
            .collect();
        let upserts = net.written;
        let location = self.at.location.clone();
        let db = |e| classify(e, &location);
        let quoted = self.at.quoted.clone();
        conn.query_drop("START TRANSACTION").await.map_err(db)?;
        for chunk in deletes.chunks(MAX_ROWS) {
            let marks = vec!["?"; chunk.len()].join(", ");
            let params: Vec<Value> = chunk.iter().map(|h| Value::Bytes(h.to_vec())).collect();
            conn.exec_drop(
                format!("DELETE FROM {quoted} WHERE handle IN ({marks})"),
                Params::Positional(params),
            )
            .await
            .map_err(db)?;
        }
        insert_rows(conn, &quoted, &upserts, true)
            .await
            .map_err(db)?;
        conn.query_drop("COMMIT").await.map_err(db)
    }

    async fn load(&mut self, conn: &mut Conn) -> Result<Vec<StoredJob>, StoreError> {
        let location = self.at.location.clone();
        let quoted = self.at.quoted.clone();
        let rows: Vec<Row> = conn
            .exec(
                format!(
                    "SELECT {} FROM {quoted} ORDER BY seq",
                    shared::WRITE_COLUMNS
                ),
                (),
            )
            .await
            .map_err(|e| classify(e, &location))?;
        rows.iter().map(sql::decode_job).collect()
    }

    async fn import(&mut self, conn: &mut Conn, table: &str, make: &mut HandleMaker) -> Imported {
        let quoted = sql::quote_ident(table)?;
        let location = self.at.location.clone();
        let db = |e| classify(e, &location);
        let ours = self.at.quoted.clone();
        let have: Vec<String> = conn.exec(sql::COLUMNS_OF, (table,)).await.map_err(db)?;
        let Some(when) = shared::gearmand_columns(table, &location, &have)? else {
            return Ok(None);
        };
        conn.query_drop("START TRANSACTION").await.map_err(db)?;
        // Every column read as bytes, whatever gearmand's version made it (VARCHAR, TEXT,
        // BLOB); FOR UPDATE keeps other writers (even gearmand) out until the rows are gone.
        let rows: Vec<Row> = conn
            .exec(
                format!(
                    "SELECT CAST(unique_key AS BINARY), CAST(function_name AS BINARY), \
                     priority, CAST(data AS BINARY), {when} FROM {quoted} FOR UPDATE"
                ),
                (),
            )
            .await
            .map_err(db)?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let get = |i| Bytes::from(sql::bytes_at(row, i).unwrap_or_default());
            let gearmand = GearmandRow {
                unique: get(0),
                function: get(1),
                priority: sql::int_at(row, 2),
                data: get(3),
                when_to_run: sql::int_at(row, 4),
            };
            let job = gearmand.into_job(table, make());
            if let Some(e) = Self::refuse(&job) {
                return Err(e);
            }
            jobs.push(job);
        }
        let refs: Vec<&StoredJob> = jobs.iter().collect();
        insert_rows(conn, &ours, &refs, false).await.map_err(db)?;
        conn.query_drop(format!("DELETE FROM {quoted}"))
            .await
            .map_err(db)?;
        conn.query_drop("COMMIT").await.map_err(db)?;
        let count = jobs.len();
        tracing::info!(store = %location, table, jobs = count, "imported the gearmand queue");
        Ok(Some(count))
    }

    /// Rolls back; `false` (the connection is dropped) if even that fails.
    async fn rollback(&mut self, conn: &mut Conn) -> bool {
        conn.query_drop("ROLLBACK").await.is_ok()
    }

    async fn disconnect(&mut self, conn: Conn) {
        let _ = conn.disconnect().await;
    }
}

/// Writes `jobs` in order with multi-row INSERTs (as few as the size limits allow). With
/// `upsert`, an existing handle keeps its `seq` and gets the new fields; without, it fails.
async fn insert_rows(
    conn: &mut Conn,
    quoted: &str,
    jobs: &[&StoredJob],
    upsert: bool,
) -> Result<(), mysql_async::Error> {
    let mut start = 0;
    while start < jobs.len() {
        let mut end = start;
        let mut size = 0;
        while end < jobs.len()
            && end - start < MAX_ROWS
            && (end == start || size < MAX_STATEMENT_BYTES)
        {
            let j = jobs[end];
            size += j.data.len() + j.function.len() + j.unique.len() + j.handle.len() + 64;
            end += 1;
        }
        let chunk = &jobs[start..end];
        let mut params = Vec::with_capacity(chunk.len() * 8);
        for job in chunk {
            sql::job_values(job, &mut params);
        }
        let rows = vec!["(?, ?, ?, ?, ?, ?, ?, ?)"; chunk.len()].join(", ");
        let mut statement = format!(
            "INSERT INTO {quoted} ({}) VALUES {rows}",
            shared::WRITE_COLUMNS
        );
        if upsert {
            statement.push_str(
                " ON DUPLICATE KEY UPDATE function = VALUES(function), \
                 unique_key = VALUES(unique_key), priority = VALUES(priority), \
                 data = VALUES(data), when_to_run = VALUES(when_to_run), \
                 schedule = VALUES(schedule), reducer = VALUES(reducer)",
            );
        }
        conn.exec_drop(statement, Params::Positional(params))
            .await?;
        start = end;
    }
    Ok(())
}
