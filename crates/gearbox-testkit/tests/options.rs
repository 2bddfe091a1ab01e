//! Per-connection requests: SET_CLIENT_ID, ECHO, OPTION_REQ, and who receives WORK_EXCEPTION.

mod common;

use common::*;
use gearbox_proto::{Request, Response};
use gearbox_testkit::build::option;
use gearbox_testkit::TestServer;

#[tokio::test]
async fn set_client_id_shows_in_workers() {
    let server = TestServer::start().await;
    let mut w = worker(&server, &["f", "g"]).await;
    let id = b("my-worker-7");
    w.send(&Request::SetClientId { id }).await;
    w.assert_quiet().await;
    let mut admin = server.connect().await;
    let list = admin.admin_list("workers").await;
    let line = list
        .lines()
        .find(|l| l.contains("my-worker-7"))
        .expect("worker listed by its id");
    let (_, funcs) = line.split_once(" : ").expect("`ID : FUNCS` layout");
    let mut funcs: Vec<&str> = funcs.split(' ').collect();
    funcs.sort_unstable();
    assert_eq!(funcs, ["f", "g"]);
    // The admin connection itself has no id yet.
    assert!(
        list.lines().any(|l| l.contains(" - :")),
        "unset id shown as '-': {list:?}"
    );
}

#[tokio::test]
async fn echo_returns_the_payload_byte_for_byte() {
    let (_server, [mut c]) = start().await;
    for data in [
        b(""),
        b("plain"),
        b("with\0nul\0\0bytes\0"),
        bytes::Bytes::from(vec![0u8; 70_000]),
    ] {
        c.send(&Request::EchoReq { data: data.clone() }).await;
        assert_eq!(c.recv().await, Response::EchoRes { data });
    }
}

#[tokio::test]
async fn option_req_exceptions_is_echoed_and_others_are_unknown() {
    let (_server, [mut c]) = start().await;
    c.enable_exceptions().await;
    expect_error(&mut c, &option("no-such-option"), "UNKNOWN_OPTION").await;
    // The connection carries on.
    c.assert_quiet().await;
}

/// One job with two attached clients, only `c1` having asked for exceptions; the worker
/// answers WORK_EXCEPTION. Returns what each client received.
async fn exception_to_two_clients(server: &TestServer) -> (Vec<Response>, Vec<Response>) {
    let [mut c1, mut c2] = server.connections().await;
    c1.enable_exceptions().await;
    let handle = submit_coalesced(&mut c1, &mut c2, &fg("f", "u", "x")).await;
    let mut w = worker(server, &["f"]).await;
    grab_uniq(&mut w).await;
    w.send(&Work::Exception("trace").request(&handle)).await;
    w.assert_quiet().await;
    (drain(&mut c1).await, drain(&mut c2).await)
}

#[tokio::test]
async fn work_exception_reaches_only_clients_that_asked() {
    let server = TestServer::start().await;
    let (c1, c2) = exception_to_two_clients(&server).await;
    assert_eq!(c1, [Work::Exception("trace").response(&h(1))]);
    assert_eq!(c2, [Work::Fail.response(&h(1))], "WORK_FAIL in its place");
}

#[tokio::test]
async fn server_wide_exceptions_send_work_exception_to_everyone() {
    let server = server_with(|cfg| cfg.exceptions = true).await;
    let (c1, c2) = exception_to_two_clients(&server).await;
    let expected = [Work::Exception("trace").response(&h(1))];
    assert_eq!(c1, expected);
    assert_eq!(c2, expected);
}

#[tokio::test]
async fn all_yours_is_an_invalid_command() {
    let (_server, [mut c]) = start().await;
    expect_error(&mut c, &Request::AllYours, "INVALID_COMMAND").await;
    c.assert_quiet().await;
}
