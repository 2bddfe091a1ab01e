//! The SQL functions. Each priority has a text and a bytea overload of the same name (a
//! string literal resolves to the text one); the third argument, the unique id, defaults to
//! NULL (none). A NULL payload is sent as an empty one, as the MySQL UDFs do.

use bytes::Bytes;
use gearbox_proto::Priority;
use pgrx::prelude::*;

use crate::client::{Error, Job};
use crate::{on_commit, pool, settings};

/// Raises the SQL ERROR for a failed call of `sql_fn` on `function`.
fn raise(sql_fn: &str, function: &[u8], e: Error) -> ! {
    let code = match e {
        Error::Unreachable { .. } | Error::Io { .. } => PgSqlErrorCode::ERRCODE_CONNECTION_FAILURE,
        Error::BadServers(_) => PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
        Error::Protocol { .. } => PgSqlErrorCode::ERRCODE_PROTOCOL_VIOLATION,
        Error::Server { .. } | Error::Failed | Error::Exception(_) | Error::Timeout => {
            PgSqlErrorCode::ERRCODE_EXTERNAL_ROUTINE_EXCEPTION
        }
    };
    let function = String::from_utf8_lossy(function);
    let what = match e {
        Error::Timeout => format!(
            "no answer after {} ms (gearbox.timeout); is a worker registered for the function?",
            settings::TIMEOUT_MS.get()
        ),
        e => e.to_string(),
    };
    ereport!(
        ERROR,
        code,
        format!("gearbox: {sql_fn}('{function}'): {what}")
    );
}

/// Checks the arguments and builds the job.
fn job(
    sql_fn: &str,
    function: Option<&str>,
    payload: Option<&[u8]>,
    unique: Option<&str>,
    priority: Priority,
) -> Job {
    let Some(function) = function else {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_NULL_VALUE_NOT_ALLOWED,
            format!("gearbox: {sql_fn}: the function name is NULL")
        );
    };
    if function.is_empty() {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_INVALID_PARAMETER_VALUE,
            format!("gearbox: {sql_fn}: the function name is empty")
        );
    }
    Job {
        function: Bytes::copy_from_slice(function.as_bytes()),
        payload: Bytes::copy_from_slice(payload.unwrap_or_default()),
        unique: Bytes::copy_from_slice(unique.unwrap_or_default().as_bytes()),
        priority,
    }
}

/// Runs a foreground job and returns its result.
fn foreground(sql_fn: &str, job: Job) -> Vec<u8> {
    let servers = settings::servers().unwrap_or_else(|e| raise(sql_fn, &job.function, e));
    let deadline = settings::deadline();
    let result = pool::with_conn(
        &servers,
        settings::connect_timeout(),
        &mut crate::check_interrupts,
        |conn, tick| {
            let handle = conn.submit(job.packet(false), deadline, tick)?;
            conn.result(&handle, deadline, tick)
        },
    );
    match result {
        Ok(data) => data.to_vec(),
        Err(e) => raise(sql_fn, &job.function, e),
    }
}

/// Submits a background job and returns its handle.
fn background(sql_fn: &str, job: Job) -> String {
    let servers = settings::servers().unwrap_or_else(|e| raise(sql_fn, &job.function, e));
    let deadline = settings::deadline();
    let result = pool::with_conn(
        &servers,
        settings::connect_timeout(),
        &mut crate::check_interrupts,
        |conn, tick| conn.submit(job.packet(true), deadline, tick),
    );
    match result {
        Ok(handle) => String::from_utf8_lossy(&handle).into_owned(),
        Err(e) => raise(sql_fn, &job.function, e),
    }
}

/// Queues a background job for the commit of the transaction.
fn later(sql_fn: &str, job: Job) {
    if let Err(e) = settings::servers() {
        raise(sql_fn, &job.function, e);
    }
    on_commit::enqueue(job);
}

/// A result as text, or an ERROR that points to the bytea variant.
fn text(sql_fn: &str, result: Vec<u8>) -> String {
    String::from_utf8(result).unwrap_or_else(|_| {
        ereport!(
            ERROR,
            PgSqlErrorCode::ERRCODE_CHARACTER_NOT_IN_REPERTOIRE,
            format!("gearbox: {sql_fn}: the job's result is not valid UTF-8; pass the payload as bytea to get a bytea result")
        );
    })
}

fn bytes(s: Option<&str>) -> Option<&[u8]> {
    s.map(str::as_bytes)
}

/// `gman_servers_set(servers)`: the `host[:port],...` list this backend's later calls use
/// (NULL or empty: back to `gearbox.servers`); returns the list in use.
#[pg_extern(volatile)]
fn gman_servers_set(servers: Option<&str>) -> String {
    settings::set_servers(servers).unwrap_or_else(|e| raise("gman_servers_set", b"", e))
}

/// `gman_do(function, payload text[, unique])`: runs a job (normal priority), returns its result.
#[pg_extern(volatile)]
fn gman_do(
    function: Option<&str>,
    payload: Option<&str>,
    unique: default!(Option<&str>, "NULL"),
) -> String {
    let n = "gman_do";
    text(
        n,
        foreground(
            n,
            job(n, function, bytes(payload), unique, Priority::Normal),
        ),
    )
}

/// `gman_do(function, payload bytea[, unique])`: the binary form of `gman_do`.
#[pg_extern(volatile, name = "gman_do")]
fn gman_do_bytea(
    function: Option<&str>,
    payload: Option<&[u8]>,
    unique: default!(Option<&str>, "NULL"),
) -> Vec<u8> {
    let n = "gman_do";
    foreground(n, job(n, function, payload, unique, Priority::Normal))
}

/// `gman_do_high(function, payload text[, unique])`: a high-priority `gman_do`.
#[pg_extern(volatile)]
fn gman_do_high(
    function: Option<&str>,
    payload: Option<&str>,
    unique: default!(Option<&str>, "NULL"),
) -> String {
    let n = "gman_do_high";
    text(
        n,
        foreground(n, job(n, function, bytes(payload), unique, Priority::High)),
    )
}

/// `gman_do_high(function, payload bytea[, unique])`.
#[pg_extern(volatile, name = "gman_do_high")]
fn gman_do_high_bytea(
    function: Option<&str>,
    payload: Option<&[u8]>,
    unique: default!(Option<&str>, "NULL"),
) -> Vec<u8> {
    let n = "gman_do_high";
    foreground(n, job(n, function, payload, unique, Priority::High))
}

/// `gman_do_low(function, payload text[, unique])`: a low-priority `gman_do`.
#[pg_extern(volatile)]
fn gman_do_low(
    function: Option<&str>,
    payload: Option<&str>,
    unique: default!(Option<&str>, "NULL"),
) -> String {
    let n = "gman_do_low";
    text(
        n,
        foreground(n, job(n, function, bytes(payload), unique, Priority::Low)),
    )
}

/// `gman_do_low(function, payload bytea[, unique])`.
#[pg_extern(volatile, name = "gman_do_low")]
fn gman_do_low_bytea(
    function: Option<&str>,
    payload: Option<&[u8]>,
    unique: default!(Option<&str>, "NULL"),
) -> Vec<u8> {
    let n = "gman_do_low";
    foreground(n, job(n, function, payload, unique, Priority::Low))
}

/// `gman_do_background(function, payload text[, unique])`: submits a background job now,
/// returns its handle.
#[pg_extern(volatile)]
fn gman_do_background(
    function: Option<&str>,
    payload: Option<&str>,
    unique: default!(Option<&str>, "NULL"),
) -> String {
    let n = "gman_do_background";
    background(
        n,
        job(n, function, bytes(payload), unique, Priority::Normal),
    )
}

/// `gman_do_background(function, payload bytea[, unique])`.
#[pg_extern(volatile, name = "gman_do_background")]
fn gman_do_background_bytea(
    function: Option<&str>,
    payload: Option<&[u8]>,
    unique: default!(Option<&str>, "NULL"),
) -> String {
    let n = "gman_do_background";
    background(n, job(n, function, payload, unique, Priority::Normal))
}

/// `gman_do_high_background(function, payload text[, unique])`.
#[pg_extern(volatile)]
fn gman_do_high_background(
    function: Option<&str>,
    payload: Option<&str>,
    unique: default!(Option<&str>, "NULL"),
) -> String {
    let n = "gman_do_high_background";
    background(n, job(n, function, bytes(payload), unique, Priority::High))
}

/// `gman_do_high_background(function, payload bytea[, unique])`.
#[pg_extern(volatile, name = "gman_do_high_background")]
fn gman_do_high_background_bytea(
    function: Option<&str>,
    payload: Option<&[u8]>,
    unique: default!(Option<&str>, "NULL"),
) -> String {
    let n = "gman_do_high_background";
    background(n, job(n, function, payload, unique, Priority::High))
}

/// `gman_do_low_background(function, payload text[, unique])`.
#[pg_extern(volatile)]
fn gman_do_low_background(
    function: Option<&str>,
    payload: Option<&str>,
    unique: default!(Option<&str>, "NULL"),
) -> String {
    let n = "gman_do_low_background";
    background(n, job(n, function, bytes(payload), unique, Priority::Low))
}

/// `gman_do_low_background(function, payload bytea[, unique])`.
#[pg_extern(volatile, name = "gman_do_low_background")]
fn gman_do_low_background_bytea(
    function: Option<&str>,
    payload: Option<&[u8]>,
    unique: default!(Option<&str>, "NULL"),
) -> String {
    let n = "gman_do_low_background";
    background(n, job(n, function, payload, unique, Priority::Low))
}

/// `gman_do_background_on_commit(function, payload text[, unique])`: queues a background
/// job that is submitted when the transaction commits (see the `on_commit` module).
#[pg_extern(volatile)]
fn gman_do_background_on_commit(
    function: Option<&str>,
    payload: Option<&str>,
    unique: default!(Option<&str>, "NULL"),
) {
    let n = "gman_do_background_on_commit";
    later(
        n,
        job(n, function, bytes(payload), unique, Priority::Normal),
    )
}

/// `gman_do_background_on_commit(function, payload bytea[, unique])`.
#[pg_extern(volatile, name = "gman_do_background_on_commit")]
fn gman_do_background_on_commit_bytea(
    function: Option<&str>,
    payload: Option<&[u8]>,
    unique: default!(Option<&str>, "NULL"),
) {
    let n = "gman_do_background_on_commit";
    later(n, job(n, function, payload, unique, Priority::Normal))
}

/// `gman_do_high_background_on_commit(function, payload text[, unique])`.
#[pg_extern(volatile)]
fn gman_do_high_background_on_commit(
    function: Option<&str>,
    payload: Option<&str>,
    unique: default!(Option<&str>, "NULL"),
) {
    let n = "gman_do_high_background_on_commit";
    later(n, job(n, function, bytes(payload), unique, Priority::High))
}

/// `gman_do_high_background_on_commit(function, payload bytea[, unique])`.
#[pg_extern(volatile, name = "gman_do_high_background_on_commit")]
fn gman_do_high_background_on_commit_bytea(
    function: Option<&str>,
    payload: Option<&[u8]>,
    unique: default!(Option<&str>, "NULL"),
) {
    let n = "gman_do_high_background_on_commit";
    later(n, job(n, function, payload, unique, Priority::High))
}

/// `gman_do_low_background_on_commit(function, payload text[, unique])`.
#[pg_extern(volatile)]
fn gman_do_low_background_on_commit(
    function: Option<&str>,
    payload: Option<&str>,
    unique: default!(Option<&str>, "NULL"),
) {
    let n = "gman_do_low_background_on_commit";
    later(n, job(n, function, bytes(payload), unique, Priority::Low))
}

/// `gman_do_low_background_on_commit(function, payload bytea[, unique])`.
#[pg_extern(volatile, name = "gman_do_low_background_on_commit")]
fn gman_do_low_background_on_commit_bytea(
    function: Option<&str>,
    payload: Option<&[u8]>,
    unique: default!(Option<&str>, "NULL"),
) {
    let n = "gman_do_low_background_on_commit";
    later(n, job(n, function, payload, unique, Priority::Low))
}
