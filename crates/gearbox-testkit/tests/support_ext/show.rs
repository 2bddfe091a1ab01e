//! Packets and admin replies as comparable text, with what legitimately differs between
//! servers normalised: the host part of job handles, the `workers` fd column, listing order.

use bytes::{Bytes, BytesMut};
use gearbox_proto::{PacketType, Response, HEADER_LEN};

/// `H:<host>:<n>` (or `H:test:<n>`) becomes `H:<n>`; anything else is returned as is.
pub fn norm_handle(h: &[u8]) -> String {
    let s = String::from_utf8_lossy(h);
    if let Some(rest) = s.strip_prefix("H:") {
        if let Some((_, n)) = rest.rsplit_once(':') {
            if !n.is_empty() && n.bytes().all(|c| c.is_ascii_digit()) {
                return format!("H:{n}");
            }
        }
    }
    s.into_owned()
}

/// Replaces every `H:<host>:<digits>` in a text with `H:<digits>`.
pub fn norm_handles_in(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find("H:") {
        out.push_str(&rest[..pos]);
        let tail = &rest[pos..];
        let end = tail.find(['\t', '\n', ' ']).unwrap_or(tail.len());
        out.push_str(&norm_handle(&tail.as_bytes()[..end]));
        rest = &tail[end..];
    }
    out.push_str(rest);
    out
}

/// Normalises an admin reply for comparison: handles normalised, the `workers` fd column
/// replaced by `FD`, and listing lines sorted (gearmand lists in hash-table order).
pub fn normalise_admin(reply: &str) -> String {
    let text = norm_handles_in(reply);
    let Some(body) = text.strip_suffix(".\n") else {
        return text;
    };
    let mut lines: Vec<String> = body
        .lines()
        .map(|l| match l.split_once(' ') {
            Some((fd, rest))
                if !fd.is_empty()
                    && fd.bytes().all(|c| c.is_ascii_digit())
                    && (rest.contains(" : ") || rest.ends_with(" :")) =>
            {
                format!("FD {rest}")
            }
            _ => l.to_string(),
        })
        .collect();
    lines.sort();
    let mut s = String::new();
    for l in lines {
        s.push_str(&l);
        s.push('\n');
    }
    s.push_str(".\n");
    s
}

/// A response as text: its type's protocol name, then its arguments as on the wire, the job
/// handle (the first argument of most types) normalised and bare, the flags and the client
/// count of the status answers bare, everything else quoted. E.g.
/// `JOB_ASSIGN_UNIQ H:6 "dash" "-" "PAY"`, `STATUS_RES H:1 1 1 "0" "0"`.
pub fn show(r: &Response) -> String {
    use PacketType::*;
    let kind = r.packet_type();
    let mut wire = BytesMut::new();
    r.encode(&mut wire);
    let body = &wire[HEADER_LEN..];
    let mut shown = kind.name().to_string();
    if kind.arg_count() == 0 {
        return shown;
    }
    for (i, arg) in body.splitn(kind.arg_count(), |c| *c == 0).enumerate() {
        let arg = match (kind, i) {
            (ECHO_RES | ERROR | OPTION_RES | STATUS_RES_UNIQUE, 0) => quoted(arg),
            (_, 0) => norm_handle(arg),
            (STATUS_RES, 1 | 2) | (STATUS_RES_UNIQUE, 1 | 2 | 5) => {
                String::from_utf8_lossy(arg).into_owned()
            }
            _ => quoted(arg),
        };
        shown.push(' ');
        shown.push_str(&arg);
    }
    shown
}

fn quoted(b: &[u8]) -> String {
    format!("{:?}", String::from_utf8_lossy(b))
}

/// An ERROR packet's code only (gearmand's texts are free-form; clients read the code).
pub fn error_code(r: &Response) -> String {
    match r {
        Response::Error { code, .. } => format!("ERROR {}", String::from_utf8_lossy(code)),
        other => show(other),
    }
}

/// The handle of a JOB_CREATED (panics on anything else).
pub fn handle_of(r: &Response) -> Bytes {
    match r {
        Response::JobCreated { handle } => handle.clone(),
        other => panic!("expected JOB_CREATED, got {other:?}"),
    }
}
