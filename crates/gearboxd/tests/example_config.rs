//! `gearboxd.example.toml` at the repository root parses, documents every key, and its values
//! are the real defaults.

use gearboxd::config_file::{BinaryKeys, FileConfig};
use gearboxd::{Args, Settings};

const EXAMPLE: &str = include_str!("../../../gearboxd.example.toml");

/// `key = value` lines, with or without a leading `# `.
fn documented_lines() -> Vec<(String, bool)> {
    EXAMPLE
        .lines()
        .filter_map(|l| {
            let (text, active) = match l.strip_prefix("# ") {
                Some(rest) => (rest, false),
                None => (l, true),
            };
            let key = text.split_once(" = ")?.0;
            (key.starts_with(|c: char| c.is_ascii_lowercase())
                && key
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_'))
            .then(|| (text.to_owned(), active))
        })
        .collect()
}

#[test]
fn example_values_are_the_defaults() {
    let file = FileConfig::parse(EXAMPLE).expect("example parses");
    let from_example = Settings::from_parts(Args::default(), file).unwrap();
    let built_in = Settings::from_parts(Args::default(), FileConfig::default()).unwrap();
    assert_eq!(from_example, built_in);
}

#[test]
fn commented_out_examples_are_valid_keys() {
    for (line, active) in documented_lines() {
        if !active {
            FileConfig::parse(&line).unwrap_or_else(|e| panic!("`{line}`: {e}"));
        }
    }
}

#[test]
fn every_key_is_documented() {
    // The server's Config rejects unknown keys and lists the valid ones in its message.
    let probe = FileConfig::parse("not_a_key = 1").unwrap_err();
    let listed = probe
        .split("expected one of")
        .nth(1)
        .expect("serde lists the fields");
    let keys: Vec<&str> = listed
        .split(',')
        .map(|k| k.trim().trim_matches('`'))
        .collect();
    for name in BinaryKeys::NAMES {
        assert!(keys.contains(&name), "{name} missing from {keys:?}");
    }
    let documented: Vec<String> = documented_lines()
        .into_iter()
        .map(|(l, _)| l.split(" = ").next().unwrap().to_owned())
        .collect();
    for key in keys {
        assert!(
            documented.iter().any(|d| d == key),
            "gearboxd.example.toml does not document `{key}`"
        );
    }
}
