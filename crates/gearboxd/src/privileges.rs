//! `-u/--user`: switching to an unprivileged user once the sockets are bound (so a port below
//! 1024 works), before the log file, the pid file and the store are opened (so they belong to
//! that user, who can then reopen the log and remove the pid file), as gearmand creates them.
//!
//! As in gearmand, switching needs root: otherwise it is an error, unless the process already
//! runs as that user (then there is nothing to do). The supplementary groups become the user's
//! own (`initgroups`), then the group and the user are set; a switch that could be undone is
//! an error.

use std::ffi::CString;

use nix::unistd::{self, Uid, User};

use crate::error::CliError;

/// The user `name` names, or an error if it does not exist.
pub fn look_up(name: &str) -> Result<User, CliError> {
    match User::from_name(name) {
        Ok(Some(user)) => Ok(user),
        Ok(None) => Err(CliError::User(format!("-u/--user: no such user `{name}`"))),
        Err(e) => Err(CliError::User(format!(
            "-u/--user: cannot look up user `{name}`: {e}"
        ))),
    }
}

/// Switches the process to user `name` and its groups.
pub fn switch_to(name: &str) -> Result<(), CliError> {
    let user = look_up(name)?;
    if Uid::current() == user.uid && Uid::effective() == user.uid {
        return Ok(());
    }
    if !Uid::effective().is_root() {
        return Err(CliError::User(format!(
            "-u/--user {name}: must be root to switch users (running as uid {})",
            Uid::effective()
        )));
    }
    let failed = |step: &str, e: nix::Error| {
        CliError::User(format!("-u/--user {name}: cannot switch ({step}: {e})"))
    };
    let cname = CString::new(name)
        .map_err(|_| CliError::User("-u/--user: the name contains a NUL byte".into()))?;
    unistd::initgroups(&cname, user.gid).map_err(|e| failed("initgroups", e))?;
    unistd::setgid(user.gid).map_err(|e| failed("setgid", e))?;
    unistd::setuid(user.uid).map_err(|e| failed("setuid", e))?;
    if !user.uid.is_root() && unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(CliError::User(format!(
            "-u/--user {name}: root privileges could be regained after switching"
        )));
    }
    Ok(())
}
