//! Access rules in the core: each permission allowed and refused, first match, the default
//! without rules, the refusal when no rule matches, certificate names.

use std::sync::atomic::Ordering::Relaxed;

use gearbox_proto::ErrorCode;

use super::*;
use crate::access::{AccessPolicy, AccessRule};

const C3: ConnId = ConnId::new(3);

fn rule(name: &str, f: impl FnOnce(&mut AccessRule)) -> AccessRule {
    let mut r = AccessRule {
        name: Some(name.into()),
        ..AccessRule::default()
    };
    f(&mut r);
    r
}

fn strings(v: &[&str]) -> Vec<String> {
    v.iter().map(|s| s.to_string()).collect()
}

/// Rules: certificate `*.workers.test` may register for `img_*`; peers in 10.0.0.0/8 may
/// submit to `img_*` and read admin state; loopback may do everything.
fn policy() -> AccessPolicy {
    AccessPolicy::new(vec![
        rule("workers", |r| {
            r.cert = strings(&["*.workers.test"]);
            r.register = strings(&["img_*"]);
        }),
        rule("office", |r| {
            r.peer = strings(&["10.0.0.0/8"]);
            r.submit = strings(&["img_*"]);
            r.admin = Some("read".into());
        }),
        rule("local", |r| {
            r.peer = strings(&["127.0.0.0/8", "::1"]);
            r.submit = strings(&["*"]);
            r.register = strings(&["*"]);
            r.admin = Some("write".into());
        }),
    ])
    .unwrap()
}

fn harness(access: AccessPolicy) -> Harness {
    Harness::new(CoreConfig {
        access,
        ..CoreConfig::default()
    })
}

fn connect(t: &mut Harness, conn: ConnId, peer: &str, identity: &[&str]) {
    let info = ConnInfo {
        peer_ip: peer.into(),
        fd: conn.get() as i64,
        loopback: peer == "127.0.0.1",
        identity: strings(identity),
    };
    t.core.connect(conn, info);
}

fn denied(conn: ConnId, text: &str) -> Effect {
    send(conn, Response::error(ErrorCode::PermissionDenied, b(text)))
}

fn admin(t: &mut Harness, conn: ConnId, cmd: AdminCommand) -> String {
    t.core.admin(conn, cmd, T0, &mut t.out);
    match t.take().as_slice() {
        [Effect::Text(c, text)] if *c == conn => String::from_utf8_lossy(text).into_owned(),
        other => panic!("expected one admin reply, got {other:?}"),
    }
}

fn refusals(t: &Harness) -> String {
    let mut out = Vec::new();
    t.core
        .server_metrics()
        .render(&mut crate::metrics::Text::new(&mut out), T0);
    String::from_utf8(out)
        .unwrap()
        .lines()
        .filter(|l| l.starts_with("gearbox_access_denied_total{"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn without_rules_everything_is_allowed() {
    let mut t = harness(AccessPolicy::default());
    connect(&mut t, C1, "192.0.2.1", &[]);
    assert!(t
        .req(C1, Request::CanDo { function: b("any") }, T0)
        .is_empty());
    assert_eq!(
        t.req(C1, submit("any", "", true), T0),
        [send(C1, Response::JobCreated { handle: h(1) })]
    );
    assert_eq!(
        admin(
            &mut t,
            C1,
            AdminCommand::MaxQueue {
                function: b("any"),
                limits: [1; 3]
            }
        ),
        "OK\r\n"
    );
}

#[test]
fn a_submit_outside_the_granted_functions_is_refused_and_nothing_else_changes() {
    let mut t = harness(policy());
    connect(&mut t, C1, "10.1.2.3", &[]);
    assert_eq!(
        t.req(C1, submit("img_resize", "", true), T0),
        [send(C1, Response::JobCreated { handle: h(1) })]
    );
    assert_eq!(
        t.req(C1, submit("billing", "u", false), T0),
        [denied(C1, "permission denied: may not submit to billing")]
    );
    let epoch = Request::SubmitEpoch {
        function: b("billing"),
        unique: b(""),
        epoch: 1,
        data: b(""),
    };
    assert_eq!(
        t.req(C1, epoch, T0),
        [denied(C1, "permission denied: may not submit to billing")]
    );
    let reduce = Request::SubmitReduce {
        function: b("img_map"),
        unique: b(""),
        reducer: b("billing"),
        aggregator: b(""),
        data: b(""),
        background: true,
    };
    assert_eq!(
        t.req(C1, reduce, T0),
        [denied(C1, "permission denied: may not submit to billing")]
    );
    assert_eq!(t.core.job_count(), 1, "only the allowed job is held");
    assert!(t.core.function_stats(b"billing").is_none());
    // The connection still works.
    let echo = Request::EchoReq { data: b("hi") };
    assert_eq!(
        t.req(C1, echo, T0),
        [send(C1, Response::EchoRes { data: b("hi") })]
    );
    assert_eq!(
        refusals(&t),
        "gearbox_access_denied_total{what=\"submit\"} 3\n\
         gearbox_access_denied_total{what=\"register\"} 0\n\
         gearbox_access_denied_total{what=\"admin\"} 0"
    );
}

#[test]
fn a_worker_may_register_only_for_granted_functions_and_never_gets_other_jobs() {
    let mut t = harness(policy());
    connect(&mut t, C1, "127.0.0.1", &[]);
    connect(&mut t, C2, "10.9.9.9", &["w1.Workers.TEST"]);
    assert!(t
        .req(
            C2,
            Request::CanDo {
                function: b("img_a")
            },
            T0
        )
        .is_empty());
    let timeout = Request::CanDoTimeout {
        function: b("mail"),
        timeout: b("5"),
    };
    assert_eq!(
        t.req(C2, timeout, T0),
        [denied(C2, "permission denied: may not register for mail")]
    );
    t.req(C1, submit("mail", "", true), T0);
    assert_eq!(t.req(C2, Request::GrabJob, T0), [send(C2, Response::NoJob)]);
    assert_eq!(t.core.functions.by_name(b"mail").unwrap().workers.len(), 0);
    // The certificate rule matched first: this worker may not submit, though its address
    // is in the office network.
    assert_eq!(
        t.req(C2, submit("img_a", "", true), T0),
        [denied(C2, "permission denied: may not submit to img_a")]
    );
    assert!(refusals(&t).contains("{what=\"register\"} 1"));
}

#[test]
fn admin_read_is_allowed_and_write_refused_with_an_err_line() {
    let mut t = harness(policy());
    connect(&mut t, C1, "10.0.0.5", &[]);
    assert_eq!(admin(&mut t, C1, AdminCommand::Status), ".\n");
    assert!(admin(&mut t, C1, AdminCommand::Version).starts_with("OK "));
    for (cmd, name) in [
        (
            AdminCommand::MaxQueue {
                function: b("f"),
                limits: [1; 3],
            },
            "maxqueue",
        ),
        (AdminCommand::CancelJob { handle: b("H:t:1") }, "cancel+job"),
        (
            AdminCommand::CreateFunction { name: b("f") },
            "create+function",
        ),
        (AdminCommand::DropFunction { name: b("f") }, "drop+function"),
        (
            AdminCommand::Shutdown { graceful: true },
            "shutdown+graceful",
        ),
    ] {
        assert_eq!(
            admin(&mut t, C1, cmd),
            format!("ERR PERMISSION_DENIED permission+denied:+{name}+needs+admin+write+access\r\n")
        );
    }
    assert!(!t.core.is_draining(), "the refused shutdown did nothing");
    assert!(t.core.functions.by_name(b"f").is_none());
    // Unknown commands get their usual answer.
    assert_eq!(
        admin(&mut t, C1, AdminCommand::Unknown { command: b("x") }),
        "ERR UNKNOWN_COMMAND Unknown+server+commandx\r\n"
    );
    assert!(refusals(&t).contains("{what=\"admin\"} 5"));
}

#[test]
fn a_connection_no_rule_matches_may_do_nothing() {
    let mut t = harness(policy());
    connect(&mut t, C3, "192.0.2.1", &["someone.else.test"]);
    assert_eq!(
        t.req(C3, submit("img_a", "", false), T0),
        [denied(C3, "permission denied: may not submit to img_a")]
    );
    assert_eq!(
        t.req(
            C3,
            Request::CanDo {
                function: b("img_a")
            },
            T0
        ),
        [denied(C3, "permission denied: may not register for img_a")]
    );
    assert_eq!(
        admin(&mut t, C3, AdminCommand::Workers),
        "ERR PERMISSION_DENIED permission+denied:+workers+needs+admin+read+access\r\n"
    );
}

#[test]
fn loopback_write_access_still_runs_shutdown() {
    let mut t = harness(policy());
    connect(&mut t, C1, "127.0.0.1", &[]);
    t.core.admin(
        C1,
        AdminCommand::Shutdown { graceful: false },
        T0,
        &mut t.out,
    );
    let effects = t.take();
    assert!(
        effects.contains(&Effect::Shutdown { graceful: false }),
        "{effects:?}"
    );
    assert_eq!(
        t.core.server_metrics().error_packets.load(Relaxed),
        0,
        "nothing refused"
    );
}

#[test]
fn an_identity_proved_later_chooses_the_rule_again() {
    let mut t = harness(policy());
    connect(&mut t, C1, "10.9.9.9", &[]);
    assert_eq!(
        t.req(C1, submit("img_a", "", true), T0),
        [send(C1, Response::JobCreated { handle: h(1) })]
    );
    assert_eq!(
        t.req(
            C1,
            Request::CanDo {
                function: b("img_a")
            },
            T0
        ),
        [denied(C1, "permission denied: may not register for img_a")]
    );
    t.core.identify(C1, strings(&["w2.workers.test"]));
    assert!(t
        .req(
            C1,
            Request::CanDo {
                function: b("img_a")
            },
            T0
        )
        .is_empty());
    assert_eq!(
        t.req(C1, submit("img_a", "", true), T0),
        [denied(C1, "permission denied: may not submit to img_a")]
    );
}
