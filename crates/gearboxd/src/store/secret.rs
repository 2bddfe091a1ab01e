//! The store's password when neither the URL nor a password key gives one: read from
//! `--store-password-file`, else from `GEARBOX_STORE_PASSWORD`, else from the database's own
//! variable (`PGPASSWORD`, `REDISCLI_AUTH`, `MYSQL_PWD`). Passwords never reach a log line,
//! an error or the process list from here: errors name the file or variable, not its text.

use std::path::Path;

use super::parse::{redact_conninfo, redact_url};
use super::section::{Password, StoreSection};
use crate::error::CliError;

/// gearboxd's own variable for the store's password, for every store.
pub const PASSWORD_VAR: &str = "GEARBOX_STORE_PASSWORD";

/// `given` (from the URL or a password key) if any, else the first of the file, gearboxd's
/// variable and `db_var` that is set (an empty variable counts as unset).
pub(super) fn password(
    given: Option<Password>,
    file: Option<&Path>,
    db_var: &str,
) -> Result<Option<Password>, CliError> {
    if given.is_some() {
        return Ok(given);
    }
    if let Some(path) = file {
        return read_file(path).map(Some);
    }
    for var in [PASSWORD_VAR, db_var] {
        if let Some(value) = std::env::var_os(var).filter(|v| !v.is_empty()) {
            let text = value.into_string().map_err(|_| {
                CliError::Invalid(format!("${var} is not UTF-8: the store password must be"))
            })?;
            return Ok(Some(Password::from(text)));
        }
    }
    Ok(None)
}

/// The file's text less one final line break.
fn read_file(path: &Path) -> Result<Password, CliError> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        CliError::Invalid(format!(
            "cannot read --store-password-file {}: {e}; check the path, and that it is \
             readable by the user gearboxd starts as",
            path.display()
        ))
    })?;
    let text = text
        .strip_suffix('\n')
        .map(|t| t.strip_suffix('\r').unwrap_or(t))
        .unwrap_or(&text);
    if text.is_empty() {
        return Err(CliError::Invalid(format!(
            "--store-password-file {} is empty: write the password on its first line",
            path.display()
        )));
    }
    Ok(Password::from(text.to_owned()))
}

/// A warning when the command line (`cli`) holds a store password, which the process list
/// shows to every local user.
pub(super) fn on_command_line(cli: &StoreSection) -> Option<String> {
    let in_text = |text: &Option<String>, redact: fn(&str) -> String| {
        text.as_deref().is_some_and(|t| redact(t) != t)
    };
    let given = cli.redis.server.redis_password.is_some()
        || cli.mysql.server.mysql_password.is_some()
        || in_text(&cli.store, redact_url)
        || in_text(&cli.postgres.libpq_conninfo, redact_conninfo);
    given.then(|| {
        format!(
            "a store password is given on the command line, where the process list shows it \
             to every local user: use --store-password-file FILE or ${PASSWORD_VAR} instead"
        )
    })
}
