//! [`Poller`]: bounded polling of state that only shows through a query (admin listings,
//! GET_STATUS_UNIQUE), such as a closed connection the server has not processed yet or an
//! external program that has not got there yet. Each round is a real query; the pause between
//! rounds only avoids spinning, never stands in for synchronisation.

use std::time::{Duration, Instant};

/// How long [`Poller::new`] polls unless told otherwise.
pub const POLL_TIMEOUT: Duration = Duration::from_secs(20);

/// A bounded series of queries for one awaited state.
pub struct Poller {
    what: String,
    deadline: Instant,
    pause: Duration,
}

impl Poller {
    /// Polls for `what` for at most [`POLL_TIMEOUT`].
    pub fn new(what: impl Into<String>) -> Poller {
        Poller::within(what, POLL_TIMEOUT)
    }

    /// Polls for `what` for at most `timeout`.
    pub fn within(what: impl Into<String>, timeout: Duration) -> Poller {
        Poller {
            what: what.into(),
            deadline: Instant::now() + timeout,
            pause: Duration::from_millis(2),
        }
    }

    /// Waits before the next query; panics once the deadline has passed.
    pub async fn again(&mut self) {
        assert!(
            Instant::now() < self.deadline,
            "timed out waiting for {}",
            self.what
        );
        tokio::time::sleep(self.pause).await;
        self.pause = (self.pause * 2).min(Duration::from_millis(50));
    }
}
