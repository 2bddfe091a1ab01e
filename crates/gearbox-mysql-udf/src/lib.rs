//! # gearbox-mysql-udf
//!
//! MySQL/MariaDB user-defined functions that submit gearbox (Gearman) jobs from SQL, built as
//! `libgearbox_mysql_udf.so` and loaded with `CREATE FUNCTION ... SONAME`:
//!
//! - `gman_servers_set(servers)`: the `host[:port],...` list that later calls on every
//!   connection use (default `127.0.0.1:4730`); returns the list.
//! - `gman_timeout_set(seconds)`: a limit for later foreground calls on every connection
//!   (submit to result); 0 or NULL means none (the default). Returns the seconds.
//! - `gman_do(function, payload[, unique])`, `gman_do_high`, `gman_do_low`: run a job in the
//!   foreground and return its result.
//! - `gman_do_background(function, payload[, unique])`, `gman_do_high_background`,
//!   `gman_do_low_background`: submit a background job and return its handle.
//!
//! Payloads and results are bytes, passed through unchanged (binary included). A NULL payload
//! is sent as an empty one. A failure (unreachable server, failed job, timeout, killed
//! statement) is written to the server's error log and the call returns NULL with the UDF
//! error flag set; a panic never crosses into the server (`catch_unwind`).
//!
//! # Decisions
//!
//! - **The settings are process-wide**, shared by every connection (as in the classic gearman
//!   UDFs), because MariaDB's thread pool moves connections between threads: see
//!   [`settings`] for why not per thread or per connection.
//! - **`KILL QUERY` / `KILL CONNECTION` end a foreground wait** within [`KILL_POLL`] on
//!   MariaDB, which exports the functions to notice it; elsewhere only the timeout does
//!   (see [`session`]). The job is abandoned, not cancelled: the server may still run it.
//! - **A foreground wait is announced** to MariaDB (`thd_wait_begin`), so that under the
//!   thread pool other connections of the same thread group are served meanwhile.
//! - **No submit on commit**: the UDF API has no transaction hooks; the crate's README says
//!   what to do instead.
//!
//! # Layout
//!
//! - [`ffi`]: the C ABI (`UDF_INIT`, `UDF_ARGS`) and safe helpers over it.
//! - [`settings`]: the shared server list, timeout and clients.
//! - [`session`]: the statement's session, through the server's exported functions: kills
//!   and waits.
//! - this file: the exported `xxx_init` / `xxx` / `xxx_deinit` symbols and what they do.

pub mod ffi;
pub mod session;
pub mod settings;

use std::io::Write;
use std::os::raw::{c_char, c_ulong};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::time::Duration;

use ffi::{MyBool, UdfArgs, UdfInit};
use gearbox_client::Priority;
pub use settings::DEFAULT_SERVERS;

/// The longest result a string function announces (16 MiB - 1, a MEDIUMBLOB).
const MAX_LENGTH: c_ulong = 16 * 1024 * 1024 - 1;

/// How often a foreground call checks whether its statement was killed.
pub const KILL_POLL: Duration = Duration::from_millis(100);

/// The state behind `UDF_INIT::ptr`: the buffer that holds the last result.
struct State {
    result: Vec<u8>,
}

/// Which job a function submits.
#[derive(Clone, Copy)]
enum Kind {
    Foreground(Priority),
    Background(Priority),
}

/// `gman_servers_set(servers)`: checks and stores the list for every connection.
fn servers_set(args: &[Option<&[u8]>]) -> Result<Vec<u8>, String> {
    let list = args[0].ok_or("the server list is NULL")?;
    let list = std::str::from_utf8(list).map_err(|_| "the server list is not UTF-8")?;
    let list = list.trim();
    let list = if list.is_empty() {
        DEFAULT_SERVERS
    } else {
        list
    };
    settings::set_servers(list)?;
    Ok(list.as_bytes().to_vec())
}

/// `gman_timeout_set(seconds)`: stores the foreground limit for every connection.
fn timeout_set(args: &[Option<&[u8]>]) -> Result<Vec<u8>, String> {
    let secs = match args[0] {
        None => 0.0,
        Some(b) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .ok_or("the timeout is not a number of seconds >= 0")?,
    };
    let limit = (secs > 0.0).then(|| Duration::from_secs_f64(secs));
    settings::set_timeout(limit);
    Ok(secs.to_string().into_bytes())
}

/// `gman_do*(function, payload[, unique])`: submits the job to the current servers.
fn submit(kind: Kind, args: &[Option<&[u8]>]) -> Result<Vec<u8>, String> {
    let function = args[0].ok_or("the function name is NULL")?;
    if function.is_empty() {
        return Err("the function name is empty".into());
    }
    let payload = args[1].unwrap_or_default().to_vec();
    let servers = settings::servers();
    let client = settings::client(&servers)?;
    let mut job = client.job(function, payload);
    // An optional third argument: the unique id (NULL or empty: none), so that a job still
    // queued or running is not submitted twice.
    if let Some(unique) = args.get(2).copied().flatten().filter(|u| !u.is_empty()) {
        job = job.unique(unique);
    }
    if let (Kind::Foreground(_), Some(limit)) = (kind, settings::timeout()) {
        job = job.timeout(limit);
    }
    let out = match kind {
        // Where the server says so: a killed statement ends the wait, and the thread pool
        // knows the thread waits.
        Kind::Foreground(p) => match session::Session::current() {
            Some(s) => s.waiting(|| job.priority(p).run_while(KILL_POLL, || !s.killed())),
            None => job.priority(p).run(),
        },
        Kind::Background(p) => job.priority(p).background(),
    };
    out.map(|b| b.to_vec()).map_err(|e| {
        format!(
            "job {} on {servers}: {e}",
            String::from_utf8_lossy(function)
        )
    })
}

/// Writes a line to the database server's error log (our stderr), ignoring failures.
fn log(name: &str, msg: &str) {
    let _ = writeln!(std::io::stderr(), "gearbox-mysql-udf: {name}: {msg}");
}

/// The body of every `xxx_init`: checks the argument count, asks for string arguments and
/// allocates the result buffer.
unsafe fn init(
    usage: &str,
    nargs: std::ops::RangeInclusive<usize>,
    initid: *mut UdfInit,
    args: *mut UdfArgs,
    message: *mut c_char,
) -> MyBool {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let (initid, args) = (&mut *initid, &mut *args);
        if !nargs.contains(&args.count()) {
            let counted = match (nargs.start(), nargs.end()) {
                (1, 1) => "1 argument".to_owned(),
                (a, b) if a == b => format!("{a} arguments"),
                (a, b) => format!("{a} or {b} arguments"),
            };
            ffi::set_message(message, &format!("{usage} takes {counted}"));
            return 1;
        }
        args.all_strings();
        initid.maybe_null = 1;
        initid.const_item = 0;
        initid.max_length = MAX_LENGTH;
        initid.ptr = Box::into_raw(Box::new(State { result: Vec::new() })) as *mut c_char;
        0
    }));
    r.unwrap_or_else(|_| {
        ffi::set_message(message, "gearbox-mysql-udf: internal error (panic)");
        1
    })
}

/// The body of every `xxx`: reads the arguments, runs `f`, and hands back its result (in
/// the buffer behind `UDF_INIT::ptr`) or NULL with `*error = 1`.
#[allow(clippy::too_many_arguments)]
unsafe fn call(
    name: &str,
    f: impl FnOnce(&[Option<&[u8]>]) -> Result<Vec<u8>, String>,
    initid: *mut UdfInit,
    args: *mut UdfArgs,
    length: *mut c_ulong,
    is_null: *mut c_char,
    error: *mut c_char,
) -> *mut c_char {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let args = &*args;
        let values: Vec<Option<&[u8]>> = (0..args.count()).map(|i| args.bytes(i)).collect();
        f(&values)
    }));
    let r = r.unwrap_or_else(|_| Err("internal error (panic)".into()));
    let state = (*initid).ptr as *mut State;
    match r {
        Ok(out) if !state.is_null() => {
            let state = &mut *state;
            state.result = out;
            state.result.reserve(1);
            *length = state.result.len() as c_ulong;
            *is_null = 0;
            state.result.as_mut_ptr() as *mut c_char
        }
        Ok(_) => {
            log(name, "called without init");
            *is_null = 1;
            *error = 1;
            std::ptr::null_mut()
        }
        Err(msg) => {
            log(name, &msg);
            *is_null = 1;
            *error = 1;
            std::ptr::null_mut()
        }
    }
}

/// The body of every `xxx_deinit`: frees the result buffer.
unsafe fn deinit(initid: *mut UdfInit) {
    let _ = catch_unwind(AssertUnwindSafe(|| {
        let p = (*initid).ptr as *mut State;
        if !p.is_null() {
            drop(Box::from_raw(p));
            (*initid).ptr = std::ptr::null_mut();
        }
    }));
}

/// Exports `$init`, `$main` and `$deinit` for one SQL function.
macro_rules! udf {
    ($doc:literal, $name:literal, $usage:literal, $nargs:expr, $init:ident, $main:ident, $deinit:ident, $f:expr) => {
        #[doc = concat!("`", $name, "_init`: see the crate docs. Called by the database server.")]
        ///
        /// # Safety
        /// Only the database server calls it, with valid `UDF_INIT`, `UDF_ARGS` and message buffer.
        #[no_mangle]
        pub unsafe extern "C" fn $init(
            initid: *mut UdfInit,
            args: *mut UdfArgs,
            message: *mut c_char,
        ) -> MyBool {
            init($usage, $nargs, initid, args, message)
        }

        #[doc = $doc]
        ///
        /// # Safety
        /// Only the database server calls it, after a successful init.
        #[no_mangle]
        pub unsafe extern "C" fn $main(
            initid: *mut UdfInit,
            args: *mut UdfArgs,
            _result: *mut c_char,
            length: *mut c_ulong,
            is_null: *mut c_char,
            error: *mut c_char,
        ) -> *mut c_char {
            call($name, $f, initid, args, length, is_null, error)
        }

        #[doc = concat!("`", $name, "_deinit`: frees what init allocated.")]
        ///
        /// # Safety
        /// Only the database server calls it, once, after init.
        #[no_mangle]
        pub unsafe extern "C" fn $deinit(initid: *mut UdfInit) {
            deinit(initid)
        }
    };
}

udf!(
    "`gman_servers_set(servers)`: sets the server list of every connection.",
    "gman_servers_set",
    "gman_servers_set(servers)",
    1..=1,
    gman_servers_set_init,
    gman_servers_set,
    gman_servers_set_deinit,
    servers_set
);
udf!(
    "`gman_do(function, payload[, unique])`: runs a job, returns its result.",
    "gman_do",
    "gman_do(function, payload[, unique])",
    2..=3,
    gman_do_init,
    gman_do,
    gman_do_deinit,
    |a: &[Option<&[u8]>]| submit(Kind::Foreground(Priority::Normal), a)
);
udf!(
    "`gman_do_high(function, payload[, unique])`: runs a high-priority job, returns its result.",
    "gman_do_high",
    "gman_do_high(function, payload[, unique])",
    2..=3,
    gman_do_high_init,
    gman_do_high,
    gman_do_high_deinit,
    |a: &[Option<&[u8]>]| submit(Kind::Foreground(Priority::High), a)
);
udf!(
    "`gman_do_low(function, payload[, unique])`: runs a low-priority job, returns its result.",
    "gman_do_low",
    "gman_do_low(function, payload[, unique])",
    2..=3,
    gman_do_low_init,
    gman_do_low,
    gman_do_low_deinit,
    |a: &[Option<&[u8]>]| submit(Kind::Foreground(Priority::Low), a)
);
udf!(
    "`gman_do_background(function, payload[, unique])`: submits a background job, returns its handle.",
    "gman_do_background",
    "gman_do_background(function, payload[, unique])",
    2..=3,
    gman_do_background_init,
    gman_do_background,
    gman_do_background_deinit,
    |a: &[Option<&[u8]>]| submit(Kind::Background(Priority::Normal), a)
);
udf!(
    "`gman_do_high_background(function, payload[, unique])`: a high-priority background job's handle.",
    "gman_do_high_background",
    "gman_do_high_background(function, payload[, unique])",
    2..=3,
    gman_do_high_background_init,
    gman_do_high_background,
    gman_do_high_background_deinit,
    |a: &[Option<&[u8]>]| submit(Kind::Background(Priority::High), a)
);
udf!(
    "`gman_do_low_background(function, payload[, unique])`: a low-priority background job's handle.",
    "gman_do_low_background",
    "gman_do_low_background(function, payload[, unique])",
    2..=3,
    gman_do_low_background_init,
    gman_do_low_background,
    gman_do_low_background_deinit,
    |a: &[Option<&[u8]>]| submit(Kind::Background(Priority::Low), a)
);
udf!(
    "`gman_timeout_set(seconds)`: limits every connection's foreground calls (0: none).",
    "gman_timeout_set",
    "gman_timeout_set(seconds)",
    1..=1,
    gman_timeout_set_init,
    gman_timeout_set,
    gman_timeout_set_deinit,
    timeout_set
);

#[cfg(test)]
mod tests {
    use super::*;

    /// The setters' checks and answers (one test: the settings are process-wide).
    #[test]
    fn setters_check_and_echo_their_values() {
        let secs = |v: Option<&[u8]>| timeout_set(&[v]);
        assert_eq!(secs(Some(b" 1.5 ")).unwrap(), b"1.5");
        assert_eq!(settings::timeout(), Some(Duration::from_millis(1500)));
        assert_eq!(secs(None).unwrap(), b"0");
        assert_eq!(settings::timeout(), None);
        for bad in [&b"-1"[..], b"soon", b"NaN", b"inf"] {
            assert!(secs(Some(bad)).is_err(), "{bad:?}");
        }

        let set = |v: Option<&[u8]>| servers_set(&[v]);
        assert_eq!(set(Some(b" a:1,b ")).unwrap(), b"a:1,b");
        assert_eq!(settings::servers(), "a:1,b");
        assert_eq!(set(Some(b"")).unwrap(), DEFAULT_SERVERS.as_bytes());
        assert!(set(None).is_err());
        assert!(set(Some(b"\xff")).is_err());
        assert_eq!(settings::servers(), DEFAULT_SERVERS);
    }
}
