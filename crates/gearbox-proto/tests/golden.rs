//! Golden bytes for every packet type, written out by hand from the protocol table.
//!
//! Each case encodes a typed value, compares it with a literal byte string, then decodes that
//! literal with the codec of the receiving side ([`ServerCodec`] for requests, [`ClientCodec`]
//! for responses) and compares it with the typed value. Argument contents (NULs in the tail,
//! the two CAN_DO_TIMEOUT encodings) are in `golden/arguments.rs`; rejections, limits and
//! partial input in `golden/framing.rs`.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use gearbox_proto::{
    ClientCodec, ErrorCode, Incoming, PacketType, Priority, ProtoError, Request, Response,
    ServerCodec, SubmitJob,
};
use tokio_util::codec::{Decoder, Encoder};

#[path = "golden/arguments.rs"]
mod arguments;
#[path = "golden/framing.rs"]
mod framing;

/// Printable form of a byte string, so a failed comparison shows where the bytes differ.
fn show(bytes: &[u8]) -> String {
    bytes.escape_ascii().to_string()
}

fn b(s: &'static [u8]) -> Bytes {
    Bytes::from_static(s)
}

fn submit(priority: Priority, background: bool) -> Request {
    Request::Submit(SubmitJob {
        function: b(b"reverse"),
        unique: b(b"u1"),
        data: b(b"hello"),
        priority,
        background,
    })
}

/// Every request with its bytes on the wire.
/// A SUBMIT_REDUCE_JOB(_BACKGROUND) with an empty aggregator.
fn reduce(background: bool) -> Request {
    Request::SubmitReduce {
        function: b(b"count"),
        unique: b(b"u2"),
        reducer: b(b"sum"),
        aggregator: Bytes::new(),
        data: b(b"a b a"),
        background,
    }
}

fn request_goldens() -> Vec<(Request, &'static [u8])> {
    let h = || b(b"H:lap:1");
    vec![
        (
            Request::CanDo {
                function: b(b"reverse"),
            },
            b"\0REQ\0\0\0\x01\0\0\0\x07reverse",
        ),
        (
            Request::CantDo {
                function: b(b"reverse"),
            },
            b"\0REQ\0\0\0\x02\0\0\0\x07reverse",
        ),
        (Request::ResetAbilities, b"\0REQ\0\0\0\x03\0\0\0\0"),
        (Request::PreSleep, b"\0REQ\0\0\0\x04\0\0\0\0"),
        (
            submit(Priority::Normal, false),
            b"\0REQ\0\0\0\x07\0\0\0\x10reverse\0u1\0hello",
        ),
        (Request::GrabJob, b"\0REQ\0\0\0\x09\0\0\0\0"),
        (
            Request::WorkStatus {
                handle: h(),
                numerator: b(b"3"),
                denominator: b(b"10"),
            },
            b"\0REQ\0\0\0\x0c\0\0\0\x0cH:lap:1\x003\x0010",
        ),
        (
            Request::WorkComplete {
                handle: h(),
                data: b(b"olleh"),
            },
            b"\0REQ\0\0\0\x0d\0\0\0\x0dH:lap:1\0olleh",
        ),
        (
            Request::WorkFail { handle: h() },
            b"\0REQ\0\0\0\x0e\0\0\0\x07H:lap:1",
        ),
        (
            Request::GetStatus { handle: h() },
            b"\0REQ\0\0\0\x0f\0\0\0\x07H:lap:1",
        ),
        (
            Request::EchoReq {
                data: b(b"ping\0pong"),
            },
            b"\0REQ\0\0\0\x10\0\0\0\x09ping\0pong",
        ),
        (
            submit(Priority::Normal, true),
            b"\0REQ\0\0\0\x12\0\0\0\x10reverse\0u1\0hello",
        ),
        (
            submit(Priority::High, false),
            b"\0REQ\0\0\0\x15\0\0\0\x10reverse\0u1\0hello",
        ),
        (
            Request::SetClientId { id: b(b"worker-1") },
            b"\0REQ\0\0\0\x16\0\0\0\x08worker-1",
        ),
        (
            Request::CanDoTimeout {
                function: b(b"reverse"),
                timeout: b(b"30000"),
            },
            b"\0REQ\0\0\0\x17\0\0\0\x0dreverse\x0030000",
        ),
        (
            Request::CanDoTimeout {
                function: b(b"reverse"),
                timeout: b(b"\0\0\0\x05"),
            },
            b"\0REQ\0\0\0\x17\0\0\0\x0creverse\0\0\0\0\x05",
        ),
        (Request::AllYours, b"\0REQ\0\0\0\x18\0\0\0\0"),
        (
            Request::WorkException {
                handle: h(),
                data: b(b"boom"),
            },
            b"\0REQ\0\0\0\x19\0\0\0\x0cH:lap:1\0boom",
        ),
        (
            Request::OptionReq {
                option: b(b"exceptions"),
            },
            b"\0REQ\0\0\0\x1a\0\0\0\x0aexceptions",
        ),
        (
            Request::WorkData {
                handle: h(),
                data: b(b"part"),
            },
            b"\0REQ\0\0\0\x1c\0\0\0\x0cH:lap:1\0part",
        ),
        (
            Request::WorkWarning {
                handle: h(),
                data: b(b"warn"),
            },
            b"\0REQ\0\0\0\x1d\0\0\0\x0cH:lap:1\0warn",
        ),
        (Request::GrabJobUniq, b"\0REQ\0\0\0\x1e\0\0\0\0"),
        (
            submit(Priority::High, true),
            b"\0REQ\0\0\0\x20\0\0\0\x10reverse\0u1\0hello",
        ),
        (
            submit(Priority::Low, false),
            b"\0REQ\0\0\0\x21\0\0\0\x10reverse\0u1\0hello",
        ),
        (
            submit(Priority::Low, true),
            b"\0REQ\0\0\0\x22\0\0\0\x10reverse\0u1\0hello",
        ),
        (
            Request::SubmitSched {
                function: b(b"reverse"),
                unique: b(b"u1"),
                schedule: Box::new([b(b"0"), b(b"12"), b(b"1"), b(b"6"), b(b"*")]),
                data: b(b"hello"),
            },
            b"\0REQ\0\0\0\x23\0\0\0\x1breverse\0u1\x000\x0012\x001\x006\0*\0hello",
        ),
        (
            Request::SubmitEpoch {
                function: b(b"reverse"),
                unique: b(b"u1"),
                epoch: 1_700_000_000,
                data: b(b"hello"),
            },
            b"\0REQ\0\0\0\x24\0\0\0\x1breverse\0u1\x001700000000\0hello",
        ),
        (
            reduce(false),
            b"\0REQ\0\0\0\x25\0\0\0\x13count\0u2\0sum\0\0a b a",
        ),
        (
            reduce(true),
            b"\0REQ\0\0\0\x26\0\0\0\x13count\0u2\0sum\0\0a b a",
        ),
        (Request::GrabJobAll, b"\0REQ\0\0\0\x27\0\0\0\0"),
        (
            Request::GetStatusUnique { unique: b(b"u1") },
            b"\0REQ\0\0\0\x29\0\0\0\x02u1",
        ),
    ]
}

/// Every response with its bytes on the wire.
fn response_goldens() -> Vec<(Response, &'static [u8])> {
    let h = || b(b"H:lap:1");
    vec![
        (Response::Noop, b"\0RES\0\0\0\x06\0\0\0\0"),
        (
            Response::JobCreated { handle: h() },
            b"\0RES\0\0\0\x08\0\0\0\x07H:lap:1",
        ),
        (Response::NoJob, b"\0RES\0\0\0\x0a\0\0\0\0"),
        (
            Response::JobAssign {
                handle: h(),
                function: b(b"reverse"),
                data: b(b"hello"),
            },
            b"\0RES\0\0\0\x0b\0\0\0\x15H:lap:1\0reverse\0hello",
        ),
        (
            Response::WorkStatus {
                handle: h(),
                numerator: b(b"3"),
                denominator: b(b"10"),
            },
            b"\0RES\0\0\0\x0c\0\0\0\x0cH:lap:1\x003\x0010",
        ),
        (
            Response::WorkComplete {
                handle: h(),
                data: b(b"olleh"),
            },
            b"\0RES\0\0\0\x0d\0\0\0\x0dH:lap:1\0olleh",
        ),
        (
            Response::WorkFail { handle: h() },
            b"\0RES\0\0\0\x0e\0\0\0\x07H:lap:1",
        ),
        (
            Response::EchoRes {
                data: b(b"ping\0pong"),
            },
            b"\0RES\0\0\0\x11\0\0\0\x09ping\0pong",
        ),
        (
            Response::error(ErrorCode::InvalidCommand, "Unknown command"),
            b"\0RES\0\0\0\x13\0\0\0\x1fINVALID_COMMAND\0Unknown command",
        ),
        (
            Response::StatusRes {
                handle: h(),
                known: true,
                running: false,
                numerator: b(b"3"),
                denominator: b(b"10"),
            },
            b"\0RES\0\0\0\x14\0\0\0\x10H:lap:1\x001\x000\x003\x0010",
        ),
        (
            Response::WorkException {
                handle: h(),
                data: b(b"boom"),
            },
            b"\0RES\0\0\0\x19\0\0\0\x0cH:lap:1\0boom",
        ),
        (
            Response::OptionRes {
                option: b(b"exceptions"),
            },
            b"\0RES\0\0\0\x1b\0\0\0\x0aexceptions",
        ),
        (
            Response::WorkData {
                handle: h(),
                data: b(b"part"),
            },
            b"\0RES\0\0\0\x1c\0\0\0\x0cH:lap:1\0part",
        ),
        (
            Response::WorkWarning {
                handle: h(),
                data: b(b"warn"),
            },
            b"\0RES\0\0\0\x1d\0\0\0\x0cH:lap:1\0warn",
        ),
        (
            Response::JobAssignUniq {
                handle: h(),
                function: b(b"reverse"),
                unique: b(b"u1"),
                data: b(b"hello"),
            },
            b"\0RES\0\0\0\x1f\0\0\0\x18H:lap:1\0reverse\0u1\0hello",
        ),
        (
            Response::JobAssignAll {
                handle: h(),
                function: b(b"count"),
                unique: b(b"u2"),
                reducer: b(b"sum"),
                data: b(b"a b a"),
            },
            b"\0RES\0\0\0\x28\0\0\0\x1aH:lap:1\0count\0u2\0sum\0a b a",
        ),
        (
            Response::StatusResUnique {
                unique: b(b"u1"),
                known: true,
                running: true,
                numerator: b(b"1"),
                denominator: b(b"2"),
                client_count: 3,
            },
            b"\0RES\0\0\0\x2a\0\0\0\x0cu1\x001\x001\x001\x002\x003",
        ),
    ]
}

/// The packet type number in a golden header.
fn wire_type(wire: &[u8]) -> u32 {
    u32::from_be_bytes(wire[4..8].try_into().unwrap())
}

/// One direction of the protocol: its packets' own encoding, the sending side's codec and the
/// receiving side's codec.
trait Direction: PartialEq + std::fmt::Debug + Sized {
    /// The receiving side's codec.
    type Receiver: Decoder<Item: std::fmt::Debug, Error = ProtoError> + Default;
    /// The packet type of a value.
    fn kind(&self) -> PacketType;
    /// The value's own encoding.
    fn encode_plain(&self, dst: &mut BytesMut);
    /// The sending side's codec encoding the value.
    fn encode_sent(&self, dst: &mut BytesMut);
    /// The value in what the receiving codec decoded; panics if it is something else.
    fn received(item: <Self::Receiver as Decoder>::Item) -> Self;
}

/// `impl Direction` for a packet type sent with the `$sender` codec and received with the
/// `$receiver` codec, `$received` taking the packet out of what the receiver decoded.
macro_rules! direction {
    ($packet:ty, sent with $sender:ty, received with $receiver:ty, $received:expr) => {
        impl Direction for $packet {
            type Receiver = $receiver;
            fn kind(&self) -> PacketType {
                self.packet_type()
            }
            fn encode_plain(&self, dst: &mut BytesMut) {
                self.encode(dst);
            }
            fn encode_sent(&self, dst: &mut BytesMut) {
                <$sender>::default().encode(self, dst).unwrap();
            }
            fn received(item: <$receiver as Decoder>::Item) -> $packet {
                $received(item)
            }
        }
    };
}

direction!(Request, sent with ClientCodec, received with ServerCodec, |item| match item {
    Incoming::Request(req) => req,
    other => panic!("expected a request, got {other:?}"),
});
direction!(Response, sent with ServerCodec, received with ClientCodec, |item| item);

/// Decodes the next packet from `src` with `codec`; panics unless it is a whole one.
fn decode_next<P: Direction>(codec: &mut P::Receiver, src: &mut BytesMut, wire: &[u8]) -> P {
    match codec.decode(src) {
        Ok(Some(item)) => P::received(item),
        other => panic!("decoding {}: {other:?}", show(wire)),
    }
}

/// Encodes `packet` both ways, compares with `wire`, then decodes `wire` as the receiving
/// side would.
fn check<P: Direction>(packet: &P, wire: &[u8]) {
    let mut out = BytesMut::new();
    packet.encode_plain(&mut out);
    assert_eq!(show(&out), show(wire), "encoding of {packet:?}");
    let mut via_codec = BytesMut::new();
    packet.encode_sent(&mut via_codec);
    assert_eq!(via_codec, out, "the sending codec's encoding of {packet:?}");
    assert_eq!(wire_type(wire), packet.kind() as u32);

    let mut src = BytesMut::from(wire);
    let got: P = decode_next(&mut P::Receiver::default(), &mut src, wire);
    assert_eq!(&got, packet, "decoding {}", show(wire));
    assert!(src.is_empty(), "{} left bytes behind", show(wire));
}

/// [`check`] for a request (decoded as the server would).
fn check_request(req: &Request, wire: &[u8]) {
    check(req, wire);
}

/// [`check`] for a response (decoded as a client would).
fn check_response(res: &Response, wire: &[u8]) {
    check(res, wire);
}

/// The packet types that `goldens` cover.
fn kinds<P: Direction>(goldens: &[(P, &[u8])]) -> BTreeSet<PacketType> {
    goldens.iter().map(|(p, _)| p.kind()).collect()
}

/// Every golden packet of one direction, concatenated in one buffer, decodes in order with
/// one codec, which then wants more bytes.
fn decode_in_order<P: Direction>(goldens: &[(P, &[u8])]) {
    let mut src = BytesMut::new();
    for (_, wire) in goldens {
        src.extend_from_slice(wire);
    }
    let mut codec = P::Receiver::default();
    for (packet, wire) in goldens {
        let got: P = decode_next(&mut codec, &mut src, wire);
        assert_eq!(&got, packet, "expected {}", show(wire));
    }
    assert!(matches!(codec.decode(&mut src), Ok(None)));
}

#[test]
fn requests_match_their_golden_bytes() {
    for (req, wire) in request_goldens() {
        check_request(&req, wire);
    }
}

#[test]
fn responses_match_their_golden_bytes() {
    for (res, wire) in response_goldens() {
        check_response(&res, wire);
    }
}

#[test]
fn goldens_cover_every_packet_type_in_each_direction() {
    let requests = kinds(&request_goldens());
    let responses = kinds(&response_goldens());
    for &kind in PacketType::ALL {
        assert_eq!(
            requests.contains(&kind),
            kind.is_request(),
            "request golden for {kind:?}"
        );
        assert_eq!(
            responses.contains(&kind),
            kind.is_response(),
            "response golden for {kind:?}"
        );
        assert!(
            kind.is_request() || kind.is_response(),
            "{kind:?} has no direction"
        );
    }
}

#[test]
fn packet_type_numbers_follow_the_protocol_table() {
    // 5 was never assigned; everything else from 1 to 42 is a packet type.
    for n in 0u32..=50 {
        let known = (1..=42).contains(&n) && n != 5;
        match PacketType::try_from(n) {
            Ok(kind) => {
                assert!(known, "{n} should not be a packet type");
                assert_eq!(kind as u32, n);
            }
            Err(e) => {
                assert!(!known, "{n} should be a packet type");
                assert_eq!(e, n);
            }
        }
    }
    assert_eq!(PacketType::ALL.len(), 41);
    assert_eq!(
        PacketType::SUBMIT_REDUCE_JOB_BACKGROUND.name(),
        "SUBMIT_REDUCE_JOB_BACKGROUND"
    );
    assert_eq!(PacketType::SUBMIT_JOB_SCHED.arg_count(), 8);
    assert_eq!(PacketType::STATUS_RES_UNIQUE.arg_count(), 6);
}

#[test]
fn golden_packets_decode_in_order_from_one_buffer() {
    decode_in_order(&request_goldens());
    decode_in_order(&response_goldens());
}
