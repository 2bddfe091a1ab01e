//! Where `gearbox top` reads its numbers: a server's admin port (`prioritystatus`, `status`,
//! and gearbox's `metrics` for the completed counts) or gearboxd's HTTP API (`/api/status`
//! and `/metrics`), the same numbers either way.

use std::collections::HashMap;
use std::time::Duration;

use gearbox_client::admin::Admin;
use gearbox_client::{Error, ServerAddr, TlsConfig};

use super::view::{Row, Sample};
use crate::http_api::{blocking, HttpApi};

/// One server to sample.
#[derive(Debug)]
pub enum Source {
    /// Its admin port; the connection stays open between samples, re-opened after an error.
    Admin {
        /// The server.
        addr: ServerAddr,
        /// The open connection, if any.
        conn: Option<Admin>,
        /// TLS for the connection, else plain TCP.
        tls: Option<TlsConfig>,
    },
    /// Its HTTP API.
    Http(HttpApi),
}

impl Source {
    /// The server's label in tables and JSON.
    pub fn label(&self) -> String {
        match self {
            Source::Admin { addr, .. } => addr.to_string(),
            Source::Http(api) => api.url().to_owned(),
        }
    }

    /// The server's functions now; `limit` bounds connecting.
    pub async fn sample(&mut self, limit: Duration) -> Sample {
        match self {
            Source::Admin { addr, conn, tls } => {
                let r = admin_sample(addr, conn, limit, tls.as_ref()).await;
                r.map_err(|e| {
                    *conn = None;
                    e.to_string()
                })
            }
            Source::Http(api) => blocking(api, http_sample)
                .await
                .map_err(|e| format!("{e:#}")),
        }
    }
}

async fn admin_sample(
    addr: &ServerAddr,
    conn: &mut Option<Admin>,
    limit: Duration,
    tls: Option<&TlsConfig>,
) -> Result<Vec<Row>, Error> {
    if conn.is_none() {
        *conn = Some(Admin::connect_with(addr.clone(), limit, tls).await?);
    }
    let a = conn.as_mut().expect("just connected");
    let prio = a.priority_status().await?;
    let status = a.status().await?;
    let completed = match a.metrics().await {
        Ok(text) => Some(completed_counts(&text)),
        // gearmand has no `metrics`: no completed counts.
        Err(Error::Admin { .. }) => None,
        Err(e) => return Err(e),
    };
    let rows = prio
        .into_iter()
        .map(|p| {
            let function = String::from_utf8_lossy(&p.function).into_owned();
            let running = status
                .iter()
                .find(|s| s.function == p.function)
                .map_or(0, |s| s.running);
            Row {
                completed: completed
                    .as_ref()
                    .map(|c| c.get(&function).copied().unwrap_or(0)),
                high: p.high,
                normal: p.normal,
                low: p.low,
                running,
                workers: p.workers,
                rate: None,
                function,
            }
        })
        .collect();
    Ok(rows)
}

fn http_sample(api: &HttpApi) -> anyhow::Result<Vec<Row>> {
    let status = api.status()?;
    let completed = completed_counts(&api.metrics()?);
    Ok(status
        .into_iter()
        .map(|f| Row {
            completed: Some(completed.get(&f.function).copied().unwrap_or(0)),
            high: f.queued.high,
            normal: f.queued.normal,
            low: f.queued.low,
            running: f.running,
            workers: f.workers,
            rate: None,
            function: f.function,
        })
        .collect())
}

/// The metric holding each function's completed jobs.
const COMPLETED: &str = "gearbox_jobs_completed_total";

/// `gearbox_jobs_completed_total{function="NAME"} N` per function, from Prometheus text (the
/// label value unescaped; other labels and lines ignored).
pub fn completed_counts(text: &str) -> HashMap<String, u64> {
    text.lines()
        .filter_map(|line| {
            let labels = line.strip_prefix(COMPLETED)?.strip_prefix('{')?;
            let (function, rest) = function_label(labels)?;
            Some((function, rest.trim().parse().ok()?))
        })
        .collect()
}

/// The `function` label's value in `labels` (the text after `{`), and the text after `}`.
fn function_label(labels: &str) -> Option<(String, &str)> {
    let mut chars = labels.char_indices();
    let mut found = None;
    loop {
        // A label name up to `="`, or the end of the labels.
        let start = chars.clone().next()?.0;
        let (end, c) = chars.find(|(_, c)| *c == '=' || *c == '}')?;
        if c == '}' {
            return Some((found?, &labels[end + 1..]));
        }
        let name = labels[start..end].trim_start_matches(',').trim();
        chars.next().filter(|(_, c)| *c == '"')?;
        let mut value = String::new();
        loop {
            match chars.next()?.1 {
                '"' => break,
                '\\' => value.push(match chars.next()?.1 {
                    'n' => '\n',
                    c => c,
                }),
                c => value.push(c),
            }
        }
        if name == "function" {
            found = Some(value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn completed_counts_are_read_with_their_names_unescaped() {
        let text = "# HELP gearbox_jobs_completed_total x\n\
                    gearbox_jobs_completed_total{function=\"a\"} 3\n\
                    gearbox_jobs_completed_total{function=\"q\\\"u\\\\o\\nte\"} 7\n\
                    gearbox_jobs_completed_total{server=\"x\",function=\"b,c\"} 11\n\
                    gearbox_jobs_completed_totally{function=\"z\"} 1\n\
                    gearbox_jobs_failed_total{function=\"a\"} 9\n";
        let c = completed_counts(text);
        assert_eq!(c.len(), 3, "{c:?}");
        assert_eq!(c["a"], 3);
        assert_eq!(c["q\"u\\o\nte"], 7);
        assert_eq!(c["b,c"], 11);
    }
}
