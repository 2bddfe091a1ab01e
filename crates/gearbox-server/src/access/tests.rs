//! The policy: first match, default allow, deny when unmatched, each permission.

use super::*;

fn policy(text: &str) -> AccessPolicy {
    #[derive(Deserialize)]
    struct File {
        access: AccessPolicy,
    }
    toml::from_str::<File>(text).expect("policy parses").access
}

const RULES: &str = r#"
[[access]]
name = "resizers"
cert = ["*.resize.example.com"]
register = ["resize_*"]

[[access]]
name = "office"
peer = ["10.0.0.0/8"]
submit = ["resize_*", "mail"]
admin = "read"

[[access]]
name = "ops"
peer = ["10.0.0.0/8", "127.0.0.1"]
submit = ["*"]
register = ["*"]
admin = "write"
"#;

fn ip(s: &str) -> Option<IpAddr> {
    Some(s.parse().unwrap())
}

#[test]
fn no_rules_allow_everything() {
    let g = AccessPolicy::default().resolve(&[], "192.0.2.1");
    assert!(g.may_submit(b"anything") && g.may_register(b"\xff\x00"));
    assert!(g.may_admin(AdminAccess::Write));
}

#[test]
fn the_first_matching_rule_wins() {
    let p = policy(RULES);
    // 10.1.2.3 matches both "office" and "ops": "office" comes first.
    let office = p.resolve_ip(&[], ip("10.1.2.3"));
    assert_eq!(office.rule(), "office");
    assert!(office.may_submit(b"resize_png") && office.may_submit(b"mail"));
    assert!(!office.may_submit(b"billing"));
    assert!(!office.may_register(b"resize_png"));
    assert!(office.may_admin(AdminAccess::Read) && !office.may_admin(AdminAccess::Write));
    let ops = p.resolve_ip(&[], ip("127.0.0.1"));
    assert_eq!(ops.rule(), "ops");
    assert!(ops.may_submit(b"billing") && ops.may_admin(AdminAccess::Write));
}

#[test]
fn identities_are_matched_before_the_peer_rules() {
    let p = policy(RULES);
    let names = vec!["w7.Resize.Example.com".to_string()];
    let g = p.resolve_ip(&names, ip("10.9.9.9"));
    assert_eq!(g.rule(), "resizers");
    assert!(g.may_register(b"resize_png") && !g.may_register(b"mail"));
    assert!(!g.may_submit(b"resize_png"), "not granted means refused");
    assert!(!g.may_admin(AdminAccess::Read));
    assert!(g.may_admin(AdminAccess::Nothing));
}

#[test]
fn a_peer_no_rule_matches_may_do_nothing() {
    let g = policy(RULES).resolve(&[], "192.0.2.1");
    assert!(!g.may_submit(b"mail") && !g.may_register(b"mail"));
    assert!(!g.may_admin(AdminAccess::Read));
    let g = policy(RULES).resolve(&[], "not an address");
    assert!(!g.may_submit(b"mail"));
}

#[test]
fn function_patterns_are_globs_on_the_whole_name_and_case_sensitive() {
    let p = policy("[[access]]\nsubmit = [\"a?c\", \"x/*\", \"{p,q}[0-9]\"]\n");
    let g = p.resolve(&[], "::1");
    assert_eq!(g.rule(), "rule 1");
    for yes in ["abc", "x/y/z", "p1", "q9"] {
        assert!(g.may_submit(yes.as_bytes()), "{yes}");
    }
    for no in ["ABC", "abcd", "zabc", "x", "p", "r1"] {
        assert!(!g.may_submit(no.as_bytes()), "{no}");
    }
}

#[test]
fn the_rules_are_written_back_as_read() {
    let p = policy(RULES);
    let again: AccessPolicy = AccessPolicy::new(Vec::from(p.clone())).unwrap();
    assert_eq!(again, p);
    assert_eq!(p.rules().len(), 3);
    assert_eq!(p.rules()[1].admin.as_deref(), Some("read"));
}

#[test]
fn a_bad_rule_fails_the_whole_file_naming_it() {
    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct File {
        access: AccessPolicy,
    }
    let e = toml::from_str::<File>("[[access]]\nname = \"ops\"\nadmin = \"all\"\n").unwrap_err();
    assert!(
        e.to_string().contains("access rule `ops`: admin: `all`"),
        "{e}"
    );
}
