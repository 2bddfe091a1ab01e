//! Running a command for one job: the payload goes to its standard input (written while its
//! output is read, so neither side can block the other), its standard output comes back
//! whole or line by line, its standard error passes through. The child is killed if the job
//! is dropped (e.g. the worker is shut down past its timeout).

use std::ffi::OsString;
use std::io;
use std::process::{ExitStatus, Stdio};

use bytes::Bytes;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};
use tokio::task::JoinHandle;

/// A started command.
#[derive(Debug)]
pub struct Running {
    child: Child,
    stdout: BufReader<ChildStdout>,
    feeder: JoinHandle<()>,
}

/// Starts `argv` (looked up on `PATH` as `execvp` does) with `env` added to the environment
/// and `payload` fed to its standard input.
pub fn spawn(argv: &[OsString], payload: Bytes, env: &[(&str, &[u8])]) -> io::Result<Running> {
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "no command given"))?;
    let mut cmd = Command::new(program);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    for (k, v) in env {
        use std::os::unix::ffi::OsStrExt;
        cmd.env(k, std::ffi::OsStr::from_bytes(v));
    }
    let mut child = cmd.spawn()?;
    let mut stdin = child.stdin.take();
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| io::Error::other("child has no stdout"))?;
    let feeder = tokio::spawn(async move {
        if let Some(mut s) = stdin.take() {
            // A command that does not read its input is fine: ignore EPIPE.
            if !payload.is_empty() {
                let _ = s.write_all(&payload).await;
            }
            let _ = s.shutdown().await;
        }
    });
    Ok(Running {
        child,
        stdout: BufReader::new(stdout),
        feeder,
    })
}

impl Running {
    /// Reads all of standard output, then waits for the exit.
    pub async fn output(mut self) -> io::Result<(Vec<u8>, ExitStatus)> {
        let mut out = Vec::new();
        self.stdout.read_to_end(&mut out).await?;
        let status = self.wait().await?;
        Ok((out, status))
    }

    /// Calls `line` with each line of standard output (its `\n` included; the last may lack
    /// one), then waits for the exit.
    pub async fn lines<F, Fut>(mut self, mut line: F) -> io::Result<ExitStatus>
    where
        F: FnMut(Vec<u8>) -> Fut,
        Fut: std::future::Future<Output = ()>,
    {
        loop {
            let mut buf = Vec::new();
            if self.stdout.read_until(b'\n', &mut buf).await? == 0 {
                break;
            }
            line(buf).await;
        }
        self.wait().await
    }

    async fn wait(&mut self) -> io::Result<ExitStatus> {
        let status = self.child.wait().await?;
        let _ = (&mut self.feeder).await;
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(a: &[&str]) -> Vec<OsString> {
        a.iter().map(OsString::from).collect()
    }

    #[tokio::test]
    async fn payload_in_output_out() {
        let r = spawn(
            &argv(&["tr", "a-z", "A-Z"]),
            Bytes::from_static(b"abc"),
            &[],
        )
        .unwrap();
        let (out, st) = r.output().await.unwrap();
        assert_eq!((out.as_slice(), st.success()), (&b"ABC"[..], true));
        let r = spawn(
            &argv(&["sh", "-c", "printf '%s' \"$GEARMAN_FUNCTION\"; exit 3"]),
            Bytes::new(),
            &[("GEARMAN_FUNCTION", b"fn")],
        )
        .unwrap();
        let (out, st) = r.output().await.unwrap();
        assert_eq!((out.as_slice(), st.code()), (&b"fn"[..], Some(3)));
        assert!(spawn(&argv(&["/nonexistent/cmd"]), Bytes::new(), &[]).is_err());
    }

    #[tokio::test]
    async fn lines_one_by_one() {
        let r = spawn(&argv(&["printf", "a\\nb\\nc"]), Bytes::new(), &[]).unwrap();
        let mut got = Vec::new();
        let st = r
            .lines(|l| {
                got.push(l);
                async {}
            })
            .await
            .unwrap();
        assert!(st.success());
        assert_eq!(got, vec![b"a\n".to_vec(), b"b\n".to_vec(), b"c".to_vec()]);
    }
}
