//! Third-party programs used by interop and differential tests.
//!
//! A test that needs one calls [`require`]: on a developer machine a missing program skips the
//! test with a printed reason; when `CI=true` it fails the test, because CI installs them all.

use std::path::{Path, PathBuf};

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
        let msg = format!("{program} not found ({why}); install it as .ci/run does");
        if in_ci() {
            panic!("CI=true but {msg}");
        }
        eprintln!("SKIPPED: {msg}");
    }
    found
}
