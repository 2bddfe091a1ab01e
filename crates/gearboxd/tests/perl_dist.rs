//! The CPAN Gearman distribution's own test suite (`t/` of Gearman 2.004.015, Debian's
//! `libgearman-client-perl` source) against the real `gearboxd` binary: every one of its 24
//! test files must pass.
//!
//! The suite runs in the mode Debian's package build uses: `GEARMAND_PATH` names the server and
//! each test file starts its own (`gearboxd --port <free port> --listen 127.0.0.1 --log-file
//! /dev/stderr`, the port picked by the suite's Test::TCP). Its other mode, `GEARMAND_ADDR`,
//! cannot pass `t/13-fail.t` against any server: that file takes `job_servers()` in scalar
//! context, which in that mode is the count `1`, so it connects to `0.0.0.1:4730`.
//!
//! `.ci/install-deps` downloads and checks the suite into `$GEARBOX_THIRD_PARTY` (default
//! `/var/cache/gearbox-ci`). Without it, or without `prove`, the test is skipped with a
//! printed reason (a failure under `CI=true`).

mod support;

use std::path::PathBuf;
use std::time::Duration;

use gearbox_testkit::external::{in_ci, require, require_probed};
use gearbox_testkit::process::Proc;
use support::TempDir;

/// The distribution's directory name inside the third-party cache.
const DIST: &str = "Gearman-2.004.015";
/// Test files in the suite's `t/`.
const FILES: usize = 24;
/// Files that skip themselves unless `AUTHOR_TESTING` is set (as in Debian's build).
const AUTHOR_ONLY: [&str; 3] = ["t/09-connect.t", "t/18-ssl.t", "t/20-send-work-command.t"];
/// Modules the suite's files load besides the distribution's own (Debian's build-depends).
const PERL_MODULES: [&str; 6] = [
    "Test::TCP",
    "Test::Exception",
    "Test::Timer",
    "Proc::Guard",
    "File::Which",
    "List::MoreUtils",
];
/// The whole suite takes about a minute (t/14-sleep.t alone sleeps 15 s).
const SUITE_TIMEOUT: Duration = Duration::from_secs(300);

/// Where `.ci/install-deps` unpacked the distribution.
fn suite_dir() -> PathBuf {
    let cache = std::env::var_os("GEARBOX_THIRD_PARTY")
        .map_or_else(|| PathBuf::from("/var/cache/gearbox-ci"), PathBuf::from);
    cache.join(DIST)
}

/// Each `t/NAME.t` line of prove's output, with what prove says of it (`ok`, `skipped: ...`,
/// or the start of its failure, possibly empty).
fn results(prove_stdout: &str) -> Vec<(String, String)> {
    prove_stdout
        .lines()
        .filter(|l| l.starts_with("t/"))
        .filter_map(|l| {
            // `t/NAME.t ..... VERDICT`; the failure summary's `t/NAME.t   (Wstat ...)` lines
            // have no dot leader.
            let (file, rest) = l.split_once(' ')?;
            let verdict = rest.strip_prefix('.')?.trim_start_matches(['.', ' ']);
            file.ends_with(".t")
                .then(|| (file.to_owned(), verdict.trim().to_owned()))
        })
        .collect()
}

#[tokio::test]
async fn cpan_gearman_suite_passes_against_gearboxd() {
    let dir = suite_dir();
    if !dir.join("t").is_dir() {
        let why = format!("{} not found: run .ci/install-deps", dir.display());
        assert!(!in_ci(), "CI=true but {why}");
        eprintln!("SKIPPED: {why}");
        return;
    }
    let modules = PERL_MODULES.map(|m| format!("-M{m}"));
    let mut probe: Vec<&str> = modules.iter().map(String::as_str).collect();
    probe.extend(["-e", "1"]);
    let why = "Perl for the CPAN Gearman test suite";
    let lacking = |f: &gearbox_testkit::process::Finished| {
        format!(
            "perl lacks a module the suite uses (see .ci/install-deps): {}",
            f.stderr
        )
    };
    if require_probed("perl", why, &probe, lacking).await.is_none() {
        return;
    }
    let Some(prove) = require("prove", "runs the CPAN Gearman test suite") else {
        return;
    };
    let scratch = TempDir::new();
    let config = scratch.join("gearboxd.toml");
    std::fs::write(&config, "queue_type = \"builtin\"\n").expect("write config");

    let mut cmd = tokio::process::Command::new(prove);
    cmd.args(["-l", "t/"])
        .current_dir(&dir)
        .env("GEARMAND_PATH", env!("CARGO_BIN_EXE_gearboxd"))
        .env("GEARBOXD_CONFIG", &config)
        .env_remove("GEARMAND_ADDR")
        .env_remove("GEARMAND_PORT")
        .env_remove("AUTHOR_TESTING");
    let done = Proc::spawn_cmd(cmd).finish_within(SUITE_TIMEOUT).await;
    let shown = format!("prove said:\n{}\nstderr:\n{}", done.stdout, done.stderr);

    let results = results(&done.stdout);
    assert_eq!(results.len(), FILES, "{FILES} test files; {shown}");
    for (file, verdict) in &results {
        let passed = verdict == "ok"
            || (AUTHOR_ONLY.contains(&file.as_str()) && verdict.starts_with("skipped:"));
        assert!(passed, "{file}: {verdict}\n{shown}");
    }
    assert!(
        done.stdout.contains("All tests successful.") && done.status.success(),
        "{shown}"
    );
}
