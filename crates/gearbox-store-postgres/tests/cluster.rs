//! PostgresClusterStore against a real PostgreSQL: several members with their own ids on one
//! table, claiming, releasing, coalescing unique ids and taking over the jobs of the dead.
//! Each test skips (printing SKIPPED) when PostgreSQL is not installed.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use gearbox_proto::Priority;
use gearbox_store::cluster::{ClusterMember, ClusterStore, Coalesced, MemberStatus, Want};
use gearbox_store::{Batch, Durability, Store, StoreError, StoredJob};
use gearbox_store_postgres::{PostgresClusterStore, PostgresStore, DEFAULT_TABLE};
use gearbox_testkit::servers::postgres::PgServer;
use gearbox_testkit::Poller;

/// The dead-after bound of the takeover tests: short, so that they do not wait long.
const SHORT: Duration = Duration::from_millis(300);

/// A bound no test waits for.
const LONG: Duration = Duration::from_secs(3600);

fn member(id: &str, dead_after: Duration) -> ClusterMember {
    ClusterMember {
        id: id.into(),
        address: format!("{id}.example:4730"),
        heartbeat: dead_after / 3,
        dead_after,
    }
}

async fn try_open(
    pg: &PgServer,
    id: &str,
    dead_after: Duration,
) -> Result<PostgresClusterStore, StoreError> {
    PostgresClusterStore::connect_with_password(
        &pg.conninfo(),
        None,
        DEFAULT_TABLE,
        Durability::Fsync,
        member(id, dead_after),
    )
    .await
}

async fn open(pg: &PgServer, id: &str) -> PostgresClusterStore {
    try_open(pg, id, LONG).await.unwrap()
}

fn job(handle: &str, function: &str, priority: Priority) -> StoredJob {
    StoredJob {
        priority,
        ..StoredJob::new(handle.to_owned(), function.to_owned(), "data")
    }
}

fn unique(handle: &str, function: &str, unique: &str) -> StoredJob {
    StoredJob {
        unique: Bytes::from(unique.to_owned()),
        ..job(handle, function, Priority::Normal)
    }
}

fn want(function: &str, count: u32) -> Want {
    Want {
        function: Bytes::from(function.to_owned()),
        count,
    }
}

fn batch(jobs: Vec<StoredJob>) -> Batch {
    Batch {
        persist: jobs,
        complete: Vec::new(),
    }
}

fn handles(jobs: &[StoredJob]) -> Vec<String> {
    jobs.iter()
        .map(|j| String::from_utf8(j.handle.to_vec()).unwrap())
        .collect()
}

fn bytes(handles: &[&str]) -> Vec<Bytes> {
    handles.iter().map(|h| Bytes::from(h.to_string())).collect()
}

#[tokio::test]
async fn owned_jobs_are_claimed_only_once_released() {
    let Some(pg) = PgServer::start("owned_jobs_are_claimed_only_once_released") else {
        return;
    };
    let (a, b) = (open(&pg, "a").await, open(&pg, "b").await);
    let jobs = vec![
        job("H:a:1", "f", Priority::Normal),
        job("H:a:2", "f", Priority::Normal),
        job("H:a:3", "f", Priority::Normal),
    ];
    assert_eq!(a.commit_cluster(batch(jobs)).await.unwrap(), vec![]);
    assert!(b.claim(vec![want("f", 10)], 10).await.unwrap().is_empty());
    assert!(
        a.load().await.unwrap().is_empty(),
        "a member does not replay"
    );
    a.release(bytes(&["H:a:1", "H:a:3"])).await.unwrap();
    // Releasing another member's job changes nothing.
    b.release(bytes(&["H:a:2"])).await.unwrap();
    let got = b.claim(vec![want("f", 10)], 0).await.unwrap();
    assert_eq!(handles(&got), ["H:a:1", "H:a:3"]);
    assert_eq!(got[0].data, Bytes::from_static(b"data"));
    assert!(a.claim(vec![want("f", 10)], 10).await.unwrap().is_empty());
    let view = a.view().await.unwrap();
    let jobs: Vec<(String, u64)> = view
        .members
        .iter()
        .map(|m| (m.id.clone(), m.jobs))
        .collect();
    assert_eq!(jobs, [("a".to_owned(), 1), ("b".to_owned(), 2)]);
    assert_eq!(view.members[0].address, "a.example:4730");
    assert_eq!(view.free, 0);
    // A removal deletes whoever holds the row.
    a.commit_cluster(Batch::complete("H:a:1")).await.unwrap();
    assert_eq!(b.view().await.unwrap().members[1].jobs, 1);
    let stats = a.stats();
    assert_eq!(
        (stats.transactions, stats.jobs_persisted, stats.jobs_removed),
        (2, 3, 1)
    );
    assert_eq!((stats.failed_transactions, stats.connects), (0, 1));
}

#[tokio::test]
async fn claim_takes_priority_then_fifo_per_function() {
    let Some(pg) = PgServer::start("claim_takes_priority_then_fifo_per_function") else {
        return;
    };
    let (a, b) = (open(&pg, "a").await, open(&pg, "b").await);
    let jobs = vec![
        job("low1", "f", Priority::Low),
        job("normal1", "f", Priority::Normal),
        job("high1", "f", Priority::High),
        job("g1", "g", Priority::Low),
        job("normal2", "f", Priority::Normal),
        job("high2", "f", Priority::High),
        job("g2", "g", Priority::High),
        job("h1", "h", Priority::High),
    ];
    let all: Vec<Bytes> = jobs.iter().map(|j| j.handle.clone()).collect();
    a.commit_cluster(batch(jobs)).await.unwrap();
    a.release(all).await.unwrap();
    let view = a.view().await.unwrap();
    assert_eq!(view.free, 8);
    assert_eq!(
        view.free_by_function,
        [
            (Bytes::from_static(b"f"), 5),
            (Bytes::from_static(b"g"), 2),
            (Bytes::from_static(b"h"), 1)
        ]
    );
    let got = b
        .claim(vec![want("f", 2), want("g", 1), want("f", 1)], 0)
        .await
        .unwrap();
    // Highest priority first, then the order of submission; h was not wanted.
    assert_eq!(handles(&got), ["high1", "high2", "g2", "normal1"]);
    let got = b.claim(vec![want("f", 10), want("g", 0)], 0).await.unwrap();
    assert_eq!(handles(&got), ["normal2", "low1"]);
    assert_eq!(b.view().await.unwrap().free, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn concurrent_claimers_never_take_the_same_job() {
    let Some(pg) = PgServer::start("concurrent_claimers_never_take_the_same_job") else {
        return;
    };
    let a = open(&pg, "a").await;
    let jobs: Vec<StoredJob> = (0..200)
        .map(|i| job(&format!("H:{i}"), "f", Priority::ALL[i % 3]))
        .collect();
    let all: HashSet<Bytes> = jobs.iter().map(|j| j.handle.clone()).collect();
    a.commit_cluster(batch(jobs)).await.unwrap();
    a.release(all.iter().cloned().collect()).await.unwrap();
    let claimers: Vec<Arc<PostgresClusterStore>> = vec![
        Arc::new(open(&pg, "b").await),
        Arc::new(open(&pg, "c").await),
    ];
    let tasks: Vec<_> = claimers
        .iter()
        .map(|store| {
            let store = store.clone();
            tokio::spawn(async move {
                let mut mine = Vec::new();
                loop {
                    let got = store.claim(vec![want("f", 7)], 0).await.unwrap();
                    if got.is_empty() {
                        return mine;
                    }
                    mine.extend(got.into_iter().map(|j| j.handle));
                }
            })
        })
        .collect();
    let mut seen = HashSet::new();
    for task in tasks {
        for handle in task.await.unwrap() {
            assert!(seen.insert(handle.clone()), "{handle:?} claimed twice");
        }
    }
    assert_eq!(seen, all);
}

#[tokio::test]
async fn unique_ids_coalesce_across_members() {
    let Some(pg) = PgServer::start("unique_ids_coalesce_across_members") else {
        return;
    };
    let (a, b) = (open(&pg, "a").await, open(&pg, "b").await);
    let mine = batch(vec![
        unique("H:a:1", "f", "u1"),
        job("H:a:2", "f", Priority::Low),
    ]);
    assert_eq!(a.commit_cluster(mine.clone()).await.unwrap(), vec![]);
    // The same batch again (a retry) is our own row, not a coalesced job.
    assert_eq!(a.commit_cluster(mine).await.unwrap(), vec![]);
    let theirs = batch(vec![
        unique("H:b:1", "f", "u1"),
        unique("H:b:2", "g", "u1"),
        unique("H:b:3", "f", "u2"),
        unique("H:b:4", "f", "u2"),
    ]);
    let coalesced = b.commit_cluster(theirs).await.unwrap();
    assert_eq!(
        coalesced,
        [
            Coalesced {
                handle: Bytes::from_static(b"H:b:1"),
                existing: Bytes::from_static(b"H:a:1"),
            },
            Coalesced {
                handle: Bytes::from_static(b"H:b:4"),
                existing: Bytes::from_static(b"H:b:3"),
            },
        ]
    );
    let view = a.view().await.unwrap();
    let jobs: Vec<u64> = view.members.iter().map(|m| m.jobs).collect();
    assert_eq!(jobs, [2, 2]);
    // Once the job ends its unique id is free again.
    a.commit_cluster(Batch::complete("H:a:1")).await.unwrap();
    let again = b
        .commit_cluster(batch(vec![unique("H:b:5", "f", "u1")]))
        .await
        .unwrap();
    assert_eq!(again, vec![]);
    // A re-armed job of ours keeps its row and gets the new fields.
    let mut rearmed = unique("H:b:5", "f", "u1");
    rearmed.when_to_run = 4_000_000_000;
    assert_eq!(
        b.commit_cluster(batch(vec![rearmed])).await.unwrap(),
        vec![]
    );
    b.release(bytes(&["H:b:5"])).await.unwrap();
    let got = a.claim(vec![], 10).await.unwrap();
    assert_eq!(handles(&got), ["H:b:5"]);
    assert_eq!(got[0].when_to_run, 4_000_000_000);
}

#[tokio::test]
async fn timed_jobs_are_claimed_only_as_timed() {
    let Some(pg) = PgServer::start("timed_jobs_are_claimed_only_as_timed") else {
        return;
    };
    let (a, b) = (open(&pg, "a").await, open(&pg, "b").await);
    let mut later = job("later", "f", Priority::High);
    later.when_to_run = 4_000_000_000;
    let mut sched = job("sched", "g", Priority::High);
    sched.schedule = Some("*/5 * * * *".into());
    let mut past = job("past", "f", Priority::Low);
    past.when_to_run = 1_000;
    let now = job("now", "f", Priority::Normal);
    a.commit_cluster(batch(vec![later, sched, past, now]))
        .await
        .unwrap();
    a.release(bytes(&["later", "sched", "past", "now"]))
        .await
        .unwrap();
    let got = b
        .claim(vec![want("f", 10), want("g", 10)], 0)
        .await
        .unwrap();
    assert_eq!(handles(&got), ["now", "past"]);
    let got = b.claim(vec![], 1).await.unwrap();
    assert_eq!(got.len(), 1);
    let got2 = b.claim(vec![want("f", 1)], 5).await.unwrap();
    let mut both = handles(&got);
    both.extend(handles(&got2));
    both.sort();
    assert_eq!(both, ["later", "sched"]);
    let sched = got
        .iter()
        .chain(&got2)
        .find(|j| j.handle == "sched")
        .unwrap();
    assert_eq!(sched.schedule.as_deref(), Some("*/5 * * * *"));
}

#[tokio::test]
async fn a_dead_members_jobs_are_taken_over() {
    let Some(pg) = PgServer::start("a_dead_members_jobs_are_taken_over") else {
        return;
    };
    let a = try_open(&pg, "a", SHORT).await.unwrap();
    let b = try_open(&pg, "b", SHORT).await.unwrap();
    a.commit_cluster(batch(vec![
        job("H:a:1", "f", Priority::Normal),
        job("H:a:2", "f", Priority::Normal),
    ]))
    .await
    .unwrap();
    let beat = a.heartbeat(MemberStatus::default()).await.unwrap();
    assert!(!beat.was_dead && beat.dead.is_empty() && beat.freed == 0);
    assert!(b.claim(vec![want("f", 10)], 0).await.unwrap().is_empty());
    // a stops beating; b keeps beating until it finds a dead.
    let mut poll = Poller::new("b to declare a dead");
    let beat = loop {
        let beat = b.heartbeat(MemberStatus::default()).await.unwrap();
        assert!(!beat.was_dead);
        if !beat.dead.is_empty() {
            break beat;
        }
        poll.again().await;
    };
    assert_eq!(beat.dead, ["a"]);
    assert_eq!(beat.freed, 2);
    let got = b.claim(vec![want("f", 10)], 0).await.unwrap();
    assert_eq!(handles(&got), ["H:a:1", "H:a:2"]);
    let view = b.view().await.unwrap();
    assert_eq!(view.members.len(), 1);
    assert_eq!(view.members[0].id, "b");
    // a comes back: told it had been dead, and a member again.
    let beat = a.heartbeat(MemberStatus::default()).await.unwrap();
    assert!(beat.was_dead);
    assert!(!a.heartbeat(MemberStatus::default()).await.unwrap().was_dead);
    assert_eq!(b.view().await.unwrap().members.len(), 2);
}

#[tokio::test]
async fn a_live_id_is_refused_and_a_previous_life_is_freed() {
    let Some(pg) = PgServer::start("a_live_id_is_refused_and_a_previous_life_is_freed") else {
        return;
    };
    let a = open(&pg, "a").await;
    a.commit_cluster(batch(vec![job("H:a:1", "f", Priority::Normal)]))
        .await
        .unwrap();
    let err = try_open(&pg, "a", LONG).await.unwrap_err().to_string();
    assert!(
        err.contains("another gearboxd with cluster id a is alive") && err.contains("--cluster-id"),
        "{err}"
    );
    // a crashes (no leave); its heartbeat grows old.
    a.close().await;
    drop(a);
    pg.query("UPDATE gearbox_jobs_members SET heartbeat = now() - interval '2 hours'");
    let b = open(&pg, "b").await;
    assert!(b.claim(vec![want("f", 1)], 0).await.unwrap().is_empty());
    let wake = b.wake();
    let a = open(&pg, "a").await;
    tokio::time::timeout(Duration::from_secs(10), wake.notified())
        .await
        .expect("b woken when a's previous life's jobs were freed");
    let got = b.claim(vec![want("f", 1)], 0).await.unwrap();
    assert_eq!(handles(&got), ["H:a:1"]);
    assert_eq!(a.view().await.unwrap().members.len(), 2);
}

#[tokio::test]
async fn a_release_wakes_the_other_members() {
    let Some(pg) = PgServer::start("a_release_wakes_the_other_members") else {
        return;
    };
    let (a, b) = (open(&pg, "a").await, open(&pg, "b").await);
    let wake = b.wake();
    let waiter = tokio::spawn(async move {
        tokio::time::timeout(Duration::from_secs(10), wake.notified()).await
    });
    a.commit_cluster(batch(vec![job("H:a:1", "f", Priority::Normal)]))
        .await
        .unwrap();
    let own = a.wake();
    a.release(bytes(&["H:a:1"])).await.unwrap();
    waiter.await.unwrap().expect("b woken by a's release");
    // PostgreSQL hands a session its own notifications before the commit's answer, so by
    // now a's connection has seen its own and skipped it.
    assert!(
        tokio::time::timeout(Duration::ZERO, own.notified())
            .await
            .is_err(),
        "a woken by its own release"
    );
    assert_eq!(b.claim(vec![want("f", 1)], 0).await.unwrap().len(), 1);
}

#[tokio::test]
async fn leaving_frees_the_jobs_and_the_id() {
    let Some(pg) = PgServer::start("leaving_frees_the_jobs_and_the_id") else {
        return;
    };
    let (a, b) = (open(&pg, "a").await, open(&pg, "b").await);
    a.commit_cluster(batch(vec![
        job("H:a:1", "f", Priority::Normal),
        job("H:a:2", "g", Priority::Normal),
    ]))
    .await
    .unwrap();
    a.leave().await.unwrap();
    let view = b.view().await.unwrap();
    assert_eq!(view.members.len(), 1);
    assert_eq!(view.free, 2);
    let got = b.claim(vec![want("f", 5), want("g", 5)], 0).await.unwrap();
    assert_eq!(handles(&got), ["H:a:1", "H:a:2"]);
    a.close().await;
    // The id is free at once.
    open(&pg, "a").await;
}

#[tokio::test]
async fn the_single_server_store_shares_a_cluster_table() {
    let Some(pg) = PgServer::start("the_single_server_store_shares_a_cluster_table") else {
        return;
    };
    let a = open(&pg, "a").await;
    let single = PostgresStore::connect(&pg.conninfo(), DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap();
    single
        .commit(batch(vec![job("H:s:1", "f", Priority::Normal)]))
        .await
        .unwrap();
    assert_eq!(handles(&single.load().await.unwrap()), ["H:s:1"]);
    // Written without an owner: free for the members.
    let got = a.claim(vec![want("f", 5)], 0).await.unwrap();
    assert_eq!(handles(&got), ["H:s:1"]);
    single.commit(Batch::complete("H:s:1")).await.unwrap();
    assert!(single.load().await.unwrap().is_empty());
    assert!(Arc::new(single).as_cluster().is_none());
    assert!(Arc::new(a).as_cluster().is_some());
}

#[tokio::test]
async fn duplicate_unique_ids_keep_a_table_out_of_cluster_mode() {
    let Some(pg) = PgServer::start("duplicate_unique_ids_keep_a_table_out_of_cluster_mode") else {
        return;
    };
    let single = PostgresStore::connect(&pg.conninfo(), DEFAULT_TABLE, Durability::Fsync)
        .await
        .unwrap();
    single
        .commit(batch(vec![
            unique("H:1", "f", "u"),
            unique("H:2", "f", "u"),
        ]))
        .await
        .unwrap();
    let err = try_open(&pg, "a", LONG).await.unwrap_err().to_string();
    assert!(err.contains("same function and unique id"), "{err}");
    single.commit(Batch::complete("H:2")).await.unwrap();
    let a = open(&pg, "a").await;
    let got = a.claim(vec![want("f", 5)], 0).await.unwrap();
    assert_eq!(handles(&got), ["H:1"]);
}

#[tokio::test]
async fn requests_fail_while_the_database_is_down_and_work_again_after() {
    let Some(pg) = PgServer::start("requests_fail_while_the_database_is_down_and_work_again_after")
    else {
        return;
    };
    let (a, b) = (open(&pg, "a").await, open(&pg, "b").await);
    a.commit_cluster(batch(vec![job("H:a:1", "f", Priority::Normal)]))
        .await
        .unwrap();
    pg.stop();
    let err = a.claim(vec![want("f", 1)], 0).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    let err = b.heartbeat(MemberStatus::default()).await.unwrap_err();
    assert!(matches!(err, StoreError::Unavailable { .. }), "{err}");
    pg.start_again();
    let mut poll = Poller::new("the members to reconnect");
    for store in [&a, &b] {
        while store.heartbeat(MemberStatus::default()).await.is_err() {
            poll.again().await;
        }
    }
    // Both listen again: a release still wakes the other member.
    let wake = b.wake();
    a.release(bytes(&["H:a:1"])).await.unwrap();
    tokio::time::timeout(Duration::from_secs(10), wake.notified())
        .await
        .expect("b woken after reconnecting");
    assert_eq!(b.claim(vec![want("f", 1)], 0).await.unwrap().len(), 1);
}
