//! Standard output the way the C `gearman` produces it, ordering included: job data is
//! written straight to the file descriptor (`write(2)`), while `printf` text (`Task created`,
//! `N% Complete`, `-P` prefixes) goes through C stdio's buffer, which is line-buffered on a
//! terminal and otherwise flushed only when full (4 KiB), on `fflush` (the C tool flushes
//! after each `-P` data prefix) and at exit. So with output to a pipe, progress lines
//! appear after the data written before them, exactly as the C tool's do.

use std::io::{IsTerminal, Write};

/// glibc's buffer size for pipes and files.
const BUFSIZ: usize = 4096;

/// C's `stdout`, as the `gearman` tool uses it.
#[derive(Debug)]
pub struct CStdout {
    buf: Vec<u8>,
    line_buffered: bool,
}

impl Default for CStdout {
    fn default() -> Self {
        CStdout::new(std::io::stdout().is_terminal())
    }
}

impl CStdout {
    /// A stdout that is line-buffered (a terminal) or fully buffered.
    pub fn new(line_buffered: bool) -> CStdout {
        CStdout {
            buf: Vec::new(),
            line_buffered,
        }
    }

    /// `printf`: buffered text.
    pub fn printf(&mut self, text: &[u8]) {
        self.buf.extend_from_slice(text);
        if (self.line_buffered && text.contains(&b'\n')) || self.buf.len() >= BUFSIZ {
            self.fflush();
        }
    }

    /// `write(1, ...)`: straight out, ahead of anything still buffered.
    pub fn write(&mut self, data: &[u8]) {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(data);
        let _ = out.flush();
    }

    /// `fflush(stdout)`.
    pub fn fflush(&mut self) {
        if !self.buf.is_empty() {
            let buf = std::mem::take(&mut self.buf);
            self.write(&buf);
        }
    }

    /// What is still buffered (for tests).
    pub fn pending(&self) -> &[u8] {
        &self.buf
    }
}

impl Drop for CStdout {
    fn drop(&mut self) {
        self.fflush();
    }
}

/// `write(2, ...)`: standard error is unbuffered.
pub fn ewrite(data: &[u8]) {
    let mut e = std::io::stderr().lock();
    let _ = e.write_all(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printf_waits_unless_line_buffered_or_full() {
        let mut full = CStdout::new(false);
        full.printf(b"50% Complete\n");
        assert_eq!(full.pending(), b"50% Complete\n");
        let mut line = CStdout::new(true);
        line.printf(b"f: ");
        assert_eq!(line.pending(), b"f: ");
        std::mem::forget(line); // do not print in tests
        std::mem::forget(full);
    }
}
