//! `GET /api/cluster`: the cluster seen from this member, read from the admin listings
//! `cluster members` and `cluster status` (one source of truth with the Gearman port).
//!
//! On a cluster member:
//!
//! ```json
//! { "cluster": true, "member": "s3",
//!   "members": [{ "id", "address", "heartbeat_age_ms", "jobs_held", "connections",
//!                 "workers", "this" }],
//!   "functions": [{ "function", "free", "queued", "running", "workers" }],
//!   "totals": { "members", "jobs_held", "connections", "free", "queued", "running",
//!               "workers" } }
//! ```
//!
//! `functions` and `totals` are cluster-wide: `free` is the jobs in the shared queue no
//! member holds, the others are sums over the live members' published loads. On a server
//! that is not in a cluster the answer is `200 {"cluster": false}`, so that the dashboard can
//! ask unconditionally.

use std::sync::Arc;

use axum::extract::State;
use axum::Json;
use serde::Serialize;

use super::admin::{listing, AdminError};
use super::api::ApiError;
use super::Gateway;

/// One member in `/api/cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct Member {
    id: String,
    address: String,
    heartbeat_age_ms: u64,
    jobs_held: u64,
    connections: u64,
    workers: u64,
    /// This server.
    this: bool,
}

/// One function's cluster-wide numbers in `/api/cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub(crate) struct ClusterFunction {
    function: String,
    free: u64,
    queued: u64,
    running: u64,
    workers: u64,
}

/// The cluster-wide totals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub(crate) struct Totals {
    members: u64,
    jobs_held: u64,
    connections: u64,
    free: u64,
    queued: u64,
    running: u64,
    workers: u64,
}

/// The `cluster members` listing's rows.
pub(crate) fn members(text: &[u8]) -> Vec<Member> {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            if f.len() < 6 {
                return None;
            }
            let n = |i: usize| f[i].parse::<u64>().ok();
            Some(Member {
                id: f[0].to_owned(),
                address: f[1].to_owned(),
                heartbeat_age_ms: n(2)?,
                jobs_held: n(3)?,
                connections: n(4)?,
                workers: n(5)?,
                this: f.get(6) == Some(&"*"),
            })
        })
        .collect()
}

/// The `cluster status` listing's rows (a function name may hold a tab: numbers are taken
/// from the right).
pub(crate) fn functions(text: &[u8]) -> Vec<ClusterFunction> {
    String::from_utf8_lossy(text)
        .lines()
        .filter_map(|l| {
            let mut parts: Vec<&str> = l.rsplitn(5, '\t').collect();
            if parts.len() != 5 {
                return None;
            }
            let function = parts.pop()?.to_owned();
            let n: Vec<u64> = parts
                .iter()
                .rev()
                .map(|p| p.parse().ok())
                .collect::<Option<_>>()?;
            Some(ClusterFunction {
                function,
                free: n[0],
                queued: n[1],
                running: n[2],
                workers: n[3],
            })
        })
        .collect()
}

/// The whole answer from the two listings.
pub(crate) fn cluster(members_text: &[u8], status_text: &[u8]) -> serde_json::Value {
    let members = members(members_text);
    let functions = functions(status_text);
    let mut totals = Totals {
        members: members.len() as u64,
        ..Totals::default()
    };
    for m in &members {
        totals.jobs_held += m.jobs_held;
        totals.connections += m.connections;
    }
    for f in &functions {
        totals.free += f.free;
        totals.queued += f.queued;
        totals.running += f.running;
    }
    // Workers are connections: a worker of several functions counts once.
    totals.workers = members.iter().map(|m| m.workers).sum();
    let me = members.iter().find(|m| m.this).map(|m| m.id.clone());
    serde_json::json!({
        "cluster": true,
        "member": me,
        "members": members,
        "functions": functions,
        "totals": totals,
    })
}

/// `GET /api/cluster` (see the module documentation).
pub(super) async fn get(
    State(g): State<Arc<Gateway>>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let members_text = match listing(&g, "cluster members").await {
        Ok(text) => text,
        Err(AdminError::Refused(e)) if e.contains("NOT_CLUSTER") => {
            return Ok(Json(serde_json::json!({ "cluster": false })))
        }
        Err(e) => return Err(e.into()),
    };
    let status_text = listing(&g, "cluster status").await?;
    Ok(Json(cluster(&members_text, &status_text)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listings_become_members_functions_and_totals() {
        let v = cluster(
            b"s1\th:1\t20\t2\t3\t1\ns2\th:2\t5\t0\t1\t0\t*\nbad line\n",
            b"a\tb\t4\t2\t1\t1\nc\t0\t0\t0\t2\n",
        );
        assert_eq!(v["cluster"], true);
        assert_eq!(v["member"], "s2");
        assert_eq!(v["members"][0]["id"], "s1");
        assert_eq!(v["members"][0]["this"], false);
        assert_eq!(v["members"][1]["this"], true);
        assert_eq!(v["members"].as_array().unwrap().len(), 2);
        assert_eq!(v["functions"][0]["function"], "a\tb");
        assert_eq!(v["functions"][0]["free"], 4);
        assert_eq!(v["functions"][1]["workers"], 2);
        assert_eq!(
            v["totals"],
            serde_json::json!({ "members": 2, "jobs_held": 2, "connections": 4, "free": 4,
                "queued": 2, "running": 1, "workers": 1 })
        );
    }
}
