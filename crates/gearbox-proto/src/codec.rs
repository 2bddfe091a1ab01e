//! tokio-util codecs: [`ServerCodec`] (requests and admin lines in, responses out) and
//! [`ClientCodec`] (responses in, requests out).
//!
//! Neither decoder trusts the peer: the body length is checked against the limit from the
//! header alone, before any memory is reserved, and admin lines are bounded too. Bodies are
//! handed out as zero-copy [`bytes::Bytes`] slices of the read buffer.

use bytes::{Buf, Bytes, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::admin::{parse_admin_line, AdminCommand};
use crate::packet::{Magic, PacketType, HEADER_LEN};
use crate::{ProtoError, Request, Response};

/// Default maximum packet body: 64 MiB.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024 * 1024;
/// Default maximum admin line: 8 KiB.
pub const DEFAULT_MAX_LINE: usize = 8 * 1024;

/// Most memory reserved ahead of a packet's body arriving.
const RESERVE_STEP: usize = 64 * 1024;

/// Limits a decoder enforces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest body a packet header may declare.
    pub max_body: usize,
    /// Longest admin text line, newline excluded.
    pub max_line: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_body: DEFAULT_MAX_BODY,
            max_line: DEFAULT_MAX_LINE,
        }
    }
}

/// One unit read by a server.
// `Request` is about 260 bytes (SUBMIT_JOB_SCHED holds eight `Bytes`). An `Incoming` lives only
// from the decoder to the dispatch `match`, so boxing it would cost an allocation per packet for
// no memory saved.
#[allow(clippy::large_enum_variant)]
#[derive(Debug)]
pub enum Incoming {
    /// A well-formed request.
    Request(Request),
    /// An admin text command.
    Admin(AdminCommand),
    /// A complete, correctly framed packet the server cannot accept (unknown or response-only
    /// type, wrong magic, missing arguments). Answer with ERROR and carry on.
    Rejected(ProtoError),
}

/// A raw packet header and body, before interpretation.
struct RawPacket {
    magic: Magic,
    kind: u32,
    body: Bytes,
}

/// Takes one complete binary packet off `src`, or `None` if more bytes are needed.
fn decode_raw(src: &mut BytesMut, max_body: usize) -> Result<Option<RawPacket>, ProtoError> {
    let Some(magic_bytes) = src.get(0..4) else {
        return Ok(None);
    };
    let magic_arr: [u8; 4] = magic_bytes.try_into().unwrap_or_default();
    let magic = Magic::from_bytes(magic_arr).ok_or(ProtoError::InvalidMagic(magic_arr))?;
    let Some(header) = src.get(4..HEADER_LEN) else {
        return Ok(None);
    };
    let kind = u32::from_be_bytes(header[0..4].try_into().unwrap_or_default());
    let len = u32::from_be_bytes(header[4..8].try_into().unwrap_or_default());
    let len = usize::try_from(len).unwrap_or(usize::MAX);
    let too_large = || ProtoError::BodyTooLarge {
        len: len as u64,
        max: max_body,
    };
    if len > max_body {
        return Err(too_large());
    }
    // Only overflows on 32-bit targets with a limit near `usize::MAX`.
    let total = HEADER_LEN.checked_add(len).ok_or_else(too_large)?;
    if src.len() < total {
        // Grow towards the declared size in steps, so a bare header cannot make us reserve
        // the whole (still within the limit) body before any of it has arrived.
        src.reserve((total - src.len()).min(RESERVE_STEP));
        return Ok(None);
    }
    src.advance(HEADER_LEN);
    let body = src.split_to(len).freeze();
    Ok(Some(RawPacket { magic, kind, body }))
}

/// Server side: decodes [`Incoming`] and encodes [`Response`].
#[derive(Debug, Clone, Default)]
pub struct ServerCodec {
    limits: Limits,
}

impl ServerCodec {
    /// A codec enforcing `limits`.
    pub fn new(limits: Limits) -> ServerCodec {
        ServerCodec { limits }
    }

    fn decode_line(&self, src: &mut BytesMut) -> Result<Option<Incoming>, ProtoError> {
        let max = self.limits.max_line;
        // A line holds at most `max` bytes, then an optional `\r`, then the `\n`.
        let window = &src[..src.len().min(max.saturating_add(2))];
        match memchr::memchr(b'\n', window) {
            Some(pos) => {
                let content = &window[..pos];
                if content.len() - usize::from(content.ends_with(b"\r")) > max {
                    return Err(ProtoError::LineTooLong { max });
                }
                let mut line = src.split_to(pos + 1).freeze();
                line.truncate(pos);
                Ok(Some(Incoming::Admin(parse_admin_line(line))))
            }
            None if src.len() > max.saturating_add(1) => Err(ProtoError::LineTooLong { max }),
            None => Ok(None),
        }
    }
}

impl Decoder for ServerCodec {
    type Item = Incoming;
    type Error = ProtoError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Incoming>, ProtoError> {
        match src.first() {
            None => Ok(None),
            Some(0) => {
                let Some(raw) = decode_raw(src, self.limits.max_body)? else {
                    return Ok(None);
                };
                if raw.magic != Magic::Req {
                    return Ok(Some(Incoming::Rejected(ProtoError::WrongMagic)));
                }
                let item = match PacketType::try_from(raw.kind) {
                    Err(n) => Incoming::Rejected(ProtoError::UnknownType(n)),
                    Ok(kind) => match Request::parse(kind, raw.body) {
                        Ok(req) => Incoming::Request(req),
                        Err(e) => Incoming::Rejected(e),
                    },
                };
                Ok(Some(item))
            }
            Some(_) => self.decode_line(src),
        }
    }
}

impl Encoder<&Response> for ServerCodec {
    type Error = ProtoError;

    fn encode(&mut self, item: &Response, dst: &mut BytesMut) -> Result<(), ProtoError> {
        item.encode(dst);
        Ok(())
    }
}

/// Client side: decodes [`Response`] and encodes [`Request`].
///
/// Every decoding problem is an error: a client has no use for a server it cannot understand.
#[derive(Debug, Clone, Default)]
pub struct ClientCodec {
    limits: Limits,
}

impl ClientCodec {
    /// A codec enforcing `limits`.
    pub fn new(limits: Limits) -> ClientCodec {
        ClientCodec { limits }
    }
}

impl Decoder for ClientCodec {
    type Item = Response;
    type Error = ProtoError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<Response>, ProtoError> {
        let Some(raw) = decode_raw(src, self.limits.max_body)? else {
            return Ok(None);
        };
        if raw.magic != Magic::Res {
            return Err(ProtoError::WrongMagic);
        }
        let kind = PacketType::try_from(raw.kind).map_err(ProtoError::UnknownType)?;
        Response::parse(kind, raw.body).map(Some)
    }
}

impl Encoder<&Request> for ClientCodec {
    type Error = ProtoError;

    fn encode(&mut self, item: &Request, dst: &mut BytesMut) -> Result<(), ProtoError> {
        item.encode(dst);
        Ok(())
    }
}
