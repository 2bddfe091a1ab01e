//! The real binary refuses to start, with a clear message and a non-zero status, on bad input.

mod support;

use support::{run_to_exit, TempDir};

fn stderr_of(args: &[&str]) -> (i32, String) {
    let out = run_to_exit(args, &[]);
    (
        out.status.code().expect("exit code"),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn unknown_flag() {
    let (code, err) = stderr_of(&["--no-such-flag"]);
    assert_eq!(code, 2);
    assert!(err.contains("--no-such-flag"), "{err}");
}

#[test]
fn bad_flag_value() {
    let (code, err) = stderr_of(&["-p", "http"]);
    assert_eq!(code, 2);
    assert!(err.contains("http"), "{err}");
    let (code, err) = stderr_of(&["--verbose", "LOUD"]);
    assert_eq!(code, 2);
    assert!(err.contains("FATAL, ALERT"), "{err}");
}

#[test]
fn mysql_needs_a_database_and_gearmands_other_queues_are_refused() {
    // MySQL/MariaDB is wired (tests/store_servers.rs), but needs a database.
    for q in ["mysql", "mariadb"] {
        let (code, err) = stderr_of(&["-p", "0", "-L", "127.0.0.1", "-q", q]);
        assert_eq!(code, 1, "{err}");
        assert!(err.starts_with("gearboxd: error: "), "{err}");
        assert!(err.contains("--mysql-db"), "{err}");
    }
    let (code, err) = stderr_of(&["-p", "0", "--store", "mysql:localhost"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("mysql://user"), "{err}");
    let (code, err) = stderr_of(&["-p", "0", "-q", "libdrizzle"]);
    assert_eq!(code, 1, "{err}");
    assert!(err.contains("not supported"), "{err}");
}

#[test]
fn port_in_use() {
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = busy.local_addr().unwrap().port().to_string();
    let (code, err) = stderr_of(&["-p", &port, "-L", "127.0.0.1"]);
    assert_eq!(code, 1);
    assert!(
        err.contains(&format!("cannot listen on 127.0.0.1:{port}")),
        "{err}"
    );
}

#[test]
fn unreadable_config_file() {
    let dir = TempDir::new();
    let missing = dir.join("missing.toml");
    let (code, err) = stderr_of(&["--config", missing.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        err.contains("cannot read config file") && err.contains("missing.toml"),
        "{err}"
    );
}

#[test]
fn invalid_config_files() {
    let dir = TempDir::new();
    let path = dir.join("bad.toml");
    let path_str = path.to_str().unwrap();
    for (text, expected) in [
        ("prot = 4730\n", "unknown field `prot`"),
        ("port = \"x\"\n", "key `port`"),
        ("port = \n", "line 1"),
        ("verbose = \"LOUD\"\n", "LOUD"),
    ] {
        std::fs::write(&path, text).unwrap();
        let (code, err) = stderr_of(&["--config", path_str]);
        assert_eq!(code, 1, "{text}");
        assert!(err.contains(expected), "{text}: {err}");
    }
}

#[test]
fn check_args_validates_and_exits_without_serving() {
    let (code, err) = stderr_of(&["--check-args", "-p", "0", "-L", "127.0.0.1"]);
    assert_eq!(code, 0, "{err}");
    assert!(!err.contains("listening"), "{err}");
    let (code, _) = stderr_of(&["--check-args", "-q", "mysql"]);
    assert_eq!(code, 1);
}

#[test]
fn ignored_gearmand_flags_warn_even_at_the_default_level() {
    let (code, err) = stderr_of(&[
        "--check-args",
        "--coredump",
        "--round-robin",
        "--hashtable-buckets=991",
    ]);
    assert_eq!(code, 0, "{err}");
    for flag in ["--coredump", "--round-robin", "--hashtable-buckets"] {
        assert!(
            err.contains(&format!("gearboxd: warning: {flag} is ignored")),
            "{err}"
        );
    }
}
