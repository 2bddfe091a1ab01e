//! What a run submits: the job stream shared by all simulated clients.

use std::str::FromStr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use bytes::Bytes;
use gearbox_proto::{Priority, Request, SubmitJob};

/// Relative weights of HIGH, NORMAL and LOW submissions, written `H,N,L` (e.g. `1,8,1`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PriorityMix {
    weights: [u64; 3],
}

impl PriorityMix {
    /// The priority of the `i`th job: jobs cycle through the weights in order, so every
    /// window of `H+N+L` jobs has exactly the configured mix.
    pub fn pick(&self, i: u64) -> Priority {
        let [high, normal, _] = self.weights;
        let r = i % self.weights.iter().sum::<u64>();
        if r < high {
            Priority::High
        } else if r < high + normal {
            Priority::Normal
        } else {
            Priority::Low
        }
    }

    /// Whether more than one priority is in use (reports then break latency down).
    pub fn is_mixed(&self) -> bool {
        self.weights.iter().filter(|w| **w > 0).count() > 1
    }
}

impl FromStr for PriorityMix {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let parts: Vec<&str> = s.split(',').collect();
        let bad = || format!("expected HIGH,NORMAL,LOW weights such as 1,8,1, got {s:?}");
        let [h, n, l] = parts.as_slice() else {
            return Err(bad());
        };
        let weight = |p: &str| p.trim().parse::<u64>().map_err(|_| bad());
        let weights = [weight(h)?, weight(n)?, weight(l)?];
        if weights.iter().sum::<u64>() == 0 {
            return Err("at least one priority weight must be above 0".into());
        }
        Ok(PriorityMix { weights })
    }
}

/// The job stream of one phase: how many, until when, and how each job looks.
#[derive(Debug)]
pub struct Plan {
    /// The server, `host:port`.
    pub addr: String,
    /// Function every job is submitted to (and every worker serves).
    pub function: Bytes,
    /// Payload of every job.
    pub payload: Bytes,
    /// Jobs to submit (`u64::MAX` with a deadline).
    pub jobs: u64,
    /// Stop taking new jobs at this instant (duration runs).
    pub deadline: Option<Instant>,
    /// Priority of each job.
    pub mix: PriorityMix,
    /// Send a 36-character unique id per job, as libgearman does; otherwise none.
    pub unique: bool,
    /// Jobs kept in flight per connection in pipelined mode.
    pub depth: usize,
    /// A per-run prefix that keeps unique ids of separate runs apart.
    pub run_id: u32,
    /// TLS for every connection (`--ssl`), else plain TCP.
    pub tls: Option<gearbox_client::TlsConfig>,
    next: AtomicU64,
    done: AtomicU64,
}

impl Plan {
    /// A plan for `jobs` jobs (or until `deadline`).
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        addr: String,
        function: Bytes,
        payload: Bytes,
        jobs: u64,
        deadline: Option<Instant>,
        mix: PriorityMix,
        unique: bool,
        depth: usize,
    ) -> Plan {
        Plan {
            addr,
            tls: None,
            function,
            payload,
            jobs,
            deadline,
            mix,
            unique,
            depth: depth.max(1),
            run_id: std::process::id()
                ^ std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map(|d| d.subsec_nanos())
                    .unwrap_or(0),
            next: AtomicU64::new(0),
            done: AtomicU64::new(0),
        }
    }

    /// Claims the next job's index, or `None` when the plan is used up.
    pub fn take(&self) -> Option<u64> {
        if self.deadline.is_some_and(|d| Instant::now() >= d) {
            return None;
        }
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        (i < self.jobs).then_some(i)
    }

    /// Counts one finished job (for the progress bar and drain phases).
    pub fn finish(&self) -> u64 {
        self.done.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// Jobs finished so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The submit request of job `i`.
    pub fn submit(&self, i: u64, background: bool) -> (Request, Priority) {
        let priority = self.mix.pick(i);
        let unique = if self.unique {
            // The shape of libgearman's UUIDs: 8-4-4-4-12 hex digits.
            Bytes::from(format!(
                "{:08x}-{:04x}-4000-8000-{:012x}",
                self.run_id,
                (i >> 48) & 0xffff,
                i & 0xffff_ffff_ffff
            ))
        } else {
            Bytes::new()
        };
        let request = Request::Submit(SubmitJob {
            function: self.function.clone(),
            unique,
            data: self.payload.clone(),
            priority,
            background,
        });
        (request, priority)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mix_cycles_through_the_weights() {
        let mix: PriorityMix = "1,2,1".parse().unwrap();
        let picked: Vec<Priority> = (0..8).map(|i| mix.pick(i)).collect();
        use Priority::*;
        assert_eq!(
            picked,
            [High, Normal, Normal, Low, High, Normal, Normal, Low]
        );
        assert!(mix.is_mixed());
        assert!(!"0,1,0".parse::<PriorityMix>().unwrap().is_mixed());
        assert!("0,0,0".parse::<PriorityMix>().is_err());
        assert!("1,2".parse::<PriorityMix>().is_err());
    }

    #[test]
    fn plan_hands_out_each_index_once_and_unique_ids_differ() {
        let mix = "0,1,0".parse().unwrap();
        let plan = Plan::new(
            "x".into(),
            Bytes::from_static(b"f"),
            Bytes::new(),
            3,
            None,
            mix,
            true,
            1,
        );
        let taken: Vec<u64> = std::iter::from_fn(|| plan.take()).collect();
        assert_eq!(taken, [0, 1, 2]);
        let unique = |i| match plan.submit(i, true).0 {
            Request::Submit(s) => s.unique,
            other => panic!("{other:?}"),
        };
        assert_eq!(unique(0).len(), 36);
        assert_ne!(unique(0), unique(1));
    }
}
