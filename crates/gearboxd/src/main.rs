//! `gearboxd`: the Gearman job server. `gearboxd --help` lists the flags; the `gearboxd`
//! crate documentation says what is where and what the binary prints.

use std::io::Write;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use gearbox_server::{Listener, ServerTls, ShutdownMode};
use gearbox_store::Store;
use gearboxd::daemon::{self, Detached};
use gearboxd::http::{self, HTTP_LISTENING_PREFIX};
use gearboxd::listen;
use gearboxd::log_format;
use gearboxd::logging::{self, LogTarget};
use gearboxd::privileges;
use gearboxd::process::{self, PidFile};
use gearboxd::signals::StopSignals;
use gearboxd::store;
use gearboxd::syslog_target::Syslog;
use gearboxd::tls::TlsPorts;
use gearboxd::{Args, Settings, IMMEDIATE_STOP_LIMIT, LISTENING_PREFIX, TLS_LISTENING_PREFIX};
use tokio_util::sync::CancellationToken;

fn main() -> ExitCode {
    // Bad flags: clap prints the problem and exits with status 2.
    let args = Args::parse();
    match start(args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "gearboxd: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Resolves the settings; detaches (`--daemon`); binds; switches user (`--user`); installs
/// logging; then serves. Errors after logging is up are also logged when the log goes to a
/// file or syslog.
fn start(args: Args) -> anyhow::Result<()> {
    let mut settings = Settings::resolve(args)?;
    let targets = listen::targets(&settings.listen, settings.port)?;
    if let Some(user) = &settings.user {
        privileges::look_up(user)?;
    }
    // Read now (as the starting user, before detaching), so a bad file stops the start-up
    // with its name, --check-args included; absolute, because SIGHUP re-reads them.
    let tls = match &mut settings.tls {
        Some(t) => {
            t.absolutize(&std::env::current_dir().context("cannot read the working directory")?);
            Some(Arc::new(t.load()?))
        }
        None => None,
    };
    if settings.check_only {
        for w in &settings.warnings {
            let _ = writeln!(std::io::stderr(), "gearboxd: warning: {w}");
        }
        return Ok(());
    }
    // Before any thread exists: the runtime is built after this.
    let detached = if settings.daemon {
        let cwd = std::env::current_dir().context("cannot read the working directory")?;
        settings.absolutize(&cwd);
        Some(daemon::detach()?)
    } else {
        None
    };
    // As the starting user (only root may raise the hard limit), before switching.
    if let Some(wanted) = settings.file_limit {
        match process::set_file_limit(wanted) {
            Ok(got) if got < wanted => {
                eprintln!(
                    "gearboxd: warning: open-file limit {wanted} capped at {got} by the hard limit"
                )
            }
            Ok(_) => {}
            Err(e) => {
                eprintln!("gearboxd: warning: cannot set the open-file limit to {wanted}: {e}")
            }
        }
    }
    let listeners = listen::bind_all(&targets, settings.backlog, settings.keepalive)?;
    let http_listeners = match &settings.http {
        Some(h) => {
            let targets = listen::targets(&h.listen, h.port)?;
            listen::bind_all(&targets, settings.backlog, None)?
        }
        None => Vec::new(),
    };
    let tls_listeners = match settings.tls.as_ref().map(|t| &t.ports) {
        Some(TlsPorts::Separate { port, listen }) => {
            let targets = listen::targets(listen, *port)?;
            listen::bind_all(&targets, settings.backlog, settings.keepalive)?
        }
        _ => Vec::new(),
    };
    if let Some(user) = &settings.user {
        privileges::switch_to(user)?;
    }
    let log = LogTarget::open(settings.log_file.as_deref())?;
    let syslog = settings.syslog.then(Syslog::connect).transpose()?;
    let logged_elsewhere = log.file().is_some() || syslog.is_some();
    let filter = log_format::filter(settings.verbosity, settings.log_filter.as_deref())?;
    logging::install(log.clone(), filter, settings.log_format, syslog);
    if let Some(user) = &settings.user {
        tracing::info!(user, uid = effective_uid(), "switched user after binding");
    }
    // Warnings reach standard error directly unless the log already puts them there.
    // (Asked of the installed filter, so that --log-filter counts as well as --verbose.)
    let warnings_on_stderr = log.file().is_none() && tracing::enabled!(tracing::Level::WARN);
    // The slow-job and stuck-worker checks cost timer work per job: none when no log line
    // could show their warnings.
    if !tracing::enabled!(target: "gearbox_server::core::log", tracing::Level::WARN) {
        settings.server.slow_job_warning = 0;
        settings.server.stuck_worker_warning = 0;
    }
    for w in &settings.warnings {
        tracing::warn!("{w}");
        if !warnings_on_stderr {
            let _ = writeln!(std::io::stderr(), "gearboxd: warning: {w}");
        }
    }
    let result = serve(
        settings,
        [listeners, http_listeners, tls_listeners],
        tls,
        log,
        detached,
    );
    if let (Err(e), true) = (&result, logged_elsewhere) {
        tracing::error!("{e:#}");
    }
    result
}

/// The effective user id, for the log.
fn effective_uid() -> u32 {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() }
}

/// The Gearman listeners, the HTTP ones (empty without `-r http`), and the TLS ones of
/// `--ssl-port` (empty without it).
type Listeners = [Vec<std::net::TcpListener>; 3];

fn serve(
    settings: Settings,
    listeners: Listeners,
    tls: Option<Arc<ServerTls>>,
    log: LogTarget,
    detached: Option<Detached>,
) -> anyhow::Result<()> {
    // One thread: a current-thread runtime, with no cross-thread wake-ups at all.
    let mut builder = if settings.threads == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        tokio::runtime::Builder::new_multi_thread()
    };
    builder.enable_all().thread_name("gearboxd-worker");
    if settings.threads > 1 {
        builder.worker_threads(settings.threads);
    }
    let runtime = builder.build().context("cannot start the Tokio runtime")?;
    let result = runtime.block_on(serve_async(settings, listeners, tls, log, detached));
    // After a forced or stalled stop, connection tasks may still be running: dropped here.
    runtime.shutdown_timeout(Duration::from_secs(5));
    result
}

async fn serve_async(
    settings: Settings,
    [listeners, http_listeners, tls_listeners]: Listeners,
    tls: Option<Arc<ServerTls>>,
    log: LogTarget,
    detached: Option<Detached>,
) -> anyhow::Result<()> {
    // Handlers first, so a signal sent as soon as the port is known is never fatal.
    let signals =
        StopSignals::install(log.file(), tls.clone()).context("cannot install signal handlers")?;
    // The sockets are bound but nothing is accepted before the stored jobs are back; a store
    // that cannot be opened stops the start-up.
    tracing::info!(store = %settings.store.describe(), "opening the job store");
    let prefix = settings.server.core().handle_prefix;
    let member = settings.cluster.as_ref().map(|c| {
        let bound = listeners
            .first()
            .and_then(|l| l.local_addr().ok())
            .unwrap_or_else(|| std::net::SocketAddr::from(([0, 0, 0, 0], settings.port)));
        c.member(bound)
    });
    let opened = store::open(&settings.store, &prefix, member).await?;
    if opened.imported > 0 {
        let source = settings
            .store
            .import_source()
            .expect("only stores with an import source import");
        let text = format!("imported {} jobs from {source}", opened.imported);
        tracing::info!("{text}");
        if log.file().is_some() || !tracing::enabled!(tracing::Level::INFO) {
            let _ = writeln!(std::io::stderr(), "gearboxd: {text}");
        }
    }
    let main_tls = match settings.tls.as_ref().map(|t| &t.ports) {
        Some(TlsPorts::Main) => tls.clone(),
        _ => None,
    };
    let gearman = Ports {
        main: listen::into_tokio(listeners)?
            .into_iter()
            .map(|tcp| Listener {
                tcp,
                tls: main_tls.clone(),
            })
            .collect(),
        tls: listen::into_tokio(tls_listeners)?
            .into_iter()
            .filter_map(|tcp| Some(Listener::tls(tcp, tls.clone()?)))
            .collect(),
    };
    let http_listeners = listen::into_tokio(http_listeners)?;
    let result = serve_store(
        settings,
        gearman,
        http_listeners,
        signals,
        opened.store.clone(),
        detached,
    )
    .await;
    // Acknowledged jobs are committed already; closing only finishes cleanly (a stuck disk
    // must not hold up the exit).
    if tokio::time::timeout(IMMEDIATE_STOP_LIMIT, opened.close())
        .await
        .is_err()
    {
        tracing::warn!("the job store did not close in time; it recovers at the next start");
    }
    result
}

/// The Gearman listeners: the main ports (plain, or TLS with `--ssl` alone), and the
/// `--ssl-port` ones.
struct Ports {
    main: Vec<Listener>,
    tls: Vec<Listener>,
}

async fn serve_store(
    settings: Settings,
    Ports {
        main: listeners,
        tls: tls_listeners,
    }: Ports,
    http_listeners: Vec<tokio::net::TcpListener>,
    signals: StopSignals,
    store: Arc<dyn Store>,
    mut detached: Option<Detached>,
) -> anyhow::Result<()> {
    let _pid_file = settings
        .pid_file
        .as_deref()
        .map(PidFile::create)
        .transpose()?;
    {
        let mut err = std::io::stderr().lock();
        for addr in listeners.iter().filter_map(|l| l.tcp.local_addr().ok()) {
            let _ = writeln!(err, "{LISTENING_PREFIX}{addr}");
        }
        for addr in tls_listeners.iter().filter_map(|l| l.tcp.local_addr().ok()) {
            let _ = writeln!(err, "{TLS_LISTENING_PREFIX}{addr}");
        }
        for addr in http_listeners.iter().filter_map(|l| l.local_addr().ok()) {
            let _ = writeln!(err, "{HTTP_LISTENING_PREFIX}{addr}");
        }
    }
    // Ends the HTTP live-feed streams when a stop is requested, and on any other way out of
    // this function (the guard).
    let http_stop = CancellationToken::new();
    let _http_stop_guard = http_stop.clone().drop_guard();
    if let (Some(h), Some(gearman)) = (&settings.http, listeners.first()) {
        // A plain port: settings refuse -r http when --ssl makes every Gearman port TLS.
        let router = http::router(gearman.tcp.local_addr()?, h, http_stop.clone());
        let requested = signals.requested();
        tokio::spawn(async move {
            requested.await;
            http_stop.cancel();
        });
        let listeners = http_listeners
            .into_iter()
            .map(|l| {
                let stop = signals.requested();
                (l, async move {
                    stop.await;
                })
            })
            .collect();
        tokio::spawn(http::serve(listeners, router, h.header_timeout));
    }
    let mut listeners = listeners;
    listeners.extend(tls_listeners);
    let addrs: Vec<String> = listeners
        .iter()
        .filter_map(|l| l.tcp.local_addr().ok())
        .map(|a| a.to_string())
        .collect();
    // Ready: bound, store replayed, pid file written.
    daemon::notify_ready(&format!("serving on {}", addrs.join(", ")));
    if let Some(d) = detached.as_mut() {
        d.ready()?;
    }
    let stopping = signals.requested();
    tokio::spawn(async move {
        stopping.await;
        daemon::notify_stopping();
    });
    tracing::info!(
        version = env!("CARGO_PKG_VERSION"),
        pid = std::process::id(),
        verbose = %settings.verbosity,
        "gearboxd started"
    );
    let server =
        gearbox_server::run_with_store(listeners, settings.server, store, signals.requested());
    // An immediate stop that has not finished after IMMEDIATE_STOP_LIMIT (a peer that does not
    // read, a connection that slipped in as the stop began) ends without waiting further.
    let requested = signals.requested();
    let stalled = async move {
        if requested.await == ShutdownMode::Immediate {
            tokio::time::sleep(IMMEDIATE_STOP_LIMIT).await;
        } else {
            std::future::pending::<()>().await;
        }
    };
    tokio::select! {
        r = server => r.context("the server stopped on an error")?,
        () = signals.forced() => {
            tracing::warn!("stopped without waiting: open connections and unfinished jobs were dropped");
        }
        () = stalled => {
            tracing::warn!(limit = ?IMMEDIATE_STOP_LIMIT, "connections still open after the stop limit: dropped");
        }
    }
    tracing::info!("gearboxd stopped");
    Ok(())
}
