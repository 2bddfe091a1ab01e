//! Helpers shared by the interop, differential and bad-input tests: the two servers side by
//! side ([`Target`] from the testkit), transcripts compared line by line, normalisation of
//! what legitimately differs (in [`show`]), third-party client scripts (in [`scripts`]), and
//! polling observable state.
//!
//! Not every test binary uses every helper.
#![allow(dead_code)]

pub mod scripts;
pub mod show;

use std::fmt::Write as _;
use std::future::Future;
use std::net::SocketAddr;

use gearbox_proto::{Request, Response};
#[allow(unused_imports)] // Not every test binary builds requests.
pub use gearbox_testkit::build::{
    b, bg, can_do, fg, get_status, get_status_unique, option, raw_header, raw_packet, submit, Work,
};
pub use gearbox_testkit::Target;
use gearbox_testkit::{Poller, RawConn};
#[allow(unused_imports)] // Not every test binary shows packets.
pub use show::{error_code, handle_of, norm_handle, norm_handles_in, normalise_admin, show};

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

    /// Sends each `(step, request)` on `conn` in turn, recording each reply.
    pub async fn ask_each(&mut self, conn: &mut RawConn, steps: &[(&str, Request)]) {
        for (step, req) in steps {
            self.ask(*step, conn, req).await;
        }
    }

    /// Sends an admin line and records its (normalised) reply.
    pub async fn admin(&mut self, conn: &mut RawConn, line: &str) -> String {
        let shown = normalise_admin(&conn.admin(line).await);
        self.push(format!("admin {:?}", norm_handles_in(line)), shown.clone());
        shown
    }

    /// Sends each admin line in turn, recording each reply.
    pub async fn admin_each(&mut self, conn: &mut RawConn, lines: &[&str]) {
        for line in lines {
            self.admin(conn, line).await;
        }
    }

    /// Waits until `show jobs` lists a job whose columns end in `columns` (e.g. `"\t0\t1\t0"`,
    /// a state the server reaches on its own, such as noticing a disconnect), records the
    /// listing under `step`, then records `status`.
    pub async fn jobs_when(&mut self, step: &str, conn: &mut RawConn, columns: &str) {
        let row_end = format!("{columns}\n");
        let jobs = wait_admin(conn, "show jobs", step, |s| s.contains(&row_end)).await;
        self.push(step, jobs);
        self.admin(conn, "status").await;
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

/// Runs the same scenario against gearmand and gearbox, each given a fresh transcript to
/// record into and return, and asserts identical transcripts. Returns false (after printing
/// why) when gearmand is not installed outside CI.
pub async fn differential<F, Fut>(scenario: F) -> bool
where
    F: Fn(Target, Transcript) -> Fut,
    Fut: Future<Output = Transcript>,
{
    let Some(theirs) = Target::gearmand().await else {
        return false;
    };
    let t_theirs = scenario(theirs, Transcript::default()).await;
    let t_ours = scenario(Target::gearbox().await, Transcript::default()).await;
    assert_same(&t_theirs, &t_ours);
    true
}

/// Waits until the job with `unique` has `clients` attached clients (GET_STATUS_UNIQUE).
pub async fn wait_for_clients(addr: SocketAddr, unique: &str, clients: u64) {
    let mut c = RawConn::connect(addr).await;
    let mut p = Poller::new(format!("{clients} client(s) on unique {unique}"));
    loop {
        if let Response::StatusResUnique { client_count, .. } =
            c.ask(&get_status_unique(unique)).await
        {
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
    let mut p = Poller::new(what);
    loop {
        let reply = normalise_admin(&conn.admin(line).await);
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
