//! gearmand's error codes: the first argument of an `ERROR` packet, and the word after `ERR`
//! in an admin reply.

use std::fmt;

/// An error code the server sends, spelled on the wire as gearmand spells it.
///
/// [`Response::error`](crate::Response::error) takes one of these. A client reading `ERROR`
/// packets gets the code as raw bytes (a server may send codes not listed here); it can map
/// them back with [`ErrorCode::parse`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorCode {
    /// `ARGUMENT_TOO_LARGE`: a name, unique id or packet over its limit.
    ArgumentTooLarge,
    /// `INVALID_ARGUMENTS`: an argument that does not parse (a schedule; an admin command
    /// missing arguments).
    InvalidArguments,
    /// `INVALID_COMMAND`: a packet type the server does not accept.
    InvalidCommand,
    /// `INVALID_MAGIC`: a packet that starts with neither `\0REQ` nor `\0RES`.
    InvalidMagic,
    /// `INVALID_PACKET`: a packet with missing or malformed arguments.
    InvalidPacket,
    /// `JOB_NOT_FOUND`: a WORK_* packet for a job the worker does not hold.
    JobNotFound,
    /// `LOST_CONNECTION`: the connection failed while reading.
    LostConnection,
    /// `QUEUE_ERROR`: the job was not queued (queue full, store failed).
    QueueError,
    /// `SERVER_BUSY`: the connection limit is reached.
    ServerBusy,
    /// `SHUTDOWN`: the server is shutting down and takes no new jobs.
    Shutdown,
    /// `UNKNOWN_OPTION`: an OPTION_REQ the server does not know.
    UnknownOption,
    /// `CREATE_FUNCTION` (admin): `create function` with a name over the limit.
    CreateFunction,
    /// `PERMISSION_DENIED`: the connection's access rule does not allow the request (a
    /// submit, a CAN_DO, an admin command), or `shutdown` from a peer not on loopback.
    PermissionDenied,
    /// `UNKNOWN_COMMAND` (admin): an unknown command word.
    UnknownCommand,
    /// `UNKNOWN_ERROR` (admin): a malformed `cancel job`, or anything else unexpected.
    UnknownError,
    /// `UNKNOWN_JOB` (admin): `cancel job` with a handle the server does not hold.
    UnknownJob,
    /// `UNKNOWN_SHOW_ARGUMENTS` (admin): `show` followed by neither `jobs` nor
    /// `unique jobs`.
    UnknownShowArguments,
}

impl ErrorCode {
    /// Every code, in declaration order (a new code goes here too, or [`ErrorCode::parse`]
    /// will not know it).
    pub const ALL: [ErrorCode; 17] = [
        ErrorCode::ArgumentTooLarge,
        ErrorCode::InvalidArguments,
        ErrorCode::InvalidCommand,
        ErrorCode::InvalidMagic,
        ErrorCode::InvalidPacket,
        ErrorCode::JobNotFound,
        ErrorCode::LostConnection,
        ErrorCode::QueueError,
        ErrorCode::ServerBusy,
        ErrorCode::Shutdown,
        ErrorCode::UnknownOption,
        ErrorCode::CreateFunction,
        ErrorCode::PermissionDenied,
        ErrorCode::UnknownCommand,
        ErrorCode::UnknownError,
        ErrorCode::UnknownJob,
        ErrorCode::UnknownShowArguments,
    ];

    /// The code as sent on the wire, e.g. `"QUEUE_ERROR"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ArgumentTooLarge => "ARGUMENT_TOO_LARGE",
            ErrorCode::InvalidArguments => "INVALID_ARGUMENTS",
            ErrorCode::InvalidCommand => "INVALID_COMMAND",
            ErrorCode::InvalidMagic => "INVALID_MAGIC",
            ErrorCode::InvalidPacket => "INVALID_PACKET",
            ErrorCode::JobNotFound => "JOB_NOT_FOUND",
            ErrorCode::LostConnection => "LOST_CONNECTION",
            ErrorCode::QueueError => "QUEUE_ERROR",
            ErrorCode::ServerBusy => "SERVER_BUSY",
            ErrorCode::Shutdown => "SHUTDOWN",
            ErrorCode::UnknownOption => "UNKNOWN_OPTION",
            ErrorCode::CreateFunction => "CREATE_FUNCTION",
            ErrorCode::PermissionDenied => "PERMISSION_DENIED",
            ErrorCode::UnknownCommand => "UNKNOWN_COMMAND",
            ErrorCode::UnknownError => "UNKNOWN_ERROR",
            ErrorCode::UnknownJob => "UNKNOWN_JOB",
            ErrorCode::UnknownShowArguments => "UNKNOWN_SHOW_ARGUMENTS",
        }
    }

    /// The code as sent on the wire, as bytes.
    pub const fn as_bytes(self) -> &'static [u8] {
        self.as_str().as_bytes()
    }

    /// The code spelled `wire` (exactly, case included); `None` for a code not listed here.
    pub fn parse(wire: &[u8]) -> Option<ErrorCode> {
        ErrorCode::ALL.into_iter().find(|c| c.as_bytes() == wire)
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_parses_back_from_its_wire_text() {
        for code in ErrorCode::ALL {
            assert_eq!(ErrorCode::parse(code.as_bytes()), Some(code));
            assert_eq!(code.to_string(), code.as_str());
            let upper_snake = code
                .as_str()
                .bytes()
                .all(|b| b.is_ascii_uppercase() || b == b'_');
            assert!(upper_snake, "{code:?}");
        }
        assert_eq!(ErrorCode::parse(b"queue_error"), None);
        assert_eq!(ErrorCode::parse(b"NO_SUCH_CODE"), None);
    }
}
