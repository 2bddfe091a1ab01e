//! `cluster_status` over several servers (gearbox, gearmand and a dead address), and the
//! blocking facade.

mod admin_support;

use admin_support::{server_addr, submit_bg, Server};
use gearbox_client::admin::{cluster_status, FunctionStatus};
use gearbox_client::{blocking, Error, ServerAddr};
use gearbox_proto::Priority;

fn dead_addr() -> ServerAddr {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    ServerAddr::new("127.0.0.1", l.local_addr().unwrap().port())
}

#[tokio::test]
async fn every_server_answers_or_has_its_error() {
    let servers = Server::both().await;
    let mut list = Vec::new();
    for (i, s) in servers.iter().enumerate() {
        let mut c = s.connect().await;
        for _ in 0..=i {
            submit_bg(&mut c, "spread", "", Priority::Normal).await;
        }
        list.push(server_addr(s));
    }
    let dead = dead_addr();
    list.push(dead.clone());
    list.push(list[0].clone()); // duplicates collapse
    let all = cluster_status(&list).await;
    assert_eq!(all.len(), servers.len() + 1);
    for (i, s) in servers.iter().enumerate() {
        let st = all[&server_addr(s)].as_ref().expect("status");
        let want = FunctionStatus {
            function: "spread".into(),
            total: i as u64 + 1,
            running: 0,
            workers: 0,
        };
        assert_eq!(st, &vec![want], "{}", s.name());
    }
    assert!(matches!(all[&dead], Err(Error::Unreachable { .. })));
}

/// The blocking admin from a plain thread, the servers on a runtime of their own.
#[test]
fn blocking_admin_and_cluster_status() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let servers = rt.block_on(Server::both());
    for s in &servers {
        let mut a = blocking::Admin::connect(server_addr(s)).expect("connect");
        assert_eq!(a.server(), &server_addr(s));
        a.create_function("bf").unwrap();
        assert_eq!(a.getpid().unwrap(), s.pid());
        assert!(!a.version().unwrap().is_empty());
        assert_eq!(a.verbose().unwrap(), "ERROR");
        a.maxqueue("bf", gearbox_client::admin::MaxQueue::All(2))
            .unwrap();
        let st = a.status().unwrap();
        assert_eq!(st.len(), 1);
        assert_eq!(a.priority_status().unwrap()[0].function, "bf");
        assert!(a.workers().unwrap().iter().any(|w| w.client_id == "-"));
        assert!(a.show_jobs().unwrap().is_empty());
        assert!(a.show_unique_jobs().unwrap().is_empty());
        let e = a.cancel("H:none:1").unwrap_err();
        assert_eq!(e.admin_code(), Some("UNKNOWN_JOB"));
        a.drop_function("bf").unwrap();
        assert_eq!(&a.raw("status").unwrap()[..], b".\n");
        if s.is_gearmand() {
            assert!(a.shutdown(true).is_err());
        }
    }
    let list: Vec<ServerAddr> = servers.iter().map(server_addr).collect();
    let all = blocking::admin::cluster_status(&list).unwrap();
    assert!(all.values().all(|r| r.as_ref().is_ok_and(|v| v.is_empty())));
    drop(servers);
}

#[tokio::test]
async fn cluster_views_are_refused_by_a_server_not_in_a_cluster() {
    for s in Server::both().await {
        let mut admin = gearbox_client::admin::Admin::connect(server_addr(&s))
            .await
            .unwrap();
        let want = if s.is_gearbox() {
            "ERR NOT_CLUSTER this+server+is+not+in+a+cluster"
        } else {
            "ERR UNKNOWN_COMMAND"
        };
        let e = admin.cluster_status().await.unwrap_err();
        assert!(
            matches!(&e, Error::Admin { command, reply } if command == "cluster status" && reply.starts_with(want)),
            "{}: {e:?}",
            s.name()
        );
        let e = admin.cluster_members().await.unwrap_err();
        assert!(
            matches!(&e, Error::Admin { reply, .. } if reply.starts_with(want)),
            "{}: {e:?}",
            s.name()
        );
        // The refusal was one line: the connection still works.
        assert!(admin.status().await.is_ok(), "{}", s.name());
    }
}
