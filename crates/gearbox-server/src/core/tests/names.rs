//! Names with a line break are refused: a newline in a function name or a client id would
//! forge lines in `status`, `workers` and the other admin replies (and end gearadmin's read
//! early). A tab is allowed: Perl's Gearman::Client joins its `prefix` with one.

use gearbox_proto::{AdminCommand, ErrorCode, Request, Response};

use super::{b, submit, Harness, C1, C2, T0};
use crate::core::{CoreConfig, Effect};

fn invalid(effects: &[Effect]) -> bool {
    matches!(effects, [Effect::Send(_, Response::Error { code, .. })]
        if code.as_ref() == ErrorCode::InvalidArguments.as_bytes())
}

fn status(t: &mut Harness) -> String {
    t.core.admin(C1, AdminCommand::Status, T0, &mut t.out);
    match &t.take()[..] {
        [Effect::Text(_, text)] => String::from_utf8_lossy(text).into_owned(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn line_breaks_in_names_are_refused_and_admin_output_stays_whole() {
    let mut t = Harness::two(CoreConfig::default());
    let forged = "real\t0\t0\t0\n.\nfake";
    let can_do = Request::CanDo {
        function: b(forged),
    };
    assert!(invalid(&t.req(C2, can_do, T0)), "CAN_DO");
    assert!(
        invalid(&t.req(C1, submit(forged, "", true), T0)),
        "SUBMIT_JOB_BG"
    );
    assert!(
        invalid(&t.req(C1, submit("a\rb", "", false), T0)),
        "SUBMIT_JOB"
    );
    let client_id = Request::SetClientId { id: b("w\n.\n") };
    assert!(invalid(&t.req(C2, client_id, T0)), "SET_CLIENT_ID");
    // Nothing was registered or queued: the listing has no forged line.
    assert_eq!(status(&mut t), ".\n");
    // Other bytes are fine: spaces, UTF-8, punctuation, and the tab of a Perl prefix.
    let fine = Request::CanDo {
        function: b("resize image/ü"),
    };
    assert!(t.req(C2, fine, T0).is_empty());
    assert_eq!(status(&mut t), "resize image/ü\t0\t0\t1\n.\n");
    let prefixed = Request::CanDo {
        function: b("app1\tresize"),
    };
    assert!(t.req(C2, prefixed, T0).is_empty());
}
