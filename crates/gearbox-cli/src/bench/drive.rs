//! The simulated clients and echo workers, in two modes.
//!
//! - **classic**, as libgearman behaves: one job in flight per connection and one write per
//!   packet (a worker writes WORK_COMPLETE, then GRAB_JOB, separately).
//! - **pipelined**: up to `depth` jobs in flight per connection and one write per wake-up
//!   carrying every packet that wake-up produced; a worker keeps `depth` GRAB_JOBs outstanding.
//!
//! Everything runs on [`RawConnection`], so the generator spends as little CPU as possible
//! on its own side of the loopback.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use anyhow::{bail, Context};
use bytes::Bytes;
use gearbox_client::raw::RawConnection;
use gearbox_proto::{Priority, Request, Response};
use tokio::sync::Notify;

use super::measure::Latencies;
use super::plan::Plan;

/// How the generator talks to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// One job in flight per connection, one write per packet (libgearman's behaviour).
    Classic,
    /// Many jobs in flight per connection, batched writes.
    Pipelined,
}

/// Turns an ERROR (or another unexpected answer) into a readable failure.
fn unexpected(what: &str, response: Response) -> anyhow::Error {
    match response {
        Response::Error { code, text } => anyhow::anyhow!(
            "the server answered {what} with ERROR {}: {}",
            String::from_utf8_lossy(&code),
            String::from_utf8_lossy(&text)
        ),
        other => anyhow::anyhow!(
            "unexpected {} while waiting for {what}",
            other.packet_type().name()
        ),
    }
}

async fn connect(plan: &Plan) -> anyhow::Result<RawConnection> {
    RawConnection::connect_with(&plan.addr, plan.tls.as_ref())
        .await
        .with_context(|| format!("cannot connect to {}", plan.addr))
}

/// Queues up to `room` submits from the plan, noting when each was queued; returns `false`
/// once the plan is used up.
fn queue_submits(
    plan: &Plan,
    conn: &mut RawConnection,
    submitted: &mut VecDeque<(Instant, Priority)>,
    room: usize,
    background: bool,
) -> bool {
    for _ in 0..room {
        let Some(i) = plan.take() else {
            return false;
        };
        let (request, priority) = plan.submit(i, background);
        conn.queue(&request);
        submitted.push_back((Instant::now(), priority));
    }
    true
}

/// One client submitting foreground jobs until the plan is used up; returns the latencies.
pub async fn foreground_client(plan: Arc<Plan>, mode: Mode) -> anyhow::Result<Latencies> {
    let mut conn = connect(&plan).await?;
    let mut lat = Latencies::new();
    match mode {
        Mode::Classic => {
            while let Some(i) = plan.take() {
                let (request, priority) = plan.submit(i, false);
                let start = Instant::now();
                conn.send(&request).await?;
                loop {
                    match conn.recv().await? {
                        Response::JobCreated { .. } => {}
                        Response::WorkComplete { .. } => break,
                        other => return Err(unexpected("a foreground job", other)),
                    }
                }
                lat.record(priority, start.elapsed());
                plan.finish();
            }
        }
        Mode::Pipelined => {
            let mut submitted: VecDeque<(Instant, Priority)> = VecDeque::new();
            let mut running: HashMap<Bytes, (Instant, Priority)> = HashMap::new();
            let mut exhausted = false;
            loop {
                let room = plan.depth.saturating_sub(submitted.len() + running.len());
                exhausted =
                    exhausted || !queue_submits(&plan, &mut conn, &mut submitted, room, false);
                conn.flush().await?;
                if submitted.is_empty() && running.is_empty() {
                    return Ok(lat);
                }
                let mut next = Some(conn.recv().await?);
                while let Some(response) = next {
                    match response {
                        Response::JobCreated { handle } => {
                            let Some(started) = submitted.pop_front() else {
                                bail!("JOB_CREATED for a job this client did not submit");
                            };
                            running.insert(handle, started);
                        }
                        Response::WorkComplete { handle, .. } => {
                            let Some((start, priority)) = running.remove(&handle) else {
                                bail!("WORK_COMPLETE for an unknown handle");
                            };
                            lat.record(priority, start.elapsed());
                            plan.finish();
                        }
                        other => return Err(unexpected("a foreground job", other)),
                    }
                    next = conn.try_recv()?;
                }
            }
        }
    }
    Ok(lat)
}

/// One client submitting background jobs until the plan is used up; the latencies are
/// submit-to-JOB_CREATED (for a durable server: the time to commit).
pub async fn background_client(plan: Arc<Plan>, mode: Mode) -> anyhow::Result<Latencies> {
    let mut conn = connect(&plan).await?;
    let mut lat = Latencies::new();
    let depth = match mode {
        Mode::Classic => 1,
        Mode::Pipelined => plan.depth,
    };
    let mut submitted: VecDeque<(Instant, Priority)> = VecDeque::new();
    let mut exhausted = false;
    loop {
        let room = depth.saturating_sub(submitted.len());
        exhausted = exhausted || !queue_submits(&plan, &mut conn, &mut submitted, room, true);
        conn.flush().await?;
        if submitted.is_empty() {
            return Ok(lat);
        }
        let mut next = Some(conn.recv().await?);
        while let Some(response) = next {
            match response {
                Response::JobCreated { .. } => {
                    let Some((start, priority)) = submitted.pop_front() else {
                        bail!("JOB_CREATED for a job this client did not submit");
                    };
                    lat.record(priority, start.elapsed());
                    plan.finish();
                }
                other => return Err(unexpected("a background submit", other)),
            }
            // Classic clients wait for each answer before writing again.
            next = match mode {
                Mode::Classic => None,
                Mode::Pipelined => conn.try_recv()?,
            };
        }
    }
}

/// When a drain is over: the number of jobs to complete and who to tell.
#[derive(Debug)]
pub struct DrainGoal {
    /// Jobs the workers must complete in all.
    pub jobs: u64,
    /// Notified once that many are complete.
    pub reached: Notify,
}

/// One echo worker: answers every job with its own payload, forever (the caller aborts it).
/// With a goal, counts completions on `plan` and notifies the goal when it is reached.
pub async fn echo_worker(
    plan: Arc<Plan>,
    mode: Mode,
    goal: Option<Arc<DrainGoal>>,
) -> anyhow::Result<()> {
    let mut conn = connect(&plan).await?;
    // Only a drain counts completions here; in foreground runs the clients count.
    let completed = |plan: &Plan| {
        if let Some(goal) = &goal {
            if plan.finish() == goal.jobs {
                goal.reached.notify_one();
            }
        }
    };
    conn.queue(&Request::CanDo {
        function: plan.function.clone(),
    });
    match mode {
        Mode::Classic => loop {
            conn.send(&Request::GrabJobUniq).await?;
            match conn.recv().await? {
                Response::NoJob => {
                    conn.send(&Request::PreSleep).await?;
                    loop {
                        if let Response::Noop = conn.recv().await? {
                            break;
                        }
                    }
                }
                Response::JobAssignUniq { handle, data, .. } => {
                    conn.send(&Request::WorkComplete { handle, data }).await?;
                    completed(&plan);
                }
                Response::Noop => {}
                other => return Err(unexpected("a job", other)),
            }
        },
        Mode::Pipelined => {
            for _ in 0..plan.depth {
                conn.queue(&Request::GrabJobUniq);
            }
            let mut outstanding = plan.depth;
            let mut sleeping = false;
            // Completions count once their WORK_COMPLETE has been written.
            let mut answered = 0;
            loop {
                conn.flush().await?;
                for _ in 0..std::mem::take(&mut answered) {
                    completed(&plan);
                }
                let mut next = Some(conn.recv().await?);
                while let Some(response) = next {
                    match response {
                        Response::JobAssignUniq { handle, data, .. } => {
                            conn.queue(&Request::WorkComplete { handle, data });
                            conn.queue(&Request::GrabJobUniq);
                            answered += 1;
                        }
                        Response::NoJob => outstanding -= 1,
                        Response::Noop if sleeping => {
                            sleeping = false;
                            for _ in outstanding..plan.depth {
                                conn.queue(&Request::GrabJobUniq);
                            }
                            outstanding = plan.depth;
                        }
                        Response::Noop => {}
                        other => return Err(unexpected("a job", other)),
                    }
                    next = conn.try_recv()?;
                }
                if outstanding == 0 && !sleeping {
                    conn.queue(&Request::PreSleep);
                    sleeping = true;
                }
            }
        }
    }
}
