//! Where the SQLite queue lives when `--data-dir` (flag, gearmand config file or `--config`)
//! does not say: never in `/` when a service manager started gearboxd.
//!
//! 1. `$STATE_DIRECTORY` (set by systemd's `StateDirectory=`; its first entry if it lists
//!    several, colon-separated);
//! 2. else, if the working directory is `/` (where service managers start daemons) or cannot
//!    be known: for a server that serves as root, [`SYSTEM_DATA_DIR`]; for one that serves as
//!    another user (the user it runs as, or switches to with `-u`), that user's home directory
//!    when it has one other than `/` (Debian's `gearman` user has `/var/lib/gearman`, so
//!    gearboxd standing in for gearmand in Debian's `gearman-job-server` unit keeps its queue
//!    there), else [`SYSTEM_DATA_DIR`];
//! 3. else `gearbox-data` in the working directory ([`DEFAULT_DATA_DIR`]).
//!
//! With `--daemon`, relative paths are made absolute against the directory gearboxd was
//! started in before it changes to `/` ([`StoreSettings::absolutize`]).

use std::ffi::OsStr;
use std::path::{Path, PathBuf};

use super::{StoreSettings, DEFAULT_DATA_DIR};

/// The data directory of a server started in `/` without `--data-dir` or `$STATE_DIRECTORY`.
pub const SYSTEM_DATA_DIR: &str = "/var/lib/gearbox";

/// Who the server serves as, for rule 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServingAs {
    /// The superuser.
    Root,
    /// Another user, with this home directory (from the password database).
    User {
        /// The user's home directory.
        home: PathBuf,
    },
}

impl ServingAs {
    /// The user named by `-u`, or else the process's effective user; `None` if the password
    /// database does not know it (a `-u` user that does not exist is reported elsewhere).
    fn look_up(user: Option<&str>) -> Option<ServingAs> {
        use nix::unistd::{Uid, User};
        let found = match user {
            Some(name) => User::from_name(name),
            None => User::from_uid(Uid::effective()),
        };
        let user = found.ok().flatten()?;
        Some(if user.uid.is_root() {
            ServingAs::Root
        } else {
            ServingAs::User { home: user.dir }
        })
    }
}

/// The default data directory, by the rules above, for this process serving as `user` (`-u`)
/// or as itself.
pub fn default_data_dir(user: Option<&str>) -> PathBuf {
    let state = std::env::var_os("STATE_DIRECTORY");
    let cwd = std::env::current_dir().ok();
    default_data_dir_from(state.as_deref(), cwd.as_deref(), || {
        ServingAs::look_up(user)
    })
}

/// The rules above, given `$STATE_DIRECTORY`, the working directory and who the server serves
/// as (asked only for rule 2).
pub fn default_data_dir_from(
    state_directory: Option<&OsStr>,
    cwd: Option<&Path>,
    serving_as: impl FnOnce() -> Option<ServingAs>,
) -> PathBuf {
    let first = state_directory
        .and_then(|s| s.to_str())
        .and_then(|s| s.split(':').next())
        .filter(|s| !s.is_empty());
    if let Some(dir) = first {
        return PathBuf::from(dir);
    }
    match cwd {
        Some(dir) if dir != Path::new("/") => PathBuf::from(DEFAULT_DATA_DIR),
        _ => match serving_as() {
            Some(ServingAs::User { home }) if home.is_absolute() && home != Path::new("/") => home,
            _ => PathBuf::from(SYSTEM_DATA_DIR),
        },
    }
}

impl StoreSettings {
    /// Makes the SQLite queue's relative paths absolute against `cwd` (before `--daemon`
    /// changes to `/`).
    pub fn absolutize(&mut self, cwd: &Path) {
        if let StoreSettings::Sqlite(s) = self {
            s.path = cwd.join(&s.path);
            s.data_dir = s.data_dir.as_ref().map(|d| cwd.join(d));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_branch_of_the_rule() {
        let home = Path::new("/home/u");
        let root = || Some(ServingAs::Root);
        let gearman = || {
            Some(ServingAs::User {
                home: "/var/lib/gearman".into(),
            })
        };
        let homeless = || Some(ServingAs::User { home: "/".into() });
        let state = |s: &str| default_data_dir_from(Some(OsStr::new(s)), Some(home), root);
        assert_eq!(state("/var/lib/gearbox"), Path::new("/var/lib/gearbox"));
        assert_eq!(state("/var/lib/a:/var/lib/b"), Path::new("/var/lib/a"));
        // An empty $STATE_DIRECTORY counts as unset.
        assert_eq!(state(""), Path::new(DEFAULT_DATA_DIR));
        let slash = Some(Path::new("/"));
        assert_eq!(
            default_data_dir_from(None, slash, root),
            Path::new(SYSTEM_DATA_DIR)
        );
        assert_eq!(
            default_data_dir_from(None, None, root),
            Path::new(SYSTEM_DATA_DIR)
        );
        assert_eq!(
            default_data_dir_from(None, slash, gearman),
            Path::new("/var/lib/gearman")
        );
        assert_eq!(
            default_data_dir_from(None, slash, homeless),
            Path::new(SYSTEM_DATA_DIR)
        );
        assert_eq!(
            default_data_dir_from(None, slash, || None),
            Path::new(SYSTEM_DATA_DIR)
        );
        assert_eq!(
            default_data_dir_from(None, Some(home), || panic!("not asked")),
            Path::new(DEFAULT_DATA_DIR)
        );
    }

    #[test]
    fn relative_paths_become_absolute_and_absolute_ones_stay() {
        let mut s = StoreSettings::Sqlite(super::super::SqliteSettings {
            path: "d/gearbox.sqlite".into(),
            data_dir: Some("d".into()),
            gearmand_table: "gearman_queue".into(),
            gearmand_table_given: false,
            durability: Default::default(),
        });
        s.absolutize(Path::new("/srv"));
        let StoreSettings::Sqlite(q) = &s else {
            unreachable!()
        };
        assert_eq!(q.path, Path::new("/srv/d/gearbox.sqlite"));
        assert_eq!(q.data_dir.as_deref(), Some(Path::new("/srv/d")));
        let mut s = StoreSettings::Builtin;
        s.absolutize(Path::new("/srv"));
        assert_eq!(s, StoreSettings::Builtin);
    }
}
