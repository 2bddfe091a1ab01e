//! gearmand's Tokyo Cabinet queue: `-q libtokyocabinet` stops the start-up with the way to
//! move the queue, and that way works: `contrib/tokyocabinet-to-gearman` reads a Tokyo Cabinet
//! file in gearmand's record format with the real `tcamgr` (Debian's tokyocabinet-bin) and
//! resubmits its jobs to gearboxd. Missing programs print SKIPPED (a failure with CI=true).

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use gearbox_testkit::external::require;
use support::jobs::{run_all, show_jobs, stop};
use support::{start_fails, Gearboxd, TempDir};

/// The migration script, from the repository's `contrib/`.
fn script() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../contrib/tokyocabinet-to-gearman")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Writes one record as gearmand's libtokyocabinet queue does: key `<function>-<unique>`,
/// value `<function>\0<unique>\0<priority digit><when>\0<data>`.
fn put(
    tcamgr: &Path,
    file: &Path,
    function: &str,
    unique: &str,
    priority: u8,
    when: u64,
    data: &[u8],
) {
    let key = format!("{function}-{unique}");
    let mut value = format!("{function}\0{unique}\0{priority}{when}\0").into_bytes();
    value.extend_from_slice(data);
    let status = Command::new(tcamgr)
        .args(["put", "-sx"])
        .arg(file)
        .args([hex(key.as_bytes()), hex(&value)])
        .status()
        .expect("run tcamgr");
    assert!(status.success(), "tcamgr put");
}

#[test]
fn libtokyocabinet_is_refused_with_the_way_to_move_the_queue() {
    let err = start_fails(&["-q", "libtokyocabinet", "--libtokyocabinet-file", "/q.tch"]);
    for part in [
        "not supported",
        "SQLite",
        "Moving a Tokyo Cabinet queue",
        "contrib/",
    ] {
        assert!(err.contains(part), "{part}: {err}");
    }
}

#[test]
fn the_contrib_script_moves_a_tokyo_cabinet_queue_to_gearboxd() {
    let why = "Tokyo Cabinet's tools (apt-get install tokyocabinet-bin)";
    let Some(tcamgr) = require("tcamgr", why) else {
        return;
    };
    let Some(python) = require("python3", "the migration script's interpreter") else {
        return;
    };
    let dir = TempDir::new();
    let file = dir.join("queue.tch");
    put(&tcamgr, &file, "resize", "r-1", 1, 0, b"normal\0\xff");
    put(&tcamgr, &file, "resize", "r-2", 0, 0, b"high");
    put(&tcamgr, &file, "resize", "r-3", 2, 0, b"low");
    // Scheduled (SUBMIT_JOB_EPOCH) for 2033: queued, not run now.
    put(
        &tcamgr,
        &file,
        "report",
        "later",
        1,
        2_000_000_000,
        b"epoch",
    );

    let server = Gearboxd::start_in(dir.path(), &["-p", "0", "-L", "127.0.0.1"]);
    let dry = Command::new(&python)
        .arg(script())
        .args(["--dry-run", "--tcamgr"])
        .arg(&tcamgr)
        .arg(&file)
        .output()
        .expect("run the script");
    let text = String::from_utf8_lossy(&dry.stdout);
    assert!(dry.status.success() && text.contains("4 jobs"), "{text}");
    assert!(show_jobs(&server).is_empty(), "a dry run submits nothing");

    let out = Command::new(&python)
        .arg(script())
        .args(["--server", &server.addr.to_string(), "--tcamgr"])
        .arg(&tcamgr)
        .arg(&file)
        .output()
        .expect("run the script");
    let text = String::from_utf8_lossy(&out.stdout);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}{err}");
    assert!(text.contains("4 jobs submitted"), "{text}");
    assert_eq!(show_jobs(&server).len(), 4);
    let ran = run_all(&server, "resize");
    let got: Vec<_> = ran
        .iter()
        .map(|a| (a.unique.as_str(), &a.data[..]))
        .collect();
    let expected: Vec<(&str, &[u8])> =
        vec![("r-2", b"high"), ("r-1", b"normal\0\xff"), ("r-3", b"low")];
    assert_eq!(got, expected, "all jobs, by priority, binary data intact");
    assert!(
        run_all(&server, "report").is_empty(),
        "the epoch job waits for its time"
    );
    assert_eq!(show_jobs(&server).len(), 1);
    stop(server);
}
