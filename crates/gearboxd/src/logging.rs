//! Log output: standard error, or a file that SIGHUP reopens (so `logrotate` can move it away
//! and the next line lands in a fresh file at the configured path).

use std::fs::{File, OpenOptions};
use std::io::{self, IsTerminal, Write};
use std::os::fd::AsFd;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

use crate::error::CliError;
use crate::log_format::LogFormat;
use crate::syslog_target::Syslog;

/// A log file opened for appending, reopenable at the same path.
#[derive(Debug)]
pub struct LogFile {
    path: PathBuf,
    // A std Mutex: each log line is one short write, never across an await.
    file: Mutex<File>,
}

impl LogFile {
    /// Opens (creating it if needed) `path` for appending.
    pub fn open(path: &Path) -> Result<LogFile, CliError> {
        let file = open_append(path)?;
        Ok(LogFile {
            path: path.to_owned(),
            file: Mutex::new(file),
        })
    }

    /// The configured path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Opens the path anew and writes there from now on. On failure the old file stays in use.
    pub fn reopen(&self) -> Result<(), CliError> {
        let fresh = open_append(&self.path)?;
        *self.lock() = fresh;
        Ok(())
    }

    fn lock(&self) -> MutexGuard<'_, File> {
        self.file.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn open_append(path: &Path) -> Result<File, CliError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| CliError::LogFile {
            path: path.to_owned(),
            source,
        })
}

/// Where log lines go; a [`MakeWriter`] for `tracing_subscriber`.
#[derive(Debug, Clone)]
pub enum LogTarget {
    /// Standard error.
    Stderr,
    /// A reopenable file.
    File(Arc<LogFile>),
}

impl LogTarget {
    /// Standard error for `None`, else the opened file.
    pub fn open(path: Option<&Path>) -> Result<LogTarget, CliError> {
        Ok(match path {
            None => LogTarget::Stderr,
            Some(p) => LogTarget::File(Arc::new(LogFile::open(p)?)),
        })
    }

    /// The file, if logging goes to one.
    pub fn file(&self) -> Option<Arc<LogFile>> {
        match self {
            LogTarget::Stderr => None,
            LogTarget::File(f) => Some(f.clone()),
        }
    }
}

/// One log line's writer: standard error, or the log file held locked for the write.
pub enum LogWriter<'a> {
    /// Standard error.
    Stderr(io::Stderr),
    /// The log file, locked.
    File(MutexGuard<'a, File>),
}

impl Write for LogWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            LogWriter::Stderr(w) => w.write(buf),
            LogWriter::File(f) => f.write(buf),
        }
    }

    fn write_all(&mut self, buf: &[u8]) -> io::Result<()> {
        match self {
            LogWriter::Stderr(w) => w.write_all(buf),
            LogWriter::File(f) => f.write_all(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            LogWriter::Stderr(w) => w.flush(),
            LogWriter::File(f) => f.flush(),
        }
    }
}

impl<'a> MakeWriter<'a> for LogTarget {
    type Writer = LogWriter<'a>;

    fn make_writer(&'a self) -> Self::Writer {
        match self {
            LogTarget::Stderr => LogWriter::Stderr(io::stderr()),
            LogTarget::File(f) => LogWriter::File(f.lock()),
        }
    }
}

/// Whether standard error is the systemd journal: `JOURNAL_STREAM` names its device and inode
/// (systemd sets it for a service whose output goes to the journal).
pub fn stderr_is_journal() -> bool {
    use std::os::unix::fs::MetadataExt;
    let Some(stream) = std::env::var_os("JOURNAL_STREAM") else {
        return false;
    };
    let Some((dev, ino)) = stream.to_str().and_then(|s| s.split_once(':')) else {
        return false;
    };
    let Ok(stderr) = io::stderr().as_fd().try_clone_to_owned() else {
        return false;
    };
    let Ok(meta) = File::from(stderr).metadata() else {
        return false;
    };
    dev.parse() == Ok(meta.dev()) && ino.parse() == Ok(meta.ino())
}

/// Whether `NO_COLOR` asks for no colours (set and not empty, as no-color.org defines it).
pub fn no_color() -> bool {
    std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty())
}

/// Installs the global `tracing` subscriber: lines passing `filter`, shaped by `format`, to
/// `target`; and the same lines, as text, to `syslog` if given. Text lines have colours only
/// on a terminal without `NO_COLOR`; on the journal they have neither colours nor
/// timestamps (the journal stamps each line itself).
pub fn install(target: LogTarget, filter: EnvFilter, format: LogFormat, syslog: Option<Syslog>) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::Layer;
    let on_stderr = matches!(target, LogTarget::Stderr);
    let journal = on_stderr && stderr_is_journal();
    let ansi = on_stderr && !journal && !no_color() && io::stderr().is_terminal();
    let main = match format {
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_writer(target)
            .boxed(),
        LogFormat::Text if journal => tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_writer(target)
            .boxed(),
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(target)
            .boxed(),
    };
    // syslog stamps each record itself.
    let syslog = syslog.map(|s| {
        tracing_subscriber::fmt::layer()
            .with_ansi(false)
            .without_time()
            .with_writer(s)
    });
    // Fails only if a subscriber is already installed, which main never does.
    let _ = tracing_subscriber::registry()
        .with(filter)
        .with(main)
        .with(syslog)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reopen_writes_to_a_new_file_at_the_same_path() {
        let dir = std::env::temp_dir().join(format!("gearboxd-log-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("g.log");
        let target = LogTarget::open(Some(&path)).unwrap();
        target.make_writer().write_all(b"one\n").unwrap();
        std::fs::rename(&path, dir.join("g.log.1")).unwrap();
        target.make_writer().write_all(b"two\n").unwrap();
        target.file().unwrap().reopen().unwrap();
        target.make_writer().write_all(b"three\n").unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("g.log.1")).unwrap(),
            "one\ntwo\n"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "three\n");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn unopenable_log_file_is_a_clear_error() {
        let e = LogTarget::open(Some(Path::new("/nonexistent-dir/g.log"))).unwrap_err();
        assert!(e.to_string().contains("/nonexistent-dir/g.log"));
    }
}
