//! Server-wide metrics that do not belong to one function: connections, bytes, ERROR
//! packets, and the store's commits and outages. [`ServerMetrics`] is one set of relaxed
//! atomics behind an `Arc` shared by every task, so counting takes no lock and allocates
//! nothing: a connection adds the size of each read or write once per call, the persister
//! records each commit.
//!
//! - this file: [`ServerMetrics`] and its rendering.
//! - `histogram`: fixed-bound histograms, plain ([`Histogram`], kept in the core's
//!   per-function stats) and atomic ([`AtomicHistogram`]).
//! - `cluster`: [`ClusterMetrics`], cluster mode's claims, releases, takeovers and outages.
//! - `text`: the Prometheus text writer ([`Text`]) the core's `metrics` command uses too.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::core::UnixMillis;

mod cluster;
mod histogram;
mod text;

pub use cluster::ClusterMetrics;

pub use histogram::{AtomicHistogram, Buckets, Histogram, BATCH_SIZE, COMMIT_SECONDS, JOB_SECONDS};
pub use text::{Kind, Text};

/// Counters shared by the accept loop, every connection and the persister.
#[derive(Debug)]
pub struct ServerMetrics {
    /// Connections accepted and served.
    pub connections_accepted: AtomicU64,
    /// Connections refused at the connection limit.
    pub connections_refused: AtomicU64,
    /// Bytes read from Gearman connections.
    pub bytes_received: AtomicU64,
    /// Bytes written to Gearman connections.
    pub bytes_sent: AtomicU64,
    /// ERROR packets sent.
    pub error_packets: AtomicU64,
    /// Connections closed because the peer broke the protocol.
    pub protocol_closes: AtomicU64,
    /// TLS handshakes that failed or timed out.
    pub tls_handshake_failures: AtomicU64,
    /// Store operations handed to the persister and not yet taken into a commit.
    pub store_pending: AtomicU64,
    /// Requests refused by the access rules, by [`Denied`] kind.
    access_denied: [AtomicU64; 3],
    store_commit_seconds: AtomicHistogram,
    store_batch_size: AtomicHistogram,
    store_commit_errors: AtomicU64,
    store_outages: AtomicU64,
    /// When the current outage began (ms since the epoch), 0 while the store works.
    store_outage_since: AtomicU64,
    /// Length of the outages that ended, ms.
    store_outage_ms: AtomicU64,
    /// Cluster mode's counters (rendered on a cluster member only).
    pub cluster: ClusterMetrics,
}

impl Default for ServerMetrics {
    fn default() -> ServerMetrics {
        ServerMetrics {
            connections_accepted: AtomicU64::new(0),
            connections_refused: AtomicU64::new(0),
            bytes_received: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            error_packets: AtomicU64::new(0),
            protocol_closes: AtomicU64::new(0),
            tls_handshake_failures: AtomicU64::new(0),
            store_pending: AtomicU64::new(0),
            access_denied: Default::default(),
            store_commit_seconds: AtomicHistogram::new(&COMMIT_SECONDS),
            store_batch_size: AtomicHistogram::new(&BATCH_SIZE),
            store_commit_errors: AtomicU64::new(0),
            store_outages: AtomicU64::new(0),
            store_outage_since: AtomicU64::new(0),
            store_outage_ms: AtomicU64::new(0),
            cluster: ClusterMetrics::default(),
        }
    }
}

/// What kind of request the access rules refused (the `what` label of
/// `gearbox_access_denied_total`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    /// A SUBMIT_JOB of any kind.
    Submit,
    /// A CAN_DO or CAN_DO_TIMEOUT.
    Register,
    /// An admin command.
    Admin,
}

impl Denied {
    const ALL: [Denied; 3] = [Denied::Submit, Denied::Register, Denied::Admin];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            Denied::Submit => "submit",
            Denied::Register => "register",
            Denied::Admin => "admin",
        }
    }
}

/// Adds `n` to a counter.
pub fn add(counter: &AtomicU64, n: u64) {
    counter.fetch_add(n, Relaxed);
}

/// Plain counters: name, help, field.
type Counter = (&'static str, &'static str, fn(&ServerMetrics) -> &AtomicU64);

const COUNTERS: [Counter; 8] = [
    (
        "gearbox_connections_accepted_total",
        "Gearman connections accepted.",
        |m| &m.connections_accepted,
    ),
    (
        "gearbox_connections_refused_total",
        "Gearman connections refused at the connection limit.",
        |m| &m.connections_refused,
    ),
    (
        "gearbox_received_bytes_total",
        "Bytes read from Gearman connections.",
        |m| &m.bytes_received,
    ),
    (
        "gearbox_sent_bytes_total",
        "Bytes written to Gearman connections.",
        |m| &m.bytes_sent,
    ),
    ("gearbox_error_packets_total", "ERROR packets sent.", |m| {
        &m.error_packets
    }),
    (
        "gearbox_protocol_closes_total",
        "Connections closed after a protocol error.",
        |m| &m.protocol_closes,
    ),
    (
        "gearbox_tls_handshake_failures_total",
        "TLS handshakes on the Gearman port that failed or timed out.",
        |m| &m.tls_handshake_failures,
    ),
    (
        "gearbox_store_commit_errors_total",
        "Store commits that failed or timed out.",
        |m| &m.store_commit_errors,
    ),
];

impl ServerMetrics {
    /// Records a store commit of `operations` that took `micros` microseconds and ended at
    /// `now`: its latency, size, and whether an outage starts or ends with it.
    pub fn store_commit(&self, operations: u64, micros: u64, ok: bool, now: UnixMillis) {
        self.store_commit_seconds.observe(micros);
        self.store_batch_size.observe(operations);
        let since = self.store_outage_since.load(Relaxed);
        match (ok, since) {
            (true, 0) => {}
            (true, since) => {
                add(&self.store_outage_ms, now.as_millis().saturating_sub(since));
                self.store_outage_since.store(0, Relaxed);
            }
            (false, since) => {
                add(&self.store_commit_errors, 1);
                if since == 0 {
                    add(&self.store_outages, 1);
                    self.store_outage_since
                        .store(now.as_millis().max(1), Relaxed);
                }
            }
        }
    }

    /// Counts one request refused by the access rules.
    pub fn denied(&self, what: Denied) {
        add(&self.access_denied[what as usize], 1);
    }

    /// Appends every server-wide metric, at `now` (for an outage still going on).
    pub fn render(&self, t: &mut Text, now: UnixMillis) {
        for (name, help, field) in COUNTERS {
            t.header(name, help, Kind::Counter);
            t.sample(name, |_| {}, field(self).load(Relaxed));
        }
        let name = "gearbox_access_denied_total";
        t.header(
            name,
            "Requests refused by the access rules, by kind (submit, register, admin).",
            Kind::Counter,
        );
        for what in Denied::ALL {
            let labels = |t: &mut Text| {
                t.raw("what=\"");
                t.raw(what.name());
                t.raw("\"");
            };
            t.sample(
                name,
                labels,
                self.access_denied[what as usize].load(Relaxed),
            );
        }
        let since = self.store_outage_since.load(Relaxed);
        let ongoing = match since {
            0 => 0,
            since => now.as_millis().saturating_sub(since),
        };
        let gauges = [
            (
                "gearbox_store_pending_operations",
                "Store operations waiting for the next commit.",
                self.store_pending.load(Relaxed),
            ),
            (
                "gearbox_store_unavailable",
                "1 while the store is failing (background submits are refused), else 0.",
                u64::from(since != 0),
            ),
        ];
        for (name, help, value) in gauges {
            t.header(name, help, Kind::Gauge);
            t.sample(name, |_| {}, value);
        }
        let name = "gearbox_store_outages_total";
        t.header(name, "Times the store started failing.", Kind::Counter);
        t.sample(name, |_| {}, self.store_outages.load(Relaxed));
        let name = "gearbox_store_outage_seconds_total";
        t.header(name, "Time the store spent failing.", Kind::Counter);
        t.raw(name);
        t.raw(" ");
        t.scaled(self.store_outage_ms.load(Relaxed) + ongoing, 3);
        t.raw("\n");
        for (name, help, h) in [
            (
                "gearbox_store_commit_seconds",
                "Time a store commit took.",
                &self.store_commit_seconds,
            ),
            (
                "gearbox_store_commit_operations",
                "Store operations (persists and removals) per commit.",
                &self.store_batch_size,
            ),
        ] {
            t.header(name, help, Kind::Histogram);
            t.histogram(name, |_| {}, h.buckets(), h.counts(), h.sum());
        }
        self.cluster.render(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rendered(m: &ServerMetrics, now: u64) -> String {
        let mut out = Vec::new();
        m.render(&mut Text::new(&mut out), UnixMillis::from_millis(now));
        String::from_utf8(out).unwrap()
    }

    fn line<'a>(text: &'a str, series: &str) -> &'a str {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series} in\n{text}"))
    }

    #[test]
    fn an_outage_counts_once_and_lasts_until_a_commit_succeeds() {
        let m = ServerMetrics::default();
        m.store_commit(3, 700, true, UnixMillis::from_millis(1_000));
        m.store_commit(1, 2_000_000, false, UnixMillis::from_millis(5_000));
        m.store_commit(1, 2_000_000, false, UnixMillis::from_millis(7_000));
        let t = rendered(&m, 7_500);
        assert_eq!(line(&t, "gearbox_store_unavailable"), "1");
        assert_eq!(line(&t, "gearbox_store_outages_total"), "1");
        assert_eq!(line(&t, "gearbox_store_commit_errors_total"), "2");
        assert_eq!(line(&t, "gearbox_store_outage_seconds_total"), "2.500");
        m.store_commit(2, 1_000, true, UnixMillis::from_millis(8_000));
        let t = rendered(&m, 60_000);
        assert_eq!(line(&t, "gearbox_store_unavailable"), "0");
        assert_eq!(line(&t, "gearbox_store_outage_seconds_total"), "3.000");
        assert_eq!(line(&t, "gearbox_store_commit_seconds_count"), "4");
        assert_eq!(line(&t, "gearbox_store_commit_seconds_sum"), "4.001700");
        assert_eq!(
            line(&t, "gearbox_store_commit_seconds_bucket{le=\"0.001\"}"),
            "2"
        );
        assert_eq!(
            line(&t, "gearbox_store_commit_seconds_bucket{le=\"2.5\"}"),
            "4"
        );
        assert_eq!(line(&t, "gearbox_store_commit_operations_sum"), "7");
        assert_eq!(
            line(&t, "gearbox_store_commit_operations_bucket{le=\"2\"}"),
            "3"
        );
        assert_eq!(
            line(&t, "gearbox_store_commit_operations_bucket{le=\"+Inf\"}"),
            "4"
        );
    }
}
