//! A private `memcached` (`apt-get install memcached`): a free port on 127.0.0.1, 64 MB, and
//! `-M` (refuse writes when memory is full rather than evict: what the memcached store's
//! documentation recommends). Killed on drop. (Stopping it loses every item: for outages,
//! put a [`super::proxy::Proxy`] in front of it.)

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::{free_port, skip};

const BINARY: &str = "/usr/bin/memcached";

/// A running `memcached`.
pub struct Memcached {
    child: Child,
    port: u16,
}

impl Memcached {
    /// Starts a server with `-M -m 64` and waits until it answers `version`, or returns `None`
    /// (after printing `SKIPPED`) when memcached is not installed outside CI.
    pub fn start(test: &str) -> Option<Memcached> {
        Memcached::start_with(test, &["-M", "-m", "64"])
    }

    /// Starts a server with other memory options (such as `["-m", "2"]`, which evicts).
    pub fn start_with(test: &str, memory: &[&str]) -> Option<Memcached> {
        if !Path::new(BINARY).exists() {
            skip(
                test,
                &format!("{BINARY} not found (apt-get install memcached, or run .ci/install-deps)"),
            );
            return None;
        }
        let port = free_port();
        let child = Command::new(BINARY)
            .arg("-p")
            .arg(port.to_string())
            .args(["-l", "127.0.0.1", "-U", "0"])
            // memcached refuses to run as root without a user to switch to.
            .args(["-u", "root"])
            .args(memory)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start memcached");
        let mut server = Memcached { child, port };
        server.wait_ready();
        Some(server)
    }

    /// The port it listens on.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `127.0.0.1:<port>`.
    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Every key it holds, as `lru_crawler metadump all` lists them (URL-encoded), sorted.
    pub fn keys(&self) -> Vec<String> {
        let text = self.exchange(b"lru_crawler metadump all\r\n", b"END\r\n");
        let mut keys: Vec<String> = String::from_utf8_lossy(&text)
            .lines()
            .filter_map(|l| l.strip_prefix("key=")?.split(' ').next().map(str::to_owned))
            .collect();
        keys.sort();
        keys
    }

    /// The flags and value of `key`, if it is there.
    pub fn get(&self, key: &str) -> Option<(u32, Vec<u8>)> {
        let reply = self.exchange(format!("get {key}\r\n").as_bytes(), b"END\r\n");
        let header_end = reply.windows(2).position(|w| w == b"\r\n")?;
        let header = String::from_utf8_lossy(&reply[..header_end]).into_owned();
        let mut fields = header.split(' ').skip(2);
        let flags = fields.next()?.parse().ok()?;
        let len: usize = fields.next()?.parse().ok()?;
        let start = header_end + 2;
        Some((flags, reply.get(start..start + len)?.to_vec()))
    }

    /// Deletes `key`; whether it was there.
    pub fn delete(&self, key: &str) -> bool {
        let reply = self.exchange(format!("delete {key}\r\n").as_bytes(), b"\r\n");
        reply.starts_with(b"DELETED")
    }

    /// Sends `command` and reads until the reply ends with `end`.
    fn exchange(&self, command: &[u8], end: &[u8]) -> Vec<u8> {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connect memcached");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("read timeout");
        stream.write_all(command).expect("send to memcached");
        let mut reply = Vec::new();
        let mut buf = [0u8; 4096];
        while !reply.ends_with(end) {
            let n = stream.read(&mut buf).expect("read from memcached");
            assert!(n > 0, "memcached closed the connection: {reply:?}");
            reply.extend_from_slice(&buf[..n]);
        }
        reply
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if version(self.port) {
                return;
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("memcached exited at start-up ({status})");
            }
            assert!(
                Instant::now() < deadline,
                "memcached on port {} did not answer within 10 s",
                self.port
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Memcached {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// True when a server on `port` answers `version` with `VERSION ...`.
fn version(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_millis(500)));
    if stream.write_all(b"version\r\n").is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Ok(n) => buf[..n].starts_with(b"VERSION "),
        Err(_) => false,
    }
}
