//! Property tests: every request and response survives encode -> decode whatever the chunking
//! of the byte stream, and no input, however malformed, makes a decoder panic or stall.

use std::collections::BTreeSet;

use bytes::{Bytes, BytesMut};
use gearbox_proto::{
    ClientCodec, Incoming, PacketType, Priority, Request, Response, ServerCodec, SubmitJob,
};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use proptest::test_runner::TestRunner;
use tokio_util::codec::Decoder;

#[path = "support/decode_loop.rs"]
mod decode_loop;

/// A non-tail argument: no NUL bytes.
fn word() -> impl Strategy<Value = Bytes> {
    vec(1u8..=255, 0..12).prop_map(Bytes::from)
}

/// The opaque tail argument: anything, NULs included.
fn tail() -> impl Strategy<Value = Bytes> {
    vec(any::<u8>(), 0..48).prop_map(Bytes::from)
}

fn priority() -> impl Strategy<Value = Priority> {
    prop_oneof![
        Just(Priority::High),
        Just(Priority::Normal),
        Just(Priority::Low)
    ]
}

fn request() -> BoxedStrategy<Request> {
    use Request as R;
    prop_oneof![
        tail().prop_map(|function| R::CanDo { function }),
        tail().prop_map(|function| R::CantDo { function }),
        Just(R::ResetAbilities),
        Just(R::PreSleep),
        (word(), word(), tail(), priority(), any::<bool>()).prop_map(
            |(function, unique, data, priority, background)| {
                R::Submit(SubmitJob {
                    function,
                    unique,
                    data,
                    priority,
                    background,
                })
            }
        ),
        (
            word(),
            word(),
            [word(), word(), word(), word(), word()],
            tail()
        )
            .prop_map(|(function, unique, schedule, data)| R::SubmitSched {
                function,
                unique,
                schedule: Box::new(schedule),
                data
            }),
        (word(), word(), any::<u64>(), tail()).prop_map(|(function, unique, epoch, data)| {
            R::SubmitEpoch {
                function,
                unique,
                epoch,
                data,
            }
        }),
        (word(), word(), word(), word(), tail(), any::<bool>()).prop_map(
            |(function, unique, reducer, aggregator, data, background)| R::SubmitReduce {
                function,
                unique,
                reducer,
                aggregator,
                data,
                background,
            }
        ),
        Just(R::GrabJob),
        Just(R::GrabJobUniq),
        Just(R::GrabJobAll),
        (word(), word(), tail()).prop_map(|(handle, numerator, denominator)| R::WorkStatus {
            handle,
            numerator,
            denominator
        }),
        (word(), tail()).prop_map(|(handle, data)| R::WorkComplete { handle, data }),
        tail().prop_map(|handle| R::WorkFail { handle }),
        (word(), tail()).prop_map(|(handle, data)| R::WorkException { handle, data }),
        (word(), tail()).prop_map(|(handle, data)| R::WorkData { handle, data }),
        (word(), tail()).prop_map(|(handle, data)| R::WorkWarning { handle, data }),
        tail().prop_map(|handle| R::GetStatus { handle }),
        tail().prop_map(|unique| R::GetStatusUnique { unique }),
        tail().prop_map(|data| R::EchoReq { data }),
        tail().prop_map(|id| R::SetClientId { id }),
        (word(), tail()).prop_map(|(function, timeout)| R::CanDoTimeout { function, timeout }),
        Just(R::AllYours),
        tail().prop_map(|option| R::OptionReq { option }),
    ]
    .boxed()
}

fn response() -> BoxedStrategy<Response> {
    use Response as R;
    prop_oneof![
        Just(R::Noop),
        tail().prop_map(|handle| R::JobCreated { handle }),
        Just(R::NoJob),
        (word(), word(), tail()).prop_map(|(handle, function, data)| R::JobAssign {
            handle,
            function,
            data
        }),
        (word(), word(), tail()).prop_map(|(handle, numerator, denominator)| R::WorkStatus {
            handle,
            numerator,
            denominator
        }),
        (word(), tail()).prop_map(|(handle, data)| R::WorkComplete { handle, data }),
        tail().prop_map(|handle| R::WorkFail { handle }),
        (word(), tail()).prop_map(|(handle, data)| R::WorkException { handle, data }),
        (word(), tail()).prop_map(|(handle, data)| R::WorkData { handle, data }),
        (word(), tail()).prop_map(|(handle, data)| R::WorkWarning { handle, data }),
        tail().prop_map(|data| R::EchoRes { data }),
        (word(), tail()).prop_map(|(code, text)| R::Error { code, text }),
        (word(), any::<bool>(), any::<bool>(), word(), tail()).prop_map(
            |(handle, known, running, numerator, denominator)| R::StatusRes {
                handle,
                known,
                running,
                numerator,
                denominator,
            }
        ),
        tail().prop_map(|option| R::OptionRes { option }),
        (word(), word(), word(), tail()).prop_map(|(handle, function, unique, data)| {
            R::JobAssignUniq {
                handle,
                function,
                unique,
                data,
            }
        }),
        (word(), word(), word(), word(), tail()).prop_map(
            |(handle, function, unique, reducer, data)| R::JobAssignAll {
                handle,
                function,
                unique,
                reducer,
                data,
            }
        ),
        (
            word(),
            any::<bool>(),
            any::<bool>(),
            word(),
            word(),
            any::<u64>()
        )
            .prop_map(
                |(unique, known, running, numerator, denominator, client_count)| {
                    R::StatusResUnique {
                        unique,
                        known,
                        running,
                        numerator,
                        denominator,
                        client_count,
                    }
                }
            ),
    ]
    .boxed()
}

fn encode_requests(reqs: &[Request]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    reqs.iter().for_each(|r| r.encode(&mut buf));
    buf.to_vec()
}

fn encode_responses(ress: &[Response]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    ress.iter().for_each(|r| r.encode(&mut buf));
    buf.to_vec()
}

/// Streams `wire` into `codec` in pieces of the given sizes, collecting every item.
fn stream<D: Decoder>(codec: &mut D, wire: &[u8], sizes: &[usize]) -> (Vec<D::Item>, BytesMut)
where
    D::Error: std::fmt::Debug,
{
    let mut buf = BytesMut::new();
    let mut items = Vec::new();
    for piece in decode_loop::chunks(wire, sizes) {
        buf.extend_from_slice(piece);
        while let Some(item) = codec.decode(&mut buf).expect("valid input must decode") {
            items.push(item);
        }
    }
    (items, buf)
}

/// A mix of valid packets, packets with lying headers, admin lines and garbage.
fn hostile_input() -> impl Strategy<Value = Vec<u8>> {
    let magic = prop_oneof![
        Just(*b"\0REQ"),
        Just(*b"\0RES"),
        any::<[u8; 4]>().prop_map(|mut m| {
            m[0] = 0;
            m
        }),
    ];
    let length = prop_oneof![4 => 0u32..100, 1 => any::<u32>()];
    let header =
        (magic, 0u32..50, length, vec(any::<u8>(), 0..100)).prop_map(|(magic, kind, len, body)| {
            let mut v = magic.to_vec();
            v.extend_from_slice(&kind.to_be_bytes());
            v.extend_from_slice(&len.to_be_bytes());
            v.extend_from_slice(&body);
            v
        });
    let line = (
        vec(prop_oneof![32u8..127, Just(b'\t'), Just(b'\r')], 0..48),
        any::<bool>(),
    )
        .prop_map(|(mut text, newline)| {
            text.extend_from_slice(if newline { b"\n" } else { b"" });
            text
        });
    let piece = prop_oneof![
        vec(any::<u8>(), 0..24),
        vec(request(), 1..3).prop_map(|r| encode_requests(&r)),
        vec(response(), 1..3).prop_map(|r| encode_responses(&r)),
        header,
        line,
    ];
    vec(piece, 0..6).prop_map(|pieces| pieces.concat())
}

proptest! {
    #[test]
    fn requests_round_trip_through_the_server_codec(
        reqs in vec(request(), 1..8),
        sizes in vec(1usize..40, 1..6),
    ) {
        let wire = encode_requests(&reqs);
        let (items, rest) = stream(&mut ServerCodec::default(), &wire, &sizes);
        prop_assert!(rest.is_empty(), "{} bytes left over", rest.len());
        let got: Vec<Request> = items
            .into_iter()
            .map(|i| match i {
                Incoming::Request(r) => r,
                other => panic!("not a request: {other:?}"),
            })
            .collect();
        prop_assert_eq!(got, reqs);
    }

    #[test]
    fn responses_round_trip_through_the_client_codec(
        ress in vec(response(), 1..8),
        sizes in vec(1usize..40, 1..6),
    ) {
        let wire = encode_responses(&ress);
        let (got, rest) = stream(&mut ClientCodec::default(), &wire, &sizes);
        prop_assert!(rest.is_empty(), "{} bytes left over", rest.len());
        prop_assert_eq!(got, ress);
    }

    #[test]
    fn split_encoding_equals_whole_encoding(res in response(), min in 0usize..64) {
        let (mut whole, mut split) = (BytesMut::new(), BytesMut::new());
        res.encode(&mut whole);
        match res.encode_head(&mut split, min) {
            Some(tail) => {
                prop_assert!(tail.len() >= min);
                prop_assert_eq!(Some(&tail), res.trailing_data());
                split.extend_from_slice(&tail);
            }
            None => prop_assert!(res.trailing_data().is_none_or(|d| d.len() < min)),
        }
        prop_assert_eq!(whole, split);
    }

    #[test]
    fn arbitrary_bytes_never_panic_or_stall(
        data in vec(any::<u8>(), 0..512),
        sizes in vec(0usize..64, 1..6),
    ) {
        decode_loop::exercise(&data);
        decode_loop::exercise_chunked(&data, &sizes);
    }

    #[test]
    fn hostile_streams_never_panic_or_stall(
        data in hostile_input(),
        sizes in vec(0usize..64, 1..6),
    ) {
        decode_loop::exercise_chunked(&data, &sizes);
    }
}

/// Guards the strategies themselves: a variant missing from them would silently go untested.
#[test]
fn strategies_cover_every_packet_type() {
    let mut runner = TestRunner::deterministic();
    let (mut reqs, mut ress) = (BTreeSet::new(), BTreeSet::new());
    for _ in 0..3000 {
        reqs.insert(
            request()
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .packet_type(),
        );
        ress.insert(
            response()
                .new_tree(&mut runner)
                .unwrap()
                .current()
                .packet_type(),
        );
    }
    let want_reqs: BTreeSet<PacketType> = PacketType::ALL
        .iter()
        .copied()
        .filter(|k| k.is_request())
        .collect();
    let want_ress: BTreeSet<PacketType> = PacketType::ALL
        .iter()
        .copied()
        .filter(|k| k.is_response())
        .collect();
    assert_eq!(reqs, want_reqs);
    assert_eq!(ress, want_ress);
}
