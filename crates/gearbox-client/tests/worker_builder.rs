//! Building a worker: every mistake is reported by `build`, with a message that says what to
//! do; `GEARMAN_SERVERS` is the fallback server list; handler errors convert to exceptions.

use std::time::Duration;

use gearbox_client::worker::{Job, JobError, Worker, WorkerBuilder};
use gearbox_client::Error;

fn ok(_job: Job) -> std::future::Ready<Result<&'static str, JobError>> {
    std::future::ready(Ok(""))
}

fn invalid(b: WorkerBuilder, mention: &str) {
    match b.build() {
        Err(Error::InvalidArgument(m)) => assert!(m.contains(mention), "{m:?} lacks {mention:?}"),
        Err(other) => panic!("expected InvalidArgument, got {other:?}"),
        Ok(w) => panic!("expected an error, built {w:?}"),
    }
}

#[test]
fn mistakes_are_reported_by_build() {
    let base = || Worker::builder().servers("127.0.0.1");
    invalid(base(), "no function registered");
    invalid(base().servers("host:notaport").register("f", ok), "port");
    invalid(base().concurrency(0).register("f", ok), "concurrency");
    invalid(base().register("", ok), "function name");
    invalid(base().register("a\0b", ok), "function name");
    invalid(base().register(&"f".repeat(513), ok), "function name");
    invalid(
        base().register_with_timeout("f", Duration::ZERO, ok),
        "timeout",
    );
    invalid(
        base().register_with_timeout("f", Duration::from_secs(30 * 24 * 3600), ok),
        "timeout",
    );
    invalid(
        base().client_id("x".repeat(255)).register("f", ok),
        "client id",
    );
    invalid(
        base()
            .reconnect_backoff(Duration::from_secs(2), Duration::from_secs(1))
            .register("f", ok),
        "back-off",
    );
    invalid(
        base()
            .periodic(Duration::ZERO, || async {})
            .register("f", ok),
        "period",
    );
    // The first mistake is the one reported.
    invalid(base().concurrency(0).register("", ok), "concurrency");
}

#[test]
fn valid_settings_build() {
    let w = Worker::builder()
        .servers("127.0.0.1:4730,127.0.0.1")
        .server(gearbox_client::ServerAddr::new("127.0.0.1", 4730))
        .client_id("x".repeat(254))
        .concurrency(3)
        .register("z", ok)
        .register_with_timeout("a", Duration::from_micros(500), ok)
        .register("m", ok)
        .register("m", ok)
        .build()
        .expect("builds");
    assert_eq!(w.functions().collect::<Vec<_>>(), ["a", "m", "z"]);
    // Duplicate servers are connected to once.
    let debug = format!("{w:?}");
    assert_eq!(debug.matches("port: 4730").count(), 1, "{debug}");
}

#[test]
fn gearman_servers_is_the_fallback() {
    // The only test in this binary that reads the environment.
    std::env::remove_var("GEARMAN_SERVERS");
    assert!(matches!(
        Worker::builder().register("f", ok).build(),
        Err(Error::NoServers)
    ));
    std::env::set_var("GEARMAN_SERVERS", "127.0.0.1:4999");
    let w = Worker::builder().register("f", ok).build().expect("builds");
    assert!(format!("{w:?}").contains("4999"));
    std::env::remove_var("GEARMAN_SERVERS");
}

#[test]
fn errors_convert_to_exceptions_with_their_sources() {
    #[derive(Debug, thiserror::Error)]
    #[error("loading the profile failed")]
    struct Outer(#[source] std::io::Error);
    let e: JobError = Outer(std::io::Error::other("disk on fire")).into();
    assert_eq!(
        e,
        JobError::Exception("loading the profile failed: disk on fire".into())
    );
    assert_eq!(JobError::Fail.to_string(), "failed");
}
