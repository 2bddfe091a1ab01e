//! The web dashboard: `GET /` and its assets under `/dashboard/`, built into the binary (no
//! file is read at run time and nothing is loaded from elsewhere). The page reads the live
//! feed (`/api/events`) and calls the JSON API; a strict Content-Security-Policy allows
//! nothing but this server.

use axum::http::header;
use axum::response::{IntoResponse, Response};

/// Everything from this server only: no inline script or style, no other origin, no framing.
pub(crate) const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
     img-src 'self'; connect-src 'self'; base-uri 'none'; form-action 'none'; \
     frame-ancestors 'none'";

/// `body` as `content_type`, with the dashboard's security headers. Not cached without
/// asking (`no-cache`): an upgraded server serves its own page at once.
fn asset(content_type: &'static str, body: &'static [u8]) -> Response {
    (
        [
            (header::CONTENT_TYPE, content_type),
            (header::CONTENT_SECURITY_POLICY, CSP),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body,
    )
        .into_response()
}

/// `GET /`: the page.
pub(super) async fn page() -> Response {
    asset(
        "text/html; charset=utf-8",
        include_bytes!("dashboard/index.html"),
    )
}

/// `GET /dashboard/app.js`.
pub(super) async fn script() -> Response {
    asset(
        "text/javascript; charset=utf-8",
        include_bytes!("dashboard/app.js"),
    )
}

/// `GET /dashboard/app.css`.
pub(super) async fn style() -> Response {
    asset(
        "text/css; charset=utf-8",
        include_bytes!("dashboard/app.css"),
    )
}

/// `GET /dashboard/icon.svg`.
pub(super) async fn icon() -> Response {
    asset("image/svg+xml", include_bytes!("dashboard/icon.svg"))
}
