//! Splitting a packet body into its NUL-separated arguments without copying.

use bytes::Bytes;

use crate::{PacketType, ProtoError};

/// Splits `body` into exactly `N` arguments: `N - 1` NUL-terminated ones and the opaque tail.
///
/// A body with fewer separators than needed is [`ProtoError::MissingArguments`]. Each argument
/// is a zero-copy slice of `body`.
pub(crate) fn split<const N: usize>(
    kind: PacketType,
    body: &Bytes,
) -> Result<[Bytes; N], ProtoError> {
    let mut out: [Bytes; N] = std::array::from_fn(|_| Bytes::new());
    let mut start = 0usize;
    for (i, slot) in out.iter_mut().enumerate() {
        let rest = body.get(start..).unwrap_or_default();
        if i + 1 == N {
            *slot = body.slice(start..);
            break;
        }
        match memchr::memchr(0, rest) {
            Some(pos) => {
                *slot = body.slice(start..start + pos);
                start += pos + 1;
            }
            None => {
                return Err(ProtoError::MissingArguments {
                    kind,
                    expected: N,
                    got: i + 1,
                });
            }
        }
    }
    Ok(out)
}

/// Parses an ASCII decimal argument (surrounding spaces allowed), as a `u64`.
pub(crate) fn parse_u64(kind: PacketType, arg: &[u8]) -> Result<u64, ProtoError> {
    std::str::from_utf8(arg)
        .ok()
        .map(str::trim)
        .and_then(|s| s.parse::<u64>().ok())
        .ok_or(ProtoError::BadNumber(kind))
}
