//! Every flag the real gearmand's `--help` lists is accepted by gearboxd (read from
//! `/usr/sbin/gearmand --help` at test time, so the list cannot drift), with gearmand's value
//! syntax; `--ssl` without a certificate says which flag is missing, `-r http` serves HTTP; gearmand's `--config-file` is read as
//! gearmand reads it (the same files accepted and rejected by both) and has its effect.

mod support;

use std::process::Command;

use gearbox_testkit::external;
use support::jobs::{submit, SUBMIT_JOB_BG};
use support::{run_to_exit, Gearboxd, TempDir};

const GEARMAND: &str = "/usr/sbin/gearmand";

/// One flag as gearmand's help lists it.
#[derive(Debug)]
struct Flag {
    short: Option<char>,
    long: String,
    takes_value: bool,
    default: Option<String>,
}

/// Parses gearmand's `--help`: `-b [ --backlog ] arg (=32)` and `--exceptions` lines.
fn gearmand_flags(help: &str) -> Vec<Flag> {
    let mut flags = Vec::new();
    for line in help.lines() {
        let line = line.trim_start();
        let (short, rest) = if let Some(r) = line.strip_prefix("-").filter(|r| !r.starts_with('-'))
        {
            let mut chars = r.chars();
            let short = chars.next().unwrap();
            let rest = chars.as_str().trim_start();
            let Some(rest) = rest.strip_prefix("[ --") else {
                continue;
            };
            let (long, rest) = rest.split_once(" ]").unwrap();
            (Some(short), format!("{long}{rest}"))
        } else if let Some(r) = line.strip_prefix("--") {
            (None, r.to_owned())
        } else {
            continue;
        };
        let mut words = rest.split_whitespace();
        let long = words.next().unwrap().to_owned();
        let takes_value = words.next() == Some("arg");
        let default = rest
            .split_once("(=")
            .map(|(_, d)| d.split_once(')').unwrap().0.to_owned());
        flags.push(Flag {
            short,
            long,
            takes_value,
            default,
        });
    }
    flags
}

/// A valid value for a flag whose help shows no default.
fn value_for(long: &str) -> &'static str {
    match long {
        "file-descriptors" => "1024",
        "job-handle-prefix" => "H:flags",
        "listen" => "127.0.0.1",
        "protocol" => "http",
        "user" => "nobody",
        "libsqlite3-db" => "/tmp/gearboxd-flags-test.db",
        "libpq-conninfo" => "host=127.0.0.1 dbname=gearman",
        "redis-server" | "mysql-host" => "127.0.0.1",
        "redis-port" => "6379",
        "redis-password" | "mysql-password" => "secret",
        "redis-prefix" => "gq:",
        "libmemcached-servers" => "127.0.0.1:11211",
        "mysql-user" | "mysql-db" => "gearman",
        "ssl-ca-file" | "ssl-certificate" | "ssl-key" => "/tmp/gearboxd-flags-test.pem",
        other => panic!("gearmand lists --{other} with no default: add a value for it here"),
    }
}

/// What gearboxd must answer to a flag alone: `None` = accepted, `Some(text)` = an error
/// saying this.
fn refusal(long: &str) -> Option<&'static str> {
    match long {
        // gearmand's certificate paths are build-time defaults; gearboxd asks for them.
        "ssl" => Some("--ssl needs --ssl-certificate"),
        _ => None,
    }
}

fn gearmand_accepts(argv: &[String]) -> bool {
    Command::new(GEARMAND)
        .args(argv)
        .output()
        .expect("run gearmand")
        .status
        .success()
}

#[test]
fn every_flag_of_gearmands_help_is_accepted() {
    let Some(gearmand) = external::require(GEARMAND, "its --help lists the flags") else {
        return;
    };
    let help = Command::new(gearmand).arg("--help").output().unwrap();
    let flags = gearmand_flags(&String::from_utf8_lossy(&help.stdout));
    assert!(flags.len() >= 45, "parsed only {flags:?}");
    let mut tried = 0;
    for flag in flags.iter() {
        if matches!(flag.long.as_str(), "help" | "version") {
            for form in [
                format!("--{}", flag.long),
                format!("-{}", flag.short.unwrap()),
            ] {
                let out = run_to_exit(&[&form], &[]);
                assert!(out.status.success(), "{form}: {out:?}");
                assert!(!out.stdout.is_empty(), "{form} printed nothing");
            }
            continue;
        }
        let value = flag
            .default
            .clone()
            .or_else(|| flag.takes_value.then(|| value_for(&flag.long).to_owned()));
        let mut forms: Vec<Vec<String>> = Vec::new();
        let long = format!("--{}", flag.long);
        match &value {
            Some(v) => {
                forms.push(vec![format!("{long}={v}")]);
                forms.push(vec![long.clone(), v.clone()]);
                if let Some(s) = flag.short {
                    forms.push(vec![format!("-{s}"), v.clone()]);
                }
            }
            None => {
                forms.push(vec![long.clone()]);
                if let Some(s) = flag.short {
                    forms.push(vec![format!("-{s}")]);
                }
            }
        }
        for form in forms {
            let mut argv = vec!["--check-args".to_owned()];
            argv.extend(form.iter().cloned());
            // The values are gearmand's own syntax: gearmand takes them too.
            assert!(gearmand_accepts(&argv), "gearmand refuses {argv:?}");
            let args: Vec<&str> = argv.iter().map(String::as_str).collect();
            let out = run_to_exit(&args, &[]);
            let err = String::from_utf8_lossy(&out.stderr);
            match refusal(&flag.long) {
                None => assert!(out.status.success(), "gearboxd refuses {argv:?}: {err}"),
                Some(issue) => {
                    assert_eq!(out.status.code(), Some(1), "{argv:?}: {err}");
                    assert!(err.contains(issue), "{argv:?} should name {issue}: {err}");
                }
            }
            tried += 1;
        }
    }
    assert!(tried >= 90, "only {tried} command lines tried");
}

/// The queue types: the help's option groups after the protocols' (`builtin:`, `MySQL:`, ...).
fn gearmand_queue_types(help: &str) -> Vec<String> {
    let headings = help
        .lines()
        .filter(|l| !l.starts_with(' ') && l.ends_with(':'))
        .map(|l| l.trim_end_matches(':').to_owned());
    headings.skip_while(|h| h != "Gear").skip(1).collect()
}

#[test]
fn every_queue_type_of_gearmands_help_is_a_queue_type() {
    let Some(gearmand) = external::require(GEARMAND, "its --help lists the queue types") else {
        return;
    };
    let help = Command::new(gearmand).arg("--help").output().unwrap();
    let queues = gearmand_queue_types(&String::from_utf8_lossy(&help.stdout));
    assert!(queues.len() >= 5, "{queues:?}");
    for queue in queues.iter().filter(|q| *q != "libmemcached") {
        // What PostgreSQL and MySQL need to be configured at all.
        let argv = [
            "--check-args",
            "-q",
            queue,
            "--libpq-conninfo=host=x",
            "--mysql-db=q",
        ];
        let out = run_to_exit(&argv, &[]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "-q {queue}: {err}");
    }
}

/// Runs `PROGRAM --check-args --config-file FILE` for a file holding `text`.
fn accepts_config(program: &str, dir: &TempDir, n: usize, text: &str) -> bool {
    let path = dir.join(&format!("gearmand-{n}.conf"));
    std::fs::write(&path, text).unwrap();
    let path = path.to_str().unwrap();
    let argv = ["--check-args", "--config-file", path];
    if program == GEARMAND {
        return Command::new(GEARMAND)
            .args(argv)
            .output()
            .unwrap()
            .status
            .success();
    }
    run_to_exit(&argv, &[]).status.success()
}

#[test]
fn config_files_are_accepted_and_rejected_as_gearmand_does() {
    if external::require(GEARMAND, "the reference for its config file").is_none() {
        return;
    }
    let dir = TempDir::new();
    let cases = [
        ("--port=4799\n--verbose INFO\n", true),
        ("-p 4799 -L 127.0.0.1 -d\n", true),
        ("--listen\n127.0.0.1\n--job-retries=3 --exceptions\n", true),
        // A word that is not an option is ignored by both.
        ("port=4798\n", true),
        ("", true),
        ("--port=4799 --port=4797\n", false),
        ("--bogus\n", false),
        ("--check-args\n", false),
        ("--verbose=LOUD\n", false),
        ("--job-retries\n", false),
    ];
    for (n, (text, expected)) in cases.iter().enumerate() {
        assert_eq!(
            accepts_config(GEARMAND, &dir, n, text),
            *expected,
            "gearmand: {text:?}"
        );
        assert_eq!(
            accepts_config("gearboxd", &dir, n, text),
            *expected,
            "gearboxd: {text:?}"
        );
    }
    // A config file named but missing is an error for both.
    let missing = dir.join("missing.conf");
    let argv = ["--check-args", "--config-file", missing.to_str().unwrap()];
    assert!(!Command::new(GEARMAND)
        .args(argv)
        .output()
        .unwrap()
        .status
        .success());
    let out = run_to_exit(&argv, &[]);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("missing.conf"), "{err}");
}

/// The handle prefix of a background job submitted to `server`.
fn handle_prefix(server: &Gearboxd) -> String {
    let mut conn = server.connect();
    let handle = submit(&mut conn, SUBMIT_JOB_BG, "f", "u", b"x");
    handle.rsplit_once(':').unwrap().0.to_owned()
}

#[test]
fn the_config_file_has_its_effect_and_the_command_line_wins() {
    let dir = TempDir::new();
    let conf = dir.join("gearmand.conf");
    std::fs::write(
        &conf,
        "# gearmand's format\n--port=0 --listen=127.0.0.1\n--job-handle-prefix=H:conf  # ours\n",
    )
    .unwrap();
    let conf = conf.to_str().unwrap();
    let server = Gearboxd::start(&["--config-file", conf]);
    assert!(server.addr.ip().is_loopback(), "{}", server.addr);
    assert_eq!(handle_prefix(&server), "H:conf");
    let server = Gearboxd::start(&["--config-file", conf, "--job-handle-prefix", "H:cli"]);
    assert_eq!(handle_prefix(&server), "H:cli");
}

#[test]
fn ssl_without_its_files_is_an_error_and_protocol_http_serves_http() {
    let err = support::start_fails(&["--ssl", "--ssl-certificate", "/x.pem"]);
    assert!(err.contains("--ssl needs --ssl-key"), "{err}");
    let err = support::start_fails(&["--ssl", "--ssl-certificate", "/x.pem", "--ssl-key", "/k"]);
    assert!(err.contains("/x.pem"), "the missing file is named: {err}");
    let err = support::start_fails(&["--protocol=gopher"]);
    assert!(err.contains("unknown protocol module `gopher`"), "{err}");
    // `--protocol=http` (long form) turns the listener on, with no warning about --http-port.
    let mut server = Gearboxd::start(&[
        "-p",
        "0",
        "-L",
        "127.0.0.1",
        "--protocol=http",
        "--http-port=0",
    ]);
    let line = server.wait_for_stderr(|l| l.starts_with("gearboxd http listening on 127.0.0.1:"));
    let port: u16 = line.rsplit(':').next().unwrap().parse().unwrap();
    assert_ne!(port, 0);
    let err = server.stop_with(libc::SIGTERM);
    assert!(!err.contains("--http-port has no effect"), "{err}");
    // Alone, the companion flags do nothing in gearmand either: a warning, and gearboxd serves.
    let mut server = Gearboxd::start(&[
        "-p",
        "0",
        "-L",
        "127.0.0.1",
        "--http-port=8080",
        "--ssl-key=/k.pem",
    ]);
    let err = server.stop_with(libc::SIGTERM);
    assert!(
        err.contains("--http-port has no effect without -r http"),
        "{err}"
    );
    assert!(
        err.contains("--ssl-key has no effect without --ssl"),
        "{err}"
    );
}
