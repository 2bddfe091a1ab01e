//! `gearbox top` on a terminal (a pseudo-terminal made by util-linux's `script`): the full
//! screen shows the functions, `/` filters them as typed, `q` quits with status 0 and the
//! terminal is given back (alternate screen left, cursor shown).

mod tool_support;

use std::io::{Read, Write};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use gearbox_proto::{Priority, Response};
use gearbox_testkit::build::submit;
use gearbox_testkit::external::require;
use gearbox_testkit::TestServer;

/// Leaves the alternate screen.
const LEAVE_ALTERNATE: &str = "\x1b[?1049l";
/// Clears the screen: each frame starts with it.
const CLEAR: &str = "\x1b[2J";

/// Everything the terminal has shown so far.
fn shown(out: &Mutex<Vec<u8>>) -> String {
    String::from_utf8_lossy(&out.lock().unwrap()).into_owned()
}

/// Waits (at most 20 s) until the last frame holds `pred`; returns it.
fn wait_frame(out: &Mutex<Vec<u8>>, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let all = shown(out);
        let last = all.rsplit(CLEAR).next().unwrap_or_default().to_owned();
        if pred(&last) {
            return last;
        }
        let tail: String = last.chars().take(2000).collect();
        assert!(
            Instant::now() < deadline,
            "no frame with {what}; the last:\n{tail:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Kills the terminal session if the test ends early.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

// The in-process server needs runtime threads of its own: this test blocks on the terminal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_a_terminal_keys_filter_and_q_gives_the_terminal_back() {
    let Some(script) = require("script", "runs `gearbox top` on a pseudo-terminal") else {
        return;
    };
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    for f in ["fa", "fb"] {
        c.send(&submit(f, "", "x", Priority::Normal, true)).await;
        assert!(matches!(c.recv().await, Response::JobCreated { .. }));
    }
    let top = format!(
        "{} -s {} top -n 0.1",
        env!("CARGO_BIN_EXE_gearbox"),
        server.addr
    );
    let child = Command::new(script)
        .args(["-qfec", &top, "/dev/null"])
        .env("TERM", "xterm")
        .env_remove("GEARBOX_HTTP")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("run script");
    let mut child = KillOnDrop(child);
    let out = Arc::new(Mutex::new(Vec::new()));
    let mut stdout = child.0.stdout.take().unwrap();
    let sink = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stdout.read(&mut buf) {
            sink.lock().unwrap().extend_from_slice(&buf[..n]);
        }
    });
    let mut keys = child.0.stdin.take().unwrap();
    let first = wait_frame(&out, "both functions", |f| f.contains("(total)"));
    assert!(first.contains("fa ") && first.contains("fb "), "{first:?}");
    assert!(first.contains("q quit"), "{first:?}");

    keys.write_all(b"/fb\r").unwrap();
    // The header (cut to the 80 columns of the pseudo-terminal) names the filter; `fa` is gone.
    let filtered = wait_frame(&out, "the filter applied", |f| {
        f.contains(", filter \"") && f.contains("(total)") && f.contains("q quit")
    });
    assert!(
        filtered.contains("fb ") && !filtered.contains("fa "),
        "{filtered:?}"
    );

    keys.write_all(b"q").unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.0.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "top did not quit on q");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    let all = shown(&out);
    let after_last_frame = all.rsplit(CLEAR).next().unwrap_or_default();
    assert!(after_last_frame.contains(LEAVE_ALTERNATE), "{all:?}");
}
