//! `GET /metrics` after scripted traffic on the real binary: bytes read and written to the
//! byte (the scrapes' own Gearman connections included), ERROR packets, protocol closes,
//! connections, the queue-wait and run-time histograms, the SQLite store's commit batches,
//! and a store outage seen and recovered. Nothing but the test talks to each server.

mod support;

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Instant;

use gearbox_proto::PacketType::{
    CAN_DO, ECHO_REQ, ECHO_RES, ERROR, GRAB_JOB, JOB_ASSIGN, JOB_CREATED, SUBMIT_JOB_BG,
    WORK_COMPLETE,
};
use support::http::{http, start};
use support::{packet, response_header, wait_until, TempDir, TIMEOUT};

/// The length of the admin command a scrape sends (`metrics\r\n`).
const SCRAPE_COMMAND: u64 = 9;

/// One `GET /metrics`: every series with its value, and the body's length.
struct Scrape {
    values: BTreeMap<String, String>,
    body_len: u64,
}

impl Scrape {
    fn take(http_addr: SocketAddr) -> Scrape {
        let a = http(http_addr, b"GET /metrics HTTP/1.0\r\n\r\n");
        assert_eq!(a.status, 200, "{a:?}");
        let text = String::from_utf8(a.body).unwrap();
        check_families(&text);
        let values = text
            .lines()
            .filter(|l| !l.starts_with('#'))
            .map(|l| {
                let (series, value) = l.rsplit_once(' ').unwrap();
                (series.to_owned(), value.to_owned())
            })
            .collect();
        Scrape {
            values,
            body_len: text.len() as u64,
        }
    }

    fn text(&self, series: &str) -> &str {
        self.values
            .get(series)
            .unwrap_or_else(|| panic!("no {series} in {:?}", self.values))
    }

    fn u(&self, series: &str) -> u64 {
        self.text(series).parse().unwrap()
    }

    fn f(&self, series: &str) -> f64 {
        self.text(series).parse().unwrap()
    }

    /// The bytes the server wrote for this scrape: the body and the listing's closing `.\n`.
    fn listing_len(&self) -> u64 {
        self.body_len + 2
    }
}

/// Checks the exposition format's grouping: each sample follows the `# TYPE` line of its
/// family, a family appears once, and a histogram's buckets are cumulative, end with `+Inf`,
/// and `+Inf` equals `_count`.
fn check_families(text: &str) {
    let mut seen = std::collections::BTreeSet::new();
    let (mut family, mut kind) = (String::new(), String::new());
    // The last bucket: its labels without `le`, its `le`, its count.
    let mut bucket: Option<(String, String, u64)> = None;
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, k) = rest.split_once(' ').unwrap();
            assert!(seen.insert(name.to_owned()), "{name} twice");
            (family, kind) = (name.to_owned(), k.to_owned());
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (series, value) = line.rsplit_once(' ').unwrap();
        let name = series.split('{').next().unwrap();
        if kind != "histogram" {
            assert_eq!(name, family, "{line}");
            continue;
        }
        match name.strip_prefix(family.as_str()) {
            Some("_bucket") => {
                let (labels, le) = series.rsplit_once("le=").unwrap();
                let n: u64 = value.parse().unwrap();
                if let Some((previous, _, count)) = &bucket {
                    assert!(previous != labels || n >= *count, "not cumulative: {line}");
                }
                bucket = Some((labels.to_owned(), le.to_owned(), n));
            }
            Some("_sum") => {
                let (_, le, _) = bucket.as_ref().expect("buckets before _sum");
                assert_eq!(le, "\"+Inf\"}", "{line}: the last bucket is not +Inf");
            }
            Some("_count") => {
                let (_, _, inf) = bucket.take().expect("buckets before _count");
                assert_eq!(value.parse::<u64>().unwrap(), inf, "{line}: +Inf differs");
            }
            _ => panic!("{line} in histogram {family}"),
        }
    }
}

/// A raw connection that counts the bytes it sends and receives.
struct Counted {
    s: TcpStream,
    sent: u64,
    received: u64,
}

impl Counted {
    fn connect(addr: SocketAddr) -> Counted {
        let s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(TIMEOUT)).unwrap();
        Counted {
            s,
            sent: 0,
            received: 0,
        }
    }

    fn write(&mut self, bytes: &[u8]) {
        self.s.write_all(bytes).unwrap();
        self.sent += bytes.len() as u64;
    }

    fn recv(&mut self) -> (gearbox_proto::PacketType, Vec<u8>) {
        let mut header = [0u8; 12];
        self.s.read_exact(&mut header).unwrap();
        let (ty, len) = response_header(&header);
        let mut body = vec![0u8; len];
        self.s.read_exact(&mut body).unwrap();
        self.received += 12 + len as u64;
        (ty, body)
    }

    /// Reads until the server closes the connection.
    fn read_to_end(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        self.s.read_to_end(&mut rest).unwrap();
        self.received += rest.len() as u64;
        rest
    }
}

#[test]
fn bytes_errors_and_connections_are_counted_exactly() {
    let (server, http_addr) = start(&[]);
    let first = Scrape::take(http_addr);
    // The scrape's `metrics\r\n` was read before the text was rendered; nothing was written.
    assert_eq!(first.u("gearbox_received_bytes_total"), SCRAPE_COMMAND);
    assert_eq!(first.u("gearbox_sent_bytes_total"), 0);
    assert_eq!(first.u("gearbox_connections_accepted_total"), 1);
    assert_eq!(first.u("gearbox_error_packets_total"), 0);
    assert_eq!(first.u("gearbox_protocol_closes_total"), 0);

    // A background submit and its JOB_CREATED; then a packet type nobody knows: ERROR, and
    // the connection stays.
    let mut client = Counted::connect(server.addr);
    client.write(&packet(b"\0REQ", SUBMIT_JOB_BG, b"f\0\0payload"));
    assert_eq!(client.recv().0, JOB_CREATED);
    let mut unknown = b"\0REQ".to_vec();
    unknown.extend_from_slice(&999u32.to_be_bytes());
    unknown.extend_from_slice(&0u32.to_be_bytes());
    client.write(&unknown);
    assert_eq!(client.recv().0, ERROR);
    client.write(&packet(b"\0REQ", ECHO_REQ, b"still here"));
    assert_eq!(client.recv(), (ECHO_RES, b"still here".to_vec()));
    // Bad magic: ERROR, then the server closes the connection.
    let mut broken = Counted::connect(server.addr);
    broken.write(b"\0XYZ\0\0\0\x01\0\0\0\0");
    let rest = broken.read_to_end();
    assert_eq!(response_header(rest[..12].try_into().unwrap()).0, ERROR);

    let second = Scrape::take(http_addr);
    let read = 2 * SCRAPE_COMMAND + client.sent + broken.sent;
    let written = first.listing_len() + client.received + broken.received;
    assert_eq!(second.u("gearbox_received_bytes_total"), read);
    assert_eq!(second.u("gearbox_sent_bytes_total"), written);
    assert_eq!(second.u("gearbox_connections_accepted_total"), 4);
    assert_eq!(second.u("gearbox_connections_refused_total"), 0);
    assert_eq!(second.u("gearbox_error_packets_total"), 2);
    assert_eq!(second.u("gearbox_protocol_closes_total"), 1);
    // The second scrape's own listing shows up in the third.
    let third = Scrape::take(http_addr);
    assert_eq!(
        third.u("gearbox_received_bytes_total"),
        read + SCRAPE_COMMAND
    );
    assert_eq!(
        third.u("gearbox_sent_bytes_total"),
        written + second.listing_len()
    );
}

#[test]
fn every_job_is_in_the_queue_wait_and_run_time_histograms() {
    let (server, http_addr) = start(&[]);
    let started = Instant::now();
    let mut client = server.connect();
    for i in 0..3 {
        support::jobs::submit(&mut client, SUBMIT_JOB_BG, "h", "", &[b'0' + i]);
    }
    let mut worker = server.connect();
    worker.send(CAN_DO, b"h");
    for _ in 0..3 {
        worker.send(GRAB_JOB, b"");
        let (ty, body) = worker.recv();
        assert_eq!(ty, JOB_ASSIGN);
        let handle = body.split(|b| *b == 0).next().unwrap().to_vec();
        let mut answer = handle;
        answer.extend_from_slice(b"\0done");
        worker.send(WORK_COMPLETE, &answer);
    }
    worker.send(ECHO_REQ, b"sync");
    assert_eq!(worker.recv().0, ECHO_RES);
    // Each duration is a difference of whole milliseconds: at most 1 ms more than measured.
    let bound = started.elapsed().as_secs_f64() + 0.003;
    let m = Scrape::take(http_addr);
    for h in ["gearbox_job_queue_wait_seconds", "gearbox_job_run_seconds"] {
        let label = "function=\"h\"";
        assert_eq!(m.u(&format!("{h}_count{{{label}}}")), 3, "{h}");
        assert_eq!(m.u(&format!("{h}_bucket{{{label},le=\"+Inf\"}}")), 3, "{h}");
        let sum = m.f(&format!("{h}_sum{{{label}}}"));
        assert!((0.0..=bound).contains(&sum), "{h}: {sum} > {bound}");
        let buckets: Vec<u64> = m
            .values
            .iter()
            .filter(|(k, _)| k.starts_with(&format!("{h}_bucket{{{label},")))
            .map(|(_, v)| v.parse().unwrap())
            .collect();
        assert_eq!(buckets.len(), 18, "{h}: 17 bounds and +Inf");
        assert!(buckets.iter().all(|&n| n <= 3), "{h}: {buckets:?}");
    }
}

/// Starts gearboxd with its SQLite store in `dir`, and opens a second connection to the same
/// database that can hold its write lock.
fn start_sqlite(dir: &TempDir, extra: &[&str]) -> (support::Gearboxd, SocketAddr, Hold) {
    let mut args = vec![
        "-q",
        "libsqlite3",
        "--data-dir",
        dir.path().to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (server, http_addr) = start(&args);
    let db = rusqlite::Connection::open(dir.join("gearbox.sqlite")).unwrap();
    db.busy_timeout(TIMEOUT).unwrap();
    (server, http_addr, Hold(db))
}

/// Another connection to the store's database.
struct Hold(rusqlite::Connection);

impl Hold {
    /// Takes the write lock: the server's commits wait (and time out).
    fn lock(&self) {
        self.0.execute_batch("BEGIN EXCLUSIVE").unwrap();
    }

    fn release(&self) {
        self.0.execute_batch("ROLLBACK").unwrap();
    }
}

#[test]
fn store_commits_are_batched_as_they_queue_up() {
    let dir = TempDir::new();
    let (server, http_addr, hold) = start_sqlite(&dir, &[]);
    hold.lock();
    // The first job's commit starts and waits for the lock: once the core has accepted it
    // and nothing is pending, the persister has closed that batch.
    let mut first = server.connect();
    first.send(SUBMIT_JOB_BG, b"s\0\0first");
    assert!(wait_until(TIMEOUT, || {
        let m = Scrape::take(http_addr);
        m.u("gearbox_jobs_submitted_total{function=\"s\"}") == 1
            && m.u("gearbox_store_pending_operations") == 0
    }));
    // Five more queue up behind it.
    let mut more = server.connect();
    for i in 0..5 {
        more.send(SUBMIT_JOB_BG, format!("s\0\0more {i}").as_bytes());
    }
    assert!(wait_until(TIMEOUT, || Scrape::take(http_addr)
        .u("gearbox_store_pending_operations")
        == 5));
    hold.release();
    assert_eq!(first.recv().0, JOB_CREATED);
    for _ in 0..5 {
        assert_eq!(more.recv().0, JOB_CREATED);
    }
    let m = Scrape::take(http_addr);
    let ops = "gearbox_store_commit_operations";
    assert_eq!(m.u(&format!("{ops}_count")), 2);
    assert_eq!(m.u(&format!("{ops}_sum")), 6);
    for (le, want) in [("1", 1), ("2", 1), ("5", 2), ("+Inf", 2)] {
        assert_eq!(
            m.u(&format!("{ops}_bucket{{le=\"{le}\"}}")),
            want,
            "le={le}"
        );
    }
    assert_eq!(m.u("gearbox_store_commit_seconds_count"), 2);
    assert_eq!(m.u("gearbox_store_commit_seconds_bucket{le=\"+Inf\"}"), 2);
    assert!(m.f("gearbox_store_commit_seconds_sum") > 0.0);
    assert_eq!(m.u("gearbox_store_pending_operations"), 0);
    assert_eq!(m.u("gearbox_store_commit_errors_total"), 0);
    assert_eq!(m.u("gearbox_store_outages_total"), 0);
    assert_eq!(m.u("gearbox_store_unavailable"), 0);
}

#[test]
fn a_store_outage_is_counted_and_its_end_seen() {
    let dir = TempDir::new();
    let (server, http_addr, hold) = start_sqlite(&dir, &["--store-timeout-ms", "300"]);
    let mut client = server.connect();
    hold.lock();
    let started = Instant::now();
    client.send(SUBMIT_JOB_BG, b"o\0\0refused");
    let (ty, body) = client.recv();
    assert_eq!(ty, ERROR);
    assert!(body.starts_with(b"QUEUE_ERROR\0"), "{body:?}");
    let m = Scrape::take(http_addr);
    assert_eq!(m.u("gearbox_store_unavailable"), 1);
    assert_eq!(m.u("gearbox_store_outages_total"), 1);
    assert_eq!(m.u("gearbox_store_commit_errors_total"), 1);
    assert_eq!(m.u("gearbox_error_packets_total"), 1);
    // The commit that timed out took at least the store timeout.
    assert_eq!(m.u("gearbox_store_commit_seconds_bucket{le=\"0.25\"}"), 0);
    assert_eq!(m.u("gearbox_store_commit_seconds_count"), 1);
    hold.release();
    support::jobs::submit(&mut client, SUBMIT_JOB_BG, "o", "", b"stored");
    let outage = started.elapsed().as_secs_f64();
    let m = Scrape::take(http_addr);
    assert_eq!(m.u("gearbox_store_unavailable"), 0);
    assert_eq!(m.u("gearbox_store_outages_total"), 1);
    assert_eq!(m.u("gearbox_store_commit_errors_total"), 1);
    let seconds = m.f("gearbox_store_outage_seconds_total");
    assert!(seconds > 0.0 && seconds <= outage, "{seconds} vs {outage}");
    // It stays put once the store is back.
    let again = Scrape::take(http_addr);
    assert_eq!(again.f("gearbox_store_outage_seconds_total"), seconds);
}

#[test]
fn a_connection_over_the_limit_is_refused_and_counted() {
    let (server, _) = start(&["--max-connections", "2"]);
    let mut first = Counted::connect(server.addr);
    let mut second = Counted::connect(server.addr);
    // Both are served (an echo round trip on the second), so the third is over the limit.
    second.write(&packet(b"\0REQ", ECHO_REQ, b"x"));
    assert_eq!(second.recv().0, ECHO_RES);
    let mut third = Counted::connect(server.addr);
    let refused = third.read_to_end();
    assert_eq!(response_header(refused[..12].try_into().unwrap()).0, ERROR);
    // No place is free for the HTTP gateway: the first connection asks for the text itself.
    first.write(b"metrics\r\n");
    let mut text = Vec::new();
    while !text.ends_with(b"\n.\n") {
        let mut chunk = [0u8; 65536];
        let n = first.s.read(&mut chunk).unwrap();
        assert!(n > 0, "closed before the end of the listing");
        text.extend_from_slice(&chunk[..n]);
    }
    let text = String::from_utf8(text).unwrap();
    let value = |series: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
            .unwrap_or_else(|| panic!("no {series}"))
            .parse()
            .unwrap()
    };
    assert_eq!(value("gearbox_connections_accepted_total"), 2);
    assert_eq!(value("gearbox_connections_refused_total"), 1);
    assert_eq!(value("gearbox_error_packets_total"), 1);
    assert_eq!(
        value("gearbox_received_bytes_total"),
        first.sent + second.sent
    );
    assert_eq!(
        value("gearbox_sent_bytes_total"),
        second.received + third.received
    );
}
