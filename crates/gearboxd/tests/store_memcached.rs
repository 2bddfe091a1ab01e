//! The real binary with the memcached queue (`-q libmemcached`) against Debian's memcached,
//! and against the real gearmand's libmemcached queue on the same memcached servers: jobs
//! queued by either server are replayed by the other. Missing binaries print SKIPPED (a
//! failure with CI=true).

mod support;

use std::time::Duration;

use gearbox_proto::PacketType::ERROR;
use gearbox_testkit::gearmand::Gearmand;
use gearbox_testkit::servers::memcached::Memcached;
use support::jobs::{
    restart_keeps_background_jobs, run_all, run_all_on, show_jobs, stop, submit, Assigned,
    JOB_CREATED, SUBMIT_JOB_BG, SUBMIT_JOB_HIGH_BG,
};
use support::{wait_until, Conn, Gearboxd};

fn start(store: &[&str]) -> Gearboxd {
    let mut args = vec!["-p", "0", "-L", "127.0.0.1", "--job-handle-prefix", "H:srv"];
    args.extend_from_slice(store);
    Gearboxd::start(&args)
}

/// gearboxd with the memcached queue on `servers`.
fn on(servers: &str) -> Gearboxd {
    start(&["-q", "libmemcached", "--libmemcached-servers", servers])
}

/// Two memcached servers started with `options`, so that jobs are spread over both by
/// libmemcached's placement.
fn two_servers(test: &str, options: &[&str]) -> Option<(Memcached, Memcached, String)> {
    let a = Memcached::start_with(test, options)?;
    let b = Memcached::start_with(test, options)?;
    let list = format!("{},{}", a.address(), b.address());
    Some((a, b, list))
}

/// gearmand with its libmemcached queue on `servers`, in a runtime of its own.
fn gearmand(rt: &tokio::runtime::Runtime, servers: &str) -> Option<Gearmand> {
    let flag = format!("--libmemcached-servers={servers}");
    rt.block_on(Gearmand::start_with(&["-q", "libmemcached", &flag]))
}

/// The jobs every test queues: (priority packet, unique, data), the high one last.
fn jobs() -> Vec<(gearbox_proto::PacketType, String, Vec<u8>)> {
    let mut jobs: Vec<_> = (0..6)
        .map(|i| {
            (
                SUBMIT_JOB_BG,
                format!("u{i}"),
                format!("data {i}\0\u{ff}").into_bytes(),
            )
        })
        .collect();
    jobs.push((SUBMIT_JOB_HIGH_BG, "urgent".into(), b"first".to_vec()));
    jobs
}

fn queue(mut conn: Conn) {
    for (ty, unique, data) in jobs() {
        submit(&mut conn, ty, "resize", &unique, &data);
    }
}

/// The worker got every job of [`jobs`] with its data, the high-priority one first.
fn check_ran(ran: &[Assigned]) {
    assert_eq!(ran.len(), jobs().len(), "{ran:?}");
    assert_eq!(
        (ran[0].unique.as_str(), &ran[0].data[..]),
        ("urgent", &b"first"[..])
    );
    let mut got: Vec<_> = ran
        .iter()
        .map(|a| (a.unique.clone(), a.data.clone()))
        .collect();
    let mut expected: Vec<_> = jobs().into_iter().map(|(_, u, d)| (u, d)).collect();
    got.sort();
    expected.sort();
    assert_eq!(got, expected);
}

fn all_keys(a: &Memcached, b: &Memcached) -> Vec<String> {
    let mut keys = a.keys();
    keys.extend(b.keys());
    keys.sort();
    keys
}

#[test]
fn memcached_background_jobs_survive_a_restart_with_their_handles() {
    let test = "memcached_background_jobs_survive_a_restart_with_their_handles";
    let Some(server) = Memcached::start(test) else {
        return;
    };
    let address = server.address();
    let url = format!("memcached://{address}");
    restart_keeps_background_jobs(&|| on(&address), &|| start(&["--store", &url]));
}

#[test]
fn jobs_gearmand_queued_in_memcached_are_run_by_gearboxd() {
    let test = "jobs_gearmand_queued_in_memcached_are_run_by_gearboxd";
    // memcached's defaults: gearboxd lists keys with `lru_crawler metadump`, which sees
    // every item, however recent.
    let Some((a, b, servers)) = two_servers(test, &["-M"]) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let Some(old) = gearmand(&rt, &servers) else {
        return;
    };
    queue(Conn::connect(old.addr));
    drop(old);
    // gearmand's format, on both servers: `gear_<function>-<unique>`, the data, the priority
    // in the flags.
    let keys = all_keys(&a, &b);
    assert_eq!(keys.len(), jobs().len(), "{keys:?}");
    assert!(!a.keys().is_empty() && !b.keys().is_empty(), "{keys:?}");
    let urgent = a
        .get("gear_resize-urgent")
        .or_else(|| b.get("gear_resize-urgent"));
    assert_eq!(urgent, Some((0, b"first".to_vec())));

    let server = on(&servers);
    assert_eq!(show_jobs(&server).len(), jobs().len());
    check_ran(&run_all(&server, "resize"));
    // Done: deleted from memcached (once the persister has committed), not replayed again.
    let gone = || all_keys(&a, &b).iter().all(|k| !k.contains("resize"));
    assert!(
        wait_until(Duration::from_secs(10), gone),
        "{:?}",
        all_keys(&a, &b)
    );
    stop(server);
    let server = on(&servers);
    assert!(show_jobs(&server).is_empty());
    stop(server);
}

#[test]
fn jobs_gearboxd_queued_in_memcached_are_run_by_gearmand() {
    let test = "jobs_gearboxd_queued_in_memcached_are_run_by_gearmand";
    // gearmand lists keys with `stats cachedump`, which on memcached 1.5 and later misses
    // items still in the "hot" part of the LRU (written moments ago): its replay needs
    // memcached without the segmented LRU (docs/job-store.md).
    let options = ["-M", "-o", "no_lru_maintainer"];
    let Some((a, b, servers)) = two_servers(test, &options) else {
        return;
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let server = on(&servers);
    queue(server.connect());
    stop(server);
    let Some(new) = gearmand(&rt, &servers) else {
        return;
    };
    check_ran(&run_all_on(Conn::connect(new.addr), "resize"));
    drop(new);
    // gearmand deleted its items; gearboxd's own records of those jobs are dropped at its
    // next start, not run again.
    let server = on(&servers);
    assert!(show_jobs(&server).is_empty());
    assert!(all_keys(&a, &b)
        .iter()
        .all(|k| !k.contains("~gb~") || k.ends_with("seq")));
    stop(server);
}

/// Submits background jobs of `size` bytes until one is refused or `max` are acknowledged;
/// the unique ids acknowledged, and the refusal (the ERROR packet's text), if any.
fn fill(server: &Gearboxd, size: usize, max: usize) -> (Vec<String>, Option<String>) {
    let mut conn = server.connect();
    let data = vec![b'x'; size];
    let mut acked = Vec::new();
    for i in 0..max {
        let unique = format!("big{i}");
        let mut body = format!("big\0{unique}\0").into_bytes();
        body.extend_from_slice(&data);
        conn.send(SUBMIT_JOB_BG, &body);
        let (ty, reply) = conn.recv();
        let text = String::from_utf8_lossy(&reply).into_owned();
        match ty {
            JOB_CREATED => acked.push(unique),
            ERROR => return (acked, Some(text)),
            other => panic!("reply {other:?}: {text}"),
        }
    }
    (acked, None)
}

#[test]
fn a_full_memcached_started_with_m_refuses_jobs_and_loses_none() {
    let test = "a_full_memcached_started_with_m_refuses_jobs_and_loses_none";
    let Some(mc) = Memcached::start_with(test, &["-M", "-m", "2"]) else {
        return;
    };
    let server = on(&mc.address());
    let (acked, refused) = fill(&server, 200 * 1024, 100);
    let refused = refused.expect("memcached -m 2 -M refuses 20 MB of jobs");
    assert!(
        refused.contains("QUEUE_ERROR") && refused.contains("memcached is full"),
        "{refused}"
    );
    assert!(!acked.is_empty());
    stop(server);
    // Every acknowledged job comes back; the refused one at most in addition (memcached may
    // have stored its data before refusing its record: at least once, never lost).
    let server = on(&mc.address());
    let ran: Vec<String> = run_all(&server, "big")
        .into_iter()
        .map(|a| a.unique)
        .collect();
    assert!(acked.iter().all(|u| ran.contains(u)), "{acked:?} {ran:?}");
    assert!(ran.len() <= acked.len() + 1, "{acked:?} {ran:?}");
    stop(server);
}

/// What the documentation warns about: memcached without `-M` evicts items when full, and
/// acknowledged jobs are gone without an error anywhere.
#[test]
fn memcached_without_m_evicts_acknowledged_jobs_silently() {
    let test = "memcached_without_m_evicts_acknowledged_jobs_silently";
    let Some(mc) = Memcached::start_with(test, &["-m", "2"]) else {
        return;
    };
    let server = on(&mc.address());
    let (acked, refused) = fill(&server, 200 * 1024, 40);
    assert_eq!((acked.len(), refused), (40, None), "all 8 MB acknowledged");
    stop(server);
    let server = on(&mc.address());
    let ran = run_all(&server, "big");
    assert!(
        ran.len() < acked.len() / 2,
        "{} of {} replayed",
        ran.len(),
        acked.len()
    );
    stop(server);
}
