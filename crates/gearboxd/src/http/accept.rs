//! The HTTP listener's accept loop: one task per connection, served by hyper's HTTP/1 with a
//! limit on the time to send the request head; each request carries its peer's address
//! ([`ConnectInfo`]) for the handlers. Stopping closes the listener, then waits for the
//! requests in flight (a connection's next request is refused by closing it).

use std::future::Future;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::Router;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tower_service::Service;

/// How long to wait after a failed `accept` (out of file descriptors, ...) before the next.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `stop` resolves, then finishes the requests in flight.
pub(super) async fn accept_loop<F>(
    listener: TcpListener,
    stop: F,
    router: Router,
    header_timeout: Duration,
) where
    F: Future<Output = ()>,
{
    let addr = listener.local_addr().ok();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_timeout);
    let graceful = GracefulShutdown::new();
    tokio::pin!(stop);
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut stop => break,
            accepted = listener.accept() => match accepted {
                Ok(c) => c,
                Err(e) => {
                    tracing::warn!(?addr, error = %e, "http accept failed; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
            req.extensions_mut().insert(ConnectInfo(peer));
            router.clone().call(req)
        });
        let conn = graceful.watch(builder.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(%peer, error = %e, "http connection ended on an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
    tracing::debug!(?addr, "http listener stopped");
}
