//! One multiplexed connection to one server: a task that writes requests and reads responses.
//!
//! Requests are pipelined. The server answers JOB_CREATED, STATUS_RES, STATUS_RES_UNIQUE,
//! ECHO_RES, OPTION_RES and ERROR in request order, so each request that expects an answer
//! leaves a [`Waiter`] in a FIFO and the reader hands each such answer to the oldest waiter.
//! WORK_* packets carry a handle and go to every [`Subscriber`] registered for it; a submit
//! registers its subscriber *while* its JOB_CREATED is processed, before the reader looks at
//! the next packet, so no WORK_* can slip past.
//!
//! When the connection ends, every waiter gets [`Error::Disconnected`] and every subscriber a
//! [`ConnEvent::Lost`].

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use bytes::{Bytes, BytesMut};
use futures::StreamExt;
use gearbox_proto::{ClientCodec, Request, Response};
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};
use tokio_util::codec::FramedRead;

use crate::transport::{self, ReadHalf, Stream, WriteHalf};
use crate::{Error, Result, ServerAddr};

/// Requests queued for the writer; a full queue makes callers wait (back-pressure).
const COMMAND_QUEUE: usize = 1024;
/// Requests the writer encodes into one write.
const WRITE_BATCH: usize = 64;

static NEXT_CONN: AtomicU64 = AtomicU64::new(1);
static NEXT_SUBSCRIBER: AtomicU64 = AtomicU64::new(1);

/// What a connection tells a subscribed task.
#[derive(Debug)]
pub(crate) enum ConnEvent {
    /// A WORK_* packet for the subscribed handle.
    Work(Response),
    /// The connection ended; no more packets will come.
    Lost(Error),
}

/// A task's interest in the WORK_* packets of the handle its submit creates.
///
/// The channel is unbounded on purpose: a bounded one would let one slow consumer stall the
/// reader and with it every other task on the connection. The volume is bounded by what the
/// workers send for the jobs this client submitted.
pub(crate) struct Subscriber {
    id: u64,
    tx: mpsc::UnboundedSender<ConnEvent>,
}

impl Subscriber {
    /// A new subscriber and the receiving end of its events.
    pub(crate) fn new() -> (Subscriber, mpsc::UnboundedReceiver<ConnEvent>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let id = NEXT_SUBSCRIBER.fetch_add(1, Ordering::Relaxed);
        (Subscriber { id, tx }, rx)
    }
}

/// Someone waiting for the in-order answer to one request.
struct Waiter {
    reply: oneshot::Sender<Result<Response>>,
    subscriber: Option<Subscriber>,
}

struct Command {
    req: Request,
    waiter: Option<Waiter>,
}

/// Guarded by a std mutex: it is only held for map and queue operations, never across
/// `.await`, and shared by the reader, the writer and dropped [`Route`]s.
#[derive(Default)]
struct State {
    fifo: VecDeque<Waiter>,
    routes: HashMap<Bytes, Vec<Subscriber>>,
    closed: Option<String>,
    /// The connection ended on a TLS error (e.g. the server refused the client certificate).
    closed_by_tls: bool,
}

struct Shared {
    id: u64,
    server: ServerAddr,
    state: Mutex<State>,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep going.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn disconnected(&self, reason: &str) -> Error {
        Error::Disconnected {
            server: self.server.to_string(),
            reason: reason.to_string(),
        }
    }

    /// Hands a WORK_* packet to the handle's subscribers.
    fn route(&self, handle: &Bytes, terminal: bool, resp: Response) {
        let mut st = self.lock();
        // gearmand 1.1 sends the WORK_FAIL that replaces a WORK_EXCEPTION (for clients
        // without the exceptions option) with a NUL after the handle.
        let handle = match handle.strip_suffix(b"\0") {
            Some(h) if !st.routes.contains_key(handle) => h,
            _ => &handle[..],
        };
        let Some(subs) = st.routes.get_mut(handle) else {
            tracing::trace!(conn = self.id, handle = ?handle, "WORK packet for a handle nobody waits for");
            return;
        };
        subs.retain(|s| s.tx.send(ConnEvent::Work(resp.clone())).is_ok());
        if terminal || subs.is_empty() {
            st.routes.remove(handle);
        }
    }

    /// Hands an in-order answer to the oldest waiter.
    fn answer(&self, resp: Response) {
        let mut st = self.lock();
        let Some(waiter) = st.fifo.pop_front() else {
            tracing::warn!(conn = self.id, server = %self.server, packet = ?resp.packet_type(),
                "answer with no request waiting for it; ignored");
            return;
        };
        let mut registered = None;
        if let (Response::JobCreated { handle }, Some(sub)) = (&resp, waiter.subscriber) {
            registered = Some((handle.clone(), sub.id));
            st.routes.entry(handle.clone()).or_default().push(sub);
        }
        if waiter.reply.send(Ok(resp)).is_err() {
            // The caller gave up (timeout, drop): nobody will read this job's events.
            if let Some((handle, id)) = registered {
                remove_route(&mut st, &handle, id);
            }
        }
    }

    /// Fails every waiter and subscriber; later requests fail at once.
    fn close(&self, reason: &str) {
        let (fifo, routes) = {
            let mut st = self.lock();
            st.closed = Some(reason.to_string());
            (std::mem::take(&mut st.fifo), std::mem::take(&mut st.routes))
        };
        for w in fifo {
            let _ = w.reply.send(Err(self.disconnected(reason)));
        }
        for sub in routes.into_values().flatten() {
            let _ = sub.tx.send(ConnEvent::Lost(self.disconnected(reason)));
        }
    }
}

fn remove_route(st: &mut State, handle: &Bytes, id: u64) {
    if let Some(subs) = st.routes.get_mut(handle) {
        subs.retain(|s| s.id != id);
        if subs.is_empty() {
            st.routes.remove(handle);
        }
    }
}

/// Removes a subscription when dropped (a task that timed out or was dropped before its job
/// ended); after a terminal WORK_* packet it is already gone and this does nothing.
pub(crate) struct Route {
    shared: Arc<Shared>,
    handle: Bytes,
    id: u64,
}

impl Drop for Route {
    fn drop(&mut self) {
        remove_route(&mut self.shared.lock(), &self.handle, self.id);
    }
}

/// A cheap handle to a running connection task. The task ends when every handle is dropped,
/// when the server closes the connection, or on an I/O or protocol error.
#[derive(Clone)]
pub(crate) struct Conn {
    shared: Arc<Shared>,
    tx: mpsc::Sender<Command>,
}

impl Conn {
    /// Starts the connection task on an established stream.
    pub(crate) fn spawn(server: ServerAddr, stream: Stream) -> Conn {
        let shared = Arc::new(Shared {
            id: NEXT_CONN.fetch_add(1, Ordering::Relaxed),
            server,
            state: Mutex::default(),
        });
        let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
        tracing::debug!(conn = shared.id, server = %shared.server, "connected");
        tokio::spawn(run(shared.clone(), stream, rx));
        Conn { shared, tx }
    }

    /// The server this connection talks to.
    pub(crate) fn server(&self) -> &ServerAddr {
        &self.shared.server
    }

    /// Whether the connection ended on a TLS error.
    pub(crate) fn closed_by_tls(&self) -> bool {
        self.shared.lock().closed_by_tls
    }

    /// Whether the connection has ended.
    pub(crate) fn is_closed(&self) -> bool {
        self.tx.is_closed() || self.shared.lock().closed.is_some()
    }

    async fn send(&self, req: Request, waiter: Option<Waiter>) -> Result<()> {
        self.tx.send(Command { req, waiter }).await.map_err(|_| {
            self.shared
                .disconnected("the connection was already closed")
        })
    }

    /// Sends a request that has no answer (SET_CLIENT_ID).
    pub(crate) async fn send_only(&self, req: Request) -> Result<()> {
        self.send(req, None).await
    }

    /// Sends a request and waits for its in-order answer; an ERROR packet becomes an error.
    pub(crate) async fn call(&self, req: Request) -> Result<Response> {
        self.call_with(req, None).await
    }

    async fn call_with(&self, req: Request, subscriber: Option<Subscriber>) -> Result<Response> {
        let (reply, rx) = oneshot::channel();
        self.send(req, Some(Waiter { reply, subscriber })).await?;
        let resp = rx
            .await
            .map_err(|_| self.shared.disconnected("the connection task ended"))??;
        match resp {
            Response::Error { code, text } => Err(Error::from_server(&code, &text)),
            other => Ok(other),
        }
    }

    /// Sends a submit request and waits for its JOB_CREATED. With a subscriber, the job's
    /// WORK_* packets go to it until the returned [`Route`] is dropped or the job ends.
    pub(crate) async fn submit(
        &self,
        req: Request,
        subscriber: Option<Subscriber>,
    ) -> Result<(Bytes, Option<Route>)> {
        let id = subscriber.as_ref().map(|s| s.id);
        match self.call_with(req, subscriber).await? {
            Response::JobCreated { handle } => {
                let route = id.map(|id| Route {
                    shared: self.shared.clone(),
                    handle: handle.clone(),
                    id,
                });
                Ok((handle, route))
            }
            other => Err(self.unexpected(&other)),
        }
    }

    /// The error for an answer of the wrong type (a server out of step with its requests).
    pub(crate) fn unexpected(&self, resp: &Response) -> Error {
        Error::Disconnected {
            server: self.shared.server.to_string(),
            reason: format!(
                "unexpected {} answer; the server is out of step with this client",
                resp.packet_type().name()
            ),
        }
    }
}

async fn run(shared: Arc<Shared>, stream: Stream, mut rx: mpsc::Receiver<Command>) {
    let (r, w) = stream.into_split();
    let reason = tokio::select! {
        reason = read_loop(&shared, r) => reason,
        reason = write_loop(&shared, w, &mut rx) => reason,
    };
    tracing::debug!(conn = shared.id, server = %shared.server, %reason, "connection closed");
    rx.close();
    shared.close(&reason);
    while let Ok(cmd) = rx.try_recv() {
        if let Some(w) = cmd.waiter {
            let _ = w.reply.send(Err(shared.disconnected(&reason)));
        }
    }
}

async fn read_loop(shared: &Shared, r: ReadHalf) -> String {
    let mut frames = FramedRead::new(r, ClientCodec::default());
    while let Some(item) = frames.next().await {
        let resp = match item {
            Ok(resp) => resp,
            Err(gearbox_proto::ProtoError::Io(e)) if transport::is_tls_error(&e) => {
                shared.lock().closed_by_tls = true;
                return transport::explain(&e, &shared.server.host);
            }
            Err(e) => return format!("unreadable data from the server: {e}"),
        };
        tracing::trace!(conn = shared.id, packet = ?resp.packet_type(), "received");
        match work_target(&resp) {
            Some((handle, terminal)) => shared.route(&handle, terminal, resp),
            None if is_answer(&resp) => shared.answer(resp),
            None => tracing::debug!(conn = shared.id, packet = ?resp.packet_type(),
                "ignoring a worker packet sent to a client connection"),
        }
    }
    "the server closed the connection".to_string()
}

async fn write_loop(shared: &Shared, mut w: WriteHalf, rx: &mut mpsc::Receiver<Command>) -> String {
    let mut buf = BytesMut::new();
    let mut cmds = Vec::with_capacity(WRITE_BATCH);
    loop {
        if rx.recv_many(&mut cmds, WRITE_BATCH).await == 0 {
            return "the client was dropped".to_string();
        }
        {
            let mut st = shared.lock();
            for cmd in cmds.drain(..) {
                match cmd.waiter {
                    // The caller already gave up: do not send what nobody waits for.
                    Some(w) if w.reply.is_closed() => continue,
                    Some(w) => st.fifo.push_back(w),
                    None => {}
                }
                cmd.req.encode(&mut buf);
            }
        }
        if buf.is_empty() {
            continue;
        }
        // The flush is free on TCP; TLS may hold written records until it.
        if let Err(e) = w.write_all(&buf).await {
            return format!("could not write to the server: {e}");
        }
        if let Err(e) = w.flush().await {
            return format!("could not write to the server: {e}");
        }
        buf.clear();
    }
}

/// The handle of a WORK_* packet and whether it ends the job.
fn work_target(resp: &Response) -> Option<(Bytes, bool)> {
    match resp {
        Response::WorkData { handle, .. }
        | Response::WorkWarning { handle, .. }
        | Response::WorkStatus { handle, .. } => Some((handle.clone(), false)),
        Response::WorkComplete { handle, .. }
        | Response::WorkFail { handle }
        | Response::WorkException { handle, .. } => Some((handle.clone(), true)),
        _ => None,
    }
}

/// Whether a packet answers the oldest request (the server sends these in request order).
fn is_answer(resp: &Response) -> bool {
    matches!(
        resp,
        Response::JobCreated { .. }
            | Response::StatusRes { .. }
            | Response::StatusResUnique { .. }
            | Response::EchoRes { .. }
            | Response::OptionRes { .. }
            | Response::Error { .. }
    )
}
