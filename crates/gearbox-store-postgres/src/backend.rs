//! The PostgreSQL side of the store's driver: connecting, the batch transaction, loading and
//! the gearmand import. The task itself (order, reconnection, outage logging, counters) is
//! [`gearbox_store::driver`].

use std::sync::Arc;

use bytes::Bytes;
use gearbox_store::driver::{Backend, Imported};
use gearbox_store::sql::{GearmandRow, SqlTable};
use gearbox_store::{sql as shared, Batch, Durability, HandleMaker, StoreError, StoredJob};
use tokio_postgres::{Client, Config, Statement};
use tokio_postgres_rustls::MakeRustlsConnect;

use gearbox_store::sql::Statements;

pub(crate) use crate::cluster_backend::{ClusterState, Control};
use crate::sql::{self, classify};

/// A live connection with its prepared statements.
pub struct Conn {
    pub(crate) client: Client,
    upsert: Statement,
    pub(crate) delete: Statement,
}

/// What the writer task needs to talk to PostgreSQL.
pub struct Postgres {
    pub(crate) config: Config,
    /// TLS as the conninfo's `sslmode` says (not used with `disable`).
    pub(crate) connector: MakeRustlsConnect,
    pub(crate) sql: Statements,
    /// The database and our table in it.
    pub(crate) at: SqlTable,
    /// The cluster mode's settings and state, `None` for a single server.
    pub(crate) cluster: Option<ClusterState>,
}

impl Postgres {
    /// Creates our table if missing (serialised by an advisory lock, since other servers may
    /// do the same at the same moment) and checks the columns of an existing one.
    async fn migrate(&self, client: &mut Client) -> Result<(), StoreError> {
        let db = |e| classify(e, &self.at.location);
        let tx = client.transaction().await.map_err(db)?;
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtext('gearbox:' || $1::text))",
            &[&self.at.name],
        )
        .await
        .map_err(db)?;
        tx.batch_execute(&sql::CREATE_JOBS.replace("{table}", &self.at.quoted))
            .await
            .map_err(db)?;
        let rows = tx
            .query(sql::COLUMNS_OF, &[&self.at.name])
            .await
            .map_err(db)?;
        let have: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
        shared::check_our_columns(&self.at.name, &have)?;
        if let Some(cluster) = &self.cluster {
            cluster.migrate(&tx, &self.at).await?;
        }
        tx.commit().await.map_err(db)
    }
}

impl Backend for Postgres {
    const NAME: &'static str = "postgres";
    type Conn = Conn;
    type Control = Control;

    /// PostgreSQL TEXT holds neither NUL nor invalid UTF-8: a handle or schedule with them is
    /// refused. Every other field is stored as bytes.
    fn refuse(job: &StoredJob) -> Option<StoreError> {
        let reason = match std::str::from_utf8(&job.handle) {
            Err(_) => "handle is not UTF-8",
            Ok(h) if h.contains('\0') => "handle contains a NUL byte",
            Ok(_) if job.schedule.as_deref().is_some_and(|s| s.contains('\0')) => {
                "schedule contains a NUL byte"
            }
            Ok(_) => return None,
        };
        Some(shared::invalid_row(&job.handle, reason))
    }

    /// Connects, creates our table if missing and prepares the statements.
    async fn connect(&mut self) -> Result<Conn, StoreError> {
        let location = self.at.location.clone();
        let db = |e| classify(e, &location);
        let (mut client, connection) = self
            .config
            .connect(self.connector.clone())
            .await
            .map_err(db)?;
        let pid = match &self.cluster {
            Some(cluster) => Some(cluster.drive(connection, &location)),
            None => {
                let log_location = location.clone();
                tokio::spawn(async move {
                    if let Err(e) = connection.await {
                        tracing::debug!(store = %log_location, error = %e, "job store connection ended");
                    }
                });
                None
            }
        };
        let sync = match self.at.durability {
            Durability::Fsync => "on",
            Durability::Normal | Durability::None => "off",
        };
        client
            .batch_execute(&format!("SET synchronous_commit = {sync}"))
            .await
            .map_err(db)?;
        self.migrate(&mut client).await?;
        let upsert = client.prepare(&self.sql.upsert).await.map_err(db)?;
        let delete = client.prepare(&self.sql.delete).await.map_err(db)?;
        if let (Some(cluster), Some(pid)) = (self.cluster.as_mut(), pid) {
            cluster.attach(&mut client, &pid, &location).await?;
        }
        Ok(Conn {
            client,
            upsert,
            delete,
        })
    }

    fn is_closed(&self, conn: &Conn) -> bool {
        conn.client.is_closed()
    }

    fn check_table(&self, table: &str) -> Result<(), StoreError> {
        sql::quote_ident(table).map(drop)
    }

    /// One transaction: one DELETE of the removed handles, one multi-row upsert of the rest.
    async fn apply(&mut self, conn: &mut Conn, batch: Arc<Batch>) -> Result<(), StoreError> {
        let net = batch.net_effect();
        let deletes = stored_handles(&net.removed);
        let upserts = net.written;
        let location = self.at.location.clone();
        let db = |e| classify(e, &location);
        let tx = conn.client.transaction().await.map_err(db)?;
        if !deletes.is_empty() {
            tx.execute(&conn.delete, &[&deletes]).await.map_err(db)?;
        }
        write_rows(&tx, &conn.upsert, &upserts).await.map_err(db)?;
        tx.commit().await.map_err(db)
    }

    /// Every job in replay order; none in cluster mode, where a member claims jobs instead.
    async fn load(&mut self, conn: &mut Conn) -> Result<Vec<StoredJob>, StoreError> {
        if self.cluster.is_some() {
            return Ok(Vec::new());
        }
        let location = self.at.location.clone();
        let rows = conn
            .client
            .query(&self.sql.select, &[])
            .await
            .map_err(|e| classify(e, &location))?;
        rows.iter().map(|r| sql::decode_job(r, &location)).collect()
    }

    async fn control(&mut self, conn: &mut Conn, request: Control) {
        match &self.cluster {
            Some(cluster) => cluster.serve(conn, &self.at, request).await,
            None => request.refuse(&self.at.location),
        }
    }

    async fn import(&mut self, conn: &mut Conn, table: &str, make: &mut HandleMaker) -> Imported {
        let quoted = sql::quote_ident(table)?;
        let location = self.at.location.clone();
        let db = |e| classify(e, &location);
        let tx = conn.client.transaction().await.map_err(db)?;
        let have: Vec<(String, String)> = tx
            .query(sql::COLUMNS_OF, &[&table])
            .await
            .map_err(db)?
            .iter()
            .map(|r| (r.get(0), r.get(1)))
            .collect();
        let names: Vec<String> = have.iter().map(|(c, _)| c.clone()).collect();
        let Some(when) = shared::gearmand_columns(table, &location, &names)? else {
            return Ok(None);
        };
        // Every column read as bytes, whatever gearmand's version made it (VARCHAR, TEXT, BYTEA).
        let bytes = |c: &str| match have.iter().find(|(name, _)| name == c) {
            Some((_, t)) if t == "bytea" => c.to_owned(),
            _ => format!("convert_to({c}::text, 'UTF8')"),
        };
        // Other servers (even gearmand) may still write the table: lock out writers until
        // the rows moved are deleted.
        tx.batch_execute(&format!("LOCK TABLE {quoted} IN SHARE ROW EXCLUSIVE MODE"))
            .await
            .map_err(db)?;
        // gearmand's table has no ordering column; physical order is the insertion order of a
        // queue that is only ever appended to and emptied.
        let rows = tx
            .query(
                &format!(
                    "SELECT {}, {}, priority::bigint, {}, {when}::bigint FROM {quoted} ORDER BY ctid",
                    bytes("unique_key"),
                    bytes("function_name"),
                    bytes("data"),
                ),
                &[],
            )
            .await
            .map_err(db)?;
        let mut jobs = Vec::with_capacity(rows.len());
        for row in &rows {
            let get = |i: usize| -> Result<Bytes, StoreError> {
                let v: Option<Vec<u8>> = row.try_get(i).map_err(db)?;
                Ok(v.map(Bytes::from).unwrap_or_default())
            };
            let gearmand = GearmandRow {
                unique: get(0)?,
                function: get(1)?,
                priority: row.try_get(2).map_err(db)?,
                data: get(3)?,
                when_to_run: row.try_get(4).map_err(db)?,
            };
            let job = gearmand.into_job(table, make());
            if let Some(e) = Self::refuse(&job) {
                return Err(e);
            }
            jobs.push(job);
        }
        let refs: Vec<&StoredJob> = jobs.iter().collect();
        write_rows(&tx, &self.sql.insert, &refs).await.map_err(db)?;
        tx.execute(&format!("DELETE FROM {quoted}"), &[])
            .await
            .map_err(db)?;
        tx.commit().await.map_err(db)?;
        let count = jobs.len();
        tracing::info!(store = %location, table, jobs = count, "imported the gearmand queue");
        Ok(Some(count))
    }
}

/// The handles TEXT can hold, for a removal: any other was never stored.
pub(crate) fn stored_handles<'a>(handles: &[&'a Bytes]) -> Vec<&'a str> {
    handles
        .iter()
        .filter_map(|h| std::str::from_utf8(h).ok().filter(|h| !h.contains('\0')))
        .collect()
}

/// Runs `statement` (the upsert or the insert) with `jobs` bound as eight parallel arrays to
/// its UNNEST; nothing when there are no jobs. The jobs must have passed
/// [`Backend::refuse`] (UTF-8 handles).
async fn write_rows(
    tx: &tokio_postgres::Transaction<'_>,
    statement: &(impl tokio_postgres::ToStatement + ?Sized),
    jobs: &[&StoredJob],
) -> Result<u64, tokio_postgres::Error> {
    if jobs.is_empty() {
        return Ok(0);
    }
    let arrays = JobArrays::new(jobs);
    tx.execute(statement, &arrays.params()).await
}

/// The fields of some jobs as the eight parallel arrays the UNNEST statements bind as
/// `$1` to `$8`.
pub(crate) struct JobArrays<'a> {
    handle: Vec<&'a str>,
    function: Vec<&'a [u8]>,
    unique: Vec<&'a [u8]>,
    priority: Vec<i32>,
    data: Vec<&'a [u8]>,
    when: Vec<i64>,
    schedule: Vec<Option<&'a str>>,
    reducer: Vec<Option<&'a [u8]>>,
}

impl<'a> JobArrays<'a> {
    /// The arrays of `jobs`, which must have passed [`Backend::refuse`] (UTF-8 handles).
    pub(crate) fn new(jobs: &[&'a StoredJob]) -> Self {
        JobArrays {
            handle: jobs
                .iter()
                .map(|j| std::str::from_utf8(&j.handle).unwrap_or_default())
                .collect(),
            function: jobs.iter().map(|j| &j.function[..]).collect(),
            unique: jobs.iter().map(|j| &j.unique[..]).collect(),
            priority: jobs.iter().map(|j| j.priority.index() as i32).collect(),
            data: jobs.iter().map(|j| &j.data[..]).collect(),
            when: jobs
                .iter()
                .map(|j| i64::try_from(j.when_to_run).unwrap_or(i64::MAX))
                .collect(),
            schedule: jobs.iter().map(|j| j.schedule.as_deref()).collect(),
            reducer: jobs.iter().map(|j| j.reducer.as_deref()).collect(),
        }
    }

    /// `$1` to `$8`.
    pub(crate) fn params(&self) -> Vec<&(dyn tokio_postgres::types::ToSql + Sync)> {
        vec![
            &self.handle,
            &self.function,
            &self.unique,
            &self.priority,
            &self.data,
            &self.when,
            &self.schedule,
            &self.reducer,
        ]
    }
}
