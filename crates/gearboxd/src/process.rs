//! Process housekeeping: the pid file and the open-file limit.

use std::path::{Path, PathBuf};

use crate::error::CliError;

/// A pid file, written on creation and removed on drop (so every exit path after start-up
/// removes it, errors included).
#[derive(Debug)]
pub struct PidFile {
    path: PathBuf,
}

impl PidFile {
    /// Writes this process's id and a newline to `path`, replacing what was there.
    pub fn create(path: &Path) -> Result<PidFile, CliError> {
        std::fs::write(path, format!("{}\n", std::process::id())).map_err(|source| {
            CliError::PidFile {
                path: path.to_owned(),
                source,
            }
        })?;
        Ok(PidFile {
            path: path.to_owned(),
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        if let Err(e) = std::fs::remove_file(&self.path) {
            tracing::warn!(path = %self.path.display(), error = %e, "cannot remove pid file");
        }
    }
}

/// Sets the soft open-file limit (RLIMIT_NOFILE) to `wanted`, raising the hard limit too if
/// needed; if that is not allowed (only root may raise it), settles for the hard limit.
/// Returns the soft limit now in force.
pub fn set_file_limit(wanted: u64) -> std::io::Result<u64> {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: `lim` is a valid, writable rlimit.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) } != 0 {
        return Err(std::io::Error::last_os_error());
    }
    let wanted = libc::rlim_t::try_from(wanted).unwrap_or(libc::RLIM_INFINITY);
    let mut new = libc::rlimit {
        rlim_cur: wanted,
        rlim_max: lim.rlim_max.max(wanted),
    };
    if !set_rlimit(&new) {
        new = libc::rlimit {
            rlim_cur: wanted.min(lim.rlim_max),
            rlim_max: lim.rlim_max,
        };
        if !set_rlimit(&new) {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[allow(clippy::useless_conversion)] // rlim_t is u64 on Linux, not everywhere
    Ok(u64::try_from(new.rlim_cur).unwrap_or(u64::MAX))
}

fn set_rlimit(lim: &libc::rlimit) -> bool {
    // SAFETY: `lim` is a valid rlimit, only read.
    unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, lim) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pid_file_is_written_and_removed() {
        let path = std::env::temp_dir().join(format!("gearboxd-unit-{}.pid", std::process::id()));
        let pid = PidFile::create(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        drop(pid);
        assert!(!path.exists());
    }

    #[test]
    fn file_limit_can_be_set_to_the_current_value() {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid, writable rlimit.
        assert_eq!(unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) }, 0);
        #[allow(clippy::useless_conversion)] // rlim_t is u64 on Linux, not everywhere
        let cur = u64::try_from(lim.rlim_cur).unwrap();
        assert_eq!(set_file_limit(cur).unwrap(), cur);
    }
}
