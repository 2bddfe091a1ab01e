//! Cluster members for the cluster tests: `gearboxd --cluster` on loopback ports sharing one
//! throwaway PostgreSQL, with short bounds so that takeover is quick.

use gearbox_testkit::servers::postgres::PgServer;

use super::Gearboxd;

/// How often members heartbeat in these tests, milliseconds.
pub const HEARTBEAT_MS: u64 = 200;
/// A member silent this long is dead in these tests, milliseconds.
pub const DEAD_AFTER_MS: u64 = 1000;
/// How often members poll the shared queue in these tests, milliseconds.
pub const POLL_MS: u64 = 200;

/// Starts member `id` of the cluster on `pg`.
pub fn member(pg: &PgServer, id: &str) -> Gearboxd {
    member_with(pg, id, DEAD_AFTER_MS, 0, &[])
}

/// Starts member `id` of the cluster on `pg` on `port` (0: any free one), dead after
/// `dead_after_ms` without heartbeat, with `extra` flags.
pub fn member_with(
    pg: &PgServer,
    id: &str,
    dead_after_ms: u64,
    port: u16,
    extra: &[&str],
) -> Gearboxd {
    let args = args(pg, id, dead_after_ms, port, extra);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    Gearboxd::start(&args)
}

/// The command line of [`member_with`].
pub fn args(pg: &PgServer, id: &str, dead_after_ms: u64, port: u16, extra: &[&str]) -> Vec<String> {
    let conninfo = pg.conninfo();
    let (hb, dead, poll, port) = (
        HEARTBEAT_MS.to_string(),
        dead_after_ms.to_string(),
        POLL_MS.to_string(),
        port.to_string(),
    );
    let mut args = vec![
        "-p",
        &port,
        "-L",
        "127.0.0.1",
        "-q",
        "libpq",
        "--libpq-conninfo",
        &conninfo,
        "--cluster",
        "--cluster-id",
        id,
        "--cluster-heartbeat-ms",
        &hb,
        "--cluster-dead-after-ms",
        &dead,
        "--cluster-poll-ms",
        &poll,
        "--verbose",
        "INFO",
    ];
    args.extend_from_slice(extra);
    args.into_iter().map(str::to_owned).collect()
}

/// Starts members `s1` to `sN`.
pub fn members(pg: &PgServer, n: usize) -> Vec<Gearboxd> {
    (1..=n).map(|i| member(pg, &format!("s{i}"))).collect()
}
