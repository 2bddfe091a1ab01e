//! The hardened configuration of `docs/security.md` is one `gearboxd` accepts: its keys exist,
//! its rules compile, and with real certificate files in place of its paths it passes
//! `gearboxd --check-args` (which reads the TLS files and checks the store address).

mod support;

use gearbox_testkit::tls::TestPki;
use support::{run_to_exit, TempDir};

const DOC: &str = include_str!("../../../docs/security.md");

/// The first TOML block after the heading `## A hardened configuration`.
fn hardened_block() -> &'static str {
    let section = DOC
        .split_once("## A hardened configuration")
        .expect("the section is in docs/security.md")
        .1;
    let start = section.find("```toml\n").expect("a toml block") + "```toml\n".len();
    let len = section[start..].find("```").expect("the block's end");
    &section[start..start + len]
}

#[test]
fn the_hardened_configuration_passes_check_args() {
    let pki = TestPki::new();
    let dir = TempDir::new();
    let password = dir.join("store-password");
    std::fs::write(&password, "s3cret/@%\n").unwrap();
    let path = |p: &std::path::Path| p.to_str().unwrap().to_owned();
    let text = hardened_block()
        .replace("/etc/gearbox/tls/server.pem", &path(&pki.server.cert))
        .replace("/etc/gearbox/tls/server.key", &path(&pki.server.key))
        .replace("/etc/gearbox/tls/clients-ca.pem", &path(&pki.ca))
        .replace("/etc/gearbox/tls/db-ca.pem", &path(&pki.ca))
        .replace("/etc/gearbox/store-password", &path(&password));
    assert!(
        !text.contains("= \"/etc/gearbox"),
        "a path left unreplaced:\n{text}"
    );
    let config = dir.join("gearboxd.toml");
    std::fs::write(&config, &text).unwrap();
    let out = run_to_exit(&["--check-args", "--config", config.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}\n{stderr}");
    assert!(!stderr.contains("s3cret"), "{stderr}");

    // The check is real: a rule with a bad admin level is refused, naming the rule.
    std::fs::write(
        &config,
        text.replace("admin = \"write\"", "admin = \"all\""),
    )
    .unwrap();
    let out = run_to_exit(&["--check-args", "--config", config.to_str().unwrap()], &[]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("operators"), "{stderr}");
}
