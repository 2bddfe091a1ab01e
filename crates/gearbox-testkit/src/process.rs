//! Child processes for interop tests: third-party tools run with piped stdio, killed when the
//! guard drops (so a failing test leaves nothing behind), and every wait bounded by
//! [`PROC_TIMEOUT`] so a hung tool fails the test instead of hanging it.

use std::ffi::OsStr;
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

/// How long a child process may take to print an expected line or to exit.
pub const PROC_TIMEOUT: Duration = Duration::from_secs(20);

/// What a finished process left behind.
#[derive(Debug)]
pub struct Finished {
    /// Exit status.
    pub status: ExitStatus,
    /// Everything written to stdout that was not already read line by line.
    pub stdout: String,
    /// Everything written to stderr.
    pub stderr: String,
}

impl Finished {
    /// Panics, showing both streams, unless the process exited with status 0.
    pub fn assert_success(&self, what: &str) {
        assert!(
            self.status.success(),
            "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
            self.status,
            self.stdout,
            self.stderr
        );
    }
}

/// A running child process; killed on drop.
pub struct Proc {
    name: String,
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<Vec<u8>>>,
}

impl Proc {
    /// Starts `program` with `args`; stdin, stdout and stderr are pipes.
    pub fn spawn<S: AsRef<OsStr>>(program: impl AsRef<OsStr>, args: &[S]) -> Proc {
        let mut cmd = Command::new(program);
        cmd.args(args);
        Proc::spawn_cmd(cmd)
    }

    /// Starts a prepared command; stdin, stdout and stderr are replaced by pipes.
    pub fn spawn_cmd(mut cmd: Command) -> Proc {
        let name = format!("{:?}", cmd.as_std());
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
        let mut err = child.stderr.take().expect("piped stderr");
        let stderr = tokio::spawn(async move {
            let mut v = Vec::new();
            let _ = err.read_to_end(&mut v).await;
            v
        });
        Proc {
            name,
            child,
            stdin,
            stdout,
            stderr: Some(stderr),
        }
    }

    /// The child's process id.
    pub fn id(&self) -> Option<u32> {
        self.child.id()
    }

    /// Writes `data` to the child's stdin.
    pub async fn write_stdin(&mut self, data: &[u8]) {
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(data).await.expect("write to child stdin");
        stdin.flush().await.expect("flush child stdin");
    }

    /// Closes the child's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Reads one stdout line (with its `\n`); `None` at end of output. Panics after
    /// [`PROC_TIMEOUT`].
    pub async fn read_line(&mut self) -> Option<String> {
        let mut line = String::new();
        let n = tokio::time::timeout(PROC_TIMEOUT, self.stdout.read_line(&mut line))
            .await
            .unwrap_or_else(|_| panic!("{} printed no line within {PROC_TIMEOUT:?}", self.name))
            .expect("read child stdout");
        (n > 0).then_some(line)
    }

    /// Whether the child has exited (without waiting).
    pub fn has_exited(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(Some(_)))
    }

    /// Closes stdin, waits for the child to exit and collects its output. Panics (after
    /// killing it) if it does not exit within `timeout`.
    pub async fn finish_within(mut self, timeout: Duration) -> Finished {
        self.stdin = None;
        let mut out = Vec::new();
        let waited = tokio::time::timeout(timeout, async {
            let _ = self.stdout.read_to_end(&mut out).await;
            self.child.wait().await
        })
        .await;
        let status = match waited {
            Ok(s) => s.expect("wait for child"),
            Err(_) => {
                let _ = self.child.start_kill();
                let err = self.collect_stderr().await;
                panic!(
                    "{} did not exit within {timeout:?}\nstdout so far:\n{}\nstderr:\n{err}",
                    self.name,
                    String::from_utf8_lossy(&out)
                );
            }
        };
        let stderr = self.collect_stderr().await;
        Finished {
            status,
            stdout: String::from_utf8_lossy(&out).into_owned(),
            stderr,
        }
    }

    /// [`Proc::finish_within`] with [`PROC_TIMEOUT`].
    pub async fn finish(self) -> Finished {
        self.finish_within(PROC_TIMEOUT).await
    }

    /// Kills the child and waits for it.
    pub async fn kill(mut self) {
        let _ = self.child.kill().await;
    }

    async fn collect_stderr(&mut self) -> String {
        let Some(h) = self.stderr.take() else {
            return String::new();
        };
        match tokio::time::timeout(Duration::from_secs(5), h).await {
            Ok(Ok(v)) => String::from_utf8_lossy(&v).into_owned(),
            _ => "<stderr not closed: a grandchild may still hold it>".into(),
        }
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        reap(&mut self.child);
    }
}

/// Kills `child` and reaps it, so no zombie outlives the test process (PID 1 in containers
/// often does not reap). SIGKILL takes effect within milliseconds; this waits at most 2 s.
pub(crate) fn reap(child: &mut Child) {
    if !matches!(child.try_wait(), Ok(None)) {
        return;
    }
    let _ = child.start_kill();
    let deadline = Instant::now() + Duration::from_secs(2);
    while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Runs `program args` to completion with `stdin` as input; panics if it takes longer than
/// [`PROC_TIMEOUT`].
pub async fn run<S: AsRef<OsStr>>(
    program: impl AsRef<OsStr>,
    args: &[S],
    stdin: &[u8],
) -> Finished {
    let mut p = Proc::spawn(program, args);
    if !stdin.is_empty() {
        p.write_stdin(stdin).await;
    }
    p.finish().await
}
