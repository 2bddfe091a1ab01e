//! Every example in `examples/` run against a real gearbox server (and the classic patterns
//! also against Debian's gearmand when it is installed).

#![allow(clippy::duplicate_mod)] // Each example includes `examples/common` to stand alone.

#[path = "../examples/async_queue.rs"]
mod async_queue;
#[path = "../examples/failures.rs"]
mod failures;
#[path = "../examples/map_reduce.rs"]
mod map_reduce;
#[path = "../examples/pipeline.rs"]
mod pipeline;
#[path = "../examples/progress.rs"]
mod progress;
#[path = "../examples/scatter_gather.rs"]
mod scatter_gather;

use gearbox_server::ShutdownMode;
use gearbox_testkit::gearmand::Gearmand;
use gearbox_testkit::TestServer;

/// Runs `scenario` against gearbox, then against gearmand if it is installed.
async fn on_both<F, Fut>(scenario: F)
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let server = TestServer::start().await;
    scenario(server.addr.to_string()).await;
    server.stop(ShutdownMode::Immediate).await;
    if let Some(gearmand) = Gearmand::start().await {
        scenario(format!("127.0.0.1:{}", gearmand.port())).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scatter_gather_counts_every_word() {
    let text = "one two three\nfour five\n\nsix\n".repeat(30);
    on_both(|servers| {
        let text = text.clone();
        async move {
            let total = scatter_gather::run(&servers, &text, 7)
                .await
                .expect("example runs");
            assert_eq!(total, 6 * 30);
        }
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn map_reduce_merges_partial_counts() {
    on_both(|servers| async move {
        let docs = ["a b a", "b c", "A a"];
        let counts = map_reduce::run(&servers, &docs)
            .await
            .expect("example runs");
        let got: Vec<(String, u64)> = counts.into_iter().collect();
        assert_eq!(got, [("a".into(), 4), ("b".into(), 2), ("c".into(), 1)]);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn async_queue_sends_every_mail_in_order() {
    on_both(|servers| async move {
        let to = ["a@x", "b@x", "c@x"];
        let sent = async_queue::run(&servers, &to).await.expect("example runs");
        assert_eq!(sent, to);
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipeline_runs_every_step_in_order() {
    on_both(|servers| async move {
        let out = pipeline::run(&servers, "cat.jpg")
            .await
            .expect("example runs");
        assert_eq!(out, "cat.jpg|resize|watermark|publish");
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn progress_streams_chunks_and_status_in_order() {
    on_both(|servers| async move {
        let seen = progress::run(&servers, 3).await.expect("example runs");
        assert_eq!(
            seen,
            [
                "data:part 1",
                "status:1/3",
                "data:part 2",
                "status:2/3",
                "data:part 3",
                "status:3/3",
                "complete:rendered"
            ]
        );
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_propagate_exceptions_and_retry() {
    on_both(|servers| async move {
        let outcome = failures::run(&servers).await.expect("example runs");
        assert!(
            outcome.exception.contains("invalid digit"),
            "exception text: {}",
            outcome.exception
        );
        assert_eq!(
            outcome.events,
            ["retry:2", "complete:worked the second time"]
        );
    })
    .await;
}
