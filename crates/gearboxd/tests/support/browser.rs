//! Headless Chromium through chromedriver for the dashboard's browser test: chromedriver on a
//! free port in a process group of its own (so Chromium goes with it when the guard drops),
//! a fantoccini session over plain HTTP, polling helpers and screenshots as test artifacts.
//!
//! Not a module of `support` (only tests/dashboard_browser.rs links fantoccini): included
//! there with `#[path]`.

use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use fantoccini::{Client, ClientBuilder};
use serde_json::{json, Value};

use crate::support::{wait_until, TIMEOUT};

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// A running chromedriver, killed with its children (Chromium) on drop.
pub struct Driver {
    child: Child,
    /// Its WebDriver URL.
    pub url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let pgid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill has no memory-safety preconditions; the group is the one we made.
        unsafe { libc::kill(-pgid, libc::SIGKILL) };
        let _ = self.child.wait();
    }
}

/// chromedriver, or `None` (with the reason printed) when Chromium or chromedriver is not
/// installed; under `CI=true` a missing program fails the test instead.
pub fn driver() -> Option<Driver> {
    for p in [CHROMIUM, CHROMEDRIVER] {
        if !Path::new(p).exists() {
            let why = format!("{p} is missing (Debian: apt-get install chromium chromium-driver)");
            if std::env::var("CI").as_deref() == Ok("true") {
                panic!("{why}");
            }
            eprintln!("skipped: {why}");
            return None;
        }
    }
    // A free port, then chromedriver on it; another process may take it in between: retry.
    for _ in 0..5 {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let mut child = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .process_group(0)
            .spawn()
            .expect("start chromedriver");
        let mut exited = false;
        let up = wait_until(TIMEOUT, || {
            exited = child.try_wait().unwrap().is_some();
            exited || TcpStream::connect(("127.0.0.1", port)).is_ok()
        });
        let driver = Driver {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        if up && !exited {
            return Some(driver);
        }
    }
    panic!("chromedriver did not start");
}

/// A headless Chromium session, `width` × `height`.
pub async fn session(driver: &Driver, width: u32, height: u32) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--hide-scrollbars",
                     format!("--window-size={width},{height}")],
        }),
    );
    // chromedriver listens on loopback: plain HTTP.
    ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromedriver session")
}

/// Runs `script` (a function body; `arguments` holds `args`) until `pred` holds on its
/// result; fails the test after [`TIMEOUT`], naming `what` and the last result.
pub async fn wait_js(
    c: &Client,
    what: &str,
    script: &str,
    args: Vec<Value>,
    pred: impl Fn(&Value) -> bool,
) -> Value {
    let start = Instant::now();
    loop {
        let v = c.execute(script, args.clone()).await.expect("script runs");
        if pred(&v) {
            return v;
        }
        assert!(start.elapsed() < TIMEOUT, "{what}: last seen {v}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An element's text, polled until `pred` holds.
pub async fn wait_text(c: &Client, css: &str, pred: impl Fn(&str) -> bool) -> String {
    let v = wait_js(
        c,
        css,
        "const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
        vec![json!(css)],
        |v| v.as_str().is_some_and(&pred),
    )
    .await;
    v.as_str().unwrap().to_owned()
}

/// Where screenshots and timings go: `target/test-artifacts/dashboard/`.
pub fn artifacts() -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .unwrap()
        .join("test-artifacts/dashboard");
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Saves a screenshot of the page as `name.png` among the artifacts.
pub async fn screenshot(c: &Client, name: &str) {
    let png = c.screenshot().await.expect("screenshot");
    std::fs::write(artifacts().join(format!("{name}.png")), png).unwrap();
}
