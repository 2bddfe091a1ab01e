//! Cluster mode (`--cluster`): three real `gearboxd` processes on loopback ports sharing one
//! throwaway PostgreSQL (SKIPPED without PostgreSQL, a failure with CI=true). Jobs submitted
//! on one member run on workers connected to another; priorities, FIFO order and unique ids
//! hold across members; a member killed with SIGKILL under load loses no acknowledged job.
//!
//! The members run with short bounds (heartbeat 200 ms, dead after 1 s, poll 200 ms) so that
//! takeover is quick; every wait is bounded and none is a bare sleep.

mod support;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use gearbox_client::worker::{Job, JobError, Worker};
use gearbox_client::Client;
use gearbox_testkit::servers::postgres::PgServer;
use support::cluster::{member, member_with, members, DEAD_AFTER_MS, HEARTBEAT_MS, POLL_MS};
use support::Gearboxd;
use tokio::sync::{mpsc, oneshot};

/// The longest any expected event may take.
const TIMEOUT: Duration = Duration::from_secs(20);

/// A worker connected to `addr` only, running `concurrency` jobs of `function` at once; each
/// job's payload goes to `ran`. Stops when the returned sender is dropped or used.
fn worker(
    addr: SocketAddr,
    function: &str,
    concurrency: usize,
    ran: mpsc::UnboundedSender<String>,
) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    let w = Worker::builder()
        .servers(&addr.to_string())
        .concurrency(concurrency)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .register(function, move |job: Job| {
            let ran = ran.clone();
            async move {
                let _ = ran.send(job.payload_str().unwrap_or("?").to_owned());
                Ok::<_, JobError>(Vec::<u8>::new())
            }
        })
        .build()
        .unwrap();
    tokio::spawn(w.run(async move {
        let _ = stopped.await;
    }));
    stop
}

/// A worker on `addr` that takes jobs of `function` and never finishes them.
fn stuck_worker(
    addr: SocketAddr,
    function: &str,
    concurrency: usize,
) -> tokio::task::JoinHandle<()> {
    let w = Worker::builder()
        .servers(&addr.to_string())
        .concurrency(concurrency)
        .register(function, |_job: Job| async move {
            std::future::pending::<()>().await;
            Ok::<_, JobError>(Vec::<u8>::new())
        })
        .build()
        .unwrap();
    tokio::spawn(async move {
        let _ = w.run(std::future::pending::<()>()).await;
    })
}

/// Receives payloads until `done` holds for the counts so far; fails after [`TIMEOUT`].
async fn collect_until(
    rx: &mut mpsc::UnboundedReceiver<String>,
    counts: &mut BTreeMap<String, usize>,
    done: impl Fn(&BTreeMap<String, usize>) -> bool,
) {
    let deadline = tokio::time::Instant::now() + TIMEOUT;
    while !done(counts) {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(payload)) => *counts.entry(payload).or_default() += 1,
            Ok(None) => panic!("the workers stopped"),
            Err(_) => panic!(
                "timed out; ran so far ({}): {:?}",
                counts.len(),
                counts.keys().take(20).collect::<Vec<_>>()
            ),
        }
    }
}

/// Submits a marker job on `client` and waits for it: every job queued before it at the
/// same priority has run by then, so the counts are final.
async fn settle(
    client: &Client,
    function: &str,
    rx: &mut mpsc::UnboundedReceiver<String>,
    counts: &mut BTreeMap<String, usize>,
) {
    client
        .job(function, "marker")
        .low()
        .background()
        .await
        .unwrap();
    collect_until(rx, counts, |c| c.contains_key("marker")).await;
    counts.remove("marker");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn background_jobs_submitted_on_any_member_run_on_workers_of_the_others() {
    let Some(pg) =
        PgServer::start("background_jobs_submitted_on_any_member_run_on_workers_of_the_others")
    else {
        return;
    };
    let servers = members(&pg, 3);
    let (tx, mut rx) = mpsc::unbounded_channel();
    // The only worker is connected to s2.
    let _stop = worker(servers[1].addr, "f", 2, tx);
    let mut expected = Vec::new();
    for s in [0, 2, 1] {
        let client = Client::new(&servers[s].addr.to_string()).unwrap();
        for n in 0..25 {
            let payload = format!("s{}-{n}", s + 1);
            client.job("f", payload.clone()).background().await.unwrap();
            expected.push(payload);
        }
    }
    let mut counts = BTreeMap::new();
    collect_until(&mut rx, &mut counts, |c| {
        expected.iter().all(|p| c.contains_key(p))
    })
    .await;
    let client = Client::new(&servers[0].addr.to_string()).unwrap();
    settle(&client, "f", &mut rx, &mut counts).await;
    assert_eq!(counts.len(), expected.len());
    assert!(
        counts.values().all(|n| *n == 1),
        "each job runs once: {counts:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn priorities_and_fifo_order_hold_across_members() {
    let Some(pg) = PgServer::start("priorities_and_fifo_order_hold_across_members") else {
        return;
    };
    let servers = members(&pg, 3);
    let clients = clients_of(&servers);
    // No worker yet: every member gives its jobs to the shared queue. Interleaved in time:
    // low on s1, normal on s2, high on s3.
    for n in 0..4 {
        clients[0]
            .job("p", format!("low-{n}"))
            .low()
            .background()
            .await
            .unwrap();
        clients[1]
            .job("p", format!("normal-{n}"))
            .background()
            .await
            .unwrap();
        clients[2]
            .job("p", format!("high-{n}"))
            .high()
            .background()
            .await
            .unwrap();
    }
    let free = || {
        pg.query("SELECT count(*) FROM gearbox_jobs WHERE owner IS NULL")
            .first()
            .cloned()
            == Some("12".to_owned())
    };
    assert!(
        support::wait_until(TIMEOUT, free),
        "all 12 jobs freed to the shared queue"
    );
    // One worker, one job at a time, on s2: it gets them in cluster-wide order.
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _stop = worker(servers[1].addr, "p", 1, tx);
    let mut order = Vec::new();
    while order.len() < 12 {
        let payload = tokio::time::timeout(TIMEOUT, rx.recv())
            .await
            .expect("a job within the timeout")
            .unwrap();
        order.push(payload);
    }
    let expected: Vec<String> = ["high", "normal", "low"]
        .iter()
        .flat_map(|p| (0..4).map(move |n| format!("{p}-{n}")))
        .collect();
    assert_eq!(order, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_unique_id_coalesces_across_members() {
    let Some(pg) = PgServer::start("a_unique_id_coalesces_across_members") else {
        return;
    };
    let servers = members(&pg, 3);
    let clients = clients_of(&servers);
    let mut handles = Vec::new();
    for c in &clients {
        let h = c
            .job("u", "payload")
            .unique("order-17")
            .background()
            .await
            .unwrap();
        handles.push(h);
    }
    assert!(
        handles.iter().all(|h| *h == handles[0]),
        "one job, one handle: {handles:?}"
    );
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _stop = worker(servers[2].addr, "u", 1, tx);
    let mut counts = BTreeMap::new();
    collect_until(&mut rx, &mut counts, |c| c.contains_key("payload")).await;
    settle(&clients[0], "u", &mut rx, &mut counts).await;
    assert_eq!(counts.get("payload"), Some(&1), "{counts:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_member_killed_under_load_loses_no_acknowledged_job() {
    let Some(pg) = PgServer::start("a_member_killed_under_load_loses_no_acknowledged_job") else {
        return;
    };
    let mut servers = members(&pg, 3);
    // s1's worker takes jobs and never finishes them: they die with s1.
    let stuck = stuck_worker(servers[0].addr, "k", 2);
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _w2 = worker(servers[1].addr, "k", 4, tx.clone());
    let _w3 = worker(servers[2].addr, "k", 4, tx);
    // The client knows s1 and s2 and fails over when s1 goes.
    let list = format!("{},{}", servers[0].addr, servers[1].addr);
    let client = Client::new(&list).unwrap();
    let mut acknowledged = Vec::new();
    let mut killed_at = None;
    for n in 0..300 {
        let payload = format!("job-{n}");
        // A submit cut off by the kill is not acknowledged: it is sent again.
        for attempt in 0.. {
            match client
                .job("k", payload.clone())
                .unique(&payload)
                .background()
                .await
            {
                Ok(_) => break,
                Err(e) if attempt < 50 => {
                    assert!(killed_at.is_some(), "a submit failed before the kill: {e}");
                }
                Err(e) => panic!("no member took {payload}: {e}"),
            }
        }
        acknowledged.push(payload);
        if n == 100 {
            // s1 holds the jobs its stuck worker took: those must be taken over.
            let held = || {
                pg.query("SELECT count(*) FROM gearbox_jobs WHERE owner = 's1'")
                    .first()
                    .is_some_and(|n| n.parse::<u32>().unwrap_or(0) >= 2)
            };
            assert!(support::wait_until(TIMEOUT, held), "s1 holds two jobs");
            servers[0].signal(libc::SIGKILL);
            killed_at = Some(Instant::now());
        }
    }
    let killed_at = killed_at.unwrap();
    let mut counts = BTreeMap::new();
    collect_until(&mut rx, &mut counts, |c| {
        acknowledged.iter().all(|p| c.contains_key(p))
    })
    .await;
    let took = killed_at.elapsed();
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|p| !counts.contains_key(*p))
        .collect();
    assert!(lost.is_empty(), "lost: {lost:?}");
    let bound = Duration::from_millis(DEAD_AFTER_MS + HEARTBEAT_MS + POLL_MS);
    println!(
        "all {} acknowledged jobs ran; the last {:?} after the kill (takeover bound {bound:?})",
        acknowledged.len(),
        took
    );
    assert!(
        took < bound + Duration::from_secs(5),
        "takeover took {took:?}, bound {bound:?}"
    );
    stuck.abort();
    let _ = servers.remove(0).wait_exit();
}

/// A worker on `addr` for `function` that streams two data chunks, a warning and progress,
/// then returns the payload reversed; fails a job whose payload is `fail`.
fn streaming_worker(addr: SocketAddr, function: &str) -> oneshot::Sender<()> {
    let (stop, stopped) = oneshot::channel::<()>();
    let w = Worker::builder()
        .servers(&addr.to_string())
        .concurrency(2)
        .register(function, |job: Job| async move {
            if job.payload().as_ref() == b"fail" {
                return Err(JobError::Fail);
            }
            job.send_data("chunk-1").await?;
            job.send_status(1, 2).await?;
            job.send_warning("careful").await?;
            job.send_data("chunk-2").await?;
            job.send_status(2, 2).await?;
            Ok::<_, JobError>(job.payload().iter().rev().copied().collect::<Vec<u8>>())
        })
        .build()
        .unwrap();
    tokio::spawn(w.run(async move {
        let _ = stopped.await;
    }));
    stop
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_foreground_client_gets_every_work_packet_from_a_worker_on_another_member() {
    let Some(pg) = PgServer::start(
        "a_foreground_client_gets_every_work_packet_from_a_worker_on_another_member",
    ) else {
        return;
    };
    let servers = members(&pg, 3);
    // The worker is on s3 only; the clients are on s1 and s2.
    let _stop = streaming_worker(servers[2].addr, "stream");
    for s in [0, 1] {
        let client = Client::new(&servers[s].addr.to_string()).unwrap();
        for n in 0..5 {
            let payload = format!("s{}-job-{n}", s + 1);
            let mut task = client.job("stream", payload.clone()).start().await.unwrap();
            let mut events = Vec::new();
            loop {
                let event = tokio::time::timeout(TIMEOUT, task.next_event())
                    .await
                    .expect("an event within the timeout")
                    .expect("events until the final one")
                    .unwrap();
                let last = event.is_final();
                if !matches!(event, gearbox_client::client::TaskEvent::Created { .. }) {
                    events.push(event);
                }
                if last {
                    break;
                }
            }
            use gearbox_client::client::TaskEvent as E;
            let reversed: Vec<u8> = payload.bytes().rev().collect();
            assert_eq!(
                events,
                [
                    E::Data("chunk-1".into()),
                    E::Status {
                        numerator: 1,
                        denominator: 2
                    },
                    E::Warning("careful".into()),
                    E::Data("chunk-2".into()),
                    E::Status {
                        numerator: 2,
                        denominator: 2
                    },
                    E::Complete(reversed.into()),
                ]
            );
        }
        // A failure crosses members too.
        let failed = client.job("stream", "fail").run().await;
        assert!(failed.is_err(), "{failed:?}");
    }
    // Many at once, from both members.
    let mut set = tokio::task::JoinSet::new();
    for n in 0..40 {
        let addr = servers[n % 2].addr;
        set.spawn(async move {
            let client = Client::new(&addr.to_string()).unwrap();
            let payload = format!("many-{n}");
            let out = client.job("stream", payload.clone()).run().await.unwrap();
            assert_eq!(out.to_vec(), payload.bytes().rev().collect::<Vec<u8>>());
        });
    }
    while let Some(r) = tokio::time::timeout(TIMEOUT, set.join_next())
        .await
        .unwrap()
    {
        r.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn postgresql_restarted_under_load_loses_nothing_acknowledged() {
    let Some(pg) = PgServer::start("postgresql_restarted_under_load_loses_nothing_acknowledged")
    else {
        return;
    };
    // Long enough for every member to reconnect after the outage: none is taken for dead.
    let servers: Vec<Gearboxd> = (1..=3)
        .map(|i| member_with(&pg, &format!("s{i}"), 8000, 0, &[]))
        .collect();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _w2 = worker(servers[1].addr, "r", 4, tx.clone());
    let _w3 = worker(servers[2].addr, "r", 4, tx);
    let clients = clients_of(&servers);
    let mut acknowledged = Vec::new();
    let mut refused = 0;
    let mut restarted = false;
    let mut n = 0;
    // Until PostgreSQL is back and 100 more jobs were taken.
    while !(restarted && acknowledged.len() >= 250) {
        let payload = format!("job-{n}");
        match clients[n % 3].job("r", payload.clone()).background().await {
            Ok(_) => acknowledged.push(payload),
            Err(_) => {
                // Not acknowledged: refused while the database is away.
                assert!(acknowledged.len() >= 150, "refused before the outage");
                refused += 1;
            }
        }
        n += 1;
        if acknowledged.len() == 150 && !restarted {
            pg.stop();
            // A submit now fails: nothing can be committed.
            let e = clients[0].job("r", "during").background().await;
            assert!(e.is_err(), "acknowledged while PostgreSQL is down: {e:?}");
            refused += 1;
            // Every member notices (its heartbeat fails), says so once, and counts it.
            for s in &servers {
                let log = s.wait_for_stderr(|l| l.contains("cluster heartbeat failed"));
                assert!(log.contains("unreachable"), "{log}");
                assert_eq!(metric(s, "gearbox_cluster_unavailable"), 1);
            }
            pg.start_again();
            restarted = true;
        }
    }
    let mut counts = BTreeMap::new();
    collect_until(&mut rx, &mut counts, |c| {
        acknowledged.iter().all(|p| c.contains_key(p))
    })
    .await;
    println!(
        "{} acknowledged jobs ran; {refused} submits refused during the outage",
        acknowledged.len()
    );
    for s in &servers {
        s.wait_for_stderr(|l| l.contains("reachable again"));
        assert_eq!(metric(s, "gearbox_cluster_outages_total"), 1);
        assert_eq!(metric(s, "gearbox_cluster_unavailable"), 0);
        assert_eq!(metric(s, "gearbox_cluster_declared_dead_total"), 0);
        let text = s.stderr_text();
        assert_eq!(
            text.matches("cluster heartbeat failed").count(),
            1,
            "one line per outage: {text}"
        );
    }
}

/// The value of an unlabelled metric of `server`.
fn metric(server: &Gearboxd, name: &str) -> u64 {
    let text = server.connect().admin_listing("metrics");
    text.iter()
        .find_map(|l| l.strip_prefix(&format!("{name} ")))
        .unwrap_or_else(|| panic!("no {name} in {text:?}"))
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn members_join_and_leave_and_a_rolling_restart_loses_nothing() {
    let Some(pg) = PgServer::start("members_join_and_leave_and_a_rolling_restart_loses_nothing")
    else {
        return;
    };
    let mut servers = members(&pg, 3);
    let list = servers
        .iter()
        .map(|s| s.addr.to_string())
        .collect::<Vec<_>>()
        .join(",");
    let (tx, mut rx) = mpsc::unbounded_channel();
    // One worker connected to every member (it reconnects as they restart).
    let w = Worker::builder()
        .servers(&list)
        .concurrency(4)
        .reconnect_backoff(Duration::from_millis(20), Duration::from_millis(200))
        .register("roll", {
            let tx = tx.clone();
            move |job: Job| {
                let tx = tx.clone();
                async move {
                    let _ = tx.send(job.payload_str().unwrap_or("?").to_owned());
                    Ok::<_, JobError>(Vec::<u8>::new())
                }
            }
        })
        .build()
        .unwrap();
    tokio::spawn(w.run(std::future::pending::<()>()));
    // A member joins at run time, with the only worker of another function.
    let s4 = member(&pg, "s4");
    let (tx4, mut rx4) = mpsc::unbounded_channel();
    let _w4 = worker(s4.addr, "only4", 1, tx4);
    let _w4roll = worker(s4.addr, "roll", 2, tx);
    let client = Client::new(&list).unwrap();
    let mut acknowledged = Vec::new();
    let mut n = 0;
    submit_some(&client, 50, &mut acknowledged, &mut n).await;
    // Each member in turn: stopped (now, or gracefully with SIGUSR1) and started again on
    // its port, while jobs keep coming.
    for (i, sig) in [(0, libc::SIGTERM), (1, libc::SIGUSR1), (2, libc::SIGTERM)] {
        let port = servers[i].addr.port();
        servers[i].stop_with(sig);
        submit_some(&client, 30, &mut acknowledged, &mut n).await;
        servers[i] = member_with(&pg, &format!("s{}", i + 1), DEAD_AFTER_MS, port, &[]);
        submit_some(&client, 30, &mut acknowledged, &mut n).await;
    }
    let mut counts = BTreeMap::new();
    collect_until(&mut rx, &mut counts, |c| {
        acknowledged.iter().all(|p| c.contains_key(p))
    })
    .await;
    println!(
        "{} acknowledged jobs ran through a rolling restart",
        acknowledged.len()
    );
    // Jobs submitted to the first three reach the member that joined.
    for k in 0..5 {
        client
            .job("only4", format!("j{k}"))
            .background()
            .await
            .unwrap();
    }
    let mut counts4 = BTreeMap::new();
    collect_until(&mut rx4, &mut counts4, |c| c.len() == 5).await;
    assert_eq!(
        pg.query("SELECT count(*) FROM gearbox_jobs_members")[0],
        "4",
        "every member is back, and the one that joined"
    );
}

/// Submits `count` background jobs (`job-N`), each sent again until a member acknowledges
/// it (the one it went to may be restarting); the acknowledged payloads go to `acknowledged`.
async fn submit_some(client: &Client, count: usize, acknowledged: &mut Vec<String>, n: &mut usize) {
    for _ in 0..count {
        let payload = format!("job-{n}");
        *n += 1;
        for attempt in 0..100 {
            match client.job("roll", payload.clone()).background().await {
                Ok(_) => {
                    acknowledged.push(payload);
                    break;
                }
                Err(e) if attempt == 99 => panic!("no member took {payload}: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(20)).await,
            }
        }
    }
}

#[test]
fn an_id_in_use_is_refused_and_a_crashed_member_restarts_at_once() {
    let Some(pg) = PgServer::start("an_id_in_use_is_refused_and_a_crashed_member_restarts_at_once")
    else {
        return;
    };
    let mut first = member(&pg, "s1");
    let args = support::cluster::args(&pg, "s1", DEAD_AFTER_MS, 0, &[]);
    // Without `-p 0 -L 127.0.0.1`, which start_fails adds, and `--verbose INFO`.
    let args: Vec<&str> = args[4..args.len() - 2].iter().map(String::as_str).collect();
    let err = support::start_fails(&args);
    assert!(
        err.contains("another gearboxd with cluster id s1 is alive"),
        "{err}"
    );
    // Killed: its session ends with it, so the same id starts again at once, well within
    // the dead-after bound of its last heartbeat.
    first.signal(libc::SIGKILL);
    first.wait_exit();
    let _again = member(&pg, "s1");
}

/// A client connected to each of `servers`, in order.
fn clients_of(servers: &[Gearboxd]) -> Vec<Client> {
    servers
        .iter()
        .map(|s| Client::new(&s.addr.to_string()).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_foreground_job_whose_workers_member_dies_runs_again_elsewhere() {
    let Some(pg) =
        PgServer::start("a_foreground_job_whose_workers_member_dies_runs_again_elsewhere")
    else {
        return;
    };
    let mut servers = members(&pg, 3);
    // The only worker at first is on s2, and it never finishes.
    let stuck = stuck_worker(servers[1].addr, "fg", 1);
    let client = Client::new(&servers[0].addr.to_string()).unwrap();
    let task = client.job("fg", "survivor").start().await.unwrap();
    // The job crossed the bridge: s1 shows it running (on the bridge's worker connection).
    let running = || {
        servers[0]
            .connect()
            .admin_listing("status")
            .iter()
            .any(|l| l.starts_with("fg\t1\t1\t"))
    };
    assert!(
        support::wait_until(TIMEOUT, running),
        "running across members"
    );
    // s2 dies with the job; a worker on s3 gets it from s1's queue and the client its result.
    servers[1].signal(libc::SIGKILL);
    let _ = servers[1].wait_exit();
    stuck.abort();
    let (tx, mut rx) = mpsc::unbounded_channel();
    let _w3 = worker(servers[2].addr, "fg", 1, tx);
    let result = tokio::time::timeout(TIMEOUT, task.wait())
        .await
        .expect("a result within the timeout")
        .unwrap();
    assert!(result.is_empty(), "{result:?}");
    assert_eq!(rx.recv().await.as_deref(), Some("survivor"));
}
