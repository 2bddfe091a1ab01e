//! The SQL functions. Each priority has a text and a bytea overload of the same name (a
//! string literal resolves to the text one); the third argument, the unique id, defaults to
//! NULL (none). A NULL payload is sent as an empty one, as the MySQL UDFs do.

use std::time::Instant;

use bytes::Bytes;
use gearbox_proto::Priority;
use pgrx::prelude::*;

use crate::client::{Conn, Error, Job};
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

/// Sends `job` on a connection of this backend's servers and runs `exchange` on it (submit,
/// then whatever the caller waits for); a failure is the SQL ERROR.
fn call<T>(
    sql_fn: &str,
    job: &Job,
    mut exchange: impl FnMut(&mut Conn, Option<Instant>, &mut dyn FnMut()) -> Result<T, Error>,
) -> T {
    let servers = settings::servers().unwrap_or_else(|e| raise(sql_fn, &job.function, e));
    let deadline = settings::deadline();
    pool::with_conn(
        &servers,
        settings::connect_timeout(),
        &mut crate::check_interrupts,
        |conn, tick| exchange(conn, deadline, tick),
    )
    .unwrap_or_else(|e| raise(sql_fn, &job.function, e))
}

/// Runs a foreground job and returns its result.
fn foreground(sql_fn: &str, job: Job) -> Vec<u8> {
    call(sql_fn, &job, |conn, deadline, tick| {
        let handle = conn.submit(job.packet(false), deadline, tick)?;
        conn.result(&handle, deadline, tick)
    })
    .to_vec()
}

/// Submits a background job and returns its handle.
fn background(sql_fn: &str, job: Job) -> String {
    let handle = call(sql_fn, &job, |conn, deadline, tick| {
        conn.submit(job.packet(true), deadline, tick)
    });
    String::from_utf8_lossy(&handle).into_owned()
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

/// Defines one SQL function's text and bytea overloads: `$sql(function, payload[, unique])`
/// at `$priority`, each run by `$run` (`foreground`, `background` or `later`); `$text_out`
/// turns the text overload's outcome into its SQL result.
macro_rules! job_functions {
    (
        $(#[$doc:meta])*
        $sql:literal, $text_fn:ident, $bytea_fn:ident, $priority:expr,
        $run:ident -> text: $text_ret:ty = $text_out:expr, bytea: $bytea_ret:ty
    ) => {
        $(#[$doc])*
        #[pg_extern(volatile, name = $sql)]
        fn $text_fn(
            function: Option<&str>,
            payload: Option<&str>,
            unique: default!(Option<&str>, "NULL"),
        ) -> $text_ret {
            let out = $run($sql, job($sql, function, bytes(payload), unique, $priority));
            $text_out($sql, out)
        }

        #[doc = concat!("`", $sql, "(function, payload bytea[, unique])`: the binary form.")]
        #[pg_extern(volatile, name = $sql)]
        fn $bytea_fn(
            function: Option<&str>,
            payload: Option<&[u8]>,
            unique: default!(Option<&str>, "NULL"),
        ) -> $bytea_ret {
            $run($sql, job($sql, function, payload, unique, $priority))
        }
    };
    // Functions that return void (pgrx takes no `-> ()`).
    (
        $(#[$doc:meta])*
        $sql:literal, $text_fn:ident, $bytea_fn:ident, $priority:expr, $run:ident -> void
    ) => {
        $(#[$doc])*
        #[pg_extern(volatile, name = $sql)]
        fn $text_fn(
            function: Option<&str>,
            payload: Option<&str>,
            unique: default!(Option<&str>, "NULL"),
        ) {
            $run($sql, job($sql, function, bytes(payload), unique, $priority))
        }

        #[doc = concat!("`", $sql, "(function, payload bytea[, unique])`: the binary form.")]
        #[pg_extern(volatile, name = $sql)]
        fn $bytea_fn(
            function: Option<&str>,
            payload: Option<&[u8]>,
            unique: default!(Option<&str>, "NULL"),
        ) {
            $run($sql, job($sql, function, payload, unique, $priority))
        }
    };
}

/// The outcome as it is (the text overloads of the background functions).
fn same<T>(_sql_fn: &str, out: T) -> T {
    out
}

job_functions!(
    /// `gman_do(function, payload text[, unique])`: runs a job (normal priority), returns its
    /// result.
    "gman_do", gman_do, gman_do_bytea, Priority::Normal,
    foreground -> text: String = text, bytea: Vec<u8>
);
job_functions!(
    /// `gman_do_high(function, payload text[, unique])`: a high-priority `gman_do`.
    "gman_do_high", gman_do_high, gman_do_high_bytea, Priority::High,
    foreground -> text: String = text, bytea: Vec<u8>
);
job_functions!(
    /// `gman_do_low(function, payload text[, unique])`: a low-priority `gman_do`.
    "gman_do_low", gman_do_low, gman_do_low_bytea, Priority::Low,
    foreground -> text: String = text, bytea: Vec<u8>
);
job_functions!(
    /// `gman_do_background(function, payload text[, unique])`: submits a background job now,
    /// returns its handle.
    "gman_do_background", gman_do_background, gman_do_background_bytea, Priority::Normal,
    background -> text: String = same, bytea: String
);
job_functions!(
    /// `gman_do_high_background(function, payload text[, unique])`.
    "gman_do_high_background", gman_do_high_background, gman_do_high_background_bytea,
    Priority::High,
    background -> text: String = same, bytea: String
);
job_functions!(
    /// `gman_do_low_background(function, payload text[, unique])`.
    "gman_do_low_background", gman_do_low_background, gman_do_low_background_bytea,
    Priority::Low,
    background -> text: String = same, bytea: String
);
job_functions!(
    /// `gman_do_background_on_commit(function, payload text[, unique])`: queues a background
    /// job that is submitted when the transaction commits (see the `on_commit` module).
    "gman_do_background_on_commit", gman_do_background_on_commit,
    gman_do_background_on_commit_bytea, Priority::Normal,
    later -> void
);
job_functions!(
    /// `gman_do_high_background_on_commit(function, payload text[, unique])`.
    "gman_do_high_background_on_commit", gman_do_high_background_on_commit,
    gman_do_high_background_on_commit_bytea, Priority::High,
    later -> void
);
job_functions!(
    /// `gman_do_low_background_on_commit(function, payload text[, unique])`.
    "gman_do_low_background_on_commit", gman_do_low_background_on_commit,
    gman_do_low_background_on_commit_bytea, Priority::Low,
    later -> void
);
