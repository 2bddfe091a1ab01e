//! One connection: a reader task that decodes and feeds the core, and a writer task that
//! takes over the output when the socket is full (see [`crate::outbound`]).
//!
//! A TLS connection first completes its handshake here, bounded by the listener's timeout;
//! then the same reader runs over the TLS stream's read half, and its writer task, which owns
//! the write half, sends every batch of output (producers cannot write TLS records without
//! it) and ends with close_notify. Plain connections take the code path they always took:
//! the reader is generic over the stream, so neither pays for the other.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use gearbox_proto::{Incoming, Response, ServerCodec};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::task::JoinHandle;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::Decoder;

use super::{now_ms, Shared, Touched};
use crate::core::{ConnInfo, Effect, Outbox};
use crate::metrics;
use crate::outbound::Outbound;
use crate::outbuf::OutBuf;
use crate::tls::{self, ServerTls};

/// How long a closing connection may take to flush its remaining output.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

fn conn_info(stream: &TcpStream, peer: SocketAddr) -> ConnInfo {
    #[cfg(unix)]
    let fd = {
        use std::os::fd::AsRawFd;
        i64::from(stream.as_raw_fd())
    };
    #[cfg(not(unix))]
    let fd = -1;
    let ip = peer.ip().to_canonical();
    ConnInfo {
        peer_ip: ip.to_string(),
        fd,
        loopback: ip.is_loopback(),
        identity: Vec::new(),
    }
}

/// Serves one accepted connection until it closes or the server stops; with `tls`, after a
/// successful handshake.
pub(super) async fn serve(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    tls: Option<Arc<ServerTls>>,
) {
    let _ = stream.set_nodelay(true);
    let mut info = conn_info(&stream, peer);
    let Some(tls) = tls else {
        let (rd, wr) = stream.into_split();
        let outbound = Arc::new(Outbound::new(
            shared.config.max_unsent,
            Some(wr),
            shared.metrics.clone(),
        ));
        let writer = tokio::spawn(plain_writer(outbound.clone()));
        return session(shared, rd, outbound, writer, info, peer).await;
    };
    let Some(stream) = handshake(&shared, &tls, stream, peer).await else {
        return;
    };
    if let Some(cert) = stream
        .get_ref()
        .1
        .peer_certificates()
        .and_then(|c| c.first())
    {
        info.identity = tls::identity(cert);
    }
    tracing::debug!(
        %peer,
        version = ?stream.get_ref().1.protocol_version(),
        identity = ?info.identity,
        "TLS handshake done"
    );
    let (rd, wr) = tokio::io::split(stream);
    // No socket for producers to write to: every flush wakes the writer task, which owns the
    // TLS write half.
    let outbound = Arc::new(Outbound::new(
        shared.config.max_unsent,
        None,
        shared.metrics.clone(),
    ));
    let writer = tokio::spawn(tls_writer(outbound.clone(), wr, shared.metrics.clone()));
    session(shared, rd, outbound, writer, info, peer).await
}

/// Runs the TLS handshake, bounded by the listener's timeout and cut short by a server stop.
/// A failure is logged (at INFO: it is the peer's doing) and counted.
async fn handshake(
    shared: &Shared,
    tls: &ServerTls,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<TlsStream<TcpStream>> {
    let acceptor = TlsAcceptor::from(tls.current());
    let timeout = tls.handshake_timeout();
    let result = tokio::select! {
        r = tokio::time::timeout(timeout, acceptor.accept(stream)) => r,
        _ = shared.closing.cancelled() => return None,
    };
    let error = match result {
        Ok(Ok(stream)) => return Some(stream),
        Ok(Err(e)) => e.to_string(),
        Err(_) => format!("no handshake within {} ms", timeout.as_millis()),
    };
    metrics::add(&shared.metrics.tls_handshake_failures, 1);
    tracing::info!(%peer, %error, "TLS handshake failed; connection dropped");
    None
}

/// A plain connection's writer: takes over the output when the socket is full (see
/// [`crate::outbound`]), then sends FIN.
async fn plain_writer(ob: Arc<Outbound>) {
    let mut wbuf = OutBuf::with_capacity(4096);
    loop {
        tokio::select! {
            _ = ob.take(&mut wbuf) => {}
            _ = ob.aborted() => break,
        }
        if wbuf.is_empty() {
            break;
        }
        tokio::select! {
            r = ob.write_all(&mut wbuf) => if r.is_err() { ob.abort(); break; },
            _ = ob.aborted() => break,
        }
        ob.wrote();
    }
    ob.shutdown_write();
}

/// A TLS connection's writer: sends each batch of output, one write and flush per wake-up,
/// then close_notify and FIN.
async fn tls_writer<W: AsyncWrite + Unpin>(
    ob: Arc<Outbound>,
    mut wr: W,
    metrics: Arc<metrics::ServerMetrics>,
) {
    let mut wbuf = OutBuf::with_capacity(4096);
    loop {
        tokio::select! {
            _ = ob.take(&mut wbuf) => {}
            _ = ob.aborted() => return,
        }
        if wbuf.is_empty() {
            break;
        }
        tokio::select! {
            r = wbuf.write_to(&mut wr) => match r {
                Ok(n) => metrics::add(&metrics.bytes_sent, n as u64),
                Err(_) => { ob.abort(); return; }
            },
            _ = ob.aborted() => return,
        }
        ob.wrote();
    }
    tokio::select! {
        _ = wr.shutdown() => {}
        _ = ob.aborted() => {}
    }
}

/// The reader of an established connection (plain or TLS): registers it with the core, feeds
/// the core what arrives, and unregisters it at the end.
async fn session<R: AsyncRead + Unpin>(
    shared: Arc<Shared>,
    mut rd: R,
    outbound: Arc<Outbound>,
    writer: JoinHandle<()>,
    info: ConnInfo,
    peer: SocketAddr,
) {
    let id = {
        let mut st = shared.lock();
        let id = st.next_conn;
        st.next_conn = id.next();
        st.core.connect(id, info);
        st.outbounds.insert(id, outbound.clone());
        id
    };
    tracing::debug!(conn = id.get(), %peer, "connected");
    let mut codec = ServerCodec::new(shared.config.limits());
    let mut buf = BytesMut::with_capacity(8192);
    let mut out = Outbox::default();
    let mut touched = Touched::default();
    // Made once: a fresh cancellation future per read would take its token's lock twice.
    let closed = outbound.close.cancelled();
    let closing = shared.closing.cancelled();
    tokio::pin!(closed, closing);
    loop {
        let n = tokio::select! {
            r = rd.read_buf(&mut buf) => r,
            _ = &mut closed => break,
            _ = &mut closing => break,
        };
        match n {
            Ok(0) | Err(_) => break,
            Ok(n) => metrics::add(&shared.metrics.bytes_received, n as u64),
        }
        let mut fatal = None;
        let now = now_ms();
        let mut batch = 0;
        {
            // Everything read is decoded and handled under one lock; each packet goes
            // straight from the decoder to the core.
            let mut st = shared.lock();
            loop {
                let item = match codec.decode(&mut buf) {
                    Ok(Some(item)) => item,
                    Ok(None) => break,
                    Err(e) => {
                        fatal = Some(e);
                        break;
                    }
                };
                batch += 1;
                match item {
                    Incoming::Request(r) => st.core.request(id, r, now, &mut out),
                    Incoming::Admin(a) => st.core.admin(id, a, now, &mut out),
                    Incoming::Rejected(e) => {
                        tracing::debug!(conn = id.get(), %peer, error = %e, "rejected packet");
                        out.effects
                            .push(Effect::Send(id, Response::error(e.code(), e.wire_text())));
                    }
                }
            }
            if let Some(e) = &fatal {
                metrics::add(&shared.metrics.protocol_closes, 1);
                tracing::info!(conn = id.get(), %peer, error = %e, "closing connection after protocol error");
                out.effects
                    .push(Effect::Send(id, Response::error(e.code(), e.wire_text())));
                out.effects.push(Effect::Close(id));
            }
            shared.apply(&mut st, &mut out, &mut touched);
        }
        let only_ours = matches!(touched.dirty.as_slice(), [o] if Arc::ptr_eq(o, &outbound));
        if only_ours && batch == 1 {
            // The reply to a lone request, for this peer alone (a classic submit's
            // JOB_CREATED, a grab's assignment): send it now; waiting could only add latency.
            touched.flush();
        } else if !touched.dirty.is_empty() {
            // Output for other peers, or a pipelining peer's replies: coalesce it. The flusher
            // task runs after every task now ready and sends each queue with one write, so a
            // pipelining client's JOB_CREATEDs leave in the same write as the WORK_COMPLETEs
            // that workers' tasks queue for it in the same round (sends per pipelined
            // foreground job 0.136 → 0.094). A lone packet (a classic client or worker) first
            // lets the runtime look for more input, so that its peers' packets, usually in
            // flight at the same moment, join the same writes; a batch of many brings enough
            // to share the writes already.
            if batch == 1 {
                tokio::task::yield_now().await;
            }
            shared.hand_to_flusher(&mut touched.dirty);
        }
        if fatal.is_some() {
            break;
        }
        for o in touched.congested.drain(..) {
            if Arc::ptr_eq(&o, &outbound) {
                // Our own replies pile up: stop reading until the peer catches up.
                tokio::select! {
                    _ = o.wait_drained() => {}
                    _ = shared.closing.cancelled() => {}
                }
            } else if tokio::time::timeout(shared.stall_timeout(), o.wait_drained())
                .await
                .is_err()
            {
                tracing::warn!(conn = id.get(), producer = %peer, pending = o.pending(), "a peer stopped reading the output this connection produces; dropping that peer");
                o.abort();
                o.close.cancel();
            }
        }
    }
    if outbound.overflowed() {
        tracing::warn!(conn = id.get(), %peer, limit = shared.config.max_unsent, "peer is not reading its replies; connection dropped");
    }
    {
        let mut st = shared.lock();
        st.outbounds.remove(&id);
        st.core.disconnect(id, now_ms(), &mut out);
        shared.apply(&mut st, &mut out, &mut touched);
    }
    touched.flush();
    // Nobody is left to throttle: the targets' hard caps protect memory.
    touched.congested.clear();
    outbound.close();
    let mut writer = writer;
    if tokio::time::timeout(FLUSH_TIMEOUT, &mut writer)
        .await
        .is_err()
    {
        // The peer stopped reading: give up on the rest of its output.
        outbound.abort();
        let _ = writer.await;
    }
    tracing::debug!(conn = id.get(), %peer, "disconnected");
}
