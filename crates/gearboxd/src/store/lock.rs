//! The store lock: one gearboxd per store.

use std::path::{Path, PathBuf};

use crate::error::CliError;

/// An exclusive `flock` on `<database>.lock`, held while gearboxd runs (the kernel releases
/// it when the process ends, however it ends). Two servers on one store would replay and run
/// the same jobs and hand out the same new handles, overwriting each other's jobs.
#[derive(Debug)]
pub(super) struct StoreLock {
    _file: std::fs::File,
}

impl StoreLock {
    /// Locks the database's lock file and writes our pid in it; `None` for `:memory:`.
    pub(super) fn acquire(db: &Path) -> Result<Option<StoreLock>, CliError> {
        use std::io::{Read, Seek, Write};
        use std::os::fd::AsRawFd;
        if db == Path::new(":memory:") {
            return Ok(None);
        }
        let mut name = db.as_os_str().to_owned();
        name.push(".lock");
        let path = PathBuf::from(name);
        let failed = |source| CliError::StoreLock {
            path: path.clone(),
            source,
        };
        let mut file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .map_err(failed)?;
        // SAFETY: flock has no memory-safety preconditions; the descriptor is open.
        if unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) } != 0 {
            let err = std::io::Error::last_os_error();
            if err.kind() == std::io::ErrorKind::WouldBlock {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = Some(pid.trim().to_owned()).filter(|p| !p.is_empty());
                return Err(CliError::StoreInUse {
                    path: db.to_owned(),
                    pid,
                });
            }
            return Err(failed(err));
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .map_err(failed)?;
        Ok(Some(StoreLock { _file: file }))
    }
}
