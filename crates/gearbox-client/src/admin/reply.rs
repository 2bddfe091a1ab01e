//! Typed admin replies and their byte-exact parsers.
//!
//! gearmand's formats (gearbox prints the same), one record per line, each listing ending in
//! a line `.`:
//!
//! | command | line |
//! |---|---|
//! | `status` | `FUNC\tTOTAL\tRUNNING\tAVAILABLE_WORKERS` |
//! | `prioritystatus` | `FUNC\tHIGH\tNORMAL\tLOW\tWORKERS` |
//! | `workers` | `FD IP CLIENT_ID : FUNC FUNC ...` (just `FD IP CLIENT_ID :` without functions) |
//! | `show jobs` | `HANDLE\tRETRIES\tIGNORED\tQUEUED` |
//! | `show unique jobs` | `UNIQUE` |
//!
//! Names are kept as the exact bytes the server printed ([`Bytes`] compares with `&str`).
//! Numeric columns are taken from the right, so a function name holding a tab still parses.
//! What the format itself cannot tell apart is not guessed at: a client id containing ` :`
//! ends at its first ` :`, function names are split on spaces in `workers`, and a unique id
//! that is exactly `.` ends a `show unique jobs` listing early (as it does for every client).

use bytes::Bytes;

/// One line of `status`: a function's jobs and workers.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FunctionStatus {
    /// Function name.
    pub function: Bytes,
    /// Jobs queued or running (gearmand's TOTAL column).
    pub total: u64,
    /// Jobs a worker is running.
    pub running: u64,
    /// Registered workers (CAN_DO registrations; a worker that registered twice counts twice).
    pub workers: u64,
}

impl FunctionStatus {
    /// Jobs waiting for a worker: `total - running`.
    ///
    /// ```
    /// # use gearbox_client::admin::FunctionStatus;
    /// let s = FunctionStatus { function: "f".into(), total: 5, running: 2, workers: 1 };
    /// assert_eq!(s.queued(), 3);
    /// ```
    pub fn queued(&self) -> u64 {
        self.total.saturating_sub(self.running)
    }
}

/// One line of `prioritystatus`: a function's queued (not running) jobs by priority.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct PriorityStatus {
    /// Function name.
    pub function: Bytes,
    /// Queued HIGH jobs.
    pub high: u64,
    /// Queued NORMAL jobs (EPOCH jobs count here).
    pub normal: u64,
    /// Queued LOW jobs.
    pub low: u64,
    /// Registered workers.
    pub workers: u64,
}

/// One line of `workers`: a connection (clients are listed too, without functions).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct WorkerInfo {
    /// The server's file descriptor (gearmand) or connection number (gearbox) for it.
    pub fd: Bytes,
    /// The peer's IP address as the server prints it.
    pub ip: Bytes,
    /// The id set with SET_CLIENT_ID, or `-` when none was set.
    pub client_id: Bytes,
    /// Registered functions, in the server's order.
    pub functions: Vec<Bytes>,
}

/// One line of `show jobs`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct JobInfo {
    /// Job handle.
    pub handle: Bytes,
    /// Times the job went back to the queue after its worker was lost.
    pub retries: u64,
    /// Whether the job will be skipped (cancelled, or a foreground job whose clients left).
    pub ignored: bool,
    /// gearmand's JOB_QUEUED column: 1 for a background job (0 once cancelled), 0 for a
    /// foreground one.
    pub background: bool,
}

/// How to limit a function's queue with `maxqueue`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MaxQueue {
    /// No limit (`maxqueue FUNC`).
    #[default]
    Unlimited,
    /// One limit for every priority (`maxqueue FUNC N`); 0 means unlimited.
    All(u32),
    /// A limit per submitted priority (`maxqueue FUNC HIGH NORMAL LOW`), each compared with
    /// the function's total job count by gearmand; 0 means unlimited.
    ByPriority {
        /// Limit for HIGH submits.
        high: u32,
        /// Limit for NORMAL submits.
        normal: u32,
        /// Limit for LOW submits.
        low: u32,
    },
}

impl MaxQueue {
    /// The arguments after the function name, each with a leading space.
    pub(crate) fn args(self) -> String {
        match self {
            MaxQueue::Unlimited => String::new(),
            MaxQueue::All(n) => format!(" {n}"),
            MaxQueue::ByPriority { high, normal, low } => format!(" {high} {normal} {low}"),
        }
    }
}

/// Why a reply line did not parse: the line (lossy UTF-8) and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BadLine {
    pub line: String,
    pub why: &'static str,
}

pub(crate) type Parsed<T> = Result<T, BadLine>;

pub(crate) fn bad(line: &[u8], why: &'static str) -> BadLine {
    BadLine {
        line: String::from_utf8_lossy(line).into_owned(),
        why,
    }
}

/// An unsigned decimal as gearmand prints it: digits only.
pub(crate) fn number(field: &[u8], line: &[u8]) -> Parsed<u64> {
    if field.is_empty() || !field.iter().all(u8::is_ascii_digit) {
        return Err(bad(line, "a count column is not a decimal number"));
    }
    std::str::from_utf8(field)
        .ok()
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| bad(line, "a count column is out of range"))
}

/// A 0/1 column.
fn flag(field: &[u8], line: &[u8]) -> Parsed<bool> {
    match field {
        b"0" => Ok(false),
        b"1" => Ok(true),
        _ => Err(bad(line, "a flag column is not 0 or 1")),
    }
}

/// Splits `line` into a leading name and `n` tab-separated columns taken from the right.
pub(crate) fn name_and_columns(line: &[u8], n: usize) -> Parsed<(&[u8], Vec<&[u8]>)> {
    let mut parts: Vec<&[u8]> = line.rsplitn(n + 1, |b| *b == b'\t').collect();
    if parts.len() != n + 1 {
        return Err(bad(line, "too few tab-separated columns"));
    }
    let name = parts.pop().unwrap_or_default();
    parts.reverse();
    Ok((name, parts))
}

/// Parses one `status` line (without its `\n`).
pub(crate) fn status_line(line: &[u8]) -> Parsed<FunctionStatus> {
    let (name, c) = name_and_columns(line, 3)?;
    Ok(FunctionStatus {
        function: Bytes::copy_from_slice(name),
        total: number(c[0], line)?,
        running: number(c[1], line)?,
        workers: number(c[2], line)?,
    })
}

/// Parses one `prioritystatus` line.
pub(crate) fn priority_line(line: &[u8]) -> Parsed<PriorityStatus> {
    let (name, c) = name_and_columns(line, 4)?;
    Ok(PriorityStatus {
        function: Bytes::copy_from_slice(name),
        high: number(c[0], line)?,
        normal: number(c[1], line)?,
        low: number(c[2], line)?,
        workers: number(c[3], line)?,
    })
}

/// Parses one `show jobs` line.
pub(crate) fn job_line(line: &[u8]) -> Parsed<JobInfo> {
    let (handle, c) = name_and_columns(line, 3)?;
    Ok(JobInfo {
        handle: Bytes::copy_from_slice(handle),
        retries: number(c[0], line)?,
        ignored: flag(c[1], line)?,
        background: flag(c[2], line)?,
    })
}

/// Parses one `workers` line: `FD IP CLIENT_ID :` then ` FUNC` per function.
pub(crate) fn worker_line(line: &[u8]) -> Parsed<WorkerInfo> {
    let space = |from: usize| {
        line[from..]
            .iter()
            .position(|b| *b == b' ')
            .map(|p| p + from)
            .ok_or_else(|| bad(line, "expected \"FD IP CLIENT_ID :\""))
    };
    let fd_end = space(0)?;
    let ip_end = space(fd_end + 1)?;
    let id_start = ip_end + 1;
    // The id ends at the first " :" that ends the line or is followed by a space.
    let sep = (id_start..line.len().saturating_sub(1))
        .find(|&i| {
            line[i] == b' ' && line[i + 1] == b':' && (i + 2 == line.len() || line[i + 2] == b' ')
        })
        .ok_or_else(|| bad(line, "missing \" :\" after the client id"))?;
    let functions = line[sep + 2..]
        .split(|b| *b == b' ')
        .filter(|f| !f.is_empty())
        .map(Bytes::copy_from_slice)
        .collect();
    Ok(WorkerInfo {
        fd: Bytes::copy_from_slice(&line[..fd_end]),
        ip: Bytes::copy_from_slice(&line[fd_end + 1..ip_end]),
        client_id: Bytes::copy_from_slice(&line[id_start..sep]),
        functions,
    })
}

/// Splits a listing (every line ending in `\n`, the last one `.\n`) into its record lines,
/// without their `\n`.
pub(crate) fn listing_lines(reply: &[u8]) -> impl Iterator<Item = &[u8]> {
    let body = reply.strip_suffix(b".\n").unwrap_or(reply);
    body.split_inclusive(|b| *b == b'\n')
        .map(|l| l.strip_suffix(b"\n").unwrap_or(l))
}

/// The text of an `OK <text>\n` reply, or `None` if the reply is not one.
pub(crate) fn ok_text(reply: &[u8]) -> Option<&[u8]> {
    let rest = reply.strip_prefix(b"OK ")?;
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
    Some(rest.strip_suffix(b"\r").unwrap_or(rest))
}

/// Whether a one-line reply is gearmand's bare `OK\r\n` (or `OK\n`).
pub(crate) fn is_ok(reply: &[u8]) -> bool {
    reply == b"OK\r\n" || reply == b"OK\n"
}

/// The text after `ERR ` of an error reply, without its line ending.
pub(crate) fn err_text(reply: &[u8]) -> Option<&[u8]> {
    let rest = reply.strip_prefix(b"ERR")?;
    let rest = rest.strip_prefix(b" ").unwrap_or(rest);
    let rest = rest.strip_suffix(b"\n").unwrap_or(rest);
    Some(rest.strip_suffix(b"\r").unwrap_or(rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_take_counts_from_the_right() {
        assert_eq!(
            status_line(b"zeta\t1\t1\t1").unwrap(),
            FunctionStatus {
                function: "zeta".into(),
                total: 1,
                running: 1,
                workers: 1
            }
        );
        let odd = status_line(b"a\tb\t10\t0\t2").unwrap();
        assert_eq!(
            (odd.function, odd.total, odd.workers),
            ("a\tb".into(), 10, 2)
        );
        assert_eq!(status_line(b"\t0\t0\t0").unwrap().function, "");
        assert!(status_line(b"f\t1\t2").is_err());
        assert!(status_line(b"f\t1\tx\t2").is_err());
        assert!(status_line(b"f\t-1\t0\t2").is_err());
    }

    #[test]
    fn priority_and_job_lines() {
        let p = priority_line(b"pf\t3\t3\t4\t0").unwrap();
        assert_eq!((p.high, p.normal, p.low, p.workers), (3, 3, 4, 0));
        let j = job_line(b"H:vm:2\t1\t0\t1").unwrap();
        assert_eq!(
            j,
            JobInfo {
                handle: "H:vm:2".into(),
                retries: 1,
                ignored: false,
                background: true
            }
        );
        assert!(job_line(b"H:vm:2\t1\t2\t1").is_err());
    }

    #[test]
    fn worker_lines_with_and_without_functions() {
        let w = worker_line(b"38 127.0.0.1 wid1 : a_fn b_fn zeta").unwrap();
        assert_eq!(w.fd, "38");
        assert_eq!(w.ip, "127.0.0.1");
        assert_eq!(w.client_id, "wid1");
        assert_eq!(w.functions, vec!["a_fn", "b_fn", "zeta"]);
        let c = worker_line(b"39 ::1 - :").unwrap();
        assert_eq!((c.ip, c.client_id), ("::1".into(), "-".into()));
        assert!(c.functions.is_empty());
        let spaced = worker_line(b"7 1.2.3.4 my id : f").unwrap();
        assert_eq!(spaced.client_id, "my id");
        let colon = worker_line(b"7 1.2.3.4 a:b : f").unwrap();
        assert_eq!(colon.client_id, "a:b");
        assert!(worker_line(b"7 1.2.3.4").is_err());
        assert!(worker_line(b"7 1.2.3.4 id").is_err());
    }

    #[test]
    fn listings_and_one_line_replies() {
        let lines: Vec<&[u8]> = listing_lines(b"a\t0\t0\t0\n\nb\t1\t0\t0\n.\n").collect();
        assert_eq!(lines, vec![&b"a\t0\t0\t0"[..], b"", b"b\t1\t0\t0"]);
        assert_eq!(listing_lines(b".\n").count(), 0);
        assert_eq!(ok_text(b"OK 1.1.20+ds\n"), Some(&b"1.1.20+ds"[..]));
        assert_eq!(ok_text(b"OK\r\n"), None);
        assert!(is_ok(b"OK\r\n"));
        assert_eq!(err_text(b"ERR UNKNOWN_JOB\r\n"), Some(&b"UNKNOWN_JOB"[..]));
        assert_eq!(err_text(b"OK\r\n"), None);
    }

    #[test]
    fn maxqueue_arguments() {
        assert_eq!(MaxQueue::Unlimited.args(), "");
        assert_eq!(MaxQueue::All(5).args(), " 5");
        let p = MaxQueue::ByPriority {
            high: 1,
            normal: 2,
            low: 3,
        };
        assert_eq!(p.args(), " 1 2 3");
    }
}
