//! ECHO, ERROR replies, and what happens to connections sending bad packets.

use bytes::Bytes;
use gearbox_proto::{Request, Response};

use crate::support_ext::{
    self, b, differential, get_status, get_status_unique, raw_packet, Target, Transcript, Work,
};

/// ECHO, and ERROR replies to packets a server must not accept.
#[tokio::test]
async fn echo_and_error_replies() {
    differential(|t: Target, mut tr: Transcript| async move {
        let mut c = t.connect().await;
        let echo = |data: &'static [u8]| Request::EchoReq {
            data: Bytes::from_static(data),
        };
        let steps = [
            ("echo with NULs", echo(b"\0\0a\0b\xff\0")),
            ("empty echo", echo(b"")),
            ("status of unknown handle", get_status(&b("H:nowhere:1"))),
            ("unique status of unknown", get_status_unique("nope")),
        ];
        tr.ask_each(&mut c, &steps).await;
        // Results for a job the server does not know; gearmand's texts differ by packet type.
        let not_found = "Job given in work result not found";
        let no_such_job = "Job does not exist on server";
        let exception = "An exception was received for a job that does not exist";
        for (work, text) in [
            (Work::Complete("x"), not_found),
            (Work::Status("1", "2"), not_found),
            (Work::Fail, not_found),
            (Work::Data("x"), no_such_job),
            (Work::Warning("x"), no_such_job),
            (Work::Exception("x"), exception),
        ] {
            let req = work.request(&b("H:nowhere:1"));
            c.send(&req).await;
            let step = format!("{} for an unknown handle", req.packet_type().name());
            expect_error(&t, &mut tr, &step, &mut c, ("JOB_NOT_FOUND", text)).await;
        }
        // ALL_YOURS, response-only packet types (well formed) and `\0RES` magic: ERROR, and
        // the connection stays open; codes and texts match gearmand's.
        let not_expected = ("INVALID_COMMAND", "Command not expected");
        c.send(&Request::AllYours).await;
        expect_error(&t, &mut tr, "ALL_YOURS", &mut c, not_expected).await;
        for (name, kind, body) in [
            ("NOOP", 6u32, &b""[..]),
            ("JOB_CREATED", 8, b"H:x:1"),
            ("NO_JOB", 10, b""),
            ("ECHO_RES", 17, b"x"),
            ("ERROR", 19, b"A\0b"),
            ("OPTION_RES", 27, b"exceptions"),
            ("JOB_ASSIGN", 11, b"H:x:1\0f\0d"),
        ] {
            c.send_raw(&raw_packet(b"\0REQ", kind, body)).await;
            let step = format!("{name} sent to the server");
            expect_error(&t, &mut tr, &step, &mut c, not_expected).await;
        }
        c.send_raw(&raw_packet(b"\0RES", 16, b"x")).await;
        let bad_magic = ("INVALID_MAGIC", "Request magic expected");
        expect_error(&t, &mut tr, "\\0RES magic", &mut c, bad_magic).await;
        tr.quiet("still open", &mut c).await;
        c.send(&Request::SetClientId { id: b("me") }).await;
        tr.quiet("client id: no reply", &mut c).await;
        tr
    })
    .await;
}

/// Reads an ERROR, records its code, and checks its text against gearmand's `(code, text)`.
pub(crate) async fn expect_error(
    t: &Target,
    tr: &mut Transcript,
    step: &str,
    c: &mut gearbox_testkit::RawConn,
    (code, text): (&str, &str),
) {
    match c.recv().await {
        Response::Error {
            code: got,
            text: got_text,
        } => {
            tr.push(step, format!("ERROR {}", String::from_utf8_lossy(&got)));
            assert_eq!(got, code.as_bytes(), "{}: {step}", t.name());
            t.expect_same(
                &format!("{step}: ERROR text"),
                &String::from_utf8_lossy(&got_text),
                text,
            );
        }
        other => panic!("{}: {step}: expected ERROR {code}, got {other:?}", t.name()),
    }
}

/// Bad binary input: gearmand closes without a word (unknown type, bad magic, missing
/// arguments); gearbox answers with an ERROR and keeps the connection when the stream is still
/// in step (unknown type, missing arguments), or closes after the ERROR when it is not (bad
/// magic). docs/differences.md, "unknown packet type" and "packet with too few arguments".
#[tokio::test]
async fn bad_packets_connection_handling() {
    differential(|t: Target, tr: Transcript| async move {
        // (name, bytes, gearbox's ERROR code); gearbox keeps the connection unless the stream
        // is out of step (bad magic).
        let req = |kind, body: &'static [u8]| raw_packet(b"\0REQ", kind, body);
        let xyz = raw_packet(b"\0XYZ", 16, b"x");
        let cases = [
            ("unknown type 99", req(99, b"x"), "INVALID_COMMAND"),
            ("type 0", req(0, b""), "INVALID_COMMAND"),
            ("SUBMIT_JOB, one argument", req(7, b"fn"), "INVALID_PACKET"),
            ("magic \\0XYZ", xyz, "INVALID_MAGIC"),
        ];
        for (name, mut bytes, code) in cases {
            let stays_open = code != "INVALID_MAGIC";
            let mut c = t.connect().await;
            // An ECHO_REQ right behind: gearmand waits for more bytes after a packet with too
            // few arguments, then closes; the ECHO_RES shows whether the connection survived.
            bytes.extend_from_slice(&raw_packet(b"\0REQ", 16, b"after"));
            c.send_raw(&bytes).await;
            if t.is_gearbox() {
                let r = c.recv().await;
                assert_eq!(
                    support_ext::error_code(&r),
                    format!("ERROR {code}"),
                    "gearbox: {name}"
                );
                if stays_open {
                    assert_eq!(
                        c.recv().await,
                        Response::EchoRes { data: b("after") },
                        "gearbox: {name}"
                    );
                    c.assert_quiet().await;
                } else {
                    assert_eq!(
                        c.recv_or_close().await,
                        None,
                        "gearbox: {name}: closed after the ERROR"
                    );
                }
            } else {
                assert_eq!(
                    c.read_to_close().await,
                    b"",
                    "gearmand: {name}: closed without a reply"
                );
            }
        }
        tr
    })
    .await;
}
