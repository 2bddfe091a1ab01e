//! The HTTP listener (`-r http`, `--http-port`): gearmand's HTTP job submission.
//!
//! Every request reaches the core the way a Gearman client's does: the gateway opens a Gearman
//! connection to this server's own listening socket and sends the same packets (see
//! `submit`). So a background job is acknowledged only after the store committed it, as for
//! any client, and the core stays the one place that decides.
//!
//! - this file: the routes ([`router`]) and serving them on each listener ([`serve`]).
//! - `settings`: [`HttpSection`] (the flags and config-file keys) and [`HttpSettings`].
//! - `accept`: the accept loop (hyper, with the request-head timeout, graceful stop).
//! - `access`: the `[[access]]` rules applied to each request by its peer address.
//! - `allow`: [`AllowList`], the peers that may change state (`http_allow`).
//! - `submit`: `POST`/`GET`/`HEAD /<function>` with gearmand's `X-Gearman-*` headers.
//! - `admin`: admin listings over the same kind of connection; `GET /metrics`.
//! - `api`: the JSON API under `/api/`: listings, cancel, maxqueue.
//! - `api_cluster`: `GET /api/cluster`, the cluster seen from this member.
//! - `api_jobs`: the JSON API's submit and one-job look-ups.
//! - `dashboard`: the web dashboard at `/` (assets in `dashboard/`, built into the binary).
//! - `events`: `GET /api/events`, the dashboard's live feed (server-sent events), and its
//!   shared sampler; `snapshot`: what one sample holds and the page of it a stream asks for.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post, put};
use axum::Router;
use tokio_util::sync::CancellationToken;

mod accept;
mod access;
mod admin;
mod allow;
mod api;
mod api_cluster;
mod api_jobs;
mod dashboard;
mod events;
mod settings;
mod snapshot;
mod submit;

pub use allow::AllowList;
pub use settings::{HttpSection, HttpSettings, DEFAULT_HEADER_TIMEOUT_MS, DEFAULT_HTTP_PORT};

/// The start of the line `gearboxd` prints on standard error for each HTTP listening address.
pub const HTTP_LISTENING_PREFIX: &str = "gearboxd http listening on ";

/// Shared by every request: where the Gearman side of this server listens, and who may change
/// state.
#[derive(Debug)]
pub(crate) struct Gateway {
    /// A Gearman listening address of this server, reachable from itself.
    pub(crate) gearman: String,
    /// The live feed (`/api/events`): its sampler, history and open streams.
    pub(crate) live: events::Live,
    /// The peers allowed to cancel, set limits, and make any other change (`http_allow`).
    pub(crate) allow: AllowList,
    /// The `[[access]]` rules, applied to each request by its peer address.
    pub(crate) access: gearbox_server::access::AccessPolicy,
}

/// The address to reach a listener at from this host: an unspecified address (`0.0.0.0`,
/// `::`) becomes the loopback address of its family.
pub fn reachable(addr: SocketAddr) -> SocketAddr {
    let mut a = addr;
    if a.ip().is_unspecified() {
        a.set_ip(match a {
            SocketAddr::V4(_) => std::net::Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    a
}

/// The routes, for `gearman` (a Gearman address of this server). Cancelling `stop` ends the
/// live feed's streams, which would otherwise keep a graceful shutdown waiting.
pub fn router(gearman: SocketAddr, settings: &HttpSettings, stop: CancellationToken) -> Router {
    let gateway = Arc::new(Gateway {
        gearman: reachable(gearman).to_string(),
        live: events::Live::new(stop),
        allow: settings.allow.clone(),
        access: settings.access.clone(),
    });
    Router::new()
        // Other methods on the dashboard's paths are gearmand's submission, as before.
        .route("/", get(dashboard::page).fallback(submit::handle))
        .route(
            "/dashboard/app.js",
            get(dashboard::script).fallback(submit::handle),
        )
        .route(
            "/dashboard/app.css",
            get(dashboard::style).fallback(submit::handle),
        )
        .route(
            "/dashboard/icon.svg",
            get(dashboard::icon).fallback(submit::handle),
        )
        .route("/api/events", get(events::events))
        .route("/metrics", get(admin::metrics))
        .route("/api/status", get(api::status))
        .route("/api/workers", get(api::workers))
        .route("/api/cluster", get(api_cluster::get))
        .route("/api/jobs", get(api::jobs))
        .route("/api/jobs/{handle}", get(api_jobs::by_handle))
        .route("/api/unique/{unique}", get(api_jobs::by_unique))
        .route("/api/submit/{function}", post(api_jobs::submit))
        .route("/api/jobs/{handle}/cancel", post(api::cancel))
        .route("/api/maxqueue/{function}", put(api::maxqueue))
        .fallback(submit::handle)
        .layer(DefaultBodyLimit::max(settings.max_body))
        .layer(axum::middleware::from_fn_with_state(
            gateway.clone(),
            access::guard,
        ))
        .with_state(gateway)
}

/// Serves `router` on each listener until its stop future resolves, then finishes the requests
/// in flight; a client slower than `header_timeout` to send a request head is disconnected.
pub async fn serve<F>(
    listeners: Vec<(tokio::net::TcpListener, F)>,
    router: Router,
    header_timeout: std::time::Duration,
) where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    let mut set = tokio::task::JoinSet::new();
    for (l, stop) in listeners {
        set.spawn(accept::accept_loop(l, stop, router.clone(), header_timeout));
    }
    while set.join_next().await.is_some() {}
}
