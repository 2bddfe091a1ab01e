//! Histograms with fixed bucket bounds: [`Histogram`], plain counts kept inside the core's
//! per-function stats (updated under the core's lock it already holds), and
//! [`AtomicHistogram`], for counters updated outside any lock (the persister's commits).

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The bucket bounds of a histogram, in an integer unit, with their `le` label values in the
/// exposed unit (`decimals` places: a bound in milliseconds is exposed in seconds with 3).
#[derive(Debug)]
pub struct Buckets {
    /// Upper bounds, ascending, in the recorded unit.
    pub bounds: &'static [u64],
    /// The same bounds as `le` label values.
    pub le: &'static [&'static str],
    /// How many decimal places the recorded unit is below the exposed one.
    pub decimals: u32,
}

impl Buckets {
    /// The bucket of `value`: the first bound at or above it (Prometheus' `le`), or the
    /// overflow bucket after the last bound.
    pub fn index(&self, value: u64) -> usize {
        self.bounds.partition_point(|&b| b < value)
    }
}

/// Job durations (queue wait, run time): 1 ms .. 1 h, recorded in milliseconds.
pub const JOB_SECONDS: Buckets = Buckets {
    bounds: &JOB_BOUNDS_MS,
    le: &[
        "0.001", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10",
        "30", "60", "300", "900", "3600",
    ],
    decimals: 3,
};

const JOB_BOUNDS_MS: [u64; 17] = [
    1, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000, 30_000, 60_000, 300_000, 900_000,
    3_600_000,
];

/// Store commit latency: 100 µs .. 10 s, recorded in microseconds.
pub const COMMIT_SECONDS: Buckets = Buckets {
    bounds: &[
        100, 250, 500, 1_000, 2_500, 5_000, 10_000, 25_000, 50_000, 100_000, 250_000, 500_000,
        1_000_000, 2_500_000, 5_000_000, 10_000_000,
    ],
    le: &[
        "0.0001", "0.00025", "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1",
        "0.25", "0.5", "1", "2.5", "5", "10",
    ],
    decimals: 6,
};

/// Store operations per commit: 1 .. 10,000 (the persister's largest batch).
pub const BATCH_SIZE: Buckets = Buckets {
    bounds: &[
        1, 2, 5, 10, 20, 50, 100, 200, 500, 1_000, 2_000, 5_000, 10_000,
    ],
    le: &[
        "1", "2", "5", "10", "20", "50", "100", "200", "500", "1000", "2000", "5000", "10000",
    ],
    decimals: 0,
};

/// A job-duration histogram ([`JOB_SECONDS`]): a fixed array, so recording is an index and
/// two additions, never an allocation.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last counts those above every bound.
    counts: [u64; JOB_BOUNDS_MS.len() + 1],
    /// Sum of the observations, milliseconds.
    sum_ms: u64,
}

impl Histogram {
    /// Records a duration of `ms` milliseconds.
    pub fn observe(&mut self, ms: u64) {
        self.counts[JOB_SECONDS.index(ms)] += 1;
        self.sum_ms = self.sum_ms.saturating_add(ms);
    }

    /// Observations per bucket, not cumulative (the overflow bucket last).
    pub fn counts(&self) -> &[u64] {
        &self.counts
    }

    /// Number of observations.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Sum of the observations, milliseconds.
    pub fn sum_ms(&self) -> u64 {
        self.sum_ms
    }
}

/// A histogram of relaxed atomic counters, recorded from any task without a lock.
#[derive(Debug)]
pub struct AtomicHistogram {
    buckets: &'static Buckets,
    counts: Box<[AtomicU64]>,
    sum: AtomicU64,
}

impl AtomicHistogram {
    /// An empty histogram over `buckets`.
    pub fn new(buckets: &'static Buckets) -> AtomicHistogram {
        AtomicHistogram {
            buckets,
            counts: (0..=buckets.bounds.len())
                .map(|_| AtomicU64::new(0))
                .collect(),
            sum: AtomicU64::new(0),
        }
    }

    /// Records `value` (in the buckets' unit).
    pub fn observe(&self, value: u64) {
        self.counts[self.buckets.index(value)].fetch_add(1, Relaxed);
        self.sum.fetch_add(value, Relaxed);
    }

    /// The bounds.
    pub fn buckets(&self) -> &'static Buckets {
        self.buckets
    }

    /// Observations per bucket, not cumulative (the overflow bucket last).
    pub fn counts(&self) -> impl Iterator<Item = u64> + '_ {
        self.counts.iter().map(|c| c.load(Relaxed))
    }

    /// Sum of the observations.
    pub fn sum(&self) -> u64 {
        self.sum.load(Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_and_labels_agree() {
        for b in [&JOB_SECONDS, &COMMIT_SECONDS, &BATCH_SIZE] {
            assert_eq!(b.bounds.len(), b.le.len());
            assert!(b.bounds.windows(2).all(|w| w[0] < w[1]));
            for (bound, le) in b.bounds.iter().zip(b.le) {
                let exposed: f64 = le.parse().unwrap();
                let recorded = exposed * 10f64.powi(b.decimals as i32);
                assert!((recorded - *bound as f64).abs() < 1e-6, "{le} vs {bound}");
            }
        }
    }

    #[test]
    fn a_value_on_a_bound_falls_in_that_bucket() {
        let mut h = Histogram::default();
        for ms in [0, 1, 2, 5, 3_600_000, 3_600_001] {
            h.observe(ms);
        }
        let c = h.counts();
        assert_eq!((c[0], c[1], c[16], c[17]), (2, 2, 1, 1));
        assert_eq!(h.count(), 6);
        assert_eq!(h.sum_ms(), 7_200_009);
        let a = AtomicHistogram::new(&BATCH_SIZE);
        for n in [1, 2, 3, 10_000, 10_001] {
            a.observe(n);
        }
        let c: Vec<u64> = a.counts().collect();
        assert_eq!(c, [1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1]);
        assert_eq!(a.sum(), 20_007);
    }
}
