//! Servers coming and going: a worker reconnects after its server restarts (gearbox, and a
//! killed and restarted gearmand; the job it was running then cannot be reported, and the
//! worker goes on), it may start before its server, and it gives up when told to once no
//! server answers. Also: periodic hooks.

mod worker_support;

use std::sync::Arc;
use std::time::Duration;

use gearbox_client::worker::{Job, JobError, StopReason};
use gearbox_server::Config;
use gearbox_testkit::gearmand::{free_port, GEARMAND_PATH};
use gearbox_testkit::process::Proc;
use gearbox_testkit::{external, TestServer};
use tokio::sync::{mpsc, Notify};
use worker_support::{b, builder, complete, dead_addr, spawn, submit, Server, WAIT};

fn config() -> Config {
    Config {
        job_handle_prefix: Some("H:test".into()),
        ..Config::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_the_server_restarts() {
    let first = TestServer::start_with(config()).await;
    let addr = first.addr;
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (sent_tx, mut sent) = mpsc::unbounded_channel();
    let gate = Arc::new(Notify::new());
    let g = gate.clone();
    let worker = builder(&addr.to_string())
        .concurrency(2)
        .register("echo", |job: Job| async move {
            Ok::<_, JobError>(job.payload().clone())
        })
        .register("hold", move |job: Job| {
            let (tx, gate, sent_tx) = (started_tx.clone(), g.clone(), sent_tx.clone());
            async move {
                let _ = tx.send(());
                gate.notified().await;
                // The connection this job came from is gone by now.
                let _ = sent_tx.send(job.send_data("late").await);
                Ok::<_, JobError>("never reported")
            }
        })
        .build()
        .expect("worker builds");
    let w = spawn(worker);
    let server = Server::Gearbox(first);
    assert_eq!(complete(&server, "echo", "before").await, b("before"));
    let mut client = server.connect().await;
    submit(&mut client, "hold", "").await;
    tokio::time::timeout(WAIT, started.recv())
        .await
        .expect("hold job starts")
        .expect("channel open");

    server.stop().await;
    let server = Server::Gearbox(TestServer::start_on(addr, config()).await);
    assert_eq!(complete(&server, "echo", "after").await, b("after"));
    // The held job finishes on a dead connection: logged, and the worker goes on.
    gate.notify_one();
    let late = tokio::time::timeout(WAIT, sent.recv())
        .await
        .expect("hold job ends");
    assert!(
        matches!(late, Some(Err(gearbox_client::Error::Disconnected { .. }))),
        "updates fail once the connection is lost: {late:?}"
    );
    assert_eq!(complete(&server, "echo", "again").await, b("again"));
    assert!(w.stop().await.is_clean());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starts_before_its_server() {
    let addr = dead_addr();
    let worker = builder(&addr.to_string())
        .register("echo", |job: Job| async move {
            Ok::<_, JobError>(job.payload().clone())
        })
        .build()
        .expect("worker builds");
    let w = spawn(worker);
    let server = Server::Gearbox(TestServer::start_on(addr, config()).await);
    assert_eq!(
        complete(&server, "echo", "late start").await,
        b("late start")
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gives_up_when_no_server_answers() {
    let (a, b) = (dead_addr(), dead_addr());
    let worker = builder(&format!("{a},{b}"))
        .concurrency(2)
        .give_up_after(Duration::from_millis(200))
        .register("echo", |job: Job| async move {
            Ok::<_, JobError>(job.payload().clone())
        })
        .build()
        .expect("worker builds");
    match spawn(worker).join().await {
        StopReason::ServersUnreachable {
            down_for,
            last_error,
        } => {
            assert!(down_for >= Duration::from_millis(200), "{down_for:?}");
            assert!(last_error.contains("127.0.0.1"), "{last_error}");
        }
        other => panic!("expected ServersUnreachable, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn periodic_hook_runs_and_survives_a_panic() {
    let server = Server::gearbox().await;
    let (tx, mut ticks) = mpsc::unbounded_channel();
    let calls = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let worker = builder(&server.list())
        .register("echo", |job: Job| async move {
            Ok::<_, JobError>(job.payload().clone())
        })
        .periodic(Duration::from_millis(10), move || {
            let (tx, calls) = (tx.clone(), calls.clone());
            async move {
                let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                if n == 0 {
                    panic!("first periodic run panics on purpose");
                }
                let _ = tx.send(n);
            }
        })
        .build()
        .expect("worker builds");
    let w = spawn(worker);
    for expected in 1..=3 {
        let n = tokio::time::timeout(WAIT, ticks.recv())
            .await
            .expect("hook runs in time")
            .expect("channel open");
        assert_eq!(n, expected);
    }
    // Jobs are served meanwhile.
    assert_eq!(complete(&server, "echo", "x").await, b("x"));
    assert!(w.stop().await.is_clean());
}

/// Starts gearmand on `port` and waits until it accepts connections (gearmand gives no other
/// readiness signal than its port; the testkit waits the same way).
async fn gearmand_on(bin: &std::path::Path, port: u16) -> Proc {
    let port_arg = port.to_string();
    let args = [
        "-p",
        &port_arg,
        "-L",
        "127.0.0.1",
        "-q",
        "builtin",
        "-l",
        "none",
    ];
    let proc = Proc::spawn(bin, &args);
    let deadline = tokio::time::Instant::now() + WAIT;
    let mut pause = Duration::from_millis(5);
    while tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .is_err()
    {
        assert!(
            tokio::time::Instant::now() < deadline,
            "gearmand did not start on {port}"
        );
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(Duration::from_millis(100));
    }
    proc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reconnects_after_gearmand_restarts() {
    let Some(bin) = external::require(GEARMAND_PATH, "the C++ gearmand") else {
        return;
    };
    let port = free_port();
    let gearmand = gearmand_on(&bin, port).await;
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], port).into();
    let worker = builder(&addr.to_string())
        .concurrency(2)
        .register("echo", |job: Job| async move {
            Ok::<_, JobError>(job.payload().clone())
        })
        .build()
        .expect("worker builds");
    let w = spawn(worker);
    let echo = |payload: &'static str| async move {
        let mut c = gearbox_testkit::RawConn::connect(addr).await;
        submit(&mut c, "echo", payload).await;
        match worker_support::until_done(&mut c).await.pop() {
            Some(gearbox_proto::Response::WorkComplete { data, .. }) => data,
            other => panic!("expected WORK_COMPLETE, got {other:?}"),
        }
    };
    assert_eq!(echo("before").await, b("before"));
    gearmand.kill().await;
    let _gearmand = gearmand_on(&bin, port).await;
    assert_eq!(echo("after").await, b("after"));
    assert!(w.stop().await.is_clean());
}
