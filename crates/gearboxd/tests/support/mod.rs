//! Runs the real `gearboxd` binary for tests: on `-p 0`, its port read from its
//! `gearboxd listening on ADDR` line; every wait bounded, none of them a bare sleep.

#![allow(dead_code)] // each test file uses a different part

pub mod cluster;
pub mod detached;
pub mod http;
pub mod jobs;
pub mod sse;
pub mod store_tls;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use gearbox_proto::PacketType;
use gearboxd::LISTENING_PREFIX;

/// How long any wait in these tests may take before the test fails.
pub const TIMEOUT: Duration = Duration::from_secs(10);

/// Polls `cond` every 10 ms until it holds or `timeout` passes; returns whether it held.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    loop {
        if cond() {
            return true;
        }
        if start.elapsed() > timeout {
            return false;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[derive(Default)]
struct Lines {
    lines: Vec<String>,
    closed: bool,
}

/// A running `gearboxd`, killed on drop if it is still running.
pub struct Gearboxd {
    child: Child,
    /// The first address it reported.
    pub addr: SocketAddr,
    stderr: Arc<(Mutex<Lines>, Condvar)>,
}

/// Flags that choose the job store (a config file may choose it too).
const STORE_FLAGS: [&str; 6] = [
    "--queue-type",
    "--store",
    "--data-dir",
    "--libsqlite3-db",
    "--config",
    "-q",
];

/// Whether `args` (or the environment's config file) choose the job store.
fn chooses_store(args: &[&str], env: &[(&str, &str)]) -> bool {
    env.iter().any(|(k, _)| *k == "GEARBOXD_CONFIG")
        || args.iter().any(|a| {
            STORE_FLAGS
                .iter()
                .any(|f| a == f || a.starts_with(&format!("{f}=")))
                || (a.starts_with("-q") && !a.starts_with("--"))
        })
}

/// `gearboxd ARGS` with a clean environment. Without a store chosen by `args`, `-q builtin`
/// is added, so that no test keeps its queue in `./gearbox-data` (the default, which would be
/// inside the source tree) unless it runs in a directory of its own (`cwd`).
fn command(args: &[&str], env: &[(&str, &str)], cwd: Option<&Path>) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gearboxd"));
    cmd.args(args)
        .env_remove("GEARMAND_PORT")
        .env_remove("GEARBOXD_CONFIG");
    match cwd {
        Some(dir) => {
            cmd.current_dir(dir);
        }
        None if !chooses_store(args, env) => {
            cmd.args(["-q", "builtin"]);
        }
        None => {}
    }
    cmd.envs(env.iter().copied());
    cmd
}

impl Gearboxd {
    /// Starts `gearboxd ARGS` and waits for its first listening line.
    pub fn start(args: &[&str]) -> Gearboxd {
        Gearboxd::start_with_env(args, &[])
    }

    /// [`Gearboxd::start`] with extra environment variables.
    pub fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> Gearboxd {
        Gearboxd::spawn(command(args, env, None))
    }

    /// Starts `gearboxd ARGS` in the working directory `cwd`, with the store `args` choose
    /// (by default SQLite in `cwd/gearbox-data`).
    pub fn start_in(cwd: &Path, args: &[&str]) -> Gearboxd {
        Gearboxd::spawn(command(args, &[], Some(cwd)))
    }

    /// Starts `cmd` (a `gearboxd` command line the caller built) and waits for its first
    /// listening line.
    pub fn start_command(cmd: Command) -> Gearboxd {
        Gearboxd::spawn(cmd)
    }

    fn spawn(cmd: Command) -> Gearboxd {
        let mut child = spawn_piping_stderr(cmd);
        let stderr = Arc::new((Mutex::new(Lines::default()), Condvar::new()));
        let pipe = child.stderr.take().expect("piped stderr");
        let sink = stderr.clone();
        // Drains stderr for the child's whole life, so it never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                sink.0.lock().unwrap().lines.push(line);
                sink.1.notify_all();
            }
            sink.0.lock().unwrap().closed = true;
            sink.1.notify_all();
        });
        let mut g = Gearboxd {
            child,
            addr: "0.0.0.0:0".parse().unwrap(),
            stderr,
        };
        let line = g.wait_for_stderr(|l| l.starts_with(LISTENING_PREFIX));
        g.addr = line[LISTENING_PREFIX.len()..]
            .parse()
            .expect("an address after the prefix");
        g
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `sig`, waits for the process to exit, checks that it exited 0 and returns what
    /// it wrote on standard error.
    pub fn stop_with(&mut self, sig: libc::c_int) -> String {
        self.signal(sig);
        self.wait_for_clean_exit()
    }

    /// Waits for the process to exit, checks that it exited 0 and returns what it wrote on
    /// standard error.
    pub fn wait_for_clean_exit(&mut self) -> String {
        let status = self.wait_exit();
        let stderr = self.stderr_text();
        assert!(status.success(), "{status:?}; stderr:\n{stderr}");
        stderr
    }

    /// Sends `sig` to the process.
    pub fn signal(&self, sig: libc::c_int) {
        let pid = libc::pid_t::try_from(self.child.id()).unwrap();
        // SAFETY: kill has no memory-safety preconditions; the pid is our own child's.
        assert_eq!(unsafe { libc::kill(pid, sig) }, 0, "kill({pid}, {sig})");
    }

    /// Whether the process is still running.
    pub fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits (at most [`TIMEOUT`]) for the process to exit.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let mut status = None;
        let exited = wait_until(TIMEOUT, || {
            status = self.child.try_wait().expect("try_wait");
            status.is_some()
        });
        assert!(
            exited,
            "gearboxd still running after {TIMEOUT:?}; stderr:\n{}",
            self.stderr_text()
        );
        status.unwrap()
    }

    /// Waits (at most [`TIMEOUT`]) for a stderr line matching `pred` and returns it.
    pub fn wait_for_stderr(&self, pred: impl Fn(&str) -> bool) -> String {
        let (lock, cvar) = &*self.stderr;
        let deadline = Instant::now() + TIMEOUT;
        let mut seen = lock.lock().unwrap();
        loop {
            if let Some(l) = seen.lines.iter().find(|l| pred(l)) {
                return l.clone();
            }
            let now = Instant::now();
            if seen.closed || now >= deadline {
                panic!(
                    "expected line not on gearboxd's stderr:\n{}",
                    seen.lines.join("\n")
                );
            }
            seen = cvar.wait_timeout(seen, deadline - now).unwrap().0;
        }
    }

    /// Everything read from stderr so far.
    pub fn stderr_text(&self) -> String {
        self.stderr.0.lock().unwrap().lines.join("\n")
    }

    /// A raw connection to the first reported address.
    pub fn connect(&self) -> Conn {
        Conn::connect(self.addr)
    }
}

impl Drop for Gearboxd {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// Spawns `cmd` with no standard input or output, and standard error piped.
pub fn spawn_piping_stderr(mut cmd: Command) -> Child {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gearboxd")
}

/// Runs `gearboxd ARGS` expecting it to exit by itself within [`TIMEOUT`].
pub fn run_to_exit(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut child = command(args, env, None)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn gearboxd");
    // Its output is small (an error message), so the pipes cannot fill while we poll.
    let exited = wait_until(TIMEOUT, || child.try_wait().expect("try_wait").is_some());
    if !exited {
        let _ = child.kill();
    }
    let out = child.wait_with_output().expect("collect output");
    assert!(
        exited,
        "gearboxd did not exit; stderr:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// A raw Gearman connection; every read fails the test after [`TIMEOUT`].
pub struct Conn {
    stream: TcpStream,
}

impl Conn {
    /// Connects to `addr`.
    pub fn connect(addr: SocketAddr) -> Conn {
        let stream = TcpStream::connect(addr).expect("connect to gearboxd");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_nodelay(true).unwrap();
        Conn { stream }
    }

    /// Sends a request packet: `\0REQ`, type, length, body.
    pub fn send(&mut self, ty: PacketType, body: &[u8]) {
        self.stream
            .write_all(&packet(b"\0REQ", ty, body))
            .expect("write packet");
    }

    /// Reads one response packet; returns its type and body.
    pub fn recv(&mut self) -> (PacketType, Vec<u8>) {
        let mut header = [0u8; 12];
        self.stream
            .read_exact(&mut header)
            .expect("read packet header");
        let (ty, len) = response_header(&header);
        let mut body = vec![0u8; len];
        self.stream.read_exact(&mut body).expect("read packet body");
        (ty, body)
    }

    /// Sends an admin command line and reads one reply line (with its line ending).
    pub fn admin(&mut self, line: &str) -> String {
        self.stream
            .write_all(format!("{line}\r\n").as_bytes())
            .expect("write admin line");
        self.read_line()
    }

    /// Sends an admin command whose reply is a listing and returns its lines, without the
    /// closing `.` line and without line endings.
    pub fn admin_listing(&mut self, line: &str) -> Vec<String> {
        let mut lines = Vec::new();
        let mut next = self.admin(line);
        loop {
            let text = next.trim_end_matches(['\r', '\n']).to_owned();
            if text == "." {
                return lines;
            }
            lines.push(text);
            next = self.read_line();
        }
    }

    /// Reads one more reply line (with its line ending).
    fn read_line(&mut self) -> String {
        let mut reply = Vec::new();
        let mut byte = [0u8; 1];
        while reply.last() != Some(&b'\n') {
            self.stream.read_exact(&mut byte).expect("read admin reply");
            reply.push(byte[0]);
        }
        String::from_utf8(reply).expect("utf-8 reply")
    }
}

/// The type and body length in a response's 12-byte header (the magic must be `\0RES`).
pub fn response_header(header: &[u8; 12]) -> (PacketType, usize) {
    assert_eq!(&header[..4], b"\0RES", "response magic");
    let ty = u32::from_be_bytes(header[4..8].try_into().unwrap());
    let len = u32::from_be_bytes(header[8..12].try_into().unwrap());
    let ty = PacketType::try_from(ty).unwrap_or_else(|n| panic!("unknown packet type {n}"));
    (ty, len as usize)
}

/// Runs gearboxd on loopback with `args`, expecting a start-up failure (exit status 1, an
/// error line, nothing bound); returns its standard error.
pub fn start_fails(args: &[&str]) -> String {
    let mut all = vec!["-p", "0", "-L", "127.0.0.1"];
    all.extend_from_slice(args);
    let out = run_to_exit(&all, &[]);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
    // Warnings about the settings (a password on the command line) may come first.
    let first = err.lines().find(|l| !l.starts_with("gearboxd: warning: "));
    assert!(
        first.is_some_and(|l| l.starts_with("gearboxd: error: ")),
        "{err}"
    );
    assert!(
        !err.contains("listening on"),
        "bound without its store: {err}"
    );
    err
}

/// Encodes one packet.
pub fn packet(magic: &[u8; 4], ty: PacketType, body: &[u8]) -> Vec<u8> {
    let mut p = magic.to_vec();
    p.extend_from_slice(&(ty as u32).to_be_bytes());
    p.extend_from_slice(&u32::try_from(body.len()).unwrap().to_be_bytes());
    p.extend_from_slice(body);
    p
}

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    /// Creates a fresh, empty directory.
    pub fn new() -> TempDir {
        static N: AtomicUsize = AtomicUsize::new(0);
        let n = N.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("gearboxd-test-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
