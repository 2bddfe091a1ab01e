//! gearmand's config file (`--config-file`, default `/etc/gearmand.conf`), read as gearmand
//! 1.1.20 reads it.
//!
//! The file is a command line: its words, split at spaces and line ends, are parsed as
//! gearmand's options (`--port=4730`, `--port 4730`, `-p 4730`, `-d`), so any flag gearboxd
//! accepts may appear, except `--check-args` (as in gearmand). Like gearmand:
//! - the command line wins over the file, option by option; an option given twice within the
//!   file is an error;
//! - a missing file is skipped if it is the default path, an error otherwise;
//! - a word that is not an option or an option's value is ignored (with a warning here).
//!
//! Deliberate differences: a word starting with `#` starts a comment to the end of its line
//! (gearmand has no comments: it ignores `#` and the words after it, but applies an option
//! written after `#` on the same line), and tabs separate words too (gearmand ignores a word
//! that starts with a tab).
//!
//! Layers, highest first: command line (with the environment) > this file > the TOML
//! `--config` file > defaults.

use std::path::{Path, PathBuf};

use clap::{Arg, ArgAction, CommandFactory, FromArgMatches};

use crate::args::Args;
use crate::error::CliError;
use crate::layers;
use crate::options::Options;

/// gearmand's default config file, read if it exists.
pub const DEFAULT_PATH: &str = "/etc/gearmand.conf";

/// The id of the hidden catch-all for words that are not options (gearmand's name for it).
const PROVIDED: &str = "provided";

/// Reads gearmand's config file named by `cli` (or the default) and lays it under `cli` and
/// over `toml` (the `--config` file). Returns the two layers and warnings.
pub fn apply(cli: Args, toml: Options) -> Result<(Args, Options, Vec<String>), CliError> {
    let path = cli
        .config_file
        .clone()
        .unwrap_or_else(|| PathBuf::from(DEFAULT_PATH));
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound && path == Path::new(DEFAULT_PATH) => {
            return Ok((cli, toml, Vec::new()))
        }
        Err(source) => return Err(CliError::GearmandConfRead { path, source }),
    };
    let (conf, words) = parse(&text).map_err(|message| CliError::ConfigParse {
        path: path.clone(),
        message,
    })?;
    let warnings = words
        .iter()
        .map(|w| {
            format!(
                "gearmand config file {}: `{w}` is not an option, ignored (as gearmand does)",
                path.display()
            )
        })
        .collect();
    let file = layers::overlay(&conf.options, &toml)?;
    Ok((merge(cli, conf), file, warnings))
}

/// Splits `text` into words at whitespace, leaving out comments (from a word starting with `#`
/// to the end of its line).
pub fn words(text: &str) -> Vec<&str> {
    text.lines()
        .flat_map(|line| line.split_whitespace().take_while(|w| !w.starts_with('#')))
        .collect()
}

/// Parses the file's text as gearmand's command line: the options, and the words that are
/// neither options nor their values.
pub fn parse(text: &str) -> Result<(Args, Vec<String>), String> {
    let command = Args::command().arg(
        Arg::new(PROVIDED)
            .num_args(0..)
            .action(ArgAction::Append)
            .hide(true),
    );
    let argv = std::iter::once("gearboxd").chain(words(text));
    let mut matches = command
        .try_get_matches_from(argv)
        .map_err(|e| first_line(&e.render().to_string()))?;
    let provided: Vec<String> = matches
        .remove_many::<String>(PROVIDED)
        .map(Iterator::collect)
        .unwrap_or_default();
    let args = Args::from_arg_matches(&matches).map_err(|e| first_line(&e.to_string()))?;
    if args.check_args {
        return Err("--check-args belongs on the command line, not in the config file".into());
    }
    Ok((args, provided))
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or_default();
    line.strip_prefix("error: ").unwrap_or(line).to_owned()
}

/// The command line's process flags over the file's, flag by flag (the settings of
/// [`Options`] are layered by [`layers`]). Every field is named, so a new one cannot be
/// forgotten here.
fn merge(cli: Args, conf: Args) -> Args {
    let Args {
        config,
        options,
        more_verbose,
        check_args,
        file_descriptors,
        keepalive,
        keepalive_idle,
        keepalive_interval,
        keepalive_count,
        daemon,
        user,
        syslog,
        config_file,
        round_robin,
        hashtable_buckets,
        coredump,
        store_queue_on_shutdown,
    } = cli;
    Args {
        // The TOML file's path: the command line's (or its environment's) only.
        config: config.or(conf.config),
        options,
        more_verbose: if more_verbose > 0 {
            more_verbose
        } else {
            conf.more_verbose
        },
        check_args,
        file_descriptors: file_descriptors.or(conf.file_descriptors),
        keepalive: keepalive || conf.keepalive,
        keepalive_idle: keepalive_idle.or(conf.keepalive_idle),
        keepalive_interval: keepalive_interval.or(conf.keepalive_interval),
        keepalive_count: keepalive_count.or(conf.keepalive_count),
        daemon: daemon || conf.daemon,
        user: user.or(conf.user),
        syslog: syslog || conf.syslog,
        config_file,
        round_robin: round_robin || conf.round_robin,
        hashtable_buckets: hashtable_buckets.or(conf.hashtable_buckets),
        coredump: coredump || conf.coredump,
        store_queue_on_shutdown: store_queue_on_shutdown || conf.store_queue_on_shutdown,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[test]
    fn words_split_at_whitespace_and_skip_comments() {
        let text = "--port=4731 -L 127.0.0.1\n# all of this: --daemon\n\t--verbose INFO # why\r\n";
        assert_eq!(
            words(text),
            ["--port=4731", "-L", "127.0.0.1", "--verbose", "INFO"]
        );
    }

    #[test]
    fn options_parse_and_stray_words_are_reported() {
        let (a, stray) = parse("--port=4731 -d\nport=9 --user nobody --job-retries 3\n").unwrap();
        assert_eq!(a.options.daemon.port, Some(4731));
        assert_eq!(a.options.server.job_retries, Some(3));
        assert_eq!(a.user.as_deref(), Some("nobody"));
        assert!(a.daemon);
        assert_eq!(stray, ["port=9"]);
        assert!(parse("--port=1 --port=2").unwrap_err().contains("--port"));
        assert!(parse("--bogus").unwrap_err().contains("--bogus"));
        assert!(parse("--check-args").is_err());
    }

    #[test]
    fn the_command_line_wins_flag_by_flag() {
        let cli = Args::try_parse_from(["gearboxd", "-p", "5000", "--user", "a"]).unwrap();
        let (conf, _) = parse("-p 6000 --user b --syslog -b 9 --keepalive-idle 7").unwrap();
        let merged = merge(cli.clone(), conf.clone());
        assert_eq!(merged.user.as_deref(), Some("a"));
        assert!(merged.syslog);
        assert_eq!(merged.keepalive_idle, Some(7));
        let file = layers::overlay(&conf.options, &Options::default()).unwrap();
        let s = crate::Settings::from_parts(merged, file).unwrap();
        assert_eq!((s.port, s.backlog), (5000, 9));
    }

    #[test]
    fn the_file_is_over_the_toml_file_and_a_missing_one_is_an_error_unless_default() {
        let dir = std::env::temp_dir().join(format!("gearboxd-conf-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("gearmand.conf");
        std::fs::write(&path, "--backlog=9 --syslog stray\n").unwrap();
        let cli = Args::try_parse_from(["gearboxd", "--config-file", path.to_str().unwrap()]);
        let toml = crate::config_file::parse("backlog = 7\nthreads = 3\n").unwrap();
        let (args, file, warnings) = apply(cli.unwrap(), toml).unwrap();
        assert!(args.syslog);
        assert_eq!(
            (file.daemon.backlog, file.daemon.threads),
            (Some(9), Some(3))
        );
        assert!(warnings[0].contains("`stray`"), "{warnings:?}");
        let missing = dir.join("missing.conf");
        let cli = Args::try_parse_from(["gearboxd", "--config-file", missing.to_str().unwrap()]);
        let e = apply(cli.unwrap(), Options::default()).unwrap_err();
        assert!(e.to_string().contains("missing.conf"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
