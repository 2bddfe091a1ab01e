//! ECHO, ERROR replies, and what happens to connections sending bad packets.

use bytes::Bytes;
use gearbox_proto::{Request, Response};

use crate::support_ext::{self, b, differential, Target, Transcript};

/// ECHO, and ERROR replies to packets a server must not accept.
#[tokio::test]
async fn echo_and_error_replies() {
    differential(|t: Target| async move {
        let mut tr = Transcript::default();
        let mut c = t.connect().await;
        tr.ask(
            "echo with NULs",
            &mut c,
            &Request::EchoReq {
                data: Bytes::from_static(b"\0\0a\0b\xff\0"),
            },
        )
        .await;
        tr.ask(
            "empty echo",
            &mut c,
            &Request::EchoReq { data: Bytes::new() },
        )
        .await;
        tr.ask(
            "status of unknown handle",
            &mut c,
            &Request::GetStatus {
                handle: b("H:nowhere:1"),
            },
        )
        .await;
        tr.ask(
            "unique status of unknown",
            &mut c,
            &Request::GetStatusUnique { unique: b("nope") },
        )
        .await;
        let unknown = b("H:nowhere:1");
        let work = [
            (
                "WORK_COMPLETE",
                Request::WorkComplete {
                    handle: unknown.clone(),
                    data: b("x"),
                },
            ),
            (
                "WORK_STATUS",
                Request::WorkStatus {
                    handle: unknown.clone(),
                    numerator: b("1"),
                    denominator: b("2"),
                },
            ),
            (
                "WORK_FAIL",
                Request::WorkFail {
                    handle: unknown.clone(),
                },
            ),
            (
                "WORK_DATA",
                Request::WorkData {
                    handle: unknown.clone(),
                    data: b("x"),
                },
            ),
            (
                "WORK_WARNING",
                Request::WorkWarning {
                    handle: unknown.clone(),
                    data: b("x"),
                },
            ),
            (
                "WORK_EXCEPTION",
                Request::WorkException {
                    handle: unknown.clone(),
                    data: b("x"),
                },
            ),
        ];
        // gearmand's texts differ by packet type.
        for (name, req, text) in [
            (
                work[0].0,
                work[0].1.clone(),
                "Job given in work result not found",
            ),
            (
                work[1].0,
                work[1].1.clone(),
                "Job given in work result not found",
            ),
            (
                work[2].0,
                work[2].1.clone(),
                "Job given in work result not found",
            ),
            (work[3].0, work[3].1.clone(), "Job does not exist on server"),
            (work[4].0, work[4].1.clone(), "Job does not exist on server"),
            (
                work[5].0,
                work[5].1.clone(),
                "An exception was received for a job that does not exist",
            ),
        ] {
            c.send(&req).await;
            let step = format!("{name} for an unknown handle");
            expect_error(&t, &mut tr, &step, &mut c, "JOB_NOT_FOUND", text).await;
        }
        // ALL_YOURS, response-only packet types (well formed) and `\0RES` magic: ERROR, and
        // the connection stays open; codes and texts match gearmand's.
        c.send(&Request::AllYours).await;
        expect_error(
            &t,
            &mut tr,
            "ALL_YOURS",
            &mut c,
            "INVALID_COMMAND",
            "Command not expected",
        )
        .await;
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
            expect_error(
                &t,
                &mut tr,
                &step,
                &mut c,
                "INVALID_COMMAND",
                "Command not expected",
            )
            .await;
        }
        c.send_raw(&raw_packet(b"\0RES", 16, b"x")).await;
        expect_error(
            &t,
            &mut tr,
            "\\0RES magic",
            &mut c,
            "INVALID_MAGIC",
            "Request magic expected",
        )
        .await;
        tr.quiet("still open", &mut c).await;
        c.send(&Request::SetClientId { id: b("me") }).await;
        tr.quiet("client id: no reply", &mut c).await;
        tr
    })
    .await;
}

/// Reads an ERROR, records its code, and checks its text against gearmand's as a known gap.
pub(crate) async fn expect_error(
    t: &Target,
    tr: &mut Transcript,
    step: &str,
    c: &mut gearbox_testkit::RawConn,
    code: &str,
    text: &str,
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

/// A packet with the given magic, type number and body.
pub(crate) fn raw_packet(magic: &[u8; 4], kind: u32, body: &[u8]) -> Vec<u8> {
    let mut v = magic.to_vec();
    v.extend_from_slice(&kind.to_be_bytes());
    v.extend_from_slice(&u32::try_from(body.len()).expect("small body").to_be_bytes());
    v.extend_from_slice(body);
    v
}

/// Bad binary input: gearmand closes without a word (unknown type, bad magic, missing
/// arguments); gearbox answers with an ERROR and keeps the connection when the stream is still
/// in step (unknown type, missing arguments), or closes after the ERROR when it is not (bad
/// magic). docs/differences.md, "unknown packet type" and "packet with too few arguments".
#[tokio::test]
async fn bad_packets_connection_handling() {
    differential(|t: Target| async move {
        // (name, bytes, gearbox's ERROR code, whether gearbox keeps the connection)
        let cases: [(&str, Vec<u8>, &str, bool); 4] = [
            (
                "unknown type 99",
                raw_packet(b"\0REQ", 99, b"x"),
                "INVALID_COMMAND",
                true,
            ),
            (
                "type 0",
                raw_packet(b"\0REQ", 0, b""),
                "INVALID_COMMAND",
                true,
            ),
            (
                "SUBMIT_JOB with one argument",
                raw_packet(b"\0REQ", 7, b"fn"),
                "INVALID_PACKET",
                true,
            ),
            (
                "magic \\0XYZ",
                raw_packet(b"\0XYZ", 16, b"x"),
                "INVALID_MAGIC",
                false,
            ),
        ];
        for (name, mut bytes, code, stays_open) in cases {
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
        Transcript::default()
    })
    .await;
}
