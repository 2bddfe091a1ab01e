//! Errors of the protocol layer.

use crate::packet::PacketType;
use crate::ErrorCode;

/// Everything that can be wrong with bytes read from a peer.
///
/// [`ProtoError::code`] gives the code that goes into an `ERROR` packet (gearmand's names) and
/// [`ProtoError::is_fatal`] says whether the stream can still be trusted afterwards.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProtoError {
    /// The first four bytes of a packet are neither `\0REQ` nor `\0RES`.
    #[error("invalid magic bytes {0:02x?}: expected \\0REQ")]
    InvalidMagic([u8; 4]),
    /// A `\0RES` packet was sent to the server (or `\0REQ` to a client).
    #[error("packet has the wrong magic for this direction")]
    WrongMagic,
    /// The packet type number is not a Gearman packet.
    #[error("unknown packet type {0}")]
    UnknownType(u32),
    /// A known packet type that this side does not accept (e.g. a response sent to the server).
    #[error("unexpected packet {} for this direction", .0.name())]
    UnexpectedType(PacketType),
    /// The body has fewer arguments than the packet type needs.
    #[error("packet {} needs {expected} arguments, got {got}", kind.name())]
    MissingArguments {
        /// The packet type.
        kind: PacketType,
        /// Arguments the type needs.
        expected: usize,
        /// Arguments found.
        got: usize,
    },
    /// A numeric argument is not a number.
    #[error("packet {} has a malformed numeric argument", .0.name())]
    BadNumber(PacketType),
    /// The header declares a body larger than the configured maximum.
    #[error("packet body of {len} bytes exceeds the limit of {max} bytes")]
    BodyTooLarge {
        /// Declared body length.
        len: u64,
        /// Configured maximum.
        max: usize,
    },
    /// An admin text line grew past the configured maximum without a newline.
    #[error("admin line longer than {max} bytes")]
    LineTooLong {
        /// Configured maximum.
        max: usize,
    },
    /// The connection failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl ProtoError {
    /// The code for an `ERROR` packet, as gearmand names it.
    pub fn code(&self) -> ErrorCode {
        match self {
            ProtoError::InvalidMagic(_) | ProtoError::WrongMagic => ErrorCode::InvalidMagic,
            ProtoError::UnknownType(_) | ProtoError::UnexpectedType(_) => ErrorCode::InvalidCommand,
            ProtoError::MissingArguments { .. } | ProtoError::BadNumber(_) => {
                ErrorCode::InvalidPacket
            }
            ProtoError::BodyTooLarge { .. } | ProtoError::LineTooLong { .. } => {
                ErrorCode::ArgumentTooLarge
            }
            ProtoError::Io(_) => ErrorCode::LostConnection,
        }
    }

    /// The text for an `ERROR` packet: gearmand's wording where it has one, so clients that
    /// match on it keep working; otherwise this error's own message.
    pub fn wire_text(&self) -> String {
        match self {
            ProtoError::UnexpectedType(_) => "Command not expected".into(),
            ProtoError::WrongMagic => "Request magic expected".into(),
            other => other.to_string(),
        }
    }

    /// Whether the byte stream is out of step after this error, so the connection must close.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ProtoError::InvalidMagic(_)
                | ProtoError::BodyTooLarge { .. }
                | ProtoError::LineTooLong { .. }
                | ProtoError::Io(_)
        )
    }
}
