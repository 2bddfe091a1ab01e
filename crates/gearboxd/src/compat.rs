//! gearmand's flags that gearboxd gives no effect: accepted with a warning. (`-r http` and its
//! companion flags are settings of the HTTP listener: [`crate::http::HttpSection`]; `--ssl`
//! and its companions are TLS settings: [`crate::tls::TlsSection`].)

use crate::args::Args;
use crate::error::CliError;

/// Returns a warning for each flag given that has no effect.
pub fn check(args: &Args) -> Result<Vec<String>, CliError> {
    let ignored = [
        (args.round_robin, "--round-robin is ignored: workers get jobs by priority, round-robin between functions of equal priority".to_owned()),
        (args.hashtable_buckets.is_some(), "--hashtable-buckets is ignored: gearboxd's tables grow as needed".to_owned()),
        (args.coredump, "--coredump is ignored: core dumps follow the system's settings (ulimit -c)".to_owned()),
        (args.store_queue_on_shutdown, "--store-queue-on-shutdown is ignored: gearboxd stores every background job when it is submitted, so a stop loses none".to_owned()),
    ];
    Ok(ignored
        .into_iter()
        .filter(|(given, _)| *given)
        .map(|(_, w)| w)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn check_argv(argv: &[&str]) -> Result<Vec<String>, CliError> {
        check(
            &Args::try_parse_from(std::iter::once("gearboxd").chain(argv.iter().copied())).unwrap(),
        )
    }

    #[test]
    fn ignored_flags_warn() {
        let w = check_argv(&["-R", "--store-queue-on-shutdown"]).unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(check_argv(&[]).unwrap().is_empty());
    }
}
