//! A worker whose functions a server's access rules refuse: the refusal is logged, not
//! retried, and surfaces as [`StopReason::PermissionDenied`] once every server refuses.

use std::time::Duration;

use gearbox_client::worker::{Job, JobError, StopReason, Worker};
use gearbox_client::{Client, Error};
use gearbox_server::access::{AccessPolicy, AccessRule};
use gearbox_server::Config;
use gearbox_testkit::TestServer;

const WAIT: Duration = Duration::from_secs(10);

fn ok(_job: Job) -> std::future::Ready<Result<&'static str, JobError>> {
    std::future::ready(Ok("done"))
}

/// Loopback may submit to and register for `allowed` only.
async fn server() -> TestServer {
    let rule = AccessRule {
        name: Some("local".into()),
        peer: vec!["127.0.0.0/8".into()],
        submit: vec!["allowed".into()],
        register: vec!["allowed".into()],
        ..AccessRule::default()
    };
    TestServer::start_with(Config {
        access: AccessPolicy::new(vec![rule]).unwrap(),
        ..Config::default()
    })
    .await
}

#[tokio::test]
async fn a_refused_registration_stops_the_worker_instead_of_retrying() {
    let srv = server().await;
    let worker = Worker::builder()
        .servers(&format!("127.0.0.1:{}", srv.port()))
        .concurrency(2)
        .reconnect_backoff(Duration::from_millis(1), Duration::from_millis(1))
        .register("allowed", ok)
        .register("billing", ok)
        .build()
        .unwrap();
    let reason = tokio::time::timeout(WAIT, worker.run(std::future::pending::<()>()))
        .await
        .expect("the worker stops by itself")
        .unwrap();
    match &reason {
        StopReason::PermissionDenied { error } => {
            assert!(error.contains("may not register for billing"), "{error}")
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    assert!(!reason.is_clean());
    assert!(reason.to_string().contains("access rules"), "{reason}");
}

#[tokio::test]
async fn a_worker_of_granted_functions_serves_and_a_client_sees_a_refused_submit() {
    let srv = server().await;
    let addr = format!("127.0.0.1:{}", srv.port());
    let worker = Worker::builder()
        .servers(&addr)
        .register("allowed", ok)
        .build()
        .unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(worker.run(stopped));
    let client = Client::new(&addr).unwrap();
    let result = tokio::time::timeout(WAIT, client.submit("allowed", "x"))
        .await
        .expect("answered");
    assert_eq!(result.unwrap(), "done");
    let refused = tokio::time::timeout(WAIT, client.submit("billing", "x"))
        .await
        .expect("answered");
    match refused {
        Err(Error::PermissionDenied(text)) => {
            assert_eq!(text, "permission denied: may not submit to billing")
        }
        other => panic!("expected PermissionDenied, got {other:?}"),
    }
    stop.send(()).unwrap();
    let reason = running.await.unwrap().unwrap();
    assert!(reason.is_clean(), "{reason}");
}
