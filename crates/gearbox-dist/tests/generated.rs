//! The generated man pages and completions, checked with the programs that read them:
//! `man` (groff) renders every page without a warning and shows every flag, and bash's
//! completion of a partial flag or subcommand gives the real one; zsh and fish parse theirs.

use std::path::Path;
use std::process::Command;

use gearbox_dist::{completions, gearbox_command, gearboxd_command, man_pages, Shell};
use gearbox_testkit::external::require;

/// Every long flag of `cmd` (help and version included), as `--name`.
fn long_flags(cmd: &clap::Command) -> Vec<String> {
    let mut cmd = cmd.clone();
    cmd.build();
    cmd.get_arguments()
        .filter_map(|a| a.get_long())
        .map(|l| format!("--{l}"))
        .collect()
}

/// Renders a page with `man`, returning the plain text; fails on any groff warning.
fn render(man: &Path, page: &Path) -> String {
    let out = Command::new(man)
        .args(["--warnings=all", "-l"])
        .arg(page)
        .env("MANWIDTH", "200")
        .env("MAN_KEEP_FORMATTING", "0")
        .env("MANPAGER", "cat")
        .env("PAGER", "cat")
        .output()
        .unwrap();
    assert!(out.status.success(), "man {page:?}: {out:?}");
    let warnings = String::from_utf8_lossy(&out.stderr);
    assert!(warnings.trim().is_empty(), "{page:?}: {warnings}");
    // Strip overstrike (bold/underline) so the text can be searched.
    let col = Command::new("col")
        .arg("-b")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    col.stdin.as_ref().unwrap().write_all(&out.stdout).unwrap();
    let plain = col.wait_with_output().unwrap();
    String::from_utf8(plain.stdout).unwrap()
}

#[test]
fn man_pages_render_cleanly_and_list_every_flag() {
    let Some(man) = require("man", "renders the generated man pages") else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let pages = man_pages(dir.path()).unwrap();
    let name = |p: &Path| p.file_name().unwrap().to_str().unwrap().to_owned();
    let gearbox = gearbox_command();
    let mut expected: Vec<String> = vec!["gearboxd.8".into(), "gearbox.1".into()];
    expected.extend(
        gearbox
            .get_subcommands()
            .map(|s| format!("gearbox-{}.1", s.get_name())),
    );
    assert_eq!(pages.iter().map(|p| name(p)).collect::<Vec<_>>(), expected);

    let text = render(&man, &dir.path().join("gearboxd.8"));
    assert!(text.contains("gearboxd(8)"), "{text}");
    let flags = long_flags(&gearboxd_command());
    assert!(flags.len() > 40, "{flags:?}");
    for flag in flags {
        assert!(text.contains(&flag), "gearboxd.8 lacks {flag}");
    }
    for sub in gearbox.get_subcommands() {
        let page = dir.path().join(format!("gearbox-{}.1", sub.get_name()));
        let text = render(&man, &page);
        for flag in long_flags(sub) {
            assert!(text.contains(&flag), "{page:?} lacks {flag}");
        }
    }
    let text = render(&man, &dir.path().join("gearbox.1"));
    for sub in gearbox.get_subcommands() {
        assert!(
            text.contains(&format!("gearbox-{}(1)", sub.get_name())),
            "{text}"
        );
    }
}

/// What bash's completion function for `bin` offers for the words typed so far.
fn bash_complete(bash: &Path, script: &Path, words: &[&str]) -> Vec<String> {
    let line = words.join(" ");
    let program = format!(
        "source {script:?}; COMP_WORDS=({line}); COMP_CWORD={cword}; COMP_LINE={line:?}; \
         COMP_POINT=${{#COMP_LINE}}; f=$(complete -p {bin} | sed -E 's/.*-F ([^ ]+).*/\\1/'); \
         $f {bin} {cur:?} {prev:?}; printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        cword = words.len() - 1,
        bin = words[0],
        cur = words[words.len() - 1],
        prev = words[words.len() - 2],
    );
    let out = Command::new(bash)
        .args(["--noprofile", "--norc", "-c", &program])
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| l.trim().to_owned())
        .collect()
}

#[test]
fn bash_completes_flags_and_subcommands() {
    let Some(bash) = require("bash", "runs the generated bash completion") else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    completions(root.path()).unwrap();
    let script = |bin: &str| root.path().join(Shell::Bash.install_path(bin));
    let offered = bash_complete(&bash, &script("gearboxd"), &["gearboxd", "--queue-t"]);
    assert_eq!(offered, ["--queue-type"]);
    let offered = bash_complete(&bash, &script("gearbox"), &["gearbox", "sub"]);
    assert_eq!(offered, ["submit"]);
    let offered = bash_complete(&bash, &script("gearbox"), &["gearbox", "submit", "--backg"]);
    assert_eq!(offered, ["--background"]);
}

#[test]
fn zsh_and_fish_parse_their_completions() {
    let root = tempfile::tempdir().unwrap();
    completions(root.path()).unwrap();
    for (shell, program, check) in [
        (Shell::Zsh, "zsh", "-n"),
        (Shell::Fish, "fish", "--no-execute"),
    ] {
        let Some(path) = require(program, "checks the generated completion parses") else {
            continue;
        };
        for bin in ["gearboxd", "gearbox"] {
            let script = root.path().join(shell.install_path(bin));
            let out = Command::new(&path)
                .arg(check)
                .arg(&script)
                .output()
                .unwrap();
            assert!(out.status.success(), "{program} {script:?}: {out:?}");
        }
    }
}
