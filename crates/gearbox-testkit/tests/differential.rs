//! Differential tests: the same scenario against Debian's real gearmand 1.1.20 and against
//! gearbox, comparing every admin reply and every packet clients and workers receive.
//!
//! What legitimately differs is normalised before comparing: the host part of job handles
//! (`H:<host>:N` -> `H:N`), the file-descriptor column of `workers`, and the order of listing
//! lines (gearmand lists in hash-table order). Where gearbox deliberately behaves differently,
//! the scenario says so in a comment and asserts each server's documented behaviour with
//! `Target::expect_differs` instead of comparing; everything else goes through
//! `Target::expect_same`, which asserts gearmand's observed bytes from both servers.
//!
//! Each scenario starts both servers fresh, so their handle counters agree. Without gearmand
//! installed the tests skip with a printed reason (and fail under `CI=true`).

mod support_ext;

// The scenarios, by subject. Explicit paths: this file is a crate root, so a plain `mod jobs;`
// would pick up the sibling test binary `tests/jobs.rs`.
#[path = "differential/admin.rs"]
mod admin;
#[path = "differential/deliberate.rs"]
mod deliberate;
#[path = "differential/errors.rs"]
mod errors;
#[path = "differential/jobs.rs"]
mod jobs;
#[path = "differential/submissions.rs"]
mod submissions;
#[path = "differential/uniques.rs"]
mod uniques;
