//! The load a cluster member publishes with its heartbeat ([`MemberStatus`]) round-trips
//! through the members table to every member's view, and the status column is added to a
//! members table made before it. Skips (printing SKIPPED) when PostgreSQL is not installed.

use std::time::Duration;

use bytes::Bytes;
use gearbox_store::cluster::{ClusterMember, ClusterStore, FunctionLoad, MemberStatus};
use gearbox_store::{Durability, Store};
use gearbox_store_postgres::{PostgresClusterStore, DEFAULT_TABLE};
use gearbox_testkit::servers::postgres::PgServer;

async fn open(pg: &PgServer, id: &str) -> PostgresClusterStore {
    let member = ClusterMember {
        id: id.into(),
        address: format!("{id}.example:4730"),
        heartbeat: Duration::from_secs(1200),
        dead_after: Duration::from_secs(3600),
    };
    PostgresClusterStore::connect_with_password(
        &pg.conninfo(),
        None,
        DEFAULT_TABLE,
        Durability::Fsync,
        member,
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn published_load_round_trips_through_heartbeat_and_view() {
    let Some(pg) = PgServer::start("published_load_round_trips_through_heartbeat_and_view") else {
        return;
    };
    let (a, b) = (open(&pg, "a").await, open(&pg, "b").await);
    // Before any heartbeat a member has no published load.
    let view = b.view().await.unwrap();
    assert!(view
        .members
        .iter()
        .all(|m| m.status == MemberStatus::default()));
    let status = MemberStatus {
        connections: 5,
        workers: 2,
        functions: vec![
            FunctionLoad {
                function: Bytes::from_static(b"f\t\xff"),
                queued: 3,
                running: 1,
                workers: 2,
            },
            FunctionLoad {
                function: Bytes::from_static(b"g"),
                queued: 0,
                running: 0,
                workers: 1,
            },
        ],
    };
    a.heartbeat(status.clone()).await.unwrap();
    let view = b.view().await.unwrap();
    let got = view.members.iter().find(|m| m.id == "a").unwrap();
    assert_eq!(got.status, status);
    // The next heartbeat replaces it.
    a.heartbeat(MemberStatus::default()).await.unwrap();
    let view = b.view().await.unwrap();
    let got = view.members.iter().find(|m| m.id == "a").unwrap();
    assert_eq!(got.status, MemberStatus::default());
    // A members table made before the status column gets it when a member connects.
    a.leave().await.unwrap();
    b.leave().await.unwrap();
    a.close().await;
    b.close().await;
    pg.query("ALTER TABLE gearbox_jobs_members DROP COLUMN status");
    let c = open(&pg, "c").await;
    c.heartbeat(status.clone()).await.unwrap();
    assert_eq!(c.view().await.unwrap().members[0].status, status);
}
