//! How an admin connection fails: refused, silent, closing mid-reply, garbage, bad
//! arguments.

mod admin_support;

use std::time::Duration;

use admin_support::{server_addr, Server};
use gearbox_client::admin::Admin;
use gearbox_client::{Error, ServerAddr};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A loopback listener whose connections run `serve` (a scripted fake server).
async fn fake<F, Fut>(serve: F) -> ServerAddr
where
    F: FnOnce(tokio::net::TcpStream) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + Send,
{
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    tokio::spawn(async move {
        let (s, _) = l.accept().await.unwrap();
        serve(s).await;
    });
    ServerAddr::new("127.0.0.1", port)
}

#[tokio::test]
async fn refused_connection_is_unreachable() {
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let e = Admin::connect(ServerAddr::new("127.0.0.1", port))
        .await
        .expect_err("nobody listens");
    assert!(matches!(e, Error::Unreachable { .. }), "{e:?}");
    assert!(e.to_string().contains(&format!("127.0.0.1:{port}")), "{e}");
}

/// A server that never answers: the command times out, and the connection is unusable.
#[tokio::test]
async fn silent_server_times_out_and_poisons_the_connection() {
    let (hold_tx, hold_rx) = tokio::sync::oneshot::channel::<()>();
    let addr = fake(|mut s| async move {
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).await;
        let _ = hold_rx.await; // keep the socket open, say nothing
    })
    .await;
    let mut a = Admin::connect_with_timeout(addr, Duration::from_millis(200))
        .await
        .unwrap();
    let e = a.status().await.expect_err("no answer");
    assert!(
        matches!(&e, Error::Disconnected { reason, .. } if reason.contains("no complete reply")),
        "{e:?}"
    );
    let again = a.version().await.expect_err("poisoned");
    assert!(matches!(again, Error::Disconnected { .. }), "{again:?}");
    drop(hold_tx);
}

/// Closing in the middle of a listing, and lines that are not gearmand's format.
#[tokio::test]
async fn truncated_and_malformed_replies() {
    let addr = fake(|mut s| async move {
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"f\t1\t0\t0\n").await;
    })
    .await;
    let mut a = Admin::connect(addr).await.unwrap();
    let e = a.status().await.expect_err("cut short");
    assert!(
        matches!(&e, Error::Disconnected { reason, .. } if reason.contains("closed")),
        "{e:?}"
    );

    let addr = fake(|mut s| async move {
        let mut buf = [0u8; 64];
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"f\t1\tmany\t0\n.\n").await;
        let _ = s.read(&mut buf).await;
        let _ = s.write_all(b"surprise\n").await;
        let _ = s.read(&mut buf).await;
    })
    .await;
    let mut a = Admin::connect(addr).await.unwrap();
    let e = a.status().await.expect_err("bad column");
    assert!(
        matches!(&e, Error::Admin { command, reply }
            if command == "status" && reply.contains("not a decimal")),
        "{e:?}"
    );
    let e = a.getpid().await.expect_err("not OK <pid>");
    assert!(
        matches!(&e, Error::Admin { reply, .. } if reply.contains("surprise")),
        "{e:?}"
    );
}

/// Names that cannot travel in one admin word are refused before anything is sent.
#[tokio::test]
async fn arguments_are_checked() {
    for s in Server::both().await {
        let mut a = Admin::connect(server_addr(&s)).await.unwrap();
        for bad in ["", "a b", "a\r", "a\nb"] {
            for r in [
                a.cancel(bad).await,
                a.create_function(bad).await,
                a.drop_function(bad).await,
            ] {
                assert!(
                    matches!(r, Err(Error::InvalidArgument(_))),
                    "{bad:?}: {r:?}"
                );
            }
        }
        // Nothing was sent: the connection is in step.
        assert_eq!(&a.raw("show jobs").await.unwrap()[..], b".\n");
    }
}
