//! Crash test: `gearboxd` with the SQLite queue, and with the PostgreSQL queue (against a
//! throwaway server; SKIPPED without one, a failure with CI=true), `--durability fsync`, is
//! killed with SIGKILL at random moments while clients submit background jobs as fast as they
//! can and workers run them; it is restarted on the same store each time. At the end workers
//! drain the queue, and a ledger checks that every job that got JOB_CREATED ran at least once.
//!
//! Duplicates are allowed (a kill between a job's completion and its removal from the store
//! runs it again); losses are not. The kill moments come from a seeded generator; the seed is
//! printed, and `GEARBOX_CRASH_SEED=<seed>` replays the same moments.

mod support;

use std::collections::{HashMap, HashSet};
use std::io;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use gearbox_proto::PacketType::{
    self, CAN_DO, ERROR, GRAB_JOB_UNIQ, JOB_ASSIGN_UNIQ, JOB_CREATED, NOOP, NO_JOB, PRE_SLEEP,
    SUBMIT_JOB_BG, WORK_COMPLETE,
};
use gearbox_testkit::servers::postgres::PgServer;
use support::{Gearboxd, TempDir};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::task::JoinSet;

const FUNCTION: &str = "crash";
const ROUNDS: usize = 5;
/// Rounds against PostgreSQL (each restart reconnects and replays).
const PG_ROUNDS: usize = 5;
/// Concurrent submitting connections per round, each with one submit in flight.
const CLIENTS: usize = 16;
/// Workers running jobs while the clients submit, so removals race with the kills too.
const WORKERS: usize = 2;
/// Workers draining the queue at the end.
const DRAINERS: usize = 4;
/// The kill comes this many milliseconds after the round's first JOB_CREATED.
const KILL_AFTER_MS: std::ops::Range<u64> = 20..400;
/// Longest wait for any single reply from a live server.
const REPLY_TIMEOUT: Duration = Duration::from_secs(10);

/// splitmix64: small, seedable, good enough to pick kill moments.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn range(&mut self, r: std::ops::Range<u64>) -> u64 {
        r.start + self.next() % (r.end - r.start)
    }
}

fn seed() -> u64 {
    match std::env::var("GEARBOX_CRASH_SEED") {
        Ok(s) => s.parse().expect("GEARBOX_CRASH_SEED is a number"),
        Err(_) => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64,
    }
}

async fn send(stream: &mut TcpStream, ty: PacketType, body: &[u8]) -> io::Result<()> {
    stream.write_all(&support::packet(b"\0REQ", ty, body)).await
}

/// Reads one response packet. An error is the server going away (EOF, reset).
async fn recv(stream: &mut TcpStream) -> io::Result<(PacketType, Vec<u8>)> {
    let mut header = [0u8; 12];
    stream.read_exact(&mut header).await?;
    let (ty, len) = support::response_header(&header);
    let mut body = vec![0u8; len];
    stream.read_exact(&mut body).await?;
    Ok((ty, body))
}

/// [`recv`] that fails the test if a live server does not answer in time.
async fn reply(stream: &mut TcpStream) -> io::Result<(PacketType, Vec<u8>)> {
    tokio::time::timeout(REPLY_TIMEOUT, recv(stream))
        .await
        .expect("gearboxd answers within the reply timeout")
}

/// What one round's clients saw.
#[derive(Default)]
struct Ledger {
    /// Payloads whose JOB_CREATED arrived.
    acknowledged: Mutex<Vec<String>>,
    /// Submits in flight when the server died (no reply at all).
    unanswered: AtomicUsize,
    /// Submits answered with ERROR (a failed commit: not acknowledged, may be lost).
    errors: AtomicUsize,
    /// Signalled at the round's first JOB_CREATED.
    first_ack: Notify,
}

/// Submits background jobs one after another until the server dies.
async fn client(addr: SocketAddr, round: usize, id: usize, ledger: Arc<Ledger>) {
    let Ok(mut stream) = TcpStream::connect(addr).await else {
        return; // killed before this client got going
    };
    let _ = stream.set_nodelay(true);
    for seq in 0u64.. {
        let payload = format!("r{round}-c{id}-{seq}");
        // The payload is also the unique id: replays must keep unique coalescing intact.
        let body = format!("{FUNCTION}\0{payload}\0{payload}");
        if send(&mut stream, SUBMIT_JOB_BG, body.as_bytes())
            .await
            .is_err()
        {
            ledger.unanswered.fetch_add(1, Ordering::Relaxed);
            return;
        }
        match reply(&mut stream).await {
            Ok((JOB_CREATED, _)) => {
                let mut acked = ledger.acknowledged.lock().unwrap();
                acked.push(payload);
                if acked.len() == 1 {
                    ledger.first_ack.notify_one();
                }
            }
            Ok((ERROR, body)) => {
                ledger.errors.fetch_add(1, Ordering::Relaxed);
                eprintln!("submit refused: {}", String::from_utf8_lossy(&body));
            }
            Ok((ty, body)) => panic!("unexpected reply {ty:?}: {body:?}"),
            Err(_) => {
                ledger.unanswered.fetch_add(1, Ordering::Relaxed);
                return;
            }
        }
    }
}

/// Payloads run so far, with how often each ran.
type Runs = Arc<Mutex<HashMap<String, u32>>>;

/// Takes the job out of a JOB_ASSIGN_UNIQ, records its payload, answers WORK_COMPLETE.
async fn complete(stream: &mut TcpStream, body: &[u8], runs: &Runs) -> io::Result<()> {
    let mut parts = body.splitn(4, |b| *b == 0);
    let handle = parts.next().unwrap().to_vec();
    let payload = String::from_utf8(parts.nth(2).unwrap().to_vec()).unwrap();
    *runs.lock().unwrap().entry(payload).or_default() += 1;
    let mut done = handle;
    done.push(0);
    send(stream, WORK_COMPLETE, &done).await
}

/// Runs jobs while the clients submit, until the server dies.
async fn worker(addr: SocketAddr, runs: Runs) -> io::Result<()> {
    let mut stream = TcpStream::connect(addr).await?;
    let _ = stream.set_nodelay(true);
    send(&mut stream, CAN_DO, FUNCTION.as_bytes()).await?;
    loop {
        send(&mut stream, GRAB_JOB_UNIQ, b"").await?;
        match reply(&mut stream).await? {
            (JOB_ASSIGN_UNIQ, body) => complete(&mut stream, &body, &runs).await?,
            (NO_JOB, _) => {
                send(&mut stream, PRE_SLEEP, b"").await?;
                // Woken by a new job (NOOP) or by the kill (error); the clients keep the
                // queue busy, so this never waits long on a live server.
                match reply(&mut stream).await? {
                    (NOOP, _) => {}
                    (ty, body) => panic!("sleeping worker got {ty:?}: {body:?}"),
                }
            }
            (ty, body) => panic!("worker got {ty:?}: {body:?}"),
        }
    }
}

/// The function's job count (queued plus running) from the admin `status` command.
async fn queued(admin: &mut BufReader<TcpStream>) -> u64 {
    admin.get_mut().write_all(b"status\r\n").await.unwrap();
    let mut total = 0;
    loop {
        let mut line = String::new();
        let n = tokio::time::timeout(REPLY_TIMEOUT, admin.read_line(&mut line))
            .await
            .expect("status answered in time")
            .unwrap();
        assert!(n > 0, "admin connection closed");
        let line = line.trim_end();
        if line == "." {
            return total;
        }
        let fields: Vec<&str> = line.split('\t').collect();
        if fields[0] == FUNCTION {
            total = fields[1].parse().unwrap();
        }
    }
}

/// Runs jobs until `status` shows none left for the function. Each check follows a real
/// event: a NO_JOB answer, or the end of a PRE_SLEEP that a NOOP (or its timeout) closed.
async fn drainer(addr: SocketAddr, runs: Runs) {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    let _ = stream.set_nodelay(true);
    let mut admin = BufReader::new(TcpStream::connect(addr).await.unwrap());
    send(&mut stream, CAN_DO, FUNCTION.as_bytes())
        .await
        .unwrap();
    let mut idle_cycles = 0;
    loop {
        send(&mut stream, GRAB_JOB_UNIQ, b"").await.unwrap();
        match reply(&mut stream).await.unwrap() {
            (JOB_ASSIGN_UNIQ, body) => complete(&mut stream, &body, &runs).await.unwrap(),
            (NO_JOB, _) => {
                if queued(&mut admin).await == 0 {
                    return;
                }
                // Another drainer still runs the last jobs: sleep until woken, briefly.
                idle_cycles += 1;
                assert!(idle_cycles < 200, "the queue never emptied");
                send(&mut stream, PRE_SLEEP, b"").await.unwrap();
                match tokio::time::timeout(Duration::from_millis(100), recv(&mut stream)).await {
                    Ok(Ok((NOOP, _))) | Err(_) => {}
                    Ok(other) => panic!("sleeping drainer got {other:?}"),
                }
            }
            (ty, body) => panic!("drainer got {ty:?}: {body:?}"),
        }
    }
}

/// gearboxd on loopback with queue `queue` at `location` (`--data-dir` for SQLite,
/// `--libpq-conninfo` for PostgreSQL), fsync durability.
fn start(queue: &str, location_flag: &str, location: &str) -> Gearboxd {
    Gearboxd::start(&[
        "-p",
        "0",
        "-L",
        "127.0.0.1",
        "-q",
        queue,
        location_flag,
        location,
        "--durability",
        "fsync",
    ])
}

fn start_sqlite(store: &Path) -> Gearboxd {
    start("libsqlite3", "--data-dir", store.to_str().unwrap())
}

fn start_postgres(conninfo: &str) -> Gearboxd {
    start("libpq", "--libpq-conninfo", conninfo)
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_job() {
    let dir = TempDir::new();
    let store = dir.join("store");
    crash_test("sqlite", ROUNDS, || start_sqlite(&store));
}

#[test]
fn sigkill_under_load_loses_no_acknowledged_job_postgres() {
    let Some(pg) = PgServer::start("sigkill_under_load_loses_no_acknowledged_job_postgres") else {
        return;
    };
    let conninfo = pg.conninfo();
    crash_test("postgres", PG_ROUNDS, || start_postgres(&conninfo));
    assert_eq!(
        pg.query("SELECT count(*) FROM gearbox_jobs"),
        ["0"],
        "the drained store is empty"
    );
}

/// Kills `start()`'s server `rounds` times under load, then drains and checks the ledger.
fn crash_test(backend: &str, rounds: usize, start: impl Fn() -> Gearboxd) {
    let seed = seed();
    eprintln!("{backend} crash test seed {seed} (replay: GEARBOX_CRASH_SEED={seed})");
    let mut rng = Rng(seed);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let runs: Runs = Arc::default();
    let mut acknowledged = Vec::new();
    let mut killed_mid_load = false;
    let mut refused = 0;
    for round in 0..rounds {
        let mut server = start();
        let addr = server.addr;
        let delay = Duration::from_millis(rng.range(KILL_AFTER_MS));
        let ledger = Arc::new(Ledger::default());
        rt.block_on(async {
            let mut tasks = JoinSet::new();
            for id in 0..CLIENTS {
                tasks.spawn(client(addr, round, id, ledger.clone()));
            }
            for _ in 0..WORKERS {
                let runs = runs.clone();
                tasks.spawn(async move {
                    let _ = worker(addr, runs).await;
                });
            }
            tokio::time::timeout(REPLY_TIMEOUT, ledger.first_ack.notified())
                .await
                .expect("a first JOB_CREATED in time");
            // Not a synchronisation: the random moment of the crash.
            tokio::time::sleep(delay).await;
            server.signal(libc::SIGKILL);
            while let Some(r) = tasks.join_next().await {
                r.expect("client or worker task");
            }
        });
        let status = server.wait_exit();
        assert_eq!(
            status.code(),
            None,
            "killed by a signal: {status:?}\n{}",
            server.stderr_text()
        );
        let acked = std::mem::take(&mut *ledger.acknowledged.lock().unwrap());
        let unanswered = ledger.unanswered.load(Ordering::Relaxed);
        refused += ledger.errors.load(Ordering::Relaxed);
        killed_mid_load |= unanswered > 0;
        eprintln!(
            "round {round}: killed after {delay:?}: {} acknowledged, {unanswered} unanswered",
            acked.len()
        );
        acknowledged.extend(acked);
    }

    // Drain what the store kept.
    let mut server = start();
    let addr = server.addr;
    rt.block_on(async {
        let mut tasks = JoinSet::new();
        for _ in 0..DRAINERS {
            tasks.spawn(drainer(addr, runs.clone()));
        }
        while let Some(r) = tasks.join_next().await {
            r.expect("drainer task");
        }
    });
    server.signal(libc::SIGTERM);
    assert!(server.wait_exit().success(), "{}", server.stderr_text());

    let runs = runs.lock().unwrap();
    let acked: HashSet<&String> = acknowledged.iter().collect();
    assert_eq!(acked.len(), acknowledged.len(), "payloads are unique");
    let lost: Vec<&&String> = acked.iter().filter(|p| !runs.contains_key(**p)).collect();
    let duplicated = runs.values().filter(|n| **n > 1).count();
    let unacknowledged_runs = runs.keys().filter(|p| !acked.contains(p)).count();
    println!(
        "{backend} crash test: {rounds} rounds, {} acknowledged, {} lost, {duplicated} run twice, \
         {unacknowledged_runs} stored but unacknowledged (killed before JOB_CREATED arrived), \
         {refused} refused, {:.1}s, seed {seed}",
        acked.len(),
        lost.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(
        lost.is_empty(),
        "{} acknowledged jobs never ran, e.g. {:?} (seed {seed})",
        lost.len(),
        &lost[..lost.len().min(10)]
    );
    assert!(!acked.is_empty());
    assert!(
        killed_mid_load,
        "no round was killed with a submit in flight (seed {seed})"
    );
}
