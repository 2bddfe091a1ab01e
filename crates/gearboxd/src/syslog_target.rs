//! `--syslog`: every log line also goes to syslog, as gearmand does it (facility `user`, the
//! program's name and pid in each record, the severity from the line's level), over the local
//! syslog socket: `/dev/log` (or `/var/run/syslog`), or the socket named by the environment
//! variable [`SOCKET_ENV`] (for tests, and for a syslog daemon listening elsewhere).

use std::io::{self, Write};
use std::sync::{Arc, Mutex};

use syslog::{Facility, Formatter3164, Logger, LoggerBackend};
use tracing::{Level, Metadata};
use tracing_subscriber::fmt::MakeWriter;

use crate::error::CliError;

/// The environment variable naming the syslog socket to use instead of `/dev/log`.
pub const SOCKET_ENV: &str = "GEARBOXD_SYSLOG_SOCKET";

type Connection = Logger<LoggerBackend, Formatter3164>;

/// A connection to the syslog socket; a [`MakeWriter`] whose writers send one record each.
#[derive(Clone)]
pub struct Syslog {
    // A std Mutex: each record is one datagram, never sent across an await.
    connection: Arc<Mutex<Connection>>,
}

impl std::fmt::Debug for Syslog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Syslog")
    }
}

impl Syslog {
    /// Connects to the syslog socket; records carry this process's id, so connect after
    /// detaching (`--daemon`).
    pub fn connect() -> Result<Syslog, CliError> {
        let formatter = Formatter3164 {
            facility: Facility::LOG_USER,
            hostname: None,
            process: "gearboxd".into(),
            pid: std::process::id(),
        };
        let custom = std::env::var_os(SOCKET_ENV).filter(|p| !p.is_empty());
        let connection = match &custom {
            Some(path) => syslog::unix_custom(formatter, path),
            None => syslog::unix(formatter),
        }
        .map_err(|e| CliError::Syslog {
            path: custom.map_or_else(
                || "/dev/log".to_owned(),
                |p| p.to_string_lossy().into_owned(),
            ),
            message: e.to_string(),
        })?;
        Ok(Syslog {
            connection: Arc::new(Mutex::new(connection)),
        })
    }

    fn send(&self, level: Level, line: &str) {
        let mut c = self.connection.lock().unwrap_or_else(|e| e.into_inner());
        // A record that cannot be sent is dropped: logging must never stop the server.
        let _ = match level {
            Level::ERROR => c.err(line),
            Level::WARN => c.warning(line),
            Level::INFO => c.info(line),
            Level::DEBUG | Level::TRACE => c.debug(line),
        };
    }
}

/// One log line on its way to syslog, sent when dropped (the formatter writes a line, then
/// drops its writer).
pub struct SyslogWriter {
    syslog: Syslog,
    level: Level,
    line: Vec<u8>,
}

impl Write for SyslogWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.line.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for SyslogWriter {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.line);
        let text = text.trim_end();
        if !text.is_empty() {
            self.syslog.send(self.level, text);
        }
    }
}

impl<'a> MakeWriter<'a> for Syslog {
    type Writer = SyslogWriter;

    fn make_writer(&'a self) -> SyslogWriter {
        self.writer(Level::INFO)
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> SyslogWriter {
        self.writer(*meta.level())
    }
}

impl Syslog {
    fn writer(&self, level: Level) -> SyslogWriter {
        SyslogWriter {
            syslog: self.clone(),
            level,
            line: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::net::UnixDatagram;

    #[test]
    fn a_missing_socket_is_a_clear_error() {
        let formatter = Formatter3164::default();
        assert!(syslog::unix_custom(formatter, "/nonexistent/log").is_err());
    }

    #[test]
    fn each_line_is_one_record_with_its_severity() {
        let dir = std::env::temp_dir().join(format!("gearboxd-syslog-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("log");
        let _ = std::fs::remove_file(&path);
        let server = UnixDatagram::bind(&path).unwrap();
        let formatter = Formatter3164 {
            facility: Facility::LOG_USER,
            hostname: None,
            process: "gearboxd".into(),
            pid: 42,
        };
        let syslog = Syslog {
            connection: Arc::new(Mutex::new(syslog::unix_custom(formatter, &path).unwrap())),
        };
        let mut w = syslog.writer(Level::WARN);
        w.write_all(b"disk ").unwrap();
        w.write_all(b"slow\n").unwrap();
        drop(w);
        let mut buf = [0u8; 512];
        let n = server.recv(&mut buf).unwrap();
        let record = String::from_utf8_lossy(&buf[..n]);
        // <PRI> = facility user (1) * 8 + warning (4).
        assert!(record.starts_with("<12>"), "{record}");
        assert!(record.ends_with("gearboxd[42]: disk slow"), "{record}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
