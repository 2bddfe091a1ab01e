//! The decode loop shared by the arbitrary-input proptest (`tests/roundtrip.rs`), the replay of
//! the fuzz corpus (`tests/fuzz_corpus.rs`) and the fuzz target (`fuzz/fuzz_targets/decode.rs`,
//! which includes this file by path).
//!
//! It feeds bytes to [`ServerCodec`] and [`ClientCodec`], under the default limits and under
//! tiny ones, and checks what every decoder must guarantee whatever the input: no panic; an item
//! or a non-fatal error always consumes input; "need more bytes" consumes nothing and is never
//! said while the buffer already holds more than the largest packet or line the limits allow; a
//! fatal error leaves the buffer alone; and the same bytes decode to the same items whether they
//! arrive at once or in chunks. Because every step either consumes input or stops, the loop
//! always ends.

use std::fmt::Debug;

use bytes::BytesMut;
use gearbox_proto::{ClientCodec, Limits, ProtoError, ServerCodec, HEADER_LEN};
use tokio_util::codec::Decoder;

/// Limits small enough that short inputs run into them.
const TINY: Limits = Limits {
    max_body: 64,
    max_line: 32,
};

/// Splits `data` into consecutive pieces whose lengths cycle through `sizes` (0 counts as 1).
pub fn chunks<'a>(data: &'a [u8], sizes: &'a [usize]) -> impl Iterator<Item = &'a [u8]> + 'a {
    let mut rest = data;
    let mut sizes = sizes.iter().copied().cycle();
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let n = sizes.next().unwrap_or(usize::MAX).clamp(1, rest.len());
        let (piece, tail) = rest.split_at(n);
        rest = tail;
        Some(piece)
    })
}

/// Runs `data` through both codecs under both sets of limits, whole and in pieces whose lengths
/// are taken from the first byte. Panics if a guarantee is broken.
pub fn exercise(data: &[u8]) {
    let size = data.first().map_or(1, |&b| usize::from(b % 32) + 1);
    exercise_chunked(data, &[size]);
}

/// Like [`exercise`], with the piece lengths given (cycled; 0 counts as 1).
pub fn exercise_chunked(data: &[u8], sizes: &[usize]) {
    for limits in [Limits::default(), TINY] {
        let whole = feed(ServerCodec::new(limits), limits, data, &[usize::MAX]);
        let pieces = feed(ServerCodec::new(limits), limits, data, sizes);
        assert_eq!(
            whole, pieces,
            "server: whole input and chunked input disagree"
        );
        let byte_by_byte = feed(ServerCodec::new(limits), limits, data, &[1]);
        assert_eq!(
            whole, byte_by_byte,
            "server: whole input and single bytes disagree"
        );

        let whole = feed(ClientCodec::new(limits), limits, data, &[usize::MAX]);
        let pieces = feed(ClientCodec::new(limits), limits, data, sizes);
        assert_eq!(
            whole, pieces,
            "client: whole input and chunked input disagree"
        );
    }
}

/// What a decoder made of a byte stream: each item or non-fatal error, then the fatal error
/// that stopped it, if any (as `Debug` text, so any codec's output compares).
#[derive(Debug, PartialEq, Eq)]
struct Transcript {
    items: Vec<String>,
    fatal: Option<String>,
}

/// The most bytes a decoder may hold while still asking for more.
fn longest_partial(limits: Limits) -> usize {
    (HEADER_LEN + limits.max_body - 1).max(limits.max_line.saturating_add(1))
}

/// Appends the pieces of `data` one by one, decoding as far as possible after each.
fn feed<D>(mut codec: D, limits: Limits, data: &[u8], sizes: &[usize]) -> Transcript
where
    D: Decoder<Error = ProtoError>,
    D::Item: Debug,
{
    let mut buf = BytesMut::new();
    let mut out = Transcript {
        items: Vec::new(),
        fatal: None,
    };
    for piece in chunks(data, sizes) {
        buf.extend_from_slice(piece);
        if let Some(fatal) = drain(&mut codec, limits, &mut buf, &mut out.items) {
            out.fatal = Some(format!("{fatal:?}"));
            break;
        }
    }
    out
}

/// Decodes until the codec asks for more bytes (`None`) or fails fatally (`Some(error)`).
fn drain<D>(
    codec: &mut D,
    limits: Limits,
    buf: &mut BytesMut,
    items: &mut Vec<String>,
) -> Option<ProtoError>
where
    D: Decoder<Error = ProtoError>,
    D::Item: Debug,
{
    loop {
        let before = buf.len();
        match codec.decode(buf) {
            Ok(Some(item)) => {
                assert!(
                    buf.len() < before,
                    "{item:?} was decoded without consuming input"
                );
                items.push(format!("{item:?}"));
            }
            Ok(None) => {
                assert_eq!(
                    buf.len(),
                    before,
                    "asked for more bytes after consuming some"
                );
                assert!(
                    buf.len() <= longest_partial(limits),
                    "holds {} bytes and still asks for more under {limits:?}",
                    buf.len()
                );
                return None;
            }
            Err(e) if e.is_fatal() => {
                assert_eq!(buf.len(), before, "fatal {e:?} consumed input");
                return Some(e);
            }
            Err(e) => {
                assert!(buf.len() < before, "non-fatal {e:?} consumed nothing");
                items.push(format!("error {e:?}"));
            }
        }
    }
}
