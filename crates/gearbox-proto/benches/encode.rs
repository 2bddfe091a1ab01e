//! Encoder throughput, shaped like the server's output path: a connection's packets are
//! appended one after another to a single reused `BytesMut` (see `gearbox-server`'s
//! `outbound` module), which the writer task then sends in one write.
//!
//! - `server_job_cycle_x10000`: for each of 10,000 jobs the four responses a foreground job
//!   produces (JOB_CREATED, NOOP, JOB_ASSIGN_UNIQ with a 100-byte payload, WORK_COMPLETE with a
//!   100-byte result), written with [`Response::encode`].
//! - `submit_job_x10000`: 10,000 SUBMIT_JOB requests through [`ClientCodec`], as a client sends
//!   them.
//! - `work_complete_1mib`: one WORK_COMPLETE with a 1 MiB result (a plain copy).
//!
//! Throughput is in bytes written. The packets are built before timing starts, so only the
//! encoding is measured; the buffer keeps its capacity between iterations, as the writer's does.
//!
//! Run with `cargo bench -p gearbox-proto --bench encode` (add `-- --quick` for a short run).

use std::hint::black_box;

use bytes::{Bytes, BytesMut};
use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use gearbox_proto::{ClientCodec, Priority, Request, Response, SubmitJob};
use tokio_util::codec::Encoder;

/// Jobs per iteration.
const JOBS: usize = 10_000;
/// Payload of each submitted job and of each result.
const PAYLOAD: usize = 100;
/// Result size of the large WORK_COMPLETE.
const BIG_PAYLOAD: usize = 1 << 20;

fn handle(i: usize) -> Bytes {
    Bytes::from(format!("H:bench-host:{}", 1_000_000 + i))
}

/// The responses of `JOBS` foreground jobs, in the order the server produces them.
fn server_cycle() -> Vec<Response> {
    let function = Bytes::from_static(b"resize_image");
    let mut v = Vec::with_capacity(JOBS * 4);
    for i in 0..JOBS {
        let handle = handle(i);
        v.push(Response::JobCreated {
            handle: handle.clone(),
        });
        v.push(Response::Noop);
        v.push(Response::JobAssignUniq {
            handle: handle.clone(),
            function: function.clone(),
            unique: Bytes::from(format!("3f2b8c1e-{i:08}")),
            data: Bytes::from(vec![b'x'; PAYLOAD]),
        });
        v.push(Response::WorkComplete {
            handle,
            data: Bytes::from(vec![b'y'; PAYLOAD]),
        });
    }
    v
}

fn submits() -> Vec<Request> {
    (0..JOBS)
        .map(|i| {
            Request::Submit(SubmitJob {
                function: Bytes::from_static(b"resize_image"),
                unique: Bytes::from(format!("3f2b8c1e-{i:08}")),
                data: Bytes::from(vec![b'x'; PAYLOAD]),
                priority: Priority::Normal,
                background: false,
            })
        })
        .collect()
}

/// Encodes `responses` into `buf` (emptied first); returns the bytes written.
fn encode_responses(responses: &[Response], buf: &mut BytesMut) -> usize {
    buf.clear();
    for r in responses {
        r.encode(buf);
    }
    black_box(&buf[..]);
    buf.len()
}

fn encode_requests(codec: &mut ClientCodec, requests: &[Request], buf: &mut BytesMut) -> usize {
    buf.clear();
    for r in requests {
        codec.encode(r, buf).expect("encoding cannot fail");
    }
    black_box(&buf[..]);
    buf.len()
}

fn bench_encode(c: &mut Criterion) {
    let mut g = c.benchmark_group("encode");

    let responses = server_cycle();
    let mut buf = BytesMut::new();
    let len = encode_responses(&responses, &mut buf);
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("server_job_cycle_x10000", |b| {
        b.iter(|| encode_responses(&responses, &mut buf))
    });

    let requests = submits();
    let mut codec = ClientCodec::default();
    let len = encode_requests(&mut codec, &requests, &mut buf);
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("submit_job_x10000", |b| {
        b.iter(|| encode_requests(&mut codec, &requests, &mut buf))
    });

    let big = [Response::WorkComplete {
        handle: handle(0),
        data: Bytes::from(
            (0..BIG_PAYLOAD)
                .map(|i| (i % 251) as u8)
                .collect::<Vec<u8>>(),
        ),
    }];
    let len = encode_responses(&big, &mut buf);
    g.throughput(Throughput::Bytes(len as u64));
    g.bench_function("work_complete_1mib", |b| {
        b.iter(|| encode_responses(&big, &mut buf))
    });

    g.finish();
}

criterion_group!(benches, bench_encode);
criterion_main!(benches);
