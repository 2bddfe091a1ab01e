//! The `gearadmin` drop-in: the flags of gearmand 1.1's `gearadmin` (parsed as its
//! boost::program_options parser does: `--opt=value`, `--opt value`, `-hHOST`, unambiguous
//! prefixes of long options), the same commands sent in the same order, and the same bytes
//! on standard output and standard error with the same exit statuses.
//!
//! How the C tool prints a reply, which this copies: `OK\r\n` prints `OK`; `OK <text>` prints
//! the text; `ERR <text>` prints `Error: <text>` on standard error (line ending kept, exit
//! status still 0); anything else (a listing) is printed as received. It runs the requested
//! operations in a fixed order: getpid, create, drop, show jobs, show unique jobs, cancel,
//! verbose, version, workers, priority status, status. `-S`/`--ssl` connects over TLS with
//! the certificates named in the environment (see [`crate::tls`]; Debian's build of the C
//! tool accepts `-S` but has no TLS).

use std::ffi::OsString;
use std::io::Write;
use std::process::ExitCode;

use gearbox_client::admin::{Admin, DEFAULT_TIMEOUT};
use gearbox_client::{Error, ServerAddr, TlsConfig};

use super::gai;

/// `gearadmin --help`, byte for byte.
pub const HELP: &str = "Options:
  --help                         Options related to the program.
  -h [ --host ] arg (=localhost) Connect to the host
  -p [ --port ] arg (=4730)      Port number or service to use for connection
  --server-version               Fetch the version number for the server.
  --server-verbose               Fetch the verbose setting for the server.
  --create-function arg          Create the function from the server.
  --cancel-job arg               Remove a given job from the server's queue
  --drop-function arg            Drop the function from the server.
  --show-unique-jobs             Show unique IDs of jobs on the server.
  --show-jobs                    Show all jobs on the server.
  --getpid                       Get Process ID for the server.
  --status                       Status for the server.
  --priority-status              Queued jobs status by priority.
  --workers                      Workers for the server.
  -S [ --ssl ]                   Enable SSL connections.
";

/// An option: long name, short letter, whether it takes a value.
struct Opt(&'static str, Option<char>, bool);

const OPTS: &[Opt] = &[
    Opt("help", None, false),
    Opt("host", Some('h'), true),
    Opt("port", Some('p'), true),
    Opt("server-version", None, false),
    Opt("server-verbose", None, false),
    Opt("create-function", None, true),
    Opt("cancel-job", None, true),
    Opt("drop-function", None, true),
    Opt("show-unique-jobs", None, false),
    Opt("show-jobs", None, false),
    Opt("getpid", None, false),
    Opt("status", None, false),
    Opt("priority-status", None, false),
    Opt("workers", None, false),
    Opt("ssl", Some('S'), false),
];

/// The parsed options: long name -> value (empty for flags), in command-line order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Parsed(pub Vec<(&'static str, String)>);

impl Parsed {
    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
    fn has(&self, name: &str) -> bool {
        self.get(name).is_some()
    }
}

fn long_opt(name: &str) -> Result<&'static Opt, String> {
    if let Some(o) = OPTS.iter().find(|o| o.0 == name) {
        return Ok(o);
    }
    let mut matches: Vec<&Opt> = OPTS.iter().filter(|o| o.0.starts_with(name)).collect();
    match matches.len() {
        0 => Err(String::new()),
        1 => Ok(matches[0]),
        _ => {
            matches.sort_by_key(|o| o.0);
            let names: Vec<String> = matches.iter().map(|o| format!("'--{}'", o.0)).collect();
            let (last, rest) = names.split_last().expect("two or more");
            Err(format!(
                "option '--{name}' is ambiguous and matches {}, and {last}",
                rest.join(", ")
            ))
        }
    }
}

/// Parses the arguments after `argv[0]`; `Err` is boost's message.
pub fn parse(args: &[String]) -> Result<Parsed, String> {
    let mut out = Parsed::default();
    let mut i = 0;
    let missing = |o: &Opt| format!("the required argument for option '--{}' is missing", o.0);
    while i < args.len() {
        let tok = &args[i];
        i += 1;
        if tok == "--" {
            break;
        }
        if let Some(body) = tok.strip_prefix("--").filter(|b| !b.is_empty()) {
            let (name, adjacent) = match body.split_once('=') {
                Some((n, v)) => (n, Some(v)),
                None => (body, None),
            };
            let opt = long_opt(name).map_err(|e| {
                if e.is_empty() {
                    format!("unrecognised option '{tok}'")
                } else {
                    e
                }
            })?;
            let value = match (opt.2, adjacent) {
                (false, Some(_)) => {
                    return Err(format!("option '--{}' does not take any arguments", opt.0))
                }
                (false, None) => String::new(),
                (true, Some(v)) => v.to_string(),
                (true, None) => {
                    let v = args.get(i).ok_or_else(|| missing(opt))?;
                    i += 1;
                    v.clone()
                }
            };
            out.0.push((opt.0, value));
        } else if let Some(body) = tok.strip_prefix('-').filter(|b| !b.is_empty()) {
            for (at, c) in body.char_indices() {
                let opt = OPTS
                    .iter()
                    .find(|o| o.1 == Some(c))
                    .ok_or_else(|| format!("unrecognised option '{tok}'"))?;
                if opt.2 {
                    let rest = &body[at + c.len_utf8()..];
                    let value = if rest.is_empty() {
                        let v = args.get(i).ok_or_else(|| missing(opt))?;
                        i += 1;
                        v.clone()
                    } else {
                        rest.to_string()
                    };
                    out.0.push((opt.0, value));
                    break;
                }
                out.0.push((opt.0, String::new()));
            }
        }
        // Anything else is a positional argument, which gearadmin ignores.
    }
    for (k, (name, _)) in out.0.iter().enumerate() {
        if out.0[..k].iter().any(|(n, _)| n == name) {
            return Err(format!(
                "option '--{name}' cannot be specified more than once"
            ));
        }
    }
    Ok(out)
}

/// The admin lines to send, in the order gearadmin sends them.
pub fn operations(p: &Parsed) -> Vec<String> {
    let mut ops = Vec::new();
    let flag = |name: &str, line: &str, ops: &mut Vec<String>| {
        if p.has(name) {
            ops.push(line.to_string());
        }
    };
    flag("getpid", "getpid", &mut ops);
    if let Some(f) = p.get("create-function") {
        ops.push(format!("create function {f}"));
    }
    if let Some(f) = p.get("drop-function") {
        ops.push(format!("drop function {f}"));
    }
    flag("show-jobs", "show jobs", &mut ops);
    flag("show-unique-jobs", "show unique jobs", &mut ops);
    if let Some(h) = p.get("cancel-job") {
        ops.push(format!("cancel job {h}"));
    }
    flag("server-verbose", "verbose", &mut ops);
    flag("server-version", "version", &mut ops);
    flag("workers", "workers", &mut ops);
    flag("priority-status", "prioritystatus", &mut ops);
    flag("status", "status", &mut ops);
    ops
}

/// What gearadmin prints for one reply: (standard output, standard error).
pub fn present(reply: &[u8]) -> (Vec<u8>, Vec<u8>) {
    if reply.starts_with(b"OK\r") {
        (b"OK\n".to_vec(), Vec::new())
    } else if let Some(rest) = reply.strip_prefix(b"OK ") {
        (rest.to_vec(), Vec::new())
    } else if let Some(rest) = reply.strip_prefix(b"ERR ") {
        let mut e = b"Error: ".to_vec();
        e.extend_from_slice(rest);
        (Vec::new(), e)
    } else {
        (reply.to_vec(), Vec::new())
    }
}

/// Runs `gearadmin` with the full argument vector.
pub fn main(argv: Vec<OsString>) -> ExitCode {
    let argv: Vec<String> = argv
        .into_iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let name = argv.first().cloned().unwrap_or_else(|| "gearadmin".into());
    let mut stdout = std::io::stdout().lock();
    let parsed = match parse(argv.get(1..).unwrap_or_default()) {
        Ok(p) => p,
        Err(msg) => {
            let _ = write!(stdout, "{name} : {msg}\n\n{HELP}\n");
            return ExitCode::FAILURE;
        }
    };
    if parsed.has("help") {
        let _ = writeln!(stdout, "{HELP}");
        return ExitCode::SUCCESS;
    }
    let ops = operations(&parsed);
    if ops.is_empty() {
        let _ = write!(stdout, "No option execution operation given.\n\n{HELP}\n");
        return ExitCode::FAILURE;
    }
    let host = parsed.get("host").unwrap_or("localhost").to_string();
    let port = parsed.get("port").unwrap_or("4730").to_string();
    // `-S`/`--ssl`, with the certificates from the environment (see `crate::tls`).
    let tls = crate::tls::TlsArgs::from_env()
        .and_then(|t| t.enable(parsed.has("ssl")).config())
        .and_then(|t| Ok(t.map(|t| t.or_server_name(&host)).transpose()?));
    let tls = match tls {
        Ok(tls) => tls,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "Error: {e:#}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(run(&host, &port, &ops, tls.as_ref()))
}

/// gearadmin's words for a reply it could not read or a command it could not send.
fn io_error(host: &str, e: &gearbox_client::Error) -> String {
    match e {
        gearbox_client::Error::Disconnected { reason, .. } => {
            if let Some(why) = reason.strip_prefix("write failed: ") {
                // `strerror` text, without Rust's " (os error N)".
                let why = why.split(" (os error").next().unwrap_or(why);
                format!("Failed during send({why})")
            } else if reason.starts_with("the server closed") {
                format!("Socket was shutdown while reading from {host}")
            } else if reason.starts_with("read failed") {
                format!("Error occurred while reading data from {host}")
            } else {
                e.to_string()
            }
        }
        other => other.to_string(),
    }
}

async fn connect(host: &str, port: &str, tls: Option<&TlsConfig>) -> Result<Admin, String> {
    let addrs = gai::resolve(host, port)
        .map_err(|e| format!("Failed to connect on {host}:{port} with {e}\n"))?;
    let mut tls_failure = None;
    for a in addrs {
        let addr = ServerAddr::new(a.ip().to_string(), a.port());
        match Admin::connect_with(addr, DEFAULT_TIMEOUT, tls).await {
            Ok(admin) => return Ok(admin),
            Err(e @ (Error::Tls { .. } | Error::TlsSetup { .. })) => tls_failure = Some(e),
            Err(_) => {}
        }
    }
    match tls_failure {
        // libgearman has no words for this: say what failed.
        Some(e) => Err(format!("{e}\n")),
        None => Err(format!("Error connecting to {host}.\n\n")),
    }
}

async fn run(host: &str, port: &str, ops: &[String], tls: Option<&TlsConfig>) -> ExitCode {
    let mut stderr = std::io::stderr();
    let mut admin = match connect(host, port, tls).await {
        Ok(a) => a,
        Err(e) => {
            let _ = write!(stderr, "Error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout();
    for op in ops {
        match admin.raw(op).await {
            Ok(reply) => {
                let (out, err) = present(&reply);
                let _ = stdout.write_all(&out);
                let _ = stdout.flush();
                let _ = stderr.write_all(&err);
            }
            Err(e) => {
                let _ = writeln!(stderr, "Error: {}", io_error(host, &e));
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Parsed, String> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    #[test]
    fn parses_like_boost_program_options() {
        let got = p(&[
            "-h127.0.0.1",
            "--port=1",
            "--stat",
            "x",
            "--cancel-job",
            "--status",
        ]);
        assert_eq!(
            got.unwrap().0,
            vec![
                ("host", "127.0.0.1".into()),
                ("port", "1".into()),
                ("status", String::new()),
                ("cancel-job", "--status".into()),
            ]
        );
        assert_eq!(
            p(&["--s"]).unwrap_err(),
            "option '--s' is ambiguous and matches '--server-verbose', '--server-version', \
             '--show-jobs', '--show-unique-jobs', '--ssl', and '--status'"
        );
        assert_eq!(
            p(&["--c"]).unwrap_err(),
            "option '--c' is ambiguous and matches '--cancel-job', and '--create-function'"
        );
        assert_eq!(
            p(&["--Status"]).unwrap_err(),
            "unrecognised option '--Status'"
        );
        assert_eq!(p(&["-Sx"]).unwrap_err(), "unrecognised option '-Sx'");
        assert_eq!(
            p(&["--st=1"]).unwrap_err(),
            "option '--status' does not take any arguments"
        );
        assert_eq!(
            p(&["--status", "-p"]).unwrap_err(),
            "the required argument for option '--port' is missing"
        );
        assert_eq!(
            p(&["-p", "1", "--port=2"]).unwrap_err(),
            "option '--port' cannot be specified more than once"
        );
        assert_eq!(p(&["--", "--status"]).unwrap(), Parsed::default());
    }

    #[test]
    fn operations_run_in_gearadmins_order() {
        let parsed = p(&[
            "--status",
            "--getpid",
            "--cancel-job",
            "H:1",
            "--server-version",
        ]);
        assert_eq!(
            operations(&parsed.unwrap()),
            vec!["getpid", "cancel job H:1", "version", "status"]
        );
    }

    #[test]
    fn replies_are_presented_as_gearadmin_does() {
        assert_eq!(present(b"OK\r\n"), (b"OK\n".to_vec(), vec![]));
        assert_eq!(present(b"OK 123\n"), (b"123\n".to_vec(), vec![]));
        assert_eq!(
            present(b"ERR UNKNOWN_JOB\r\n"),
            (vec![], b"Error: UNKNOWN_JOB\r\n".to_vec())
        );
        assert_eq!(present(b"f\t0\t0\t0\n.\n").0, b"f\t0\t0\t0\n.\n".to_vec());
    }
}
