//! Noticing `KILL QUERY` and `KILL CONNECTION` while a foreground call waits.
//!
//! MariaDB exports `_current_thd()` (the session running on this thread) and
//! `thd_kill_level(thd)` (0 unless the session's statement or connection was killed). They are
//! looked up at run time (`dlsym(RTLD_DEFAULT, ..)`), so the library still loads into a server
//! that lacks them (Oracle MySQL builds); there a foreground call ends only with its job or at
//! the `gman_timeout_set` limit.

use std::ffi::{c_int, c_void, CStr};
use std::sync::OnceLock;

type CurrentThd = unsafe extern "C" fn() -> *mut c_void;
type KillLevel = unsafe extern "C" fn(*const c_void) -> c_int;

/// The two server functions, when the server exports them.
struct Api {
    current_thd: CurrentThd,
    kill_level: KillLevel,
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
        // SAFETY: both are the server's exported C functions with these signatures
        // (`THD *_current_thd(void)`, `enum thd_kill_levels thd_kill_level(const MYSQL_THD)`).
        unsafe {
            Some(Api {
                current_thd: std::mem::transmute::<*mut c_void, CurrentThd>(current_thd),
                kill_level: std::mem::transmute::<*mut c_void, KillLevel>(kill_level),
            })
        }
    })
    .as_ref()
}

/// The session whose statement called the function; made on the server's thread that runs
/// the statement, and only used there.
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
