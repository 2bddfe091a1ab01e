//! Framing golden cases: rejected packets, fatal errors, limits, admin lines mixed with binary
//! packets, and input that arrives one byte at a time.

use bytes::{Bytes, BytesMut};
use gearbox_proto::{
    AdminCommand, ClientCodec, Incoming, Limits, PacketType, ProtoError, Request, Response,
    ServerCodec, HEADER_LEN,
};
use tokio_util::codec::Decoder;

use super::{request_goldens, response_goldens, show};

fn server_decode(wire: &[u8]) -> (Result<Option<Incoming>, ProtoError>, BytesMut) {
    let mut src = BytesMut::from(wire);
    let out = ServerCodec::default().decode(&mut src);
    (out, src)
}

fn client_decode(wire: &[u8]) -> (Result<Option<Response>, ProtoError>, BytesMut) {
    let mut src = BytesMut::from(wire);
    let out = ClientCodec::default().decode(&mut src);
    (out, src)
}

/// Asserts that the server codec decoded a whole, framed packet it must refuse, with an
/// error matching `$err` (and the stream still in step).
macro_rules! assert_rejected {
    ($out:expr, $err:pat) => {{
        let out = $out;
        assert!(matches!(out, Ok(Some(Incoming::Rejected($err)))), "{out:?}");
    }};
}

/// A packet header followed by `body`.
fn packet(magic: &[u8; 4], kind: u32, body: &[u8]) -> Vec<u8> {
    let mut v = magic.to_vec();
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    v.extend_from_slice(body);
    v
}

#[test]
fn response_only_types_sent_to_the_server_are_rejected() {
    let (out, rest) = server_decode(b"\0REQ\0\0\0\x08\0\0\0\x07H:lap:1");
    assert_rejected!(out, ProtoError::UnexpectedType(PacketType::JOB_CREATED));
    assert!(rest.is_empty());

    for &kind in PacketType::ALL.iter().filter(|k| !k.is_request()) {
        let (out, rest) = server_decode(&packet(b"\0REQ", kind as u32, b"a\0b\0c\0d\0e\0f"));
        match out {
            Ok(Some(Incoming::Rejected(ref e @ ProtoError::UnexpectedType(k)))) => {
                assert_eq!(k, kind);
                assert_eq!(e.code().as_str(), "INVALID_COMMAND");
                assert!(!e.is_fatal());
            }
            other => panic!("{kind:?} sent to the server: {other:?}"),
        }
        assert!(rest.is_empty(), "{kind:?} left bytes behind");
    }
}

#[test]
fn request_only_types_sent_to_a_client_are_errors() {
    for &kind in PacketType::ALL.iter().filter(|k| !k.is_response()) {
        let (out, rest) = client_decode(&packet(b"\0RES", kind as u32, b"a\0b\0c\0d\0e\0f\0g\0h"));
        assert!(
            matches!(out, Err(ProtoError::UnexpectedType(k)) if k == kind),
            "{kind:?} sent to a client: {out:?}"
        );
        assert!(rest.is_empty(), "{kind:?} left bytes behind");
    }
}

#[test]
fn res_magic_sent_to_the_server_is_rejected_and_the_stream_goes_on() {
    let mut src = BytesMut::from(&b"\0RES\0\0\0\x01\0\0\0\x07reverse\0REQ\0\0\0\x09\0\0\0\0"[..]);
    let mut codec = ServerCodec::default();
    match codec.decode(&mut src) {
        Ok(Some(Incoming::Rejected(e @ ProtoError::WrongMagic))) => {
            assert_eq!(e.code().as_str(), "INVALID_MAGIC");
            assert!(!e.is_fatal());
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        codec.decode(&mut src),
        Ok(Some(Incoming::Request(Request::GrabJob)))
    ));
    assert!(src.is_empty());
}

#[test]
fn req_magic_sent_to_a_client_is_wrong_magic() {
    let (out, rest) = client_decode(b"\0REQ\0\0\0\x06\0\0\0\0");
    assert!(matches!(out, Err(ProtoError::WrongMagic)), "{out:?}");
    assert!(rest.is_empty());
}

#[test]
fn unknown_type_is_rejected_and_the_next_packet_still_decodes() {
    let mut src = BytesMut::from(&b"\0REQ\0\0\0\x63\0\0\0\x03abc\0REQ\0\0\0\x04\0\0\0\0"[..]);
    let mut codec = ServerCodec::default();
    match codec.decode(&mut src) {
        Ok(Some(Incoming::Rejected(e @ ProtoError::UnknownType(99)))) => {
            assert_eq!(e.code().as_str(), "INVALID_COMMAND");
        }
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        codec.decode(&mut src),
        Ok(Some(Incoming::Request(Request::PreSleep)))
    ));
    assert!(matches!(codec.decode(&mut src), Ok(None)));

    // Type 5 was never assigned.
    let (out, _) = server_decode(b"\0REQ\0\0\0\x05\0\0\0\0");
    assert_rejected!(out, ProtoError::UnknownType(5));

    let mut src = BytesMut::from(&b"\0RES\0\0\0\x63\0\0\0\x01x\0RES\0\0\0\x06\0\0\0\0"[..]);
    let mut codec = ClientCodec::default();
    assert!(matches!(
        codec.decode(&mut src),
        Err(ProtoError::UnknownType(99))
    ));
    assert!(matches!(codec.decode(&mut src), Ok(Some(Response::Noop))));
}

#[test]
fn work_result_without_data_separator_is_handle_with_empty_data() {
    // Perl's Gearman::Worker sends WORK_COMPLETE this way for a result of "" or "0".
    let mut codec = ServerCodec::default();
    let mut buf = BytesMut::from(&b"\0REQ\0\0\0\x0d\0\0\0\x07H:lap:1"[..]);
    match codec.decode(&mut buf).expect("decodes") {
        Some(Incoming::Request(Request::WorkComplete { handle, data })) => {
            assert_eq!(&handle[..], b"H:lap:1");
            assert!(data.is_empty());
        }
        other => panic!("unexpected {other:?}"),
    }
}

#[test]
fn missing_arguments_are_rejected() {
    let cases: &[(&[u8], PacketType, usize, usize)] = &[
        (
            b"\0REQ\0\0\0\x07\0\0\0\x0areverse\0u1",
            PacketType::SUBMIT_JOB,
            3,
            2,
        ),
        (b"\0REQ\0\0\0\x12\0\0\0\0", PacketType::SUBMIT_JOB_BG, 3, 1),
        (
            b"\0REQ\0\0\0\x17\0\0\0\x07reverse",
            PacketType::CAN_DO_TIMEOUT,
            2,
            1,
        ),
        (
            b"\0REQ\0\0\0\x0c\0\0\0\x09H:lap:1\x003",
            PacketType::WORK_STATUS,
            3,
            2,
        ),
        (
            b"\0REQ\0\0\0\x23\0\0\0\x09f\0u\x001\x002\x003",
            PacketType::SUBMIT_JOB_SCHED,
            8,
            5,
        ),
        (
            b"\0REQ\0\0\0\x24\0\0\0\x03f\0u",
            PacketType::SUBMIT_JOB_EPOCH,
            4,
            2,
        ),
        (
            b"\0REQ\0\0\0\x25\0\0\0\x07f\0u\0sum",
            PacketType::SUBMIT_REDUCE_JOB,
            5,
            3,
        ),
    ];
    for &(wire, kind, expected, got) in cases {
        let (out, rest) = server_decode(wire);
        match out {
            Ok(Some(Incoming::Rejected(
                ref e @ ProtoError::MissingArguments {
                    kind: k,
                    expected: x,
                    got: g,
                },
            ))) => {
                assert_eq!((k, x, g), (kind, expected, got), "{}", show(wire));
                assert_eq!(e.code().as_str(), "INVALID_PACKET");
                assert!(!e.is_fatal());
            }
            other => panic!("{}: {other:?}", show(wire)),
        }
        assert!(rest.is_empty());
    }

    let (out, _) = client_decode(b"\0RES\0\0\0\x0b\0\0\0\x0fH:lap:1\0reverse");
    assert!(
        matches!(
            out,
            Err(ProtoError::MissingArguments {
                kind: PacketType::JOB_ASSIGN,
                expected: 3,
                got: 2
            })
        ),
        "{out:?}"
    );
    let (out, _) = client_decode(b"\0RES\0\0\0\x13\0\0\0\x0fINVALID_COMMAND");
    assert!(matches!(
        out,
        Err(ProtoError::MissingArguments {
            kind: PacketType::ERROR,
            ..
        })
    ));
}

#[test]
fn malformed_numbers_are_rejected() {
    let (out, _) = server_decode(b"\0REQ\0\0\0\x24\0\0\0\x0ef\0u\0soon\0hello");
    assert_rejected!(out, ProtoError::BadNumber(PacketType::SUBMIT_JOB_EPOCH));
    let (out, _) = client_decode(b"\0RES\0\0\0\x14\0\0\0\x0dH:1\0yes\x000\x000\x000");
    assert!(
        matches!(out, Err(ProtoError::BadNumber(PacketType::STATUS_RES))),
        "{out:?}"
    );
    let (out, _) = client_decode(b"\0RES\0\0\0\x2a\0\0\0\x0eu\x001\x001\x001\x002\0many");
    assert!(
        matches!(
            out,
            Err(ProtoError::BadNumber(PacketType::STATUS_RES_UNIQUE))
        ),
        "{out:?}"
    );
}

#[test]
fn bad_magic_is_fatal_for_both_codecs() {
    let wire = b"\0XYZ\0\0\0\x01\0\0\0\x07reverse";
    let (out, rest) = server_decode(wire);
    match out {
        Err(e @ ProtoError::InvalidMagic(m)) => {
            assert_eq!(&m, b"\0XYZ");
            assert!(e.is_fatal());
            assert_eq!(e.code().as_str(), "INVALID_MAGIC");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(&rest[..], &wire[..], "a fatal error leaves the input alone");

    // The magic alone is enough to tell, before the rest of the header arrives.
    let (out, _) = client_decode(b"\0XYZ");
    assert!(
        matches!(out, Err(ProtoError::InvalidMagic(m)) if &m == b"\0XYZ"),
        "{out:?}"
    );
    let (out, _) = client_decode(b"status\n");
    assert!(
        matches!(out, Err(ProtoError::InvalidMagic(m)) if &m == b"stat"),
        "{out:?}"
    );
}

#[test]
fn oversized_body_fails_on_the_header_without_reserving_it() {
    let limits = Limits {
        max_body: 1024,
        ..Limits::default()
    };

    // At the limit: wait for the body.
    let mut src = BytesMut::with_capacity(64);
    src.extend_from_slice(b"\0REQ\0\0\0\x10\0\0\x04\0");
    assert!(matches!(
        ServerCodec::new(limits).decode(&mut src),
        Ok(None)
    ));

    // One byte over: fatal, from the header alone, the buffer not grown.
    let check = |out: Result<(), ProtoError>, src: &BytesMut| {
        match out {
            Err(
                e @ ProtoError::BodyTooLarge {
                    len: 1025,
                    max: 1024,
                },
            ) => {
                assert!(e.is_fatal());
                assert_eq!(e.code().as_str(), "ARGUMENT_TOO_LARGE");
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(src.len(), HEADER_LEN);
        assert!(src.capacity() < 1025, "capacity grew to {}", src.capacity());
    };
    let mut src = BytesMut::with_capacity(64);
    src.extend_from_slice(b"\0REQ\0\0\0\x10\0\0\x04\x01");
    check(ServerCodec::new(limits).decode(&mut src).map(drop), &src);
    let mut src = BytesMut::with_capacity(64);
    src.extend_from_slice(b"\0RES\0\0\0\x11\0\0\x04\x01");
    check(ClientCodec::new(limits).decode(&mut src).map(drop), &src);

    // The largest length a header can hold, against the default 64 MiB limit.
    let mut src = BytesMut::with_capacity(64);
    src.extend_from_slice(b"\0REQ\0\0\0\x10\xff\xff\xff\xff");
    let out = ServerCodec::default().decode(&mut src);
    assert!(
        matches!(
            out,
            Err(ProtoError::BodyTooLarge {
                len: 0xffff_ffff,
                ..
            })
        ),
        "{out:?}"
    );
    assert!(
        src.capacity() < 1 << 20,
        "capacity grew to {}",
        src.capacity()
    );
}

#[test]
fn admin_line_over_the_limit_is_fatal() {
    let limits = Limits {
        max_line: 16,
        ..Limits::default()
    };
    let mut codec = ServerCodec::new(limits);

    // Without a newline: fatal once the line cannot fit any more.
    let mut src = BytesMut::from(&[b'x'; 100][..]);
    match codec.decode(&mut src) {
        Err(e @ ProtoError::LineTooLong { max: 16 }) => {
            assert!(e.is_fatal());
            assert_eq!(e.code().as_str(), "ARGUMENT_TOO_LARGE");
        }
        other => panic!("{other:?}"),
    }
    let mut src = BytesMut::from(&[b'x'; 16][..]);
    assert!(matches!(codec.decode(&mut src), Ok(None)));

    // With a newline: 16 bytes fit, with or without `\r`; 17 do not.
    for line in [&b"cancel job H:1:1\n"[..], b"cancel job H:1:1\r\n"] {
        let mut src = BytesMut::from(line);
        let out = codec.decode(&mut src);
        assert!(
            matches!(out, Ok(Some(Incoming::Admin(AdminCommand::CancelJob { ref handle }))) if handle == "H:1:1"),
            "{}: {out:?}",
            show(line)
        );
    }
    for line in [&b"cancel job H:1:10\n"[..], b"cancel job H:1:10\r\n"] {
        let mut src = BytesMut::from(line);
        let out = codec.decode(&mut src);
        assert!(
            matches!(out, Err(ProtoError::LineTooLong { max: 16 })),
            "{}: {out:?}",
            show(line)
        );
    }

    // A limit too large to add to does not overflow.
    let mut codec = ServerCodec::new(Limits {
        max_line: usize::MAX,
        ..Limits::default()
    });
    let mut src = BytesMut::from(&b"version\n"[..]);
    assert!(matches!(
        codec.decode(&mut src),
        Ok(Some(Incoming::Admin(AdminCommand::Version)))
    ));
}

#[test]
fn admin_lines_and_binary_packets_decode_in_order() {
    let mut src = BytesMut::from(
        &b"status\r\n\0REQ\0\0\0\x09\0\0\0\0workers\n\0REQ\0\0\0\x10\0\0\0\x04ping\ncreate function f\r\n"[..],
    );
    let mut codec = ServerCodec::default();
    let mut next = || codec.decode(&mut src);
    assert!(matches!(
        next(),
        Ok(Some(Incoming::Admin(AdminCommand::Status)))
    ));
    assert!(matches!(
        next(),
        Ok(Some(Incoming::Request(Request::GrabJob)))
    ));
    assert!(matches!(
        next(),
        Ok(Some(Incoming::Admin(AdminCommand::Workers)))
    ));
    assert!(
        matches!(next(), Ok(Some(Incoming::Request(Request::EchoReq { ref data }))) if data == "ping")
    );
    // The newline after the binary packet is an empty admin line.
    assert!(matches!(
        next(),
        Ok(Some(Incoming::Admin(AdminCommand::Empty)))
    ));
    assert!(matches!(
        next(),
        Ok(Some(Incoming::Admin(AdminCommand::CreateFunction { ref name }))) if name == "f"
    ));
    assert!(matches!(next(), Ok(None)));
}

/// Feeds `wire` one byte at a time: nothing comes out until the last byte is in.
fn byte_by_byte<D, T>(mut codec: D, wire: &[u8]) -> T
where
    D: Decoder<Item = T, Error = ProtoError>,
    T: std::fmt::Debug,
{
    let mut src = BytesMut::new();
    let (last, prefix) = wire.split_last().unwrap();
    for (i, &byte) in prefix.iter().enumerate() {
        src.extend_from_slice(&[byte]);
        let out = codec.decode(&mut src);
        assert!(
            matches!(out, Ok(None)),
            "{} after {} bytes: {out:?}",
            show(wire),
            i + 1
        );
        assert_eq!(src.len(), i + 1, "a partial packet was consumed");
    }
    src.extend_from_slice(&[*last]);
    let item = codec
        .decode(&mut src)
        .unwrap()
        .expect("the last byte completes the packet");
    assert!(src.is_empty());
    item
}

#[test]
fn every_prefix_of_a_valid_packet_needs_more_bytes() {
    for (req, wire) in request_goldens() {
        match byte_by_byte(ServerCodec::default(), wire) {
            Incoming::Request(got) => assert_eq!(got, req),
            other => panic!("{}: {other:?}", show(wire)),
        }
    }
    for (res, wire) in response_goldens() {
        assert_eq!(byte_by_byte(ClientCodec::default(), wire), res);
    }
    let line = byte_by_byte(ServerCodec::default(), b"show unique jobs\r\n");
    assert!(
        matches!(line, Incoming::Admin(AdminCommand::ShowUniqueJobs)),
        "{line:?}"
    );

    let big: Vec<u8> = (0..=255u8).cycle().take(5000).collect();
    let wire = Request::EchoReq {
        data: Bytes::from(big.clone()),
    };
    let mut enc = BytesMut::new();
    wire.encode(&mut enc);
    assert_eq!(enc.len(), HEADER_LEN + big.len());
    match byte_by_byte(ServerCodec::default(), &enc) {
        Incoming::Request(Request::EchoReq { data }) => assert_eq!(data, big),
        other => panic!("{other:?}"),
    }
}
