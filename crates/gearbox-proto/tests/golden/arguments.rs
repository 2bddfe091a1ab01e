//! Golden cases for argument contents: NUL bytes in the opaque tail, the two CAN_DO_TIMEOUT
//! encodings, and ALL_YOURS.

use bytes::{Bytes, BytesMut};
use gearbox_proto::TimeoutValue::{BinarySeconds, Decimal};
use gearbox_proto::{ErrorCode, Incoming, Priority, Request, Response, ServerCodec, SubmitJob};
use tokio_util::codec::Decoder;

use super::{b, check_request, check_response};

#[test]
fn last_argument_keeps_its_nul_bytes() {
    let payload = b(b"\0a\0\0b\0");
    check_request(
        &Request::Submit(SubmitJob {
            function: b(b"f"),
            unique: b(b""),
            data: payload.clone(),
            priority: Priority::Normal,
            background: false,
        }),
        b"\0REQ\0\0\0\x07\0\0\0\x09f\0\0\0a\0\0b\0",
    );
    check_request(
        &Request::WorkComplete {
            handle: b(b"H:x:1"),
            data: payload.clone(),
        },
        b"\0REQ\0\0\0\x0d\0\0\0\x0cH:x:1\0\0a\0\0b\0",
    );
    check_request(
        &Request::CanDo {
            function: b(b"a\0b"),
        },
        b"\0REQ\0\0\0\x01\0\0\0\x03a\0b",
    );
    check_response(
        &Response::JobAssignUniq {
            handle: b(b"H:x:1"),
            function: b(b"f"),
            unique: b(b"u"),
            data: payload.clone(),
        },
        b"\0RES\0\0\0\x1f\0\0\0\x10H:x:1\0f\0u\0\0a\0\0b\0",
    );
    check_response(
        &Response::error(ErrorCode::QueueError, "full\0really"),
        b"\0RES\0\0\0\x13\0\0\0\x17QUEUE_ERROR\0full\0really",
    );
}

/// The function and timeout of a CAN_DO_TIMEOUT packet, decoded as the server would.
fn can_do_timeout(wire: &[u8]) -> (Bytes, Bytes) {
    let mut src = BytesMut::from(wire);
    match ServerCodec::default().decode(&mut src) {
        Ok(Some(Incoming::Request(Request::CanDoTimeout { function, timeout }))) => {
            (function, timeout)
        }
        other => panic!("CAN_DO_TIMEOUT did not decode: {other:?}"),
    }
}

#[test]
fn can_do_timeout_ascii_decimal_is_a_plain_number() {
    let (function, timeout) = can_do_timeout(b"\0REQ\0\0\0\x17\0\0\0\x0dreverse\x0030000");
    assert_eq!(function, b(b"reverse"));
    assert_eq!(Request::timeout_value(&timeout), Some(Decimal(30_000)));
    assert_eq!(Request::timeout_value(b"3"), Some(Decimal(3)));
    assert_eq!(Request::timeout_value(b"30000\0"), Some(Decimal(30_000)));
}

#[test]
fn can_do_timeout_binary_big_endian_is_seconds() {
    let (function, timeout) = can_do_timeout(b"\0REQ\0\0\0\x17\0\0\0\x0creverse\0\0\0\0\x05");
    assert_eq!(function, b(b"reverse"));
    assert_eq!(timeout, b(b"\0\0\0\x05"));
    assert_eq!(Request::timeout_value(&timeout), Some(BinarySeconds(5)));
    assert_eq!(
        Request::timeout_value(b"\0\0\x01\0"),
        Some(BinarySeconds(256))
    );
    assert_eq!(Request::timeout_value(b""), None);
    assert_eq!(Request::timeout_value(b"ten"), None);
}

#[test]
fn all_yours_parses() {
    let mut src = BytesMut::from(&b"\0REQ\0\0\0\x18\0\0\0\0"[..]);
    assert!(matches!(
        ServerCodec::default().decode(&mut src),
        Ok(Some(Incoming::Request(Request::AllYours)))
    ));
    assert!(src.is_empty());
}
