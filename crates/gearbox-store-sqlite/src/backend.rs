//! The SQLite side of the store's driver: opening the file, the batch transaction, loading,
//! the gearmand import and the size limit. rusqlite is blocking, so every database call runs
//! on Tokio's blocking pool while the driver task waits for it.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use gearbox_store::driver::{Backend, Imported};
use gearbox_store::sql::SqlTable;
use gearbox_store::{sql, Batch, HandleMaker, StoreError, StoredJob};
use rusqlite::{Connection, TransactionBehavior};
use tokio::sync::oneshot;

use gearbox_store::sql::Statements as Sql;

use crate::schema::{self, classify};

/// The open database. Locked only by the one blocking call running at a time.
pub type Conn = Arc<Mutex<Connection>>;

/// Requests only the SQLite store makes.
pub enum Control {
    /// Cap the database size (`PRAGMA max_page_count`); answered with the limit in bytes.
    SizeLimit {
        max_bytes: Option<u64>,
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
}

/// What the driver needs to open and use the database.
pub struct Sqlite {
    pub(crate) path: PathBuf,
    pub(crate) sql: Arc<Sql>,
    /// The database and our table in it.
    pub(crate) at: SqlTable,
}

impl Sqlite {
    /// Runs `f` on the connection on the blocking pool.
    async fn blocking<T: Send + 'static>(
        &self,
        conn: &Conn,
        f: impl FnOnce(&mut Connection, &Sql, &str) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let conn = conn.clone();
        let sql = self.sql.clone();
        let location = self.at.location.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = conn.lock().unwrap_or_else(|e| e.into_inner());
            f(&mut conn, &sql, &location)
        })
        .await
        .map_err(|e| StoreError::Backend {
            location: self.at.location.clone(),
            source: Arc::new(e),
        })?
    }
}

impl Backend for Sqlite {
    const NAME: &'static str = "sqlite";
    type Conn = Conn;
    type Control = Control;

    /// Opens (or creates) the file, sets WAL and the durability, creates our table if missing.
    async fn connect(&mut self) -> Result<Conn, StoreError> {
        let path = self.path.clone();
        let location = self.at.location.clone();
        let (table, quoted, durability) = (
            self.at.name.clone(),
            self.at.quoted.clone(),
            self.at.durability,
        );
        tokio::task::spawn_blocking(move || {
            let db = |e| classify(e, &location);
            let conn = Connection::open(&path).map_err(db)?;
            schema::configure(&conn, &location, durability).map_err(db)?;
            schema::migrate(&conn, &location, &table, &quoted)?;
            Ok(Arc::new(Mutex::new(conn)))
        })
        .await
        .map_err(|e| StoreError::Backend {
            location: self.at.location.clone(),
            source: Arc::new(e),
        })?
    }

    async fn apply(&mut self, conn: &mut Conn, batch: Arc<Batch>) -> Result<(), StoreError> {
        self.blocking(conn, move |conn, sql, location| {
            write_batch(conn, sql, &batch).map_err(|e| classify(e, location))
        })
        .await
    }

    async fn load(&mut self, conn: &mut Conn) -> Result<Vec<StoredJob>, StoreError> {
        self.blocking(conn, |conn, sql, location| {
            let db = |e| classify(e, location);
            let mut stmt = conn.prepare_cached(&sql.select).map_err(db)?;
            let mut rows = stmt.query([]).map_err(db)?;
            let mut jobs = Vec::new();
            while let Some(row) = rows.next().map_err(db)? {
                jobs.push(schema::decode_job(row, location)?);
            }
            Ok(jobs)
        })
        .await
    }

    fn check_table(&self, table: &str) -> Result<(), StoreError> {
        schema::quote_ident(table).map(drop)
    }

    async fn import(&mut self, conn: &mut Conn, table: &str, make: &mut HandleMaker) -> Imported {
        let table = table.to_owned();
        // The import is one call: the handle maker moves to the blocking pool with it.
        let mut make = std::mem::replace(make, Box::new(Bytes::new));
        self.blocking(conn, move |conn, sql, location| {
            import_gearmand(conn, sql, &table, &mut make, location)
        })
        .await
    }

    async fn control(&mut self, conn: &mut Conn, request: Control) {
        match request {
            Control::SizeLimit { max_bytes, reply } => {
                let result = self
                    .blocking(conn, move |conn, _, location| {
                        set_size_limit(conn, max_bytes, location)
                    })
                    .await;
                let _ = reply.send(result);
            }
        }
    }

    async fn rollback(&mut self, conn: &mut Conn) -> bool {
        // A failed transaction is rolled back when it is dropped; make sure none lingers.
        self.blocking(conn, |conn, _, _| {
            if !conn.is_autocommit() {
                let _ = conn.execute_batch("ROLLBACK");
            }
            Ok(conn.is_autocommit())
        })
        .await
        .unwrap_or(false)
    }

    async fn disconnect(&mut self, conn: Conn) {
        let location = self.at.location.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let Ok(conn) = Arc::try_unwrap(conn).map(|m| m.into_inner()) else {
                return;
            };
            let conn = conn.unwrap_or_else(|e| e.into_inner());
            if let Err((_, e)) = conn.close() {
                tracing::warn!(store = %location, error = %e, "closing the job store failed");
            }
        })
        .await;
    }
}

/// One immediate transaction with the batch's removals and writes.
fn write_batch(conn: &mut Connection, sql: &Sql, batch: &Batch) -> rusqlite::Result<()> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    {
        let mut upsert = tx.prepare_cached(&sql.upsert)?;
        let mut delete = tx.prepare_cached(&sql.delete)?;
        for job in &batch.persist {
            schema::write_job(&mut upsert, job)?;
        }
        for handle in &batch.complete {
            delete.execute([schema::handle_value(handle)])?;
        }
    }
    tx.commit()
}

/// Moves the rows of gearmand's table (in queue order) into ours with new handles and
/// empties gearmand's table, in one immediate transaction; `None` when there is no such table.
fn import_gearmand(
    conn: &mut Connection,
    sql: &Sql,
    table: &str,
    new_handle: &mut HandleMaker,
    location: &str,
) -> Result<Option<usize>, StoreError> {
    let quoted = schema::quote_ident(table)?;
    let db = |e| classify(e, location);
    let have = schema::columns(conn, &quoted).map_err(db)?;
    let Some(when) = sql::gearmand_columns(table, location, &have)? else {
        return Ok(None);
    };
    let select = format!("SELECT unique_key, function_name, priority, data, {when} FROM {quoted}");
    let tx = conn
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(db)?;
    let mut count = 0;
    {
        // gearmand's tables have row ids; their order is the order jobs were queued.
        let mut read = tx
            .prepare(&format!("{select} ORDER BY rowid"))
            .or_else(|_| tx.prepare(&select))
            .map_err(db)?;
        let mut insert = tx.prepare_cached(&sql.insert).map_err(db)?;
        let mut rows = read.query([]).map_err(db)?;
        while let Some(row) = rows.next().map_err(db)? {
            let gearmand = sql::GearmandRow {
                unique: schema::bytes_at(row, 0).map_err(db)?,
                function: schema::bytes_at(row, 1).map_err(db)?,
                priority: schema::int_at(row, 2).map_err(db)?,
                data: schema::bytes_at(row, 3).map_err(db)?,
                when_to_run: schema::int_at(row, 4).map_err(db)?,
            };
            let job = gearmand.into_job(table, new_handle());
            schema::write_job(&mut insert, &job).map_err(db)?;
            count += 1;
        }
    }
    tx.execute(&format!("DELETE FROM {quoted}"), [])
        .map_err(db)?;
    tx.commit().map_err(db)?;
    tracing::info!(store = %location, table, jobs = count, "imported the gearmand queue");
    Ok(Some(count))
}

/// Sets `PRAGMA max_page_count` for about `max_bytes` (`None`: SQLite's maximum); the limit
/// in force, in bytes.
fn set_size_limit(
    conn: &mut Connection,
    max_bytes: Option<u64>,
    location: &str,
) -> Result<u64, StoreError> {
    let db = |e| classify(e, location);
    let page_size: i64 = conn
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(db)?;
    let page_size = page_size.max(1) as u64;
    // SQLite clamps the limit to its own maximum and to the current size.
    let pages = max_bytes.map_or(u64::from(u32::MAX), |b| b.div_ceil(page_size).max(1));
    let set: i64 = conn
        .query_row(&format!("PRAGMA max_page_count = {pages}"), [], |r| {
            r.get(0)
        })
        .map_err(db)?;
    let limit = (set.max(0) as u64).saturating_mul(page_size);
    tracing::info!(store = %location, limit_bytes = limit, "job store size limit set");
    Ok(limit)
}
