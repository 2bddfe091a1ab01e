//! libgearman's error messages, as the C `gearman` prints them after `gearman: LABEL : `.
//!
//! libgearman formats an error as `FUNCTION(GEARMAN_CODE) TEXT -> FILE:LINE: pid(PID)`, naming
//! the C function and source line that raised it; a failed `getaddrinfo` is just
//! `TEXT pid(PID)`, and a code that carries no message (`WORK_FAIL`, `IO_WAIT`, ...) is printed
//! as its bare name. Scripts grep these lines (for `GEARMAN_QUEUE_ERROR`, ...), so they are
//! reproduced byte for byte, positions included (those of libgearman 1.1.20).

use std::fmt;

/// libgearman's message buffer (`GEARMAN_MAX_ERROR_SIZE`); longer messages are cut to one
/// byte less.
const MAX_ERROR: usize = 2048;

/// libgearman's limit on a function name (`GEARMAN_FUNCTION_MAX_SIZE`).
const MAX_FUNCTION: usize = 512;

/// Error codes a server may send in an ERROR packet that libgearman knows by name
/// (`GEARMAN_<CODE>`); any other code is reported as `GEARMAN_SERVER_ERROR`.
const KNOWN_CODES: &[&str] = &[
    "SUCCESS",
    "ARGUMENT_TOO_LARGE",
    "COULD_NOT_CONNECT",
    "DATA_TOO_LARGE",
    "ECHO_DATA_CORRUPTION",
    "ERRNO",
    "EVENT",
    "FLUSH_DATA",
    "GETADDRINFO",
    "IGNORE_PACKET",
    "INVALID_ARGUMENT",
    "INVALID_COMMAND",
    "INVALID_FUNCTION_NAME",
    "INVALID_MAGIC",
    "INVALID_PACKET",
    "INVALID_WORKER_FUNCTION",
    "IN_PROGRESS",
    "IO_WAIT",
    "JOB_EXISTS",
    "JOB_QUEUE_FULL",
    "LOST_CONNECTION",
    "MEMORY_ALLOCATION_FAILURE",
    "NEED_WORKLOAD_FN",
    "NOT_CONNECTED",
    "NOT_FLUSHING",
    "NO_ACTIVE_FDS",
    "NO_JOBS",
    "NO_REGISTERED_FUNCTION",
    "NO_REGISTERED_FUNCTIONS",
    "NO_SERVERS",
    "PAUSE",
    "PIPE_EOF",
    "PTHREAD",
    "QUEUE_ERROR",
    "RECV_IN_PROGRESS",
    "SEND_BUFFER_TOO_SMALL",
    "SEND_IN_PROGRESS",
    "SERVER_ERROR",
    "SHUTDOWN",
    "SHUTDOWN_GRACEFUL",
    "TIMEOUT",
    "TOO_MANY_ARGS",
    "UNEXPECTED_PACKET",
    "UNKNOWN_OPTION",
    "UNKNOWN_STATE",
    "WORK_DATA",
    "WORK_ERROR",
    "WORK_EXCEPTION",
    "WORK_FAIL",
    "WORK_STATUS",
    "WORK_WARNING",
    "INVALID_SERVER_OPTION",
    "JOB_NOT_FOUND",
];

/// Codes for which libgearman records no message: only the code's name is printed.
const SILENT_CODES: &[&str] = &[
    "IO_WAIT",
    "INVALID_SERVER_OPTION",
    "WORK_EXCEPTION",
    "WORK_FAIL",
    "SHUTDOWN_GRACEFUL",
    "SHUTDOWN",
];

/// One libgearman error message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LibError(String);

impl LibError {
    /// `FUNCTION(CODE) TEXT -> POSITION: pid(PID)`.
    pub fn at(function: &str, code: &str, text: String, position: &str) -> LibError {
        let text = cut(text);
        LibError(cut(format!(
            "{function}({code}) {text} -> {position}: pid({})",
            std::process::id()
        )))
    }

    /// A failed `getaddrinfo`: `TEXT pid(PID)`.
    pub fn getaddrinfo(text: String) -> LibError {
        LibError(cut(format!("{} pid({})", cut(text), std::process::id())))
    }

    /// A server that refused the connection (every address of it).
    pub fn could_not_connect(server: &str) -> LibError {
        LibError::at(
            "flush",
            "GEARMAN_COULD_NOT_CONNECT",
            format!("Connection to {server} failed"),
            "libgearman/connection.cc:724",
        )
    }

    /// The server closed the connection while a reply was awaited.
    pub fn lost_connection() -> LibError {
        LibError::at(
            "recv_socket",
            "GEARMAN_LOST_CONNECTION",
            "lost connection to server (EOF)".into(),
            "libgearman/connection.cc:1206",
        )
    }

    /// `-t` expired with nothing to do on `servers` connections.
    pub fn timeout(servers: usize, pipe: bool) -> LibError {
        LibError::at(
            "gearman_wait",
            "GEARMAN_TIMEOUT",
            format!(
                "timeout reached, {servers} servers were poll(), no servers were available, \
                 pipe:{pipe}"
            ),
            "libgearman/universal.cc:346",
        )
    }

    /// An ERROR packet answering a submit; `None` when libgearman treats the code as
    /// success (`SUCCESS`) and prints nothing.
    pub fn server(code: &[u8], text: &[u8]) -> Option<LibError> {
        // libgearman drops one trailing NUL from the code, and prints the text up to a NUL.
        let code = code.strip_suffix(b"\0").unwrap_or(code);
        let printed_code = upto_nul(code);
        let known = KNOWN_CODES.iter().find(|c| c.as_bytes() == code);
        match known {
            Some(&"SUCCESS") => None,
            Some(c) if SILENT_CODES.contains(c) => Some(LibError(format!("GEARMAN_{c}"))),
            _ => {
                let gearman_code = match known {
                    Some(c) => format!("GEARMAN_{c}"),
                    None => "GEARMAN_SERVER_ERROR".into(),
                };
                Some(LibError::at(
                    "_client_run_tasks",
                    &gearman_code,
                    format!("{printed_code}:{}", upto_nul(text)),
                    "libgearman/client.cc:1603",
                ))
            }
        }
    }

    /// libgearman's check of a function name (empty, or longer than 512 bytes), raised by
    /// `function` at the source lines `at` (too long, invalid); `None` when the name is fine.
    pub fn bad_function(name: &str, function: &str, at: [&str; 2]) -> Option<LibError> {
        let (text, position) = if name.len() > MAX_FUNCTION {
            ("function name longer then GEARMAN_MAX_FUNCTION_SIZE", at[0])
        } else if name.is_empty() {
            ("invalid function", at[1])
        } else {
            return None;
        };
        Some(LibError::at(
            function,
            "GEARMAN_INVALID_ARGUMENT",
            text.into(),
            position,
        ))
    }

    /// The line the C tool prints: `gearman: LABEL : MESSAGE\n`.
    pub fn line(&self, label: &str) -> String {
        format!("gearman: {label} : {}\n", self.0)
    }
}

impl fmt::Display for LibError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn upto_nul(b: &[u8]) -> String {
    let end = b.iter().position(|c| *c == 0).unwrap_or(b.len());
    String::from_utf8_lossy(&b[..end]).into_owned()
}

/// `vsnprintf` into libgearman's buffer: at most `MAX_ERROR - 1` bytes.
fn cut(mut s: String) -> String {
    if s.len() >= MAX_ERROR {
        let mut end = MAX_ERROR - 1;
        while !s.is_char_boundary(end) {
            end -= 1;
        }
        s.truncate(end);
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_pid(e: &LibError) -> String {
        e.to_string().replace(&std::process::id().to_string(), "N")
    }

    #[test]
    fn server_errors_carry_the_code() {
        let e = LibError::server(b"QUEUE_ERROR", b"Job queue is full").unwrap();
        assert_eq!(
            no_pid(&e),
            "_client_run_tasks(GEARMAN_QUEUE_ERROR) QUEUE_ERROR:Job queue is full -> \
             libgearman/client.cc:1603: pid(N)"
        );
        let e = LibError::server(b"NOPE", b"x\0y").unwrap();
        assert!(no_pid(&e).starts_with("_client_run_tasks(GEARMAN_SERVER_ERROR) NOPE:x -> "));
        assert_eq!(
            LibError::server(b"WORK_FAIL", b"").unwrap().to_string(),
            "GEARMAN_WORK_FAIL"
        );
        assert_eq!(LibError::server(b"SUCCESS", b""), None);
        let long = LibError::server(b"X", &[b'a'; 5000]).unwrap();
        assert_eq!(long.to_string().len(), MAX_ERROR - 1);
    }
}
