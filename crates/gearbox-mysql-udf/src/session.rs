//! The database session running the statement: noticing `KILL QUERY` and `KILL CONNECTION`
//! while a foreground call waits, and telling MariaDB's thread pool that the thread waits.
//!
//! MariaDB exports `_current_thd()` (the session on this thread), `thd_kill_level(thd)` (0
//! unless the session's statement or connection was killed) and `thd_wait_begin(thd, type)` /
//! `thd_wait_end(thd)` (a wait begins or ends: the thread pool lets another thread of the
//! group run meanwhile, as it does for row locks or `SLEEP()`). They are looked up at run time
//! (`dlsym(RTLD_DEFAULT, ..)`), so the library still loads into a server that lacks them
//! (MySQL has no `thd_kill_level`); there a foreground call ends only with its job or at the
//! `gman_timeout_set` limit.

use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

type CurrentThd = unsafe extern "C" fn() -> *mut c_void;
type KillLevel = unsafe extern "C" fn(*const c_void) -> c_int;
type WaitBegin = unsafe extern "C" fn(*mut c_void, c_int);
type WaitEnd = unsafe extern "C" fn(*mut c_void);

/// `THD_WAIT_NET`: the wait type announced (the job server is across the network).
const THD_WAIT_NET: c_int = 11;

/// The server functions, when the server exports them.
struct Api {
    current_thd: CurrentThd,
    kill_level: KillLevel,
    /// Optional: without them the wait is not announced.
    wait: Option<(WaitBegin, WaitEnd)>,
}

/// Looks a symbol up in the running process.
fn symbol(name: &CStr) -> Option<*mut c_void> {
    // SAFETY: dlsym with RTLD_DEFAULT and a NUL-terminated name only reads the loaded
    // objects' symbol tables.
    let p = unsafe { libc::dlsym(libc::RTLD_DEFAULT, name.as_ptr()) };
    (!p.is_null()).then_some(p)
}

fn api() -> Option<&'static Api> {
    static API: OnceLock<Option<Api>> = OnceLock::new();
    API.get_or_init(|| {
        let current_thd = symbol(c"_current_thd")?;
        let kill_level = symbol(c"thd_kill_level")?;
        let wait = symbol(c"thd_wait_begin").zip(symbol(c"thd_wait_end"));
        // SAFETY: these are the server's exported C functions with these signatures
        // (`THD *_current_thd(void)`, `enum thd_kill_levels thd_kill_level(const MYSQL_THD)`,
        // `void thd_wait_begin(MYSQL_THD, int)`, `void thd_wait_end(MYSQL_THD)`).
        unsafe {
            Some(Api {
                current_thd: std::mem::transmute::<*mut c_void, CurrentThd>(current_thd),
                kill_level: std::mem::transmute::<*mut c_void, KillLevel>(kill_level),
                wait: wait.map(|(b, e)| {
                    (
                        std::mem::transmute::<*mut c_void, WaitBegin>(b),
                        std::mem::transmute::<*mut c_void, WaitEnd>(e),
                    )
                }),
            })
        }
    })
    .as_ref()
}

/// The session whose statement called the function; made on the server's thread that runs
/// the statement, and only used there (it is neither `Send` nor `Sync`).
pub struct Session {
    thd: *mut c_void,
    api: &'static Api,
}

impl Session {
    /// The session on this thread, or `None` when the server does not export the functions
    /// (or no session runs here, as in a plain program).
    pub fn current() -> Option<Session> {
        let api = api()?;
        // SAFETY: `_current_thd` takes nothing and returns this thread's THD or NULL.
        let thd = unsafe { (api.current_thd)() };
        (!thd.is_null()).then_some(Session { thd, api })
    }

    /// Whether the statement or the connection was killed.
    pub fn killed(&self) -> bool {
        // SAFETY: the THD is this thread's live session (a `Session` never leaves the call
        // that made it), which is what `thd_kill_level` expects.
        unsafe { (self.api.kill_level)(self.thd) != 0 }
    }

    /// Runs `f` (a blocking wait) between `thd_wait_begin` and `thd_wait_end`, when the
    /// server has them.
    pub fn waiting<T>(&self, f: impl FnOnce() -> T) -> T {
        /// Ends the wait even if `f` unwinds.
        struct End<'a>(&'a Session, WaitEnd);
        impl Drop for End<'_> {
            fn drop(&mut self) {
                // SAFETY: as in `killed`; paired with the `thd_wait_begin` below.
                unsafe { (self.1)(self.0.thd) }
            }
        }
        let Some((begin, end)) = self.api.wait else {
            return f();
        };
        // SAFETY: as in `killed`.
        unsafe { begin(self.thd, THD_WAIT_NET) };
        let _end = End(self, end);
        f()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_plain_program_has_no_session() {
        // The test binary is not a database server: no `_current_thd`, so no session (and
        // foreground calls fall back to the timeout).
        assert!(Session::current().is_none());
    }
}
