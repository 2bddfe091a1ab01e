//! The server on a multi-threaded runtime under concurrent load: output written by whichever
//! task produced it and by the flusher task must still reach every peer complete and in
//! order.

use std::collections::VecDeque;

use bytes::Bytes;
use gearbox_proto::{Priority, Request, Response, SubmitJob};
use gearbox_testkit::TestServer;

const CLIENTS: usize = 8;
const JOBS: usize = 200;
const WORKERS: usize = 4;

fn payload(client: usize, job: usize) -> Bytes {
    Bytes::from(format!("c{client}-j{job}-{}", "x".repeat(job % 37)))
}

fn reversed(b: &[u8]) -> Bytes {
    b.iter().rev().copied().collect::<Vec<u8>>().into()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn pipelined_clients_and_workers_on_many_threads_get_every_answer_in_order() {
    let server = TestServer::start().await;
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..WORKERS {
        let mut w = server.connect().await;
        workers.spawn(async move {
            w.send(&Request::CanDo {
                function: Bytes::from_static(b"rev"),
            })
            .await;
            loop {
                w.send(&Request::GrabJobUniq).await;
                match w.recv().await {
                    Response::JobAssignUniq { handle, data, .. } => {
                        w.send(&Request::WorkComplete {
                            handle,
                            data: reversed(&data),
                        })
                        .await
                    }
                    Response::NoJob => {
                        w.send(&Request::PreSleep).await;
                        while w.recv().await != Response::Noop {}
                    }
                    other => panic!("worker got {other:?}"),
                }
            }
        });
    }
    let mut clients = tokio::task::JoinSet::new();
    for c in 0..CLIENTS {
        let mut conn = server.connect().await;
        clients.spawn(async move {
            for j in 0..JOBS {
                conn.send(&Request::Submit(SubmitJob {
                    function: Bytes::from_static(b"rev"),
                    unique: Bytes::new(),
                    data: payload(c, j),
                    priority: Priority::Normal,
                    background: false,
                }))
                .await;
            }
            // JOB_CREATED comes in submit order; each result must match its own job.
            let mut created: VecDeque<usize> = (0..JOBS).collect();
            let mut by_handle = std::collections::HashMap::new();
            let mut done = 0;
            while done < JOBS {
                match conn.recv().await {
                    Response::JobCreated { handle } => {
                        let j = created.pop_front().expect("one JOB_CREATED per submit");
                        by_handle.insert(handle, j);
                    }
                    Response::WorkComplete { handle, data } => {
                        let j = by_handle.remove(&handle).expect("result for a created job");
                        assert_eq!(data, reversed(&payload(c, j)), "client {c} job {j}");
                        done += 1;
                    }
                    other => panic!("client {c} got {other:?}"),
                }
            }
            assert!(by_handle.is_empty() && created.is_empty());
        });
    }
    while let Some(r) = clients.join_next().await {
        r.expect("client task");
    }
    workers.abort_all();
}
