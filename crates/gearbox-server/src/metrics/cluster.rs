//! Cluster mode's counters: the shared queue as this member sees it (claims, releases,
//! takeovers) and outages of the database the members share, seen by the heartbeat. They
//! are rendered only on a cluster member.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};

use super::{add, Kind, Text};

/// Counters kept by the cluster task.
#[derive(Debug, Default)]
pub struct ClusterMetrics {
    /// This server is a cluster member (the counters are rendered).
    pub enabled: AtomicBool,
    /// Jobs claimed from the shared queue.
    pub claimed: AtomicU64,
    /// Jobs given back to the shared queue.
    pub released: AtomicU64,
    /// Jobs of dead members freed by this member's heartbeats.
    pub taken_over: AtomicU64,
    /// Heartbeats that failed.
    pub heartbeat_failures: AtomicU64,
    /// Times heartbeats started failing.
    pub outages: AtomicU64,
    /// 1 while heartbeats fail.
    pub unavailable: AtomicU64,
    /// Times this member found it had been declared dead.
    pub declared_dead: AtomicU64,
}

impl ClusterMetrics {
    /// A heartbeat failed; returns whether an outage starts with it.
    pub fn heartbeat_failed(&self) -> bool {
        add(&self.heartbeat_failures, 1);
        let starts = self.unavailable.swap(1, Relaxed) == 0;
        if starts {
            add(&self.outages, 1);
        }
        starts
    }

    /// A heartbeat worked; returns whether an outage ends with it.
    pub fn heartbeat_worked(&self) -> bool {
        self.unavailable.swap(0, Relaxed) == 1
    }

    /// Appends the counters, on a cluster member only.
    pub fn render(&self, t: &mut Text) {
        if !self.enabled.load(Relaxed) {
            return;
        }
        let rows: [(&str, &str, Kind, &AtomicU64); 7] = [
            (
                "gearbox_cluster_jobs_claimed_total",
                "Jobs this member claimed from the cluster's shared queue.",
                Kind::Counter,
                &self.claimed,
            ),
            (
                "gearbox_cluster_jobs_released_total",
                "Jobs this member gave back to the shared queue (no worker ready here).",
                Kind::Counter,
                &self.released,
            ),
            (
                "gearbox_cluster_jobs_taken_over_total",
                "Jobs of dead members this member's heartbeats freed for the cluster.",
                Kind::Counter,
                &self.taken_over,
            ),
            (
                "gearbox_cluster_heartbeat_failures_total",
                "Cluster heartbeats that failed (the shared database unreachable).",
                Kind::Counter,
                &self.heartbeat_failures,
            ),
            (
                "gearbox_cluster_outages_total",
                "Times this member's heartbeats started failing.",
                Kind::Counter,
                &self.outages,
            ),
            (
                "gearbox_cluster_declared_dead_total",
                "Times this member found the others had declared it dead.",
                Kind::Counter,
                &self.declared_dead,
            ),
            (
                "gearbox_cluster_unavailable",
                "1 while this member's heartbeats fail, else 0.",
                Kind::Gauge,
                &self.unavailable,
            ),
        ];
        for (name, help, kind, value) in rows {
            t.header(name, help, kind);
            t.sample(name, |_| {}, value.load(Relaxed));
        }
    }
}
