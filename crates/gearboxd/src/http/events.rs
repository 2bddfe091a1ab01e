//! `GET /api/events`: the live feed, as server-sent events. On connect one `history` event
//! (the totals kept for the last minutes), then one `snapshot` event per sample (totals and
//! the page of function rows the stream asked for).
//!
//! One sampler task serves every stream: it runs while at least one stream is open, reads the
//! server once per [`INTERVAL`] over a Gearman admin connection it keeps, and hands each
//! sample to the streams through a `watch` channel. Streams end when the server stops (the
//! gateway's cancellation token).

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, State};
use axum::response::sse::{Event, Sse};
use futures::stream::{self, Stream, StreamExt};
use serde::Serialize;
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

use super::admin::{AdminConn, AdminError};
use super::api::ApiError;
use super::snapshot::{self, Page, Sample, Totals};
use super::Gateway;

/// How often the sampler reads the server.
pub(crate) const INTERVAL: Duration = Duration::from_secs(1);

/// How long one sample may take before the sampler gives up on it (and its connection).
const SAMPLE_TIMEOUT: Duration = Duration::from_secs(5);

/// Samples kept for the `history` event: ten minutes.
pub(crate) const HISTORY: usize = 600;

/// Streams open at once; more are answered 503.
pub(crate) const MAX_STREAMS: usize = 256;

/// The live feed's state, shared by the streams and the sampler.
#[derive(Debug)]
pub(crate) struct Live {
    /// Cancelled when the server stops: every stream and the sampler end.
    stop: CancellationToken,
    /// One permit per open stream.
    streams: Arc<Semaphore>,
    /// The latest sample; its receivers are the open streams.
    latest: watch::Sender<Option<Arc<Sample>>>,
    /// Std mutex, never held across `.await`: the history ring and whether a sampler runs
    /// (checked together with the receiver count, so a stream opening as the sampler quits
    /// always has a sampler).
    state: Mutex<LiveState>,
}

#[derive(Debug, Default)]
struct LiveState {
    history: VecDeque<Totals>,
    sampling: bool,
}

impl Live {
    /// A feed whose streams end when `stop` is cancelled.
    pub(crate) fn new(stop: CancellationToken) -> Live {
        Live {
            stop,
            streams: Arc::new(Semaphore::new(MAX_STREAMS)),
            latest: watch::Sender::new(None),
            state: Mutex::new(LiveState::default()),
        }
    }
}

/// The `history` event's data.
#[derive(Serialize)]
struct History<'a> {
    interval_ms: u128,
    samples: &'a VecDeque<Totals>,
}

/// `GET /api/events?filter=&offset=&limit=&sort=&desc=`: the live feed.
pub(super) async fn events(
    State(g): State<Arc<Gateway>>,
    Query(page): Query<Page>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let live = &g.live;
    let Ok(permit) = live.streams.clone().try_acquire_owned() else {
        tracing::warn!(limit = MAX_STREAMS, "live stream refused: too many open");
        return Err(ApiError::Unavailable(format!(
            "{MAX_STREAMS} live streams are open already; try again later"
        )));
    };
    let (history, rx) = {
        let mut st = live.state.lock().expect("live state lock");
        let mut rx = live.latest.subscribe();
        if st.sampling {
            // The latest sample at once, not after the next tick.
            rx.mark_changed();
        } else {
            st.sampling = true;
            tokio::spawn(sample(g.clone()));
        }
        let history = History {
            interval_ms: INTERVAL.as_millis(),
            samples: &st.history,
        };
        (json_event("history", &history), rx)
    };
    let updates = stream::unfold((rx, page, permit), |(mut rx, page, permit)| async move {
        loop {
            rx.changed().await.ok()?;
            let latest = rx.borrow_and_update().clone();
            if let Some(s) = latest {
                let event = json_event("snapshot", &page.of(&s));
                return Some((Ok(event), (rx, page, permit)));
            }
        }
    });
    let stream = stream::once(async move { Ok(history) })
        .chain(updates)
        .take_until(live.stop.clone().cancelled_owned());
    Ok(Sse::new(stream))
}

/// An event named `name` carrying `data` as JSON.
fn json_event(name: &str, data: &impl Serialize) -> Event {
    let json = serde_json::to_string(data).expect("plain structs serialize");
    Event::default().event(name).data(json)
}

/// The sampler: one sample per [`INTERVAL`] while a stream is open and the server runs.
async fn sample(g: Arc<Gateway>) {
    let live = &g.live;
    let mut tick = tokio::time::interval(INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut conn: Option<AdminConn> = None;
    tracing::debug!("live feed sampler started");
    loop {
        tokio::select! {
            () = live.stop.cancelled() => break,
            _ = tick.tick() => {}
        }
        let previous = {
            let mut st = live.state.lock().expect("live state lock");
            if live.latest.receiver_count() == 0 {
                st.sampling = false;
                tracing::debug!("live feed sampler stopped: no stream open");
                return;
            }
            // A rate over a gap (no stream for a while) would be an average: none instead.
            st.history
                .back()
                .copied()
                .filter(|p| p.time_ms + 3 * INTERVAL.as_millis() as u64 >= snapshot::now_ms())
        };
        let read = async {
            match conn.as_mut() {
                Some(c) => snapshot::take(c, previous.as_ref()).await,
                None => {
                    let c = AdminConn::connect(&g).await?;
                    snapshot::take(conn.insert(c), previous.as_ref()).await
                }
            }
        };
        // A server that does not answer must not hold the sampler (nor the stop) up.
        let taken = tokio::select! {
            () = live.stop.cancelled() => break,
            r = tokio::time::timeout(SAMPLE_TIMEOUT, read) => r,
        };
        match taken.unwrap_or(Err(AdminError::TimedOut(SAMPLE_TIMEOUT))) {
            Ok(s) => {
                {
                    let mut st = live.state.lock().expect("live state lock");
                    if st.history.len() == HISTORY {
                        st.history.pop_front();
                    }
                    st.history.push_back(s.totals);
                }
                live.latest.send_replace(Some(Arc::new(s)));
            }
            Err(e) => {
                tracing::warn!(error = %e, "live feed sample failed; retrying at the next tick");
                conn = None;
            }
        }
    }
    live.state.lock().expect("live state lock").sampling = false;
}
