//! Issue 14, MySQL/MariaDB: the `gman_*` functions of `gearbox-mysql-udf`, loaded into a
//! throwaway MariaDB, submit jobs to the real `gearboxd` binary, served by a test worker.
//! Every function, NULLs and empty values, binary payloads and results, the timeout, a failed
//! job, a worker exception, an unreachable server, unique ids, `KILL QUERY` and `KILL
//! CONNECTION` during a wait and the settings shared by connections (with and without the
//! thread pool), an `AFTER INSERT` trigger, and an outbox table. Skipped (with a printed
//! reason) without mariadbd, except under CI.
//!
//! The library is a dev-dependency of gearboxd, so cargo builds `libgearbox_mysql_udf.so`
//! into `target/<profile>/deps`, next to this test binary: that directory is MariaDB's
//! `--plugin-dir` (see `support/mysql_udf.rs`).

mod support;
// Not in `support/mod.rs`: only this test needs it.
#[path = "support/mysql_udf.rs"]
mod udf;

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use mysql_async::Conn;
use support::TIMEOUT;
use udf::{bytes, text, Fixture};

#[test]
fn every_function_submits_to_gearboxd() {
    let Some(fx) = Fixture::start("every_function_submits_to_gearboxd") else {
        return;
    };
    fx.rt.block_on(async {
        let mut conn = fx.db.conn().await;
        for f in ["gman_do", "gman_do_high", "gman_do_low"] {
            let out = text(&mut conn, &format!("SELECT {f}('rev', 'abc')")).await;
            assert_eq!(out.as_deref(), Some("cba"), "{f}");
        }
        for f in [
            "gman_do_background",
            "gman_do_high_background",
            "gman_do_low_background",
        ] {
            let handle = text(&mut conn, &format!("SELECT {f}('bg', '{f}')")).await;
            let handle = handle.unwrap_or_else(|| panic!("{f} returned NULL"));
            assert!(handle.starts_with("H:"), "{f}: handle {handle:?}");
            assert_eq!(fx.next_seen(), f.as_bytes());
        }

        // NULL and empty payloads are sent as empty ones; an empty result is '' (not NULL).
        for payload in ["NULL", "''"] {
            let out = text(&mut conn, &format!("SELECT gman_do('rev', {payload})")).await;
            assert_eq!(out.as_deref(), Some(""), "{payload}");
            let sql = format!("SELECT gman_do_background('bg', {payload})");
            assert!(text(&mut conn, &sql).await.is_some(), "{payload}");
            assert_eq!(fx.next_seen(), b"", "{payload}");
        }
        // A NULL or empty function name is an error (NULL); the connection goes on.
        assert_eq!(text(&mut conn, "SELECT gman_do(NULL, 'x')").await, None);
        assert_eq!(text(&mut conn, "SELECT gman_do('', 'x')").await, None);
        let sql = "SELECT gman_do_background(NULL, 'x')";
        assert_eq!(text(&mut conn, sql).await, None);
        // A wrong argument count is refused when the statement is prepared.
        let err = conn.query_drop("SELECT gman_do('rev')").await;
        let err = err.expect_err("one argument").to_string();
        assert!(err.contains("takes 2 or 3 arguments"), "{err}");

        // A failed job and a worker exception: NULL, and the next call works.
        assert_eq!(text(&mut conn, "SELECT gman_do('fail', 'x')").await, None);
        assert_eq!(text(&mut conn, "SELECT gman_do('exc', 'x')").await, None);
        let out = text(&mut conn, "SELECT gman_do('rev', 'xy')").await;
        assert_eq!(out.as_deref(), Some("yx"));

        // Unique ids: the same id while queued is one job (nobody serves `nobody`); NULL or
        // empty is none; a foreground job takes one too.
        let sql = "SELECT gman_do_background('nobody', 'x', 'once')";
        let first = text(&mut conn, sql).await;
        let sql = "SELECT gman_do_low_background('nobody', 'y', 'once')";
        let again = text(&mut conn, sql).await;
        assert!(first.is_some());
        assert_eq!(first, again, "the same unique id, the same job");
        for none in ["NULL", "''"] {
            let sql = format!("SELECT gman_do_background('nobody', 'x', {none})");
            let other = text(&mut conn, &sql).await;
            assert!(other.is_some() && other != first, "{none}: a new job");
        }
        let out = text(&mut conn, "SELECT gman_do_high('rev', 'abc', 'u-fg')").await;
        assert_eq!(out.as_deref(), Some("cba"));

        // The timeout ends a foreground call nobody serves; 0 removes it.
        let out = text(&mut conn, "SELECT gman_timeout_set(0.3)").await;
        assert_eq!(out.as_deref(), Some("0.3"));
        let started = Instant::now();
        assert_eq!(text(&mut conn, "SELECT gman_do('nobody', 'x')").await, None);
        let took = started.elapsed();
        assert!(
            took >= Duration::from_millis(300) && took < TIMEOUT,
            "{took:?}"
        );
        let out = text(&mut conn, "SELECT gman_timeout_set(NULL)").await;
        assert_eq!(out.as_deref(), Some("0"));
        let sql = "SELECT gman_timeout_set('soon')";
        assert_eq!(text(&mut conn, sql).await, None, "not a number");

        // An unreachable server: NULL, promptly; then back to gearboxd.
        let free = gearbox_testkit::servers::free_port();
        let set = format!("SELECT gman_servers_set('127.0.0.1:{free}')");
        assert!(text(&mut conn, &set).await.is_some());
        let started = Instant::now();
        for sql in [
            "SELECT gman_do_background('bg', 'x')",
            "SELECT gman_do('rev', 'x')",
        ] {
            assert_eq!(text(&mut conn, sql).await, None, "{sql}");
        }
        assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
        let set = format!("SELECT gman_servers_set('{}')", fx.servers);
        assert!(text(&mut conn, &set).await.is_some());
        let out = text(&mut conn, "SELECT gman_do('rev', 'ok')").await;
        assert_eq!(out.as_deref(), Some("ko"));
        conn.disconnect().await.expect("disconnect");
    });
    fx.finish();
}

#[test]
fn binary_payloads_and_results_pass_unchanged() {
    let Some(fx) = Fixture::start("binary_payloads_and_results_pass_unchanged") else {
        return;
    };
    let every_byte: Vec<u8> = (0..=255).collect();
    fx.rt.block_on(async {
        let mut conn = fx.db.conn().await;
        for payload in [&[0x00, 0xFF, 0x80, 0xC3][..], &every_byte] {
            let hex: String = payload.iter().map(|b| format!("{b:02X}")).collect();
            let reversed: Vec<u8> = payload.iter().rev().copied().collect();
            // The result as bytes, and as the server sees it (HEX of the returned value).
            let out = bytes(&mut conn, &format!("SELECT gman_do('rev', X'{hex}')")).await;
            assert_eq!(out.as_deref(), Some(&reversed[..]));
            let sql = format!("SELECT HEX(gman_do('rev', X'{hex}')) = HEX(REVERSE(X'{hex}'))");
            assert_eq!(text(&mut conn, &sql).await.as_deref(), Some("1"));
            // From a BLOB column, to a background job: the worker gets the same bytes.
            conn.query_drop("CREATE TEMPORARY TABLE IF NOT EXISTS b (v LONGBLOB)")
                .await
                .expect("table");
            conn.query_drop(format!("INSERT INTO b VALUES (X'{hex}')"))
                .await
                .expect("insert");
            let sql = "SELECT gman_do_background('bg', v) FROM b";
            assert!(text(&mut conn, sql).await.is_some());
            assert_eq!(fx.next_seen(), payload);
            conn.query_drop("DELETE FROM b").await.expect("delete");
        }
        conn.disconnect().await.expect("disconnect");
    });
    fx.finish();
}

/// Waits until connection `id` is running a statement starting with `prefix`, by polling
/// the process list (bounded).
async fn wait_running(admin: &mut Conn, id: u64, prefix: &str) {
    let sql = format!(
        "SELECT COUNT(*) FROM information_schema.processlist \
         WHERE id = {id} AND info LIKE '{prefix}%'"
    );
    let deadline = Instant::now() + TIMEOUT;
    while text(admin, &sql).await.as_deref() != Some("1") {
        assert!(
            Instant::now() < deadline,
            "connection {id} never ran {prefix}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// MariaDB's thread pool: a connection runs on whichever pool thread is free, and one
/// thread serves many connections.
const THREAD_POOL: &[&str] = &["--thread-handling=pool-of-threads", "--thread-pool-size=2"];

/// A fixture whose MariaDB runs the thread pool.
fn pooled(test: &str) -> Option<Fixture> {
    let fx = Fixture::start_with(test, THREAD_POOL)?;
    let handling = fx.rt.block_on(async {
        let mut conn = fx.db.conn().await;
        text(&mut conn, "SELECT @@thread_handling").await
    });
    assert_eq!(handling.as_deref(), Some("pool-of-threads"));
    Some(fx)
}

#[test]
fn kill_ends_a_foreground_wait() {
    if let Some(fx) = Fixture::start("kill_ends_a_foreground_wait") {
        kill_ends_the_wait(fx);
    }
}

#[test]
fn kill_ends_a_foreground_wait_under_the_thread_pool() {
    let test = "kill_ends_a_foreground_wait_under_the_thread_pool";
    if let Some(fx) = pooled(test) {
        kill_ends_the_wait(fx);
    }
}

/// `KILL QUERY`, then `KILL CONNECTION`, on a connection waiting in `gman_do`: the call ends
/// promptly, with an error; after `KILL QUERY` the connection goes on.
fn kill_ends_the_wait(fx: Fixture) {
    fx.rt.block_on(async {
        let mut admin = fx.db.conn().await;
        for kill in ["KILL QUERY", "KILL CONNECTION"] {
            let mut conn = fx.db.conn().await;
            let id: u64 = conn
                .query_first("SELECT CONNECTION_ID()")
                .await
                .unwrap()
                .unwrap();
            // No timeout set, nobody serves `nobody`: only the kill ends this call.
            let call = tokio::spawn(async move {
                let out = conn.query_first::<Option<Vec<u8>>, _>("SELECT gman_do('nobody', 'x')");
                let out = out.await;
                (conn, out)
            });
            wait_running(&mut admin, id, "SELECT gman_do").await;
            admin.query_drop(format!("{kill} {id}")).await.expect(kill);
            let killed = Instant::now();
            let (mut conn, out) = tokio::time::timeout(TIMEOUT, call)
                .await
                .unwrap_or_else(|_| panic!("{kill}: the call still waits"))
                .expect("task");
            assert!(
                killed.elapsed() < Duration::from_secs(5),
                "{kill}: {:?}",
                killed.elapsed()
            );
            // NULL (a SELECT without tables does not check the kill again), or an error.
            assert!(!matches!(out, Ok(Some(Some(_)))), "{kill}: {out:?}");
            if kill == "KILL QUERY" {
                // The same connection runs the next call, on the shared gearbox client.
                let out = text(&mut conn, "SELECT gman_do('rev', 'next')").await;
                assert_eq!(out.as_deref(), Some("txen"));
            } else {
                assert!(conn.ping().await.is_err(), "the connection is gone");
            }
        }
        let out = text(&mut admin, "SELECT gman_do('rev', 'ab')").await;
        assert_eq!(out.as_deref(), Some("ba"));
        admin.disconnect().await.expect("disconnect");
    });
    fx.finish();
}

/// One pool thread, and stalls noticed only after 30 s: a connection waiting in `gman_do`
/// tells the pool it waits (`thd_wait_begin`), so the pool serves the others meanwhile.
#[test]
fn a_foreground_wait_frees_its_pool_thread() {
    let options = [
        "--thread-handling=pool-of-threads",
        "--thread-pool-size=1",
        "--thread-pool-stall-limit=30000",
    ];
    let test = "a_foreground_wait_frees_its_pool_thread";
    let Some(fx) = Fixture::start_with(test, &options) else {
        return;
    };
    fx.rt.block_on(async {
        let mut other = fx.db.conn().await;
        let mut conn = fx.db.conn().await;
        let id: u64 = conn
            .query_first("SELECT CONNECTION_ID()")
            .await
            .unwrap()
            .unwrap();
        let call = tokio::spawn(async move {
            let out = conn.query_first::<Option<Vec<u8>>, _>("SELECT gman_do('nobody', 'x')");
            out.await
        });
        // Both the process list and the next job are served while `conn` waits.
        let started = Instant::now();
        wait_running(&mut other, id, "SELECT gman_do").await;
        let out = text(&mut other, "SELECT gman_do('rev', 'ab')").await;
        assert_eq!(out.as_deref(), Some("ba"));
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "{:?}",
            started.elapsed()
        );
        other
            .query_drop(format!("KILL QUERY {id}"))
            .await
            .expect("kill");
        let out = tokio::time::timeout(TIMEOUT, call)
            .await
            .expect("ended")
            .expect("task");
        assert!(!matches!(out, Ok(Some(Some(_)))), "{out:?}");
        other.disconnect().await.expect("disconnect");
    });
    fx.finish();
}

#[test]
fn settings_are_shared_by_every_connection() {
    if let Some(fx) = Fixture::start("settings_are_shared_by_every_connection") {
        settings_are_shared(fx);
    }
}

#[test]
fn settings_are_shared_by_every_connection_under_the_thread_pool() {
    let test = "settings_are_shared_by_every_connection_under_the_thread_pool";
    if let Some(fx) = pooled(test) {
        settings_are_shared(fx);
    }
}

/// A server list or timeout set on one connection applies to another.
fn settings_are_shared(fx: Fixture) {
    fx.rt.block_on(async {
        // Two connections at once (two server threads, or the thread pool's choice).
        let mut a = fx.db.conn().await;
        let mut b = fx.db.conn().await;
        // The fixture set the servers on a connection that is gone: both use them.
        for conn in [&mut a, &mut b] {
            let out = text(conn, "SELECT gman_do('rev', 'ab')").await;
            assert_eq!(out.as_deref(), Some("ba"));
        }
        // A list set on `a` is the one `b` uses.
        let free = gearbox_testkit::servers::free_port();
        let set = format!("SELECT gman_servers_set('127.0.0.1:{free}')");
        assert!(text(&mut a, &set).await.is_some());
        assert_eq!(text(&mut b, "SELECT gman_do('rev', 'ab')").await, None);
        let set = format!("SELECT gman_servers_set('{}')", fx.servers);
        assert!(text(&mut b, &set).await.is_some());
        let out = text(&mut a, "SELECT gman_do('rev', 'ab')").await;
        assert_eq!(out.as_deref(), Some("ba"));
        // A timeout set on `b` limits `a`'s calls.
        assert!(text(&mut b, "SELECT gman_timeout_set(0.2)").await.is_some());
        let started = Instant::now();
        assert_eq!(text(&mut a, "SELECT gman_do('nobody', 'x')").await, None);
        assert!(started.elapsed() < TIMEOUT, "{:?}", started.elapsed());
        a.disconnect().await.expect("disconnect");
        b.disconnect().await.expect("disconnect");
    });
    fx.finish();
}

/// The trigger example of the crate's README: an `AFTER INSERT` trigger submits one
/// background job per row, with the row's id in the payload.
#[test]
fn an_insert_trigger_submits_a_job_per_row() {
    let Some(fx) = Fixture::start("an_insert_trigger_submits_a_job_per_row") else {
        return;
    };
    fx.rt.block_on(async {
        let mut conn = fx.db.conn().await;
        conn.query_drop("CREATE TABLE pages (id INT PRIMARY KEY, body TEXT) ENGINE=InnoDB")
            .await
            .expect("table");
        conn.query_drop(
            "CREATE TRIGGER pages_reindex AFTER INSERT ON pages FOR EACH ROW \
             SET @gearman_handle = gman_do_background('bg', CONCAT('reindex ', NEW.id))",
        )
        .await
        .expect("trigger");
        conn.query_drop("INSERT INTO pages VALUES (1, 'a'), (2, 'b'), (3, 'c')")
            .await
            .expect("insert");
        let mut got: Vec<Vec<u8>> = (0..3).map(|_| fx.next_seen()).collect();
        got.sort();
        assert_eq!(got, [&b"reindex 1"[..], b"reindex 2", b"reindex 3"]);
        let handle = text(&mut conn, "SELECT @gearman_handle").await;
        assert!(handle.is_some_and(|h| h.starts_with("H:")));
        conn.disconnect().await.expect("disconnect");
    });
    fx.finish();
}

/// The outbox of the crate's README, in place of a submit on commit: jobs are rows written in
/// the transaction, and a drain submits the committed rows (unique id = row id) and deletes
/// the submitted ones. A rolled-back transaction submits nothing.
#[test]
fn an_outbox_submits_only_committed_rows() {
    let Some(fx) = Fixture::start("an_outbox_submits_only_committed_rows") else {
        return;
    };
    fx.rt.block_on(async {
        let mut conn = fx.db.conn().await;
        conn.query_drop(
            "CREATE TABLE job_outbox (id BIGINT AUTO_INCREMENT PRIMARY KEY, \
             fn VARCHAR(64) NOT NULL, payload BLOB, handle VARCHAR(255)) ENGINE=InnoDB",
        )
        .await
        .expect("table");
        for (payload, end) in [
            ("kept 1", "COMMIT"),
            ("gone", "ROLLBACK"),
            ("kept 2", "COMMIT"),
        ] {
            conn.query_drop(format!(
                "START TRANSACTION; \
                 INSERT INTO job_outbox (fn, payload) VALUES ('bg', '{payload}'); {end}"
            ))
            .await
            .expect(end);
        }
        let drain = "UPDATE job_outbox \
             SET handle = gman_do_background(fn, payload, CONCAT('outbox-', id)) \
             WHERE handle IS NULL; \
             DELETE FROM job_outbox WHERE handle IS NOT NULL";
        conn.query_drop(drain).await.expect("drain");
        let mut got = vec![fx.next_seen(), fx.next_seen()];
        got.sort();
        assert_eq!(got, [&b"kept 1"[..], b"kept 2"]);
        let left = text(&mut conn, "SELECT COUNT(*) FROM job_outbox").await;
        assert_eq!(left.as_deref(), Some("0"));
        // Nothing more was submitted (the rolled-back row never was).
        conn.query_drop(drain).await.expect("drain again");
        let sql = "SELECT gman_do_background('bg', 'last')";
        assert!(text(&mut conn, sql).await.is_some());
        assert_eq!(fx.next_seen(), b"last");
        conn.disconnect().await.expect("disconnect");
    });
    fx.finish();
}
