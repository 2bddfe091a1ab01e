//! `gearboxd.example.toml` at the repository root parses, documents every key of
//! [`Options`], and its values are the real defaults.

use gearboxd::{config_file, Args, Options, Settings};

const EXAMPLE: &str = include_str!("../../../gearboxd.example.toml");

/// `key = value` lines, with or without a leading `# `, and whether they are active.
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

fn key_of(line: &str) -> &str {
    line.split(" = ").next().unwrap()
}

#[test]
fn example_values_are_the_defaults() {
    let file = config_file::parse(EXAMPLE).expect("example parses");
    let from_example = Settings::from_parts(Args::default(), file).unwrap();
    let built_in = Settings::from_parts(Args::default(), Options::default()).unwrap();
    assert_eq!(from_example, built_in);
}

#[test]
fn every_documented_line_is_a_key_that_is_read() {
    for (line, _) in documented_lines() {
        let options = config_file::parse(&line).unwrap_or_else(|e| panic!("`{line}`: {e}"));
        // Written back, the parsed value is the line's: the key reached its field.
        let written = toml::Table::try_from(&options).unwrap();
        let line_table: toml::Table = toml::from_str(&line).unwrap();
        let key = key_of(&line);
        assert_eq!(written.get(key), line_table.get(key), "`{line}`");
    }
}

#[test]
fn every_key_is_documented() {
    let documented: Vec<String> = documented_lines()
        .iter()
        .map(|(l, _)| key_of(l).to_owned())
        .collect();
    let keys = Options::keys();
    assert!(keys.len() >= 39, "{keys:?}");
    for key in keys {
        assert!(
            documented.contains(&key),
            "gearboxd.example.toml does not document `{key}`"
        );
    }
}

/// The commented `[[access]]` example at the end, uncommented, is a valid rule set.
#[test]
fn the_access_example_is_valid() {
    let start = EXAMPLE.find("# [[access]]").expect("an [[access]] example");
    let text: String = EXAMPLE[start..]
        .lines()
        .map(|l| l.strip_prefix('#').unwrap_or(l).trim())
        .map(|l| format!("{l}\n"))
        .collect();
    let options = config_file::parse(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
    let rules = options.server.access.rules();
    let names: Vec<_> = rules.iter().filter_map(|r| r.name.as_deref()).collect();
    assert_eq!(names, ["image-workers", "web-frontends", "local-ops"]);
}
