//! Short constructors for requests, shared by the test suites.

use bytes::Bytes;
use gearbox_proto::{Priority, Request, SubmitJob};

/// Bytes from a string.
pub fn b(s: &str) -> Bytes {
    Bytes::copy_from_slice(s.as_bytes())
}

/// A SUBMIT_JOB request (any priority, foreground or background).
pub fn submit(
    function: &str,
    unique: &str,
    data: &str,
    priority: Priority,
    background: bool,
) -> Request {
    Request::Submit(SubmitJob {
        function: b(function),
        unique: b(unique),
        data: b(data),
        priority,
        background,
    })
}
