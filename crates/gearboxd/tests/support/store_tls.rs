//! What the store-over-TLS tests (`store_tls.rs`, `store_tls_redis.rs`) share: starting
//! gearboxd on a store, expecting a start to fail, and reading a process's command line.

use super::{run_to_exit, Gearboxd};

/// Starts gearboxd on loopback with the store flags `store`, logging at INFO (so the store's
/// address is printed), with `env` added to its environment.
pub fn start(store: &[&str], env: &[(&str, &str)]) -> Gearboxd {
    let mut args = vec![
        "-p",
        "0",
        "-L",
        "127.0.0.1",
        "--job-handle-prefix",
        "H:tls",
        "--verbose",
        "INFO",
    ];
    args.extend_from_slice(store);
    Gearboxd::start_with_env(&args, env)
}

/// Runs gearboxd expecting its start to fail; returns its standard error.
pub fn fails(store: &[&str], env: &[(&str, &str)]) -> String {
    let mut args = vec!["-p", "0", "-L", "127.0.0.1"];
    args.extend_from_slice(store);
    let out = run_to_exit(&args, env);
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(1), "{store:?}: {err}");
    let first = err.lines().find(|l| !l.starts_with("gearboxd: warning: "));
    assert!(
        first.is_some_and(|l| l.starts_with("gearboxd: error: ")),
        "{err}"
    );
    err
}

/// What the process list shows of `pid`.
pub fn cmdline(pid: u32) -> String {
    let raw = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap();
    String::from_utf8_lossy(&raw).replace('\0', " ")
}
