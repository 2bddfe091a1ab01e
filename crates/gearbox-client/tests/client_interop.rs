//! Interop: our client submits to the C `gearman -w` worker (libgearman), which runs a shell
//! command per job, on gearbox and on gearmand: foreground results, a background job, and a
//! task set spread over the same worker.

mod client_support;

use client_support::{ClientSide, Server};
use gearbox_testkit::external;
use gearbox_testkit::on_both_servers;
use gearbox_testkit::process::Proc;

async fn c_worker_serves_our_client(server: Server) {
    let Some(gearman) = external::require("gearman", "the C gearman tool in worker mode") else {
        return;
    };
    let port = server.port();
    // Exits after five jobs: one foreground, one background, three in a set.
    let worker = Proc::spawn(
        &gearman,
        &[
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-w",
            "-c",
            "5",
            "-f",
            "upper",
            "--",
            "tr",
            "a-z",
            "A-Z",
        ],
    );
    let client = server.client();
    let out = client
        .submit("upper", "hello")
        .await
        .expect("foreground job");
    assert_eq!(&out[..], b"HELLO", "{}", server.name());
    let handle = client
        .submit_background("upper", "later")
        .await
        .expect("background job");
    assert!(!handle.is_empty());
    let mut set = client.task_set();
    for word in ["one", "two", "three"] {
        set.add(client.job("upper", word));
    }
    let results = set.run().await.expect("task set");
    assert_eq!(
        results,
        ["ONE", "TWO", "THREE"].map(|s| bytes::Bytes::from_static(s.as_bytes()))
    );
    let finished = worker.finish().await;
    finished.assert_success("gearman -w -c 5");
}

on_both_servers!(c_worker_serves_our_client);
