//! The worker's packets, byte for byte, against a scripted fake server: registration
//! (CAN_DO, CAN_DO_TIMEOUT with ASCII milliseconds, SET_CLIENT_ID, ECHO), the
//! GRAB_JOB_UNIQ / NO_JOB / PRE_SLEEP / NOOP cycle, a job for an unknown function, an ERROR
//! while idle, re-registering after a lost connection, and shutdown with a grab in flight
//! (the job it brings is run; abilities are never dropped).

mod worker_support;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gearbox_client::worker::{Job, JobError, StopReason};
use gearbox_proto::{ErrorCode, Incoming, Request, Response, ServerCodec};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::codec::Decoder;
use worker_support::{b, builder, spawn, WAIT};

/// The server side of one worker connection.
struct Fake {
    stream: TcpStream,
    buf: BytesMut,
    codec: ServerCodec,
}

impl Fake {
    async fn accept(l: &TcpListener) -> Fake {
        let (stream, _) = tokio::time::timeout(WAIT, l.accept())
            .await
            .expect("worker connects in time")
            .expect("accept");
        Fake {
            stream,
            buf: BytesMut::new(),
            codec: ServerCodec::default(),
        }
    }

    /// The next request, or `None` when the worker closed the connection.
    async fn next(&mut self) -> Option<Request> {
        loop {
            match self.codec.decode(&mut self.buf).expect("valid bytes") {
                Some(Incoming::Request(r)) => return Some(r),
                Some(other) => panic!("not a request: {other:?}"),
                None => {}
            }
            let n = tokio::time::timeout(WAIT, self.stream.read_buf(&mut self.buf))
                .await
                .expect("worker sends in time")
                .expect("read");
            if n == 0 {
                assert!(self.buf.is_empty(), "partial packet before close");
                return None;
            }
        }
    }

    async fn expect(&mut self, want: Request) {
        assert_eq!(self.next().await, Some(want));
    }

    async fn send(&mut self, r: Response) {
        let mut out = BytesMut::new();
        r.encode(&mut out);
        self.stream.write_all(&out).await.expect("write");
    }

    /// Checks the registration of the worker below and answers its ECHO.
    async fn registration(&mut self) {
        self.expect(Request::CanDo { function: b("a") }).await;
        self.expect(Request::CanDoTimeout {
            function: b("b"),
            // 1.5 s in whole seconds, rounded up.
            timeout: b("2"),
        })
        .await;
        self.expect(Request::SetClientId { id: b("w1") }).await;
        let Some(Request::EchoReq { data }) = self.next().await else {
            panic!("expected ECHO_REQ")
        };
        self.send(Response::EchoRes { data }).await;
    }

    fn assign(handle: &str, function: &str, data: &str) -> Response {
        Response::JobAssignUniq {
            handle: b(handle),
            function: b(function),
            unique: b("u"),
            data: b(data),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn packets_of_a_worker_life() {
    let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let worker = builder(&l.local_addr().expect("addr").to_string())
        .client_id("w1")
        .register_with_timeout("b", Duration::from_millis(1500), |_job: Job| async {
            Ok::<_, JobError>("")
        })
        .register("a", |job: Job| async move {
            if job.payload().as_ref() == b"wait-stop" {
                job.stopping().await;
            }
            let mut out = job.payload().to_vec();
            out.push(b'!');
            Ok::<_, JobError>(out)
        })
        .build()
        .expect("worker builds");
    let mut w = spawn(worker);

    let mut c = Fake::accept(&l).await;
    c.registration().await;
    c.expect(Request::GrabJobUniq).await;
    c.send(Response::NoJob).await;
    c.expect(Request::PreSleep).await;
    // An error while idle (e.g. about an earlier result) is logged; the worker sleeps on.
    c.send(Response::error(
        ErrorCode::JobNotFound,
        "Job given in work result not found",
    ))
    .await;
    c.send(Response::Noop).await;
    c.expect(Request::GrabJobUniq).await;
    c.send(Fake::assign("H:1", "a", "data\0x")).await;
    c.expect(Request::WorkComplete {
        handle: b("H:1"),
        data: b("data\0x!"),
    })
    .await;
    c.expect(Request::GrabJobUniq).await;
    // A job for a function the worker never registered goes straight back.
    c.send(Fake::assign("H:2", "zzz", "")).await;
    c.expect(Request::WorkFail { handle: b("H:2") }).await;
    c.expect(Request::GrabJobUniq).await;

    // Lost connection: the worker reconnects and registers again.
    drop(c);
    let mut c = Fake::accept(&l).await;
    c.registration().await;
    c.expect(Request::GrabJobUniq).await;

    // Shutdown with the grab in flight: the job it brings runs, then the connection closes
    // without CANT_DO / RESET_ABILITIES.
    c.send(Fake::assign("H:3", "a", "wait-stop")).await;
    w.request_stop();
    c.expect(Request::WorkComplete {
        handle: b("H:3"),
        data: Bytes::from_static(b"wait-stop!"),
    })
    .await;
    assert_eq!(c.next().await, None, "closed after the last result");
    assert_eq!(
        w.join().await,
        StopReason::Requested {
            finished: 1,
            abandoned: 0
        }
    );
}
