//! End-to-end smoke test: one client, one worker, one job.

use bytes::Bytes;
use gearbox_proto::{Priority, Request, Response, SubmitJob};
use gearbox_server::ShutdownMode;
use gearbox_testkit::TestServer;

fn b(s: &'static str) -> Bytes {
    Bytes::from_static(s.as_bytes())
}

#[tokio::test]
async fn foreground_job_round_trip() {
    let server = TestServer::start().await;
    let mut worker = server.connect().await;
    let mut client = server.connect().await;
    worker.send(&Request::CanDo { function: b("rev") }).await;
    worker.send(&Request::PreSleep).await;
    worker.assert_quiet().await;
    client
        .send(&Request::Submit(SubmitJob {
            function: b("rev"),
            unique: b(""),
            data: b("abc"),
            priority: Priority::Normal,
            background: false,
        }))
        .await;
    assert_eq!(
        client.recv().await,
        Response::JobCreated {
            handle: b("H:test:1")
        }
    );
    assert_eq!(worker.recv().await, Response::Noop);
    worker.send(&Request::GrabJobUniq).await;
    assert_eq!(
        worker.recv().await,
        Response::JobAssignUniq {
            handle: b("H:test:1"),
            function: b("rev"),
            unique: b(""),
            data: b("abc")
        }
    );
    worker
        .send(&Request::WorkComplete {
            handle: b("H:test:1"),
            data: b("cba"),
        })
        .await;
    assert_eq!(
        client.recv().await,
        Response::WorkComplete {
            handle: b("H:test:1"),
            data: b("cba")
        }
    );
    assert_eq!(client.admin_list("status").await, "rev\t0\t0\t1\n.\n");
    server.stop(ShutdownMode::Immediate).await;
}

/// `run` closes its listening sockets before it returns, whichever way it stops: the port
/// can be bound again at once (a service manager's restart, a test's).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_port_is_free_as_soon_as_the_server_has_stopped() {
    for mode in [
        gearbox_server::ShutdownMode::Immediate,
        gearbox_server::ShutdownMode::Graceful,
    ] {
        let server = TestServer::start().await;
        let addr = server.addr;
        let mut c = server.connect().await;
        assert!(c.echo_works().await);
        server.stop(mode).await;
        let again = std::net::TcpListener::bind(addr);
        assert!(again.is_ok(), "{mode:?}: {addr} still bound: {again:?}");
    }
}
