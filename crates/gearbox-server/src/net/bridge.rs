//! Bridges: how a foreground job submitted to one cluster member reaches a worker connected
//! to another.
//!
//! Foreground jobs are not in the shared queue (their client waits on one member's
//! connection). Instead every member keeps, towards every other member, a bridge of two
//! Gearman connections:
//!
//! - a **worker** connection to the other member, which registers the functions this
//!   member's own workers are ready for and grabs jobs while they are (the other member's
//!   core hands a bridge only foreground jobs with a client there: see `Conn::peer`);
//! - a **client** connection to this member itself, on which each grabbed job is submitted
//!   as a foreground job, so that a local worker runs it.
//!
//! Every WORK_DATA, WORK_WARNING, WORK_STATUS, WORK_COMPLETE, WORK_FAIL and WORK_EXCEPTION
//! the local job produces goes back over the worker connection under the other member's
//! handle, so the client there sees its job as if a worker of its own server ran it. Both
//! connections announce themselves with the peer client id, so a bridged job is never handed
//! to yet another bridge.
//!
//! A bridge that breaks closes both connections: the other member's core re-queues the jobs
//! the bridge held (a worker lost), and the local copies lose their client. The bridges
//! follow the member list, read every poll.

use std::collections::{BTreeSet, HashMap, VecDeque};
use std::net::SocketAddr;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gearbox_proto::{ClientCodec, Priority, Request, Response, SubmitJob};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;

use super::cluster::Members;
use crate::core::cluster::{BridgeDemand, PEER_CLIENT_ID_PREFIX};

/// Longest wait between two attempts to open a bridge.
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// Keeps a bridge to every other live member (`members`, kept up to date by the cluster
/// task) until `stop` is cancelled. `me` is this member's id, `own` its plain Gearman
/// address; `demand` is what its workers are ready for.
pub(super) async fn run(
    me: String,
    mut members: watch::Receiver<Members>,
    own: SocketAddr,
    demand: watch::Receiver<BridgeDemand>,
    stop: CancellationToken,
) {
    let mut links: HashMap<String, (String, CancellationToken, JoinHandle<()>)> = HashMap::new();
    loop {
        let live: HashMap<String, String> = members.borrow_and_update().iter().cloned().collect();
        links.retain(|id, (address, token, _)| {
            let keep = live.get(id) == Some(address);
            if !keep {
                token.cancel();
            }
            keep
        });
        for (id, address) in live {
            if links.contains_key(&id) {
                continue;
            }
            let token = stop.child_token();
            let link = Link {
                me: me.clone(),
                peer: id.clone(),
                address: address.clone(),
                own,
                demand: demand.clone(),
                stop: token.clone(),
            };
            tracing::debug!(peer = %id, %address, "bridge to a member");
            let task = tokio::spawn(link.run());
            links.insert(id, (address, token, task));
        }
        tokio::select! {
            _ = stop.cancelled() => break,
            changed = members.changed() => {
                if changed.is_err() {
                    break;
                }
            }
        }
    }
    for (_, (_, token, task)) in links {
        token.cancel();
        let _ = task.await;
    }
}

/// One bridge, reopened with back-off until stopped.
struct Link {
    me: String,
    peer: String,
    address: String,
    own: SocketAddr,
    demand: watch::Receiver<BridgeDemand>,
    stop: CancellationToken,
}

impl Link {
    async fn run(mut self) {
        let mut backoff = Duration::from_millis(50);
        let mut failing = false;
        while !self.stop.is_cancelled() {
            let (opened, error) = match Session::open(&self).await {
                Ok(mut session) => match session.serve(&mut self).await {
                    Ok(()) => return,
                    Err(e) => (true, e),
                },
                Err(e) => (false, e),
            };
            if opened {
                backoff = Duration::from_millis(50);
                failing = false;
                tracing::debug!(peer = %self.peer, address = %self.address, %error, "bridge closed; reopening");
            } else if !std::mem::replace(&mut failing, true) {
                // Once per outage: foreground jobs of that member do not reach workers here.
                tracing::warn!(peer = %self.peer, address = %self.address, %error, "cannot open a bridge to a cluster member (check its --cluster-address); retrying");
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(backoff) => {}
            }
            backoff = (backoff * 2).min(MAX_BACKOFF);
        }
    }
}

/// The two connections of an open bridge and the jobs in flight over it.
struct Session {
    /// The worker connection to the other member.
    peer: TcpStream,
    /// The client connection to this member.
    own: TcpStream,
    /// Functions registered with the other member.
    registered: BTreeSet<Bytes>,
    /// Local workers ready for a job, as last published.
    ready: usize,
    /// A GRAB_JOB_UNIQ is unanswered.
    grabbing: bool,
    /// The other member's handles of jobs submitted here, awaiting their JOB_CREATED.
    submitted: VecDeque<Bytes>,
    /// Local handle -> the other member's handles it stands for.
    running: HashMap<Bytes, Vec<Bytes>>,
    /// Jobs taken and not finished.
    in_flight: usize,
    to_peer: BytesMut,
    to_own: BytesMut,
}

impl Session {
    async fn open(link: &Link) -> std::io::Result<Session> {
        let peer = TcpStream::connect(&link.address).await?;
        let own = TcpStream::connect(link.own).await?;
        peer.set_nodelay(true)?;
        own.set_nodelay(true)?;
        let mut id = BytesMut::from(PEER_CLIENT_ID_PREFIX);
        id.extend_from_slice(link.me.as_bytes());
        let id = id.freeze();
        let mut s = Session {
            peer,
            own,
            registered: BTreeSet::new(),
            ready: 0,
            grabbing: false,
            submitted: VecDeque::new(),
            running: HashMap::new(),
            in_flight: 0,
            to_peer: BytesMut::new(),
            to_own: BytesMut::new(),
        };
        Request::SetClientId { id: id.clone() }.encode(&mut s.to_peer);
        Request::SetClientId { id }.encode(&mut s.to_own);
        Request::OptionReq {
            option: Bytes::from_static(b"exceptions"),
        }
        .encode(&mut s.to_own);
        Ok(s)
    }

    async fn serve(&mut self, link: &mut Link) -> std::io::Result<()> {
        let (mut peer_in, mut own_in) = (BytesMut::new(), BytesMut::new());
        let mut codec = ClientCodec::default();
        self.sync(&link.demand.borrow_and_update());
        loop {
            self.flush().await?;
            tokio::select! {
                _ = link.stop.cancelled() => return Ok(()),
                changed = link.demand.changed() => {
                    if changed.is_err() {
                        return Ok(());
                    }
                    self.sync(&link.demand.borrow_and_update());
                }
                read = self.peer.read_buf(&mut peer_in) => {
                    if read? == 0 {
                        return Err(closed("the other member closed the bridge"));
                    }
                    while let Some(r) = codec.decode(&mut peer_in).map_err(invalid)? {
                        self.on_peer_packet(r)?;
                    }
                }
                read = self.own.read_buf(&mut own_in) => {
                    if read? == 0 {
                        return Err(closed("this server closed the bridge"));
                    }
                    while let Some(r) = codec.decode(&mut own_in).map_err(invalid)? {
                        self.on_own_packet(r)?;
                    }
                }
            }
        }
    }

    async fn flush(&mut self) -> std::io::Result<()> {
        if !self.to_peer.is_empty() {
            self.peer.write_all(&self.to_peer).await?;
            self.to_peer.clear();
        }
        if !self.to_own.is_empty() {
            self.own.write_all(&self.to_own).await?;
            self.to_own.clear();
        }
        Ok(())
    }

    /// Registers exactly the functions local workers are ready for, then grabs if it may.
    fn sync(&mut self, demand: &BridgeDemand) {
        for f in demand.functions.difference(&self.registered) {
            Request::CanDo {
                function: f.clone(),
            }
            .encode(&mut self.to_peer);
        }
        for f in self.registered.difference(&demand.functions) {
            Request::CantDo {
                function: f.clone(),
            }
            .encode(&mut self.to_peer);
        }
        self.registered = demand.functions.clone();
        self.ready = demand.ready;
        self.grab();
    }

    /// Asks the other member for a job while local workers are ready for more than the
    /// bridge already holds.
    fn grab(&mut self) {
        if !self.grabbing && !self.registered.is_empty() && self.in_flight < self.ready.max(1) {
            Request::GrabJobUniq.encode(&mut self.to_peer);
            self.grabbing = true;
        }
    }

    fn on_peer_packet(&mut self, r: Response) -> std::io::Result<()> {
        match r {
            Response::Noop => self.grab(),
            Response::NoJob => {
                self.grabbing = false;
                Request::PreSleep.encode(&mut self.to_peer);
            }
            Response::JobAssignUniq {
                handle,
                function,
                unique,
                data,
            } => self.take(handle, function, unique, data),
            Response::JobAssign {
                handle,
                function,
                data,
            } => self.take(handle, function, Bytes::new(), data),
            Response::Error { code, text } => {
                return Err(closed(&format!(
                    "the other member refused the bridge: {} {}",
                    String::from_utf8_lossy(&code),
                    String::from_utf8_lossy(&text)
                )))
            }
            _ => {}
        }
        Ok(())
    }

    /// A job from the other member: submitted here as a foreground job.
    fn take(&mut self, handle: Bytes, function: Bytes, unique: Bytes, data: Bytes) {
        self.grabbing = false;
        Request::Submit(SubmitJob {
            function,
            unique,
            data,
            priority: Priority::Normal,
            background: false,
        })
        .encode(&mut self.to_own);
        self.submitted.push_back(handle);
        self.in_flight += 1;
        self.grab();
    }

    fn on_own_packet(&mut self, r: Response) -> std::io::Result<()> {
        let (handle, forward, last) = match r {
            Response::JobCreated { handle } => {
                if let Some(theirs) = self.submitted.pop_front() {
                    self.running.entry(handle).or_default().push(theirs);
                }
                return Ok(());
            }
            Response::Error { code, text } => {
                // A submit refused here (draining, a full queue): the other member gets the
                // job back when the bridge closes.
                return Err(closed(&format!(
                    "this server refused a bridged job: {} {}",
                    String::from_utf8_lossy(&code),
                    String::from_utf8_lossy(&text)
                )));
            }
            Response::WorkData { handle, data } => (handle, Forward::Data(data), false),
            Response::WorkWarning { handle, data } => (handle, Forward::Warning(data), false),
            Response::WorkStatus {
                handle,
                numerator,
                denominator,
            } => (handle, Forward::Status(numerator, denominator), false),
            Response::WorkComplete { handle, data } => (handle, Forward::Complete(data), true),
            Response::WorkFail { handle } => (handle, Forward::Fail, true),
            Response::WorkException { handle, data } => (handle, Forward::Exception(data), true),
            _ => return Ok(()),
        };
        let theirs = if last {
            self.running.remove(&handle).unwrap_or_default()
        } else {
            self.running.get(&handle).cloned().unwrap_or_default()
        };
        for h in &theirs {
            forward.request(h.clone()).encode(&mut self.to_peer);
        }
        if last {
            self.in_flight = self.in_flight.saturating_sub(theirs.len().max(1));
            self.grab();
        }
        Ok(())
    }
}

/// A WORK_* packet to pass on under the other member's handle.
enum Forward {
    Data(Bytes),
    Warning(Bytes),
    Status(Bytes, Bytes),
    Complete(Bytes),
    Fail,
    Exception(Bytes),
}

impl Forward {
    fn request(&self, handle: Bytes) -> Request {
        match self {
            Forward::Data(data) => Request::WorkData {
                handle,
                data: data.clone(),
            },
            Forward::Warning(data) => Request::WorkWarning {
                handle,
                data: data.clone(),
            },
            Forward::Status(numerator, denominator) => Request::WorkStatus {
                handle,
                numerator: numerator.clone(),
                denominator: denominator.clone(),
            },
            Forward::Complete(data) => Request::WorkComplete {
                handle,
                data: data.clone(),
            },
            Forward::Fail => Request::WorkFail { handle },
            Forward::Exception(data) => Request::WorkException {
                handle,
                data: data.clone(),
            },
        }
    }
}

fn closed(why: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::ConnectionAborted, why.to_owned())
}

fn invalid(e: gearbox_proto::ProtoError) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, e.to_string())
}
