//! Third-party programs used by interop and differential tests.
//!
//! A test that needs one calls [`require`] (or [`require_probed`] for an interpreter that must
//! also have a library): on a developer machine a missing program skips the test with a
//! printed reason; when `CI=true` it fails the test, because CI installs them all.

use std::path::{Path, PathBuf};

use crate::process::Finished;

/// Whether we run under CI (`CI=true`), where nothing may be skipped.
pub fn in_ci() -> bool {
    std::env::var("CI")
        .map(|v| v == "true" || v == "1")
        .unwrap_or(false)
}

/// Finds `program` (an absolute path or a name on `PATH`). Returns `None`, after printing why,
/// when it is missing on a developer machine; panics when it is missing under CI.
pub fn require(program: &str, why: &str) -> Option<PathBuf> {
    let found = if Path::new(program).is_absolute() {
        Some(PathBuf::from(program)).filter(|p| p.exists())
    } else {
        std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(program))
                .find(|p| p.exists())
        })
    };
    if found.is_none() {
        skip(&format!(
            "{program} not found ({why}); install it as .ci/run does"
        ));
    }
    found
}

/// Finds `program` as [`require`] does, then runs it with `probe` (e.g. `["-e", "use Foo"]`)
/// to check that it has what the test needs. When the probe fails, `lacking` says what is
/// missing (given the probe's output) and the test is skipped, or fails under CI.
pub async fn require_probed(
    program: &str,
    why: &str,
    probe: &[&str],
    lacking: impl FnOnce(&Finished) -> String,
) -> Option<PathBuf> {
    let path = require(program, why)?;
    let probed = crate::process::run(&path, probe, b"").await;
    if probed.status.success() {
        return Some(path);
    }
    skip(&lacking(&probed));
    None
}

/// Prints why a test is skipped, or fails it under CI.
fn skip(msg: &str) {
    assert!(!in_ci(), "CI=true but {msg}");
    eprintln!("SKIPPED: {msg}");
}
