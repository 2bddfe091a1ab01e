//! The `gearbox` PostgreSQL extension (crates/gearbox-pg) in a throwaway PostgreSQL, against
//! the real `gearboxd` and a test worker. The extension must be installed
//! (`bash .ci/build-pg-extension`); without it, or without PostgreSQL, the tests print
//! `SKIPPED` (under `CI=true` they fail instead).

#[path = "sql_pg/fixture.rs"]
mod fixture;
mod support;

use std::time::{Duration, Instant};

use fixture::{error, text, Fixture, Seen};
use support::{Gearboxd, TIMEOUT};

fn seen(function: &str, unique: &[u8], payload: &[u8]) -> Seen {
    Seen {
        function: function.to_owned(),
        unique: unique.to_vec(),
        payload: payload.to_vec(),
    }
}

/// The SQL of the README's trigger example.
const TRIGGER_EXAMPLE: &str = "
CREATE TABLE pages (id int PRIMARY KEY, title text);
CREATE FUNCTION pages_reindex() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM gman_do_background_on_commit('reindex', NEW.id::text);
  RETURN NEW;
END $$;
CREATE TRIGGER pages_reindex AFTER INSERT ON pages
  FOR EACH ROW EXECUTE FUNCTION pages_reindex();
";

#[tokio::test(flavor = "multi_thread")]
async fn every_function_submits_jobs() {
    let Some(fx) = Fixture::start("every_function_submits_jobs") else {
        return;
    };
    let c = fx.client().await;
    // Untyped literals resolve to the text overload.
    assert_eq!(
        text(&c, "SELECT pg_typeof(gman_do('rev', 'abc'))::text")
            .await
            .as_deref(),
        Some("text")
    );
    fx.next_seen();
    for f in ["gman_do", "gman_do_high", "gman_do_low"] {
        let got = text(&c, &format!("SELECT {f}('rev', 'abc')")).await;
        assert_eq!(got.as_deref(), Some("cba"), "{f}");
        assert_eq!(fx.next_seen(), seen("rev", b"", b"abc"));
        // bytea in, bytea out: bytes that are not UTF-8 round-trip.
        let row = c
            .query_one(
                &format!("SELECT {f}('echo', $1::bytea)"),
                &[&&b"\x00\xff\x80\xfe"[..]],
            )
            .await
            .unwrap();
        assert_eq!(row.get::<_, Vec<u8>>(0), b"\x00\xff\x80\xfe", "{f}");
        assert_eq!(fx.next_seen(), seen("echo", b"", b"\x00\xff\x80\xfe"));
        // The unique id reaches the worker.
        let got = text(&c, &format!("SELECT {f}('rev', 'xy', 'u-{f}')")).await;
        assert_eq!(got.as_deref(), Some("yx"));
        assert_eq!(
            fx.next_seen(),
            seen("rev", format!("u-{f}").as_bytes(), b"xy")
        );
    }
    // A NULL payload is sent as an empty one; an empty one stays empty.
    assert_eq!(
        text(&c, "SELECT gman_do('echo', NULL)").await.as_deref(),
        Some("")
    );
    assert_eq!(
        text(&c, "SELECT gman_do('echo', '')").await.as_deref(),
        Some("")
    );
    assert_eq!(fx.seen(2), [seen("echo", b"", b""), seen("echo", b"", b"")]);
    // Background: a handle now, the worker runs the job.
    for f in [
        "gman_do_background",
        "gman_do_high_background",
        "gman_do_low_background",
    ] {
        let handle = text(&c, &format!("SELECT {f}('row', 'text {f}')"))
            .await
            .unwrap();
        assert!(handle.starts_with("H:"), "{f}: {handle}");
        assert_eq!(
            fx.next_seen(),
            seen("row", b"", format!("text {f}").as_bytes())
        );
        let handle = text(&c, &format!("SELECT {f}('row', '\\xff00'::bytea, 'u')")).await;
        assert!(handle.unwrap().starts_with("H:"));
        assert_eq!(fx.next_seen(), seen("row", b"u", b"\xff\x00"));
    }
    // On commit: nothing until the COMMIT, then every job in order.
    c.batch_execute("BEGIN").await.unwrap();
    for f in [
        "gman_do_background_on_commit",
        "gman_do_high_background_on_commit",
        "gman_do_low_background_on_commit",
    ] {
        c.batch_execute(&format!(
            "SELECT {f}('row', '{f}'); SELECT {f}('row', '\\x01fe'::bytea, 'u-{f}')"
        ))
        .await
        .unwrap();
    }
    c.batch_execute("COMMIT").await.unwrap();
    let got = fx.seen(6);
    for f in ["high", "low", ""] {
        let name = format!(
            "gman_do_{f}{}background_on_commit",
            if f.is_empty() { "" } else { "_" }
        );
        assert!(
            got.contains(&seen("row", b"", name.as_bytes())),
            "{name}: {got:?}"
        );
        assert!(got.contains(&seen("row", format!("u-{name}").as_bytes(), b"\x01\xfe")));
    }
    // gman_servers_set: this backend's list; NULL goes back to gearbox.servers.
    let list = format!("{}, 127.0.0.1", fx.servers);
    let set = text(&c, &format!("SELECT gman_servers_set('{list}')")).await;
    assert_eq!(set, Some(format!("{},127.0.0.1:4730", fx.servers)));
    assert_eq!(
        text(&c, "SELECT gman_servers_set(NULL)").await,
        Some(fx.servers.clone())
    );
    fx.finish();
}

#[tokio::test(flavor = "multi_thread")]
async fn failures_are_sql_errors() {
    let Some(fx) = Fixture::start("failures_are_sql_errors") else {
        return;
    };
    let c = fx.client().await;
    let (code, msg) = error(&c, "SELECT gman_do(NULL, 'x')").await;
    assert_eq!(
        (code.as_str(), msg.as_str()),
        ("22004", "gearbox: gman_do: the function name is NULL")
    );
    let (_, msg) = error(&c, "SELECT gman_do_background('', 'x')").await;
    assert!(msg.contains("the function name is empty"), "{msg}");
    // A worker's WORK_FAIL and WORK_EXCEPTION (with its text).
    let (code, msg) = error(&c, "SELECT gman_do('fail', 'x')").await;
    assert_eq!(code, "38000");
    assert!(msg.contains("gman_do('fail'): job failed"), "{msg}");
    let (_, msg) = error(&c, "SELECT gman_do_high('exc', 'x')").await;
    assert!(msg.contains("exception: boom: x"), "{msg}");
    assert_eq!(
        fx.seen(2),
        [seen("fail", b"", b"x"), seen("exc", b"", b"x")]
    );
    // The backend carries on.
    assert_eq!(
        text(&c, "SELECT gman_do('rev', 'ok')").await.as_deref(),
        Some("ko")
    );
    fx.next_seen();
    // A result that is not UTF-8 (the bytes of 'é' reversed) cannot be text; bytea takes it.
    let (code, msg) = error(&c, "SELECT gman_do('rev', 'é')").await;
    assert_eq!(code, "22021");
    assert!(msg.contains("not valid UTF-8"), "{msg}");
    let row = c
        .query_one("SELECT gman_do('rev', convert_to('é', 'UTF8'))", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, Vec<u8>>(0), b"\xa9\xc3");
    assert_eq!(
        fx.seen(2),
        [
            seen("rev", b"", "é".as_bytes()),
            seen("rev", b"", "é".as_bytes())
        ]
    );
    // No worker for the function: gearbox.timeout ends the wait.
    c.batch_execute("SET gearbox.timeout = 300").await.unwrap();
    let start = Instant::now();
    let (_, msg) = error(&c, "SELECT gman_do('nobody', 'x')").await;
    assert!(msg.contains("no answer after 300 ms"), "{msg}");
    assert!(start.elapsed() < TIMEOUT);
    c.batch_execute("RESET gearbox.timeout").await.unwrap();
    // An unreachable server is named; the next server of the list takes over.
    let dead = format!("127.0.0.1:{}", gearbox_testkit::servers::free_port());
    text(&c, &format!("SELECT gman_servers_set('{dead}')")).await;
    let (code, msg) = error(&c, "SELECT gman_do_background('row', 'x')").await;
    assert_eq!(code, "08006");
    assert!(
        msg.contains("cannot connect to any job server") && msg.contains(&dead),
        "{msg}"
    );
    text(
        &c,
        &format!("SELECT gman_servers_set('{dead},{}')", fx.servers),
    )
    .await;
    assert_eq!(
        text(&c, "SELECT gman_do('rev', 'ab')").await.as_deref(),
        Some("ba")
    );
    fx.next_seen();
    // The server's ERROR packet: a full queue.
    assert!(fx
        .server
        .connect()
        .admin("maxqueue full 1")
        .starts_with("OK"));
    assert!(text(&c, "SELECT gman_do_background('full', 'a')")
        .await
        .is_some());
    let (code, msg) = error(&c, "SELECT gman_do_background('full', 'b')").await;
    assert_eq!(code, "38000");
    assert!(
        msg.contains("answered ERROR") && msg.contains("Job queue is full"),
        "{msg}"
    );
    let (_, msg) = error(&c, "SELECT gman_servers_set('host:port')").await;
    assert!(msg.contains("bad port"), "{msg}");
    fx.finish();
}

/// Waits until the backend `pid` runs a statement (a gman_do waiting for a worker).
async fn wait_active(c: &tokio_postgres::Client, pid: i32) {
    let start = Instant::now();
    loop {
        let row = c
            .query_one(
                "SELECT state = 'active' FROM pg_stat_activity WHERE pid = $1",
                &[&pid],
            )
            .await
            .unwrap();
        if row.get::<_, bool>(0) {
            return;
        }
        assert!(
            start.elapsed() < TIMEOUT,
            "backend {pid} never became active"
        );
        tokio::task::yield_now().await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn cancel_and_statement_timeout_stop_a_wait() {
    let Some(fx) = Fixture::start("cancel_and_statement_timeout_stop_a_wait") else {
        return;
    };
    let c = std::sync::Arc::new(fx.client().await);
    let other = fx.client().await;
    let pid: i32 = c
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .unwrap()
        .get(0);
    // A safety net: a lost cancel fails the test with another error instead of hanging it.
    c.batch_execute("SET gearbox.timeout = '30s'")
        .await
        .unwrap();
    // pg_cancel_backend from another connection. The simple query protocol (one message), so
    // the backend is not idle between parse and execute, where a cancel is ignored.
    let waiting = {
        let c = c.clone();
        tokio::spawn(async move {
            let e = c
                .simple_query("SELECT gman_do('nobody', 'x')")
                .await
                .unwrap_err();
            let e = e.as_db_error().unwrap();
            (e.code().code().to_owned(), e.message().to_owned())
        })
    };
    wait_active(&other, pid).await;
    let cancelled = Instant::now();
    other
        .execute("SELECT pg_cancel_backend($1)", &[&pid])
        .await
        .unwrap();
    let (code, msg) = waiting.await.unwrap();
    assert_eq!(code, "57014", "{msg}");
    assert!(
        cancelled.elapsed() < Duration::from_secs(2),
        "{:?}",
        cancelled.elapsed()
    );
    assert_eq!(
        text(&c, "SELECT gman_do('rev', 'abc')").await.as_deref(),
        Some("cba")
    );
    fx.next_seen();
    // The connection that waited was closed, not reused: the server sees one from the backend.
    assert!(support::wait_until(TIMEOUT, || fx.clients() == 2));
    // statement_timeout.
    c.batch_execute("SET statement_timeout = 300")
        .await
        .unwrap();
    let start = Instant::now();
    let (code, _) = error(&c, "SELECT gman_do('nobody', 'y')").await;
    assert_eq!(code, "57014");
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "{:?}",
        start.elapsed()
    );
    c.batch_execute("RESET statement_timeout").await.unwrap();
    assert_eq!(
        text(&c, "SELECT gman_do('rev', 'de')").await.as_deref(),
        Some("ed")
    );
    fx.next_seen();
    assert!(support::wait_until(TIMEOUT, || fx.clients() == 2));
    fx.finish();
}

#[tokio::test(flavor = "multi_thread")]
async fn one_connection_serves_many_calls_and_uniques_coalesce() {
    let Some(fx) = Fixture::start("one_connection_serves_many_calls_and_uniques_coalesce") else {
        return;
    };
    // Connections without functions: this listing's own, and the backend's.
    let clients = || fx.clients();
    let c = fx.client().await;
    for i in 0..5 {
        assert!(text(&c, &format!("SELECT gman_do('echo', '{i}')"))
            .await
            .is_some());
        text(&c, &format!("SELECT gman_do_background('row', '{i}')")).await;
    }
    fx.seen(10);
    assert_eq!(clients(), 2);
    // The same unique id while the job is queued: the same job.
    let a = text(&c, "SELECT gman_do_background('nobody', 'a', 'same')").await;
    let b = text(&c, "SELECT gman_do_low_background('nobody', 'b', 'same')").await;
    assert_eq!(a, b);
    let other = text(&c, "SELECT gman_do_background('nobody', 'a', 'other')").await;
    assert_ne!(a, other);
    assert_eq!(support::jobs::status(&fx.server, "nobody"), Some((2, 0)));
    // The server of the cached connection restarts: the next call reconnects transparently.
    let port = gearbox_testkit::servers::free_port().to_string();
    let second = Gearboxd::start(&["-p", &port, "-L", "127.0.0.1", "-q", "builtin"]);
    let list = format!("127.0.0.1:{port}");
    assert_eq!(
        text(&c, &format!("SELECT gman_servers_set('{list}')")).await,
        Some(list)
    );
    text(&c, "SELECT gman_do_background('later', '1')").await;
    support::jobs::stop(second);
    let second = Gearboxd::start(&["-p", &port, "-L", "127.0.0.1", "-q", "builtin"]);
    text(&c, "SELECT gman_do_background('later', '2')").await;
    assert_eq!(support::jobs::status(&second, "later"), Some((1, 0)));
    fx.finish();
}

#[tokio::test(flavor = "multi_thread")]
async fn on_commit_jobs_follow_the_transaction() {
    let Some(fx) = Fixture::start("on_commit_jobs_follow_the_transaction") else {
        return;
    };
    let c = fx.client().await;
    c.batch_execute(TRIGGER_EXAMPLE).await.unwrap();
    let reindexed = |ids: &[&str]| {
        ids.iter()
            .map(|id| seen("reindex", b"", id.as_bytes()))
            .collect::<Vec<_>>()
    };
    // Committed: one job per row.
    c.batch_execute("BEGIN; INSERT INTO pages SELECT g, 'p' FROM generate_series(1, 3) g; COMMIT")
        .await
        .unwrap();
    assert_eq!(fx.seen(3), reindexed(&["1", "2", "3"]));
    // Rolled back: none. A rolled-back savepoint: only its rows' jobs go.
    c.batch_execute("BEGIN; INSERT INTO pages VALUES (4, 'p'), (5, 'p'); ROLLBACK")
        .await
        .unwrap();
    c.batch_execute(
        "BEGIN; INSERT INTO pages VALUES (6, 'p'); SAVEPOINT s; INSERT INTO pages VALUES (7, 'p');
         SAVEPOINT t; INSERT INTO pages VALUES (8, 'p'); RELEASE SAVEPOINT t;
         ROLLBACK TO SAVEPOINT s; INSERT INTO pages VALUES (9, 'p'); SAVEPOINT u;
         INSERT INTO pages VALUES (10, 'p'); RELEASE SAVEPOINT u; COMMIT",
    )
    .await
    .unwrap();
    // The jobs of one commit arrive in order, after those of earlier commits.
    assert_eq!(fx.seen(3), reindexed(&["6", "9", "10"]));
    // Autocommit works the same.
    c.batch_execute("INSERT INTO pages VALUES (11, 'p')")
        .await
        .unwrap();
    assert_eq!(fx.seen(1), reindexed(&["11"]));
    // No server reachable at COMMIT: the COMMIT fails and the rows roll back.
    let dead = format!("127.0.0.1:{}", gearbox_testkit::servers::free_port());
    c.batch_execute(&format!("SET gearbox.servers = '{dead}'"))
        .await
        .unwrap();
    c.batch_execute("BEGIN; INSERT INTO pages VALUES (12, 'p')")
        .await
        .unwrap();
    let (code, msg) = error(&c, "COMMIT").await;
    assert_eq!(code, "08006");
    assert!(
        msg.contains("COMMIT refused") && msg.contains(&dead),
        "{msg}"
    );
    c.batch_execute("RESET gearbox.servers").await.unwrap();
    assert_eq!(
        text(&c, "SELECT count(*)::text FROM pages WHERE id = 12")
            .await
            .as_deref(),
        Some("0")
    );
    // The backend carries on.
    c.batch_execute("INSERT INTO pages VALUES (13, 'p')")
        .await
        .unwrap();
    assert_eq!(fx.seen(1), reindexed(&["13"]));
    fx.finish();
}

/// After the commit nothing can fail the transaction: a job the server refuses then (here a
/// full queue) is reported to the client as a WARNING, and the commit stands.
#[tokio::test(flavor = "multi_thread")]
async fn a_job_refused_after_commit_is_a_warning() {
    let Some(fx) = Fixture::start("a_job_refused_after_commit_is_a_warning") else {
        return;
    };
    // A connection driven through `poll_message`, which hands over the server's notices.
    let (c, mut conn) = tokio_postgres::connect(&fx.pg.conninfo(), tokio_postgres::NoTls)
        .await
        .unwrap();
    let (notice_tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(m) = std::future::poll_fn(|cx| conn.poll_message(cx)).await {
            if let Ok(tokio_postgres::AsyncMessage::Notice(n)) = m {
                let _ = notice_tx.send((n.severity().to_owned(), n.message().to_owned()));
            }
        }
    });
    // The queue of `full` holds one job, which no worker takes.
    assert!(fx
        .server
        .connect()
        .admin("maxqueue full 1")
        .starts_with("OK"));
    assert!(text(&c, "SELECT gman_do_background('full', 'a')")
        .await
        .is_some());
    c.batch_execute(
        "CREATE TABLE t (id int);
         BEGIN; INSERT INTO t VALUES (1); SELECT gman_do_background_on_commit('full', 'b'); COMMIT",
    )
    .await
    .expect("the COMMIT stands");
    let (severity, msg) = tokio::time::timeout(TIMEOUT, notices.recv())
        .await
        .expect("a notice in time")
        .expect("the connection is open");
    assert_eq!(severity, "WARNING");
    assert!(
        msg.contains(
            "1 of 1 job(s) queued by the committed transaction may not have been submitted"
        ) && msg.contains("Job queue is full"),
        "{msg}"
    );
    assert_eq!(
        text(&c, "SELECT count(*)::text FROM t").await.as_deref(),
        Some("1")
    );
    // The backend carries on with a new connection to the job server.
    c.batch_execute("BEGIN; SELECT gman_do_background_on_commit('row', 'c'); COMMIT")
        .await
        .unwrap();
    assert_eq!(fx.next_seen(), seen("row", b"", b"c"));
    fx.finish();
}
