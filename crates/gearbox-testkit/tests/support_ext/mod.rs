//! Helpers shared by the interop, differential and bad-input tests: the two servers side by
//! side, transcripts compared line by line, normalisation of what legitimately differs
//! (handle host part, file descriptors, listing order), and polling observable state.
//!
//! Not every test binary uses every helper.
#![allow(dead_code)]

#[allow(unused_imports)] // Not every test binary builds requests.
pub use gearbox_testkit::build::{b, submit};
use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::Bytes;
use gearbox_proto::{Request, Response};
use gearbox_testkit::gearmand::Gearmand;
use gearbox_testkit::{RawConn, TestServer};

/// Which server a target is.
pub enum Server {
    /// The in-process gearbox.
    Gearbox(TestServer),
    /// The real C++ gearmand.
    Gearmand(Gearmand),
}

/// A server under test.
pub struct Target {
    /// The server.
    pub server: Server,
}

impl Target {
    /// An in-process gearbox (handle prefix `H:test`).
    pub async fn gearbox() -> Target {
        Target {
            server: Server::Gearbox(TestServer::start().await),
        }
    }

    /// The real gearmand, or `None` when it is not installed (outside CI).
    pub async fn gearmand() -> Option<Target> {
        Some(Target {
            server: Server::Gearmand(Gearmand::start().await?),
        })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        match &self.server {
            Server::Gearbox(s) => s.addr,
            Server::Gearmand(g) => g.addr,
        }
    }

    /// Whether this is gearbox (for the documented, deliberate differences).
    pub fn is_gearbox(&self) -> bool {
        matches!(self.server, Server::Gearbox(_))
    }

    /// A short name for messages.
    pub fn name(&self) -> &'static str {
        if self.is_gearbox() {
            "gearbox"
        } else {
            "gearmand"
        }
    }

    /// The process id the server reports for `getpid`.
    pub fn pid(&self) -> u32 {
        match &self.server {
            Server::Gearbox(_) => std::process::id(),
            Server::Gearmand(g) => g.pid(),
        }
    }

    /// Opens a raw connection.
    pub async fn connect(&self) -> RawConn {
        RawConn::connect(self.addr()).await
    }

    /// Expects gearmand's observed behaviour from both servers.
    pub fn expect_same(&self, what: &str, actual: &str, gearmand: &str) {
        let who = if self.is_gearbox() {
            "gearbox"
        } else {
            "gearmand"
        };
        assert_eq!(actual, gearmand, "{who}: {what}");
    }

    /// Expects `gearmand` from gearmand and `gearbox` from gearbox: for a documented,
    /// deliberate difference.
    pub fn expect_differs(&self, what: &str, actual: &str, gearmand: &str, gearbox: &str) {
        let want = if self.is_gearbox() { gearbox } else { gearmand };
        assert_eq!(
            actual,
            want,
            "{}: {what} (a documented difference)",
            self.name()
        );
    }
}

/// GET_STATUS_UNIQUE as a one-liner on a raw connection.
pub trait RawConnExt {
    /// Sends GET_STATUS_UNIQUE and returns the reply.
    fn ask_unique_status(&mut self, unique: &'static str) -> impl Future<Output = Response>;
    /// Sends `req` and returns the next packet.
    fn ask(&mut self, req: &Request) -> impl Future<Output = Response>;
}

impl RawConnExt for RawConn {
    async fn ask(&mut self, req: &Request) -> Response {
        self.send(req).await;
        self.recv().await
    }

    async fn ask_unique_status(&mut self, unique: &'static str) -> Response {
        self.send(&Request::GetStatusUnique { unique: b(unique) })
            .await;
        self.recv().await
    }
}

/// gearmand and gearbox, freshly started (so handle counters agree), or `None` when gearmand
/// is not installed outside CI.
pub async fn pair() -> Option<(Target, Target)> {
    let theirs = Target::gearmand().await?;
    Some((theirs, Target::gearbox().await))
}

/// What one scenario observed, step by step, normalised.
#[derive(Debug, Default)]
pub struct Transcript {
    lines: Vec<(String, String)>,
}

impl Transcript {
    /// Records what `step` observed.
    pub fn push(&mut self, step: impl Into<String>, observed: impl Into<String>) {
        self.lines.push((step.into(), observed.into()));
    }

    /// Reads the next packet on `conn` and records it normalised.
    pub async fn recv(&mut self, step: impl Into<String>, conn: &mut RawConn) -> Response {
        let r = conn.recv().await;
        self.push(step, show(&r));
        r
    }

    /// Sends `req` on `conn`, then reads one packet and records it normalised.
    pub async fn ask(
        &mut self,
        step: impl Into<String>,
        conn: &mut RawConn,
        req: &Request,
    ) -> Response {
        conn.send(req).await;
        self.recv(step, conn).await
    }

    /// Sends `req` and records only the ERROR code of the reply (the texts are free-form).
    pub async fn ask_code(&mut self, step: impl Into<String>, conn: &mut RawConn, req: &Request) {
        conn.send(req).await;
        let r = conn.recv().await;
        self.push(step, error_code(&r));
    }

    /// Sends an admin line and records its (normalised) reply.
    pub async fn admin(&mut self, conn: &mut RawConn, line: &str) -> String {
        let reply = admin(conn, line).await;
        let shown = normalise_admin(&reply);
        self.push(format!("admin {:?}", norm_handles_in(line)), shown.clone());
        shown
    }

    /// Records that `conn` has nothing more queued (ECHO round trip).
    pub async fn quiet(&mut self, step: impl Into<String>, conn: &mut RawConn) {
        conn.assert_quiet().await;
        self.push(step, "quiet");
    }
}

/// Asserts two transcripts are equal, listing every differing step.
pub fn assert_same(gearmand: &Transcript, gearbox: &Transcript) {
    let mut diff = String::new();
    let n = gearmand.lines.len().max(gearbox.lines.len());
    for i in 0..n {
        let a = gearmand.lines.get(i);
        let o = gearbox.lines.get(i);
        if a != o {
            let _ = writeln!(diff, "step {i}:\n  gearmand: {a:?}\n  gearbox:  {o:?}");
        }
    }
    assert!(diff.is_empty(), "gearbox differs from gearmand:\n{diff}");
}

/// Runs the same scenario against gearmand and gearbox and asserts identical transcripts.
/// Returns false (after printing why) when gearmand is not installed outside CI.
pub async fn differential<F, Fut>(scenario: F) -> bool
where
    F: Fn(Target) -> Fut,
    Fut: Future<Output = Transcript>,
{
    let Some(theirs) = Target::gearmand().await else {
        return false;
    };
    let t_theirs = scenario(theirs).await;
    let t_ours = scenario(Target::gearbox().await).await;
    assert_same(&t_theirs, &t_ours);
    true
}

/// Sends an admin line (`\r\n` appended unless it already ends in `\n`) and reads the reply:
/// one `OK`/`ERR` line, or a listing through its `.` line.
pub async fn admin(conn: &mut RawConn, line: &str) -> String {
    let mut s = line.to_string();
    if !s.ends_with('\n') {
        s.push_str("\r\n");
    }
    conn.send_raw(s.as_bytes()).await;
    let first = conn.read_line().await;
    if first.starts_with("OK") || first.starts_with("ERR") || first == ".\n" {
        return first;
    }
    let mut all = first;
    loop {
        let l = conn.read_line().await;
        all.push_str(&l);
        if l == ".\n" {
            return all;
        }
    }
}

/// `H:<host>:<n>` (or `H:test:<n>`) becomes `H:<n>`; anything else is returned as is.
pub fn norm_handle(h: &[u8]) -> String {
    let s = String::from_utf8_lossy(h);
    if let Some(rest) = s.strip_prefix("H:") {
        if let Some((_, n)) = rest.rsplit_once(':') {
            if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) {
                return format!("H:{n}");
            }
        }
    }
    s.into_owned()
}

/// Replaces every `H:<host>:<digits>` in a text with `H:<digits>`.
pub fn norm_handles_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("H:") {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let end = tail.find(['\t', '\n', ' ']).unwrap_or(tail.len());
        out.push_str(&norm_handle(&tail.as_bytes()[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Normalises an admin reply for comparison: handles normalised, the `workers` fd column
/// replaced by `FD`, and listing lines sorted (gearmand lists in hash-table order).
pub fn normalise_admin(reply: &str) -> String {
    let text = norm_handles_in(reply);
    let Some(body) = text.strip_suffix(".\n") else {
        return text;
    };
    let mut lines: Vec<String> = body
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((fd, rest))
                if !fd.is_empty()
                    && fd.bytes().all(|c| c.is_ascii_digit())
                    && (rest.contains(" : ") || rest.ends_with(" :")) =>
            {
                format!("FD {rest}")
            }
            _ => l.to_string(),
        })
        .collect();
    lines.sort();
    let mut s = String::new();
    for l in lines {
        s.push_str(&l);
        s.push('\n');
    }
    s.push_str(".\n");
    s
}

fn q(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

/// A response as text with its handle normalised.
pub fn show(r: &Response) -> String {
    match r {
        Response::Noop => "NOOP".into(),
        Response::NoJob => "NO_JOB".into(),
        Response::JobCreated { handle } => format!("JOB_CREATED {}", norm_handle(handle)),
        Response::JobAssign {
            handle,
            function,
            data,
        } => {
            format!(
                "JOB_ASSIGN {} {} {}",
                norm_handle(handle),
                q(function),
                q(data)
            )
        }
        Response::JobAssignUniq {
            handle,
            function,
            unique,
            data,
        } => {
            format!(
                "JOB_ASSIGN_UNIQ {} {} {} {}",
                norm_handle(handle),
                q(function),
                q(unique),
                q(data)
            )
        }
        Response::JobAssignAll {
            handle,
            function,
            unique,
            reducer,
            data,
        } => format!(
            "JOB_ASSIGN_ALL {} {} {} {} {}",
            norm_handle(handle),
            q(function),
            q(unique),
            q(reducer),
            q(data)
        ),
        Response::WorkStatus {
            handle,
            numerator,
            denominator,
        } => {
            format!(
                "WORK_STATUS {} {} {}",
                norm_handle(handle),
                q(numerator),
                q(denominator)
            )
        }
        Response::WorkComplete { handle, data } => {
            format!("WORK_COMPLETE {} {}", norm_handle(handle), q(data))
        }
        Response::WorkFail { handle } => format!("WORK_FAIL {}", norm_handle(handle)),
        Response::WorkException { handle, data } => {
            format!("WORK_EXCEPTION {} {}", norm_handle(handle), q(data))
        }
        Response::WorkData { handle, data } => {
            format!("WORK_DATA {} {}", norm_handle(handle), q(data))
        }
        Response::WorkWarning { handle, data } => {
            format!("WORK_WARNING {} {}", norm_handle(handle), q(data))
        }
        Response::EchoRes { data } => format!("ECHO_RES {}", q(data)),
        Response::Error { code, text } => format!("ERROR {} {}", q(code), q(text)),
        Response::StatusRes {
            handle,
            known,
            running,
            numerator,
            denominator,
        } => format!(
            "STATUS_RES {} {} {} {} {}",
            norm_handle(handle),
            u8::from(*known),
            u8::from(*running),
            q(numerator),
            q(denominator)
        ),
        Response::OptionRes { option } => format!("OPTION_RES {}", q(option)),
        Response::StatusResUnique {
            unique,
            known,
            running,
            numerator,
            denominator,
            client_count,
        } => format!(
            "STATUS_RES_UNIQUE {} {} {} {} {} {client_count}",
            q(unique),
            u8::from(*known),
            u8::from(*running),
            q(numerator),
            q(denominator)
        ),
        other => format!("{other:?}"),
    }
}

/// An ERROR packet's code only (gearmand's texts are free-form; clients read the code).
pub fn error_code(r: &Response) -> String {
    match r {
        Response::Error { code, .. } => format!("ERROR {}", String::from_utf8_lossy(code)),
        other => show(other),
    }
}

/// The handle of a JOB_CREATED (panics on anything else).
pub fn handle_of(r: &Response) -> Bytes {
    match r {
        Response::JobCreated { handle } => handle.clone(),
        other => panic!("expected JOB_CREATED, got {other:?}"),
    }
}

/// Bounded polling of state that only shows through a query (admin listings,
/// GET_STATUS_UNIQUE) while an external program gets there: each round is a real query,
/// never a blind sleep standing in for synchronisation.
pub struct Poller {
    what: String,
    deadline: Instant,
    pause: Duration,
}

impl Poller {
    /// Polls for `what` for at most `timeout`.
    pub fn new(what: impl Into<String>, timeout: Duration) -> Poller {
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

/// Waits until `status` lists `function` with `workers` available workers.
pub async fn wait_for_workers(addr: SocketAddr, function: &str, workers: usize) {
    let mut c = RawConn::connect(addr).await;
    let want = workers.to_string();
    let mut p = Poller::new(
        format!("{workers} worker(s) for {function}"),
        Duration::from_secs(20),
    );
    loop {
        let s = admin(&mut c, "status").await;
        let found = s
            .lines()
            .map(|l| l.split('\t').collect::<Vec<_>>())
            .any(|f| f.len() == 4 && f[0] == function && f[3] == want);
        if found {
            return;
        }
        p.again().await;
    }
}

/// Waits until the job with `unique` has `clients` attached clients (GET_STATUS_UNIQUE).
pub async fn wait_for_clients(addr: SocketAddr, unique: &'static str, clients: u64) {
    let mut c = RawConn::connect(addr).await;
    let mut p = Poller::new(
        format!("{clients} client(s) on unique {unique}"),
        Duration::from_secs(20),
    );
    loop {
        c.send(&Request::GetStatusUnique { unique: b(unique) })
            .await;
        if let Response::StatusResUnique { client_count, .. } = c.recv().await {
            if client_count == clients {
                return;
            }
        }
        p.again().await;
    }
}

/// Re-sends admin `line` until its normalised reply satisfies `pred` (for state changes
/// only visible through the server, such as a disconnect being noticed).
pub async fn wait_admin(
    conn: &mut RawConn,
    line: &str,
    what: &str,
    pred: impl Fn(&str) -> bool,
) -> String {
    let mut p = Poller::new(what, Duration::from_secs(20));
    loop {
        let reply = normalise_admin(&admin(conn, line).await);
        if pred(&reply) {
            return reply;
        }
        p.again().await;
    }
}

/// `/proc/self/status` field in KiB (e.g. `VmPeak`), where available.
pub fn proc_status_kib(field: &str) -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = s.lines().find(|l| l.starts_with(&format!("{field}:")))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
