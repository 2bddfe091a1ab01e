//! `GEARMAN_SERVERS` as the fallback server list. One test in its own binary, because it
//! changes the process environment.

mod client_support;

use client_support::{b, Server};
use gearbox_client::{Client, Error};

#[tokio::test]
async fn gearman_servers_is_the_fallback_list() {
    let srv = Server::gearbox().await;
    std::env::set_var("GEARMAN_SERVERS", srv.list());
    let client = Client::builder()
        .build()
        .expect("client from the environment");
    assert_eq!(client.servers().len(), 1);
    assert_eq!(client.echo("env").await.expect("echo"), b("env"));

    // An explicit list wins over the environment.
    let explicit = Client::builder()
        .servers("10.1.2.3:4731")
        .build()
        .expect("client");
    assert_eq!(explicit.servers()[0].to_string(), "10.1.2.3:4731");

    std::env::set_var("GEARMAN_SERVERS", "host:notaport");
    let err = Client::builder().build().expect_err("bad list");
    assert!(matches!(err, Error::InvalidArgument(_)), "{err:?}");

    std::env::remove_var("GEARMAN_SERVERS");
    let err = Client::builder().build().expect_err("nothing configured");
    assert!(matches!(err, Error::NoServers), "{err:?}");
    assert!(err.to_string().contains("GEARMAN_SERVERS"), "{err}");
}
