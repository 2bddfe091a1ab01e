//! The real binary on `-p 0`: wire protocol, admin lines, and where settings come from.

mod support;

use gearbox_proto::PacketType::{ECHO_REQ, ECHO_RES, SUBMIT_JOB_BG};
use support::{Conn, Gearboxd, TempDir};

/// Submits a background job and returns the handle from JOB_CREATED.
fn submit_bg(conn: &mut Conn, function: &str, data: &str) -> String {
    support::jobs::submit(conn, SUBMIT_JOB_BG, function, "", data.as_bytes())
}

#[test]
fn echo_round_trip_over_raw_tcp() {
    let server = Gearboxd::start(&["-p", "0", "-L", "127.0.0.1"]);
    assert!(server.addr.ip().is_loopback() && server.addr.port() != 0);
    let mut conn = server.connect();
    let body = b"hello\0world";
    conn.send(ECHO_REQ, body);
    let mut expected = b"\0RES".to_vec();
    expected.extend_from_slice(&(ECHO_RES as u32).to_be_bytes());
    expected.extend_from_slice(&(body.len() as u32).to_be_bytes());
    expected.extend_from_slice(body);
    let (ty, got) = conn.recv();
    assert_eq!(support::packet(b"\0RES", ty, &got), expected);
}

#[test]
fn version_admin_line() {
    let server = Gearboxd::start(&["-p", "0", "-L", "127.0.0.1"]);
    let mut conn = server.connect();
    assert_eq!(
        conn.admin("version"),
        format!("OK {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn verbose_admin_reports_the_level_raised_by_each_v() {
    let server = Gearboxd::start(&["-p", "0", "-L", "127.0.0.1", "-vv"]);
    assert_eq!(server.connect().admin("verbose"), "OK NOTICE\n");
    let server = Gearboxd::start(&["-p", "0", "-L", "127.0.0.1", "--verbose", "debug"]);
    assert_eq!(server.connect().admin("verbose"), "OK DEBUG\n");
}

#[test]
fn listening_line_is_printed_for_default_addresses_too() {
    let server = Gearboxd::start(&["-p", "0"]);
    assert!(server.addr.ip().is_unspecified(), "{}", server.addr);
    let mut conn = Conn::connect(([127, 0, 0, 1], server.addr.port()).into());
    assert_eq!(
        conn.admin("version"),
        format!("OK {}\n", env!("CARGO_PKG_VERSION"))
    );
}

#[test]
fn config_file_sets_the_handle_prefix_and_a_flag_overrides_it() {
    let dir = TempDir::new();
    let config = dir.join("gearboxd.toml");
    std::fs::write(
        &config,
        "job_handle_prefix = \"H:file\"\nlisten = [\"127.0.0.1\"]\nport = 0\n\
         queue_type = \"builtin\"\n",
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let from_file = Gearboxd::start(&["--config", config]);
    assert_eq!(submit_bg(&mut from_file.connect(), "f", "x"), "H:file:1");

    let from_flag = Gearboxd::start(&["--config", config, "--job-handle-prefix", "H:flag"]);
    assert_eq!(submit_bg(&mut from_flag.connect(), "f", "x"), "H:flag:1");
}

#[test]
fn environment_beats_the_file_and_a_flag_beats_the_environment() {
    // A port that is taken: whoever picks it fails to start.
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy_port = busy.local_addr().unwrap().port().to_string();
    let dir = TempDir::new();
    let config = dir.join("gearboxd.toml");
    std::fs::write(
        &config,
        format!("port = {busy_port}\nlisten = [\"127.0.0.1\"]\nqueue_type = \"builtin\"\n"),
    )
    .unwrap();
    let config = config.to_str().unwrap();

    let env_wins = Gearboxd::start_with_env(&["--config", config], &[("GEARMAND_PORT", "0")]);
    assert_ne!(env_wins.addr.port().to_string(), busy_port);

    let flag_wins = Gearboxd::start_with_env(
        &["-p", "0", "-L", "127.0.0.1"],
        &[("GEARMAND_PORT", busy_port.as_str())],
    );
    assert_ne!(flag_wins.addr.port().to_string(), busy_port);
}
