//! Unix signals, as gearmand uses them:
//!
//! - SIGTERM, SIGINT: stop now ([`ShutdownMode::Immediate`]).
//! - SIGUSR1: stop once queued and running jobs are done ([`ShutdownMode::Graceful`]).
//! - SIGHUP: reopen the log file, and re-read the TLS certificate, key and CA (new handshakes
//!   use them; established connections keep theirs; a file that fails keeps the old ones).
//! - A second SIGTERM/SIGINT while stopping: give up waiting ([`StopSignals::forced`]), so an
//!   operator can always end a graceful stop that waits for a worker that never comes.

use std::future::Future;
use std::io;
use std::sync::Arc;

use gearbox_server::{ServerTls, ShutdownMode};
use tokio::signal::unix::{signal, Signal, SignalKind};
use tokio::sync::watch;

use crate::logging::LogFile;

/// What the stop signals have asked for so far.
#[derive(Debug, Clone, Copy, Default)]
struct Requests {
    first: Option<ShutdownMode>,
    forced: bool,
}

/// The installed signal handlers; futures from it resolve when a stop is asked for.
#[derive(Debug)]
pub struct StopSignals {
    rx: watch::Receiver<Requests>,
}

impl StopSignals {
    /// Installs the handlers (from this call on, the signals no longer kill the process) and
    /// spawns the task that serves them. Must run inside a Tokio runtime.
    pub fn install(
        log: Option<Arc<LogFile>>,
        tls: Option<Arc<ServerTls>>,
    ) -> io::Result<StopSignals> {
        let mut term = signal(SignalKind::terminate())?;
        let mut int = signal(SignalKind::interrupt())?;
        let mut usr1 = signal(SignalKind::user_defined1())?;
        let mut hup = signal(SignalKind::hangup())?;
        let (tx, rx) = watch::channel(Requests::default());
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = recv(&mut term) => stop(&tx, "SIGTERM", ShutdownMode::Immediate),
                    _ = recv(&mut int) => stop(&tx, "SIGINT", ShutdownMode::Immediate),
                    _ = recv(&mut usr1) => stop(&tx, "SIGUSR1", ShutdownMode::Graceful),
                    _ = recv(&mut hup) => {
                        reopen(log.as_deref());
                        if let Some(tls) = &tls {
                            reload(tls);
                        }
                    }
                }
            }
        });
        Ok(StopSignals { rx })
    }

    /// Resolves with the mode of the first stop signal.
    pub fn requested(&self) -> impl Future<Output = ShutdownMode> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            let first = rx
                .wait_for(|r| r.first.is_some())
                .await
                .ok()
                .and_then(|r| r.first);
            match first {
                Some(mode) => mode,
                // The signal task is gone (the runtime is shutting down): never stop on that.
                None => std::future::pending().await,
            }
        }
    }

    /// Resolves when SIGTERM or SIGINT arrives while a stop is already under way.
    pub fn forced(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut rx = self.rx.clone();
        async move {
            let ended = rx.wait_for(|r| r.forced).await.is_err();
            if ended {
                std::future::pending::<()>().await;
            }
        }
    }
}

/// One delivery of `sig`; never resolves if the stream has ended (it does not for signals).
async fn recv(sig: &mut Signal) {
    if sig.recv().await.is_none() {
        std::future::pending::<()>().await;
    }
}

fn stop(tx: &watch::Sender<Requests>, name: &str, mode: ShutdownMode) {
    tx.send_modify(|r| match (r.first, mode) {
        (None, ShutdownMode::Immediate) => {
            tracing::info!(signal = name, "stopping now");
            r.first = Some(mode);
        }
        (None, ShutdownMode::Graceful) => {
            tracing::info!(
                signal = name,
                "stopping once queued and running jobs are done"
            );
            r.first = Some(mode);
        }
        (Some(_), ShutdownMode::Immediate) => {
            tracing::warn!(
                signal = name,
                "already stopping: stopping at once, without waiting"
            );
            r.forced = true;
        }
        (Some(_), ShutdownMode::Graceful) => {
            tracing::info!(signal = name, "already stopping; ignored");
        }
    });
}

fn reload(tls: &ServerTls) {
    match tls.reload() {
        Ok(()) => {
            let files = tls.files();
            tracing::info!(
                signal = "SIGHUP",
                certificate = ?files.map(|f| &f.certificate),
                ca = ?files.and_then(|f| f.ca.as_ref()),
                "TLS certificate, key and CA reloaded: new connections use them"
            );
        }
        Err(e) => tracing::error!(
            signal = "SIGHUP",
            error = %e,
            "TLS files not reloaded; new connections still use the previous ones"
        ),
    }
}

fn reopen(log: Option<&LogFile>) {
    let Some(log) = log else {
        tracing::info!(
            signal = "SIGHUP",
            "logging to standard error: nothing to reopen"
        );
        return;
    };
    tracing::info!(signal = "SIGHUP", path = %log.path().display(), "reopening log file");
    match log.reopen() {
        Ok(()) => tracing::info!(path = %log.path().display(), "log file reopened"),
        Err(e) => {
            let cause = std::error::Error::source(&e)
                .map(ToString::to_string)
                .unwrap_or_default();
            tracing::error!(error = %e, %cause, "log file not reopened; still writing to the old one");
        }
    }
}
