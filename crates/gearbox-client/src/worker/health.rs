//! Which servers a worker is connected to, for
//! [`give_up_after`](super::WorkerBuilder::give_up_after).

use std::sync::Mutex;
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// Connection state of every server of one worker, updated by the sessions.
pub(crate) struct Health {
    /// Lock held only to read or update the list, never across an `.await`.
    state: Mutex<State>,
    changed: Notify,
}

struct State {
    /// Per server: `None` while connected, else since when it has been down.
    down_since: Vec<Option<Instant>>,
    last_error: String,
    /// Per server: it refused the worker's registration (not retried).
    refused: Vec<bool>,
    refusal: String,
}

impl Health {
    /// `servers` servers, none connected yet (down since now).
    pub(crate) fn new(servers: usize) -> Health {
        let now = Instant::now();
        Health {
            state: Mutex::new(State {
                down_since: vec![Some(now); servers],
                last_error: "not connected yet".into(),
                refused: vec![false; servers],
                refusal: String::new(),
            }),
            changed: Notify::new(),
        }
    }

    /// Server `i` is connected.
    pub(crate) fn up(&self, i: usize) {
        if let Some(s) = self.lock().down_since.get_mut(i) {
            *s = None;
        }
        self.changed.notify_waiters();
    }

    /// Server `i` failed with `error` (it stays down since the first failure).
    pub(crate) fn down(&self, i: usize, error: String) {
        {
            let mut st = self.lock();
            if let Some(s) = st.down_since.get_mut(i) {
                s.get_or_insert_with(Instant::now);
            }
            st.last_error = error;
        }
        self.changed.notify_waiters();
    }

    /// Server `i` refused the worker's registration with `error`; it is not retried.
    pub(crate) fn refused(&self, i: usize, error: String) {
        {
            let mut st = self.lock();
            if let Some(r) = st.refused.get_mut(i) {
                *r = true;
            }
            st.refusal = error;
        }
        self.changed.notify_waiters();
    }

    /// Resolves once every server has refused the worker's registration, with the last
    /// refusal.
    pub(crate) async fn all_refused(&self) -> String {
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            {
                let st = self.lock();
                if st.refused.iter().all(|r| *r) {
                    return st.refusal.clone();
                }
            }
            notified.await;
        }
    }

    /// When every server is down: since when the last of them has been, and the latest error.
    fn all_down(&self) -> Option<(Instant, String)> {
        let st = self.lock();
        let mut latest: Option<Instant> = None;
        for s in &st.down_since {
            let since = (*s)?;
            latest = Some(latest.map_or(since, |l| l.max(since)));
        }
        latest.map(|l| (l, st.last_error.clone()))
    }

    /// Resolves once every server has been unreachable for `after` (never if `None`), with
    /// how long and the last error.
    pub(crate) async fn gave_up(&self, after: Option<Duration>) -> (Duration, String) {
        let Some(after) = after else {
            return std::future::pending().await;
        };
        loop {
            // Register for a wake-up before looking, so no change slips in between.
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            match self.all_down() {
                Some((since, error)) if since + after <= Instant::now() => {
                    return (since.elapsed(), error)
                }
                Some((since, _)) => {
                    tokio::select! {
                        _ = tokio::time::sleep_until(since + after) => {}
                        _ = notified => {}
                    }
                }
                None => notified.await,
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding this lock leaves consistent data: plain assignments.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}
