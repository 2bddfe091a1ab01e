//! A blocking client of gearboxd's HTTP JSON API (`-r http`; docs/http.md), for `top` and
//! `watch --http`: `GET /api/status`, `GET /api/workers` and `GET /metrics`. Plain HTTP only:
//! for a listener behind TLS, reach it through a local proxy or use the admin port.

use std::time::Duration;

use anyhow::{bail, Context};
use serde::Deserialize;

/// The environment variable naming HTTP API addresses (as `--http`).
pub const HTTP_ENV: &str = "GEARBOX_HTTP";

/// Jobs queued per priority, as `/api/status` gives them.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct Queued {
    /// Queued HIGH jobs.
    pub high: u64,
    /// Queued NORMAL jobs.
    pub normal: u64,
    /// Queued LOW jobs.
    pub low: u64,
}

/// One function of `/api/status`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiFunction {
    /// Function name.
    pub function: String,
    /// Jobs waiting for a worker, per priority.
    pub queued: Queued,
    /// Jobs a worker is running.
    pub running: u64,
    /// Registered workers.
    pub workers: u64,
    /// Jobs held (queued and running).
    pub total: u64,
}

/// One connection of `/api/workers`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ApiWorker {
    /// The server's number for the connection.
    pub fd: i64,
    /// The peer's address.
    pub ip: String,
    /// The id the connection set, `-` if none.
    pub client_id: String,
    /// Registered functions (none for a client).
    pub functions: Vec<String>,
}

/// One server's HTTP API.
#[derive(Debug, Clone)]
pub struct HttpApi {
    base: String,
    agent: ureq::Agent,
}

impl HttpApi {
    /// The API at `url` (`http://host:port`, or `host:port`); every request gives up after
    /// `timeout`.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<HttpApi> {
        let url = url.trim().trim_end_matches('/');
        let base = match url.split_once("://") {
            None => format!("http://{url}"),
            Some(("http", rest)) if !rest.is_empty() => url.to_owned(),
            Some(("https", _)) => bail!(
                "{url}: https is not supported (plain HTTP only); use the admin port (-s) or a \
                 local TLS proxy"
            ),
            Some(_) => bail!("{url}: not an http:// address"),
        };
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(timeout))
            .build();
        Ok(HttpApi {
            base,
            agent: config.into(),
        })
    }

    /// The base address, for labels (`http://host:port`).
    pub fn url(&self) -> &str {
        &self.base
    }

    fn get(&self, path: &str) -> anyhow::Result<String> {
        let url = format!("{}{path}", self.base);
        let mut answer = self
            .agent
            .get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        answer
            .body_mut()
            .read_to_string()
            .with_context(|| format!("GET {url}: reading the answer"))
    }

    fn get_json<T: serde::de::DeserializeOwned>(&self, path: &str) -> anyhow::Result<T> {
        let text = self.get(path)?;
        serde_json::from_str(&text)
            .with_context(|| format!("GET {}{path}: not the API's JSON", self.base))
    }

    /// `GET /api/status`.
    pub fn status(&self) -> anyhow::Result<Vec<ApiFunction>> {
        self.get_json("/api/status")
    }

    /// `GET /api/workers`.
    pub fn workers(&self) -> anyhow::Result<Vec<ApiWorker>> {
        self.get_json("/api/workers")
    }

    /// `GET /metrics`: Prometheus text.
    pub fn metrics(&self) -> anyhow::Result<String> {
        self.get("/metrics")
    }
}

/// Runs a blocking API call off the async runtime's threads.
pub async fn blocking<T, F>(api: &HttpApi, call: F) -> anyhow::Result<T>
where
    T: Send + 'static,
    F: FnOnce(&HttpApi) -> anyhow::Result<T> + Send + 'static,
{
    let api = api.clone();
    tokio::task::spawn_blocking(move || call(&api))
        .await
        .context("the HTTP request task failed")?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_are_plain_http() {
        let t = Duration::from_secs(1);
        assert_eq!(
            HttpApi::new("127.0.0.1:8080", t).unwrap().url(),
            "http://127.0.0.1:8080"
        );
        assert_eq!(HttpApi::new("http://h:1/", t).unwrap().url(), "http://h:1");
        let e = HttpApi::new("https://h", t).unwrap_err().to_string();
        assert!(e.contains("https is not supported"), "{e}");
        assert!(HttpApi::new("ftp://h", t).is_err());
    }
}
