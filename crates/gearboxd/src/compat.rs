//! gearmand's flags that gearboxd gives no effect: accepted with a warning, or (TLS, which has
//! an issue of its own) refused with a message naming the issue. (`-r http` and its companion
//! flags are settings of the HTTP listener: [`crate::http::HttpSection`].)
//!
//! The rule for TLS: what would turn it on in gearmand (`--ssl`) refuses the start, whatever
//! the other flags say. The companion flags (`--ssl-ca-file`, `--ssl-certificate`,
//! `--ssl-key`) have no effect in gearmand without it,
//! so alone they only warn, whatever their value (gearmand's default included): a gearmand
//! command line that runs without TLS runs the same with gearboxd.

use crate::args::Args;
use crate::error::CliError;

/// The issue that brings TLS (security).
pub const TLS_ISSUE: &str = "issue 13 (security)";

/// Refuses TLS; returns a warning for each flag given that has
/// no effect.
pub fn check(args: &Args) -> Result<Vec<String>, CliError> {
    if args.ssl {
        return Err(CliError::Refused(format!(
            "--ssl: gearboxd has no TLS yet ({TLS_ISSUE}); until then, reach it over a trusted \
             network, or put a TLS proxy (stunnel, haproxy) in front of it"
        )));
    }
    let without_ssl = |flag: &str| {
        format!("{flag} has no effect without --ssl (as in gearmand); TLS is {TLS_ISSUE}")
    };
    let ignored = [
        (args.round_robin, "--round-robin is ignored: workers get jobs by priority, round-robin between functions of equal priority".to_owned()),
        (args.hashtable_buckets.is_some(), "--hashtable-buckets is ignored: gearboxd's tables grow as needed".to_owned()),
        (args.coredump, "--coredump is ignored: core dumps follow the system's settings (ulimit -c)".to_owned()),
        (args.store_queue_on_shutdown, "--store-queue-on-shutdown is ignored: gearboxd stores every background job when it is submitted, so a stop loses none".to_owned()),
        (args.ssl_ca_file.is_some(), without_ssl("--ssl-ca-file")),
        (args.ssl_certificate.is_some(), without_ssl("--ssl-certificate")),
        (args.ssl_key.is_some(), without_ssl("--ssl-key")),
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
    fn tls_is_refused_naming_its_issue() {
        let e = check_argv(&["--ssl", "--ssl-key", "k.pem"])
            .unwrap_err()
            .to_string();
        assert!(e.contains("issue 13"), "{e}");
    }

    #[test]
    fn companion_flags_alone_warn_even_with_default_values() {
        let w = check_argv(&["--ssl-certificate", "c.pem"]).unwrap();
        assert_eq!(w.len(), 1, "{w:?}");
        assert!(w[0].contains("issue 13"), "{w:?}");
        let w = check_argv(&["-R", "--store-queue-on-shutdown"]).unwrap();
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(check_argv(&[]).unwrap().is_empty());
    }
}
