//! Decoder throughput: many small SUBMIT_JOB packets, one 1 MiB WORK_COMPLETE, and both again
//! arriving as a stream of 64-byte reads (what a slow or chatty socket looks like).
//!
//! Run with `cargo bench -p gearbox-proto` (add `-- --quick` for a short run).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use gearbox_proto::{ClientCodec, Priority, Request, Response, ServerCodec, SubmitJob};
use tokio_util::codec::Decoder;

/// Packets in the SUBMIT_JOB buffer.
const SUBMITS: usize = 10_000;
/// Payload of each SUBMIT_JOB.
const SUBMIT_PAYLOAD: usize = 100;
/// Payload of the WORK_COMPLETE.
const BIG_PAYLOAD: usize = 1 << 20;
/// Read size for the streaming variants.
const CHUNK: usize = 64;

fn submit_jobs() -> Vec<u8> {
    let mut buf = BytesMut::new();
    for i in 0..SUBMITS {
        Request::Submit(SubmitJob {
            function: Bytes::from_static(b"resize_image"),
            unique: Bytes::from(format!("job-{i}")),
            data: Bytes::from(vec![b'x'; SUBMIT_PAYLOAD]),
            priority: Priority::Normal,
            background: i % 2 == 0,
        })
        .encode(&mut buf);
    }
    buf.to_vec()
}

fn work_complete() -> Vec<u8> {
    let data: Vec<u8> = (0..BIG_PAYLOAD).map(|i| (i % 251) as u8).collect();
    let mut buf = BytesMut::new();
    Response::WorkComplete {
        handle: Bytes::from_static(b"H:bench:1"),
        data: Bytes::from(data),
    }
    .encode(&mut buf);
    buf.to_vec()
}

/// Decodes everything in `buf`; returns the item count so the work cannot be optimised away.
fn decode_all<D: Decoder>(codec: &mut D, buf: &mut BytesMut) -> usize
where
    D::Error: std::fmt::Debug,
{
    let mut n = 0;
    while let Some(item) = codec.decode(buf).expect("benchmark input is valid") {
        black_box(item);
        n += 1;
    }
    n
}

/// Appends `wire` to a read buffer `CHUNK` bytes at a time, decoding after every read.
fn decode_stream<D: Decoder>(codec: &mut D, wire: &[u8]) -> usize
where
    D::Error: std::fmt::Debug,
{
    let mut buf = BytesMut::with_capacity(8 * 1024);
    let mut n = 0;
    for piece in wire.chunks(CHUNK) {
        buf.extend_from_slice(piece);
        n += decode_all(codec, &mut buf);
    }
    assert!(buf.is_empty());
    n
}

fn bench_decode(c: &mut Criterion) {
    let submits = submit_jobs();
    let big = work_complete();

    let mut g = c.benchmark_group("decode");

    g.throughput(Throughput::Bytes(submits.len() as u64));
    g.bench_function("submit_job_x10000_whole", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&submits[..]),
            |buf| assert_eq!(decode_all(&mut ServerCodec::default(), buf), SUBMITS),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("submit_job_x10000_stream_64b", |b| {
        b.iter(|| {
            assert_eq!(
                decode_stream(&mut ServerCodec::default(), &submits),
                SUBMITS
            )
        })
    });

    g.throughput(Throughput::Bytes(big.len() as u64));
    g.bench_function("work_complete_1mib_whole", |b| {
        b.iter_batched_ref(
            || BytesMut::from(&big[..]),
            |buf| assert_eq!(decode_all(&mut ClientCodec::default(), buf), 1),
            BatchSize::LargeInput,
        )
    });
    g.bench_function("work_complete_1mib_stream_64b", |b| {
        b.iter(|| assert_eq!(decode_stream(&mut ClientCodec::default(), &big), 1))
    });

    g.finish();
}

criterion_group!(benches, bench_decode);
criterion_main!(benches);
