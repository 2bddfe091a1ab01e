//! `gearman`'s command line, parsed as its C `getopt(argc, argv, "bc:df:h:HiILnNp:Pst:u:vwS")`
//! loop does: GNU argument permutation (options may follow data or the command unless `--`
//! or `POSIXLY_CORRECT` stops them), clustered flags (`-bI`), attached or separate values
//! (`-ffn`, `-f fn`), `atoi` numbers, and its error rules.

use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;

use gearbox_client::Priority;

/// What the command line asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Args {
    /// `-f`, in order.
    pub functions: Vec<String>,
    /// `-h`.
    pub host: Option<String>,
    /// `-p` (0: the default port).
    pub port: u16,
    /// `-c` (0: no limit).
    pub count: u32,
    /// `-u`.
    pub unique: Option<String>,
    /// `-n` or `-N`.
    pub job_per_newline: bool,
    /// `-N`.
    pub strip_newline: bool,
    /// `-w`.
    pub worker: bool,
    /// `-s`.
    pub suppress_input: bool,
    /// `-P`.
    pub prefix: bool,
    /// `-b`.
    pub background: bool,
    /// `-d`.
    pub daemon: bool,
    /// `-H`.
    pub usage: bool,
    /// `-v`.
    pub verbose: bool,
    /// `-S`: TLS (certificates from the environment, see [`crate::tls`]).
    pub ssl: bool,
    /// `-I` / `-L`.
    pub priority: Priority,
    /// `-t` in milliseconds (negative: none).
    pub timeout: i32,
    /// `-i`.
    pub pid_file: Option<OsString>,
    /// Data arguments (client) or the command and its arguments (worker).
    pub arguments: Vec<OsString>,
    /// A usage error: print the usage on standard error and exit 1.
    pub is_error: bool,
    /// The text in `Error in usage(...)`; `None` prints `(null)`.
    pub arg_error: Option<&'static str>,
}

impl Default for Args {
    fn default() -> Self {
        Args {
            functions: Vec::new(),
            host: None,
            port: 0,
            count: 0,
            unique: None,
            job_per_newline: false,
            strip_newline: false,
            worker: false,
            suppress_input: false,
            prefix: false,
            background: false,
            daemon: false,
            usage: false,
            verbose: false,
            ssl: false,
            priority: Priority::Normal,
            timeout: -1,
            pid_file: None,
            arguments: Vec::new(),
            is_error: false,
            arg_error: None,
        }
    }
}

/// C `atoi`: optional spaces and sign, then digits; anything else ends the number (or is 0).
pub fn atoi(s: &[u8]) -> i64 {
    let s = match s.iter().position(|b| !b.is_ascii_whitespace()) {
        Some(i) => &s[i..],
        None => return 0,
    };
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: i64 = 0;
    for &b in digits.iter().take_while(|b| b.is_ascii_digit()) {
        v = v.saturating_mul(10).saturating_add(i64::from(b - b'0'));
    }
    if neg {
        -v
    } else {
        v
    }
}

const TAKES_VALUE: &[u8] = b"cfhiptu";
const FLAGS: &[u8] = b"bdHILnNPsvwS";

impl Args {
    /// Parses the arguments after `argv[0]`.
    pub fn parse(argv: &[OsString]) -> Args {
        let mut a = Args::default();
        let posix = std::env::var_os("POSIXLY_CORRECT").is_some();
        let mut i = 0;
        'outer: while i < argv.len() {
            let tok = argv[i].as_bytes();
            i += 1;
            if tok == b"--" {
                a.arguments.extend(argv[i..].iter().cloned());
                break;
            }
            if tok.len() < 2 || tok[0] != b'-' {
                a.arguments.push(argv[i - 1].clone());
                if posix {
                    a.arguments.extend(argv[i..].iter().cloned());
                    break;
                }
                continue;
            }
            let mut k = 1;
            while k < tok.len() {
                let c = tok[k];
                k += 1;
                if TAKES_VALUE.contains(&c) {
                    let value: Vec<u8> = if k < tok.len() {
                        tok[k..].to_vec()
                    } else if i < argv.len() {
                        i += 1;
                        argv[i - 1].as_bytes().to_vec()
                    } else {
                        a.fail();
                        break 'outer;
                    };
                    a.set_value(c, value);
                    break;
                }
                if !FLAGS.contains(&c) {
                    a.fail();
                    break 'outer;
                }
                if c == b'H' {
                    a.usage = true;
                    break 'outer;
                }
                a.set_flag(c);
            }
        }
        if a.functions.is_empty() {
            a.is_error = true;
            a.arg_error = Some("No Functions were provided");
        }
        a
    }

    fn fail(&mut self) {
        self.is_error = true;
        self.arg_error = Some("-?");
    }

    fn set_value(&mut self, c: u8, v: Vec<u8>) {
        let text = || String::from_utf8_lossy(&v).into_owned();
        match c {
            b'c' => self.count = atoi(&v) as u32,
            b'f' => self.functions.push(text()),
            b'h' => self.host = Some(text()),
            b'i' => self.pid_file = Some(std::ffi::OsStr::from_bytes(&v).to_os_string()),
            b'p' => self.port = atoi(&v) as u16,
            b't' => self.timeout = atoi(&v) as i32,
            b'u' => self.unique = Some(text()),
            _ => {}
        }
    }

    fn set_flag(&mut self, c: u8) {
        match c {
            b'b' => self.background = true,
            b'd' => self.daemon = true,
            b'I' => self.priority = Priority::High,
            b'L' => self.priority = Priority::Low,
            b'n' => self.job_per_newline = true,
            b'N' => {
                self.job_per_newline = true;
                self.strip_newline = true;
            }
            b'P' => self.prefix = true,
            b's' => self.suppress_input = true,
            b'v' => self.verbose = true,
            b'w' => self.worker = true,
            b'S' => self.ssl = true,
            _ => {}
        }
    }

    /// The usage text, as `gearman` prints it for `-H` (standard output) or an error
    /// (standard error); `name` is `argv[0]` as given.
    pub fn usage_text(&self, name: &str) -> String {
        let tf = |b: bool| if b { "true" } else { "false" };
        let err = self.arg_error.unwrap_or("(null)");
        format!(
            "\n{name}\tError in usage({err}).\n\n\
             Client mode: {name} [options] [<data>]\n\
             Worker mode: {name} -w [options] [<command> [<args> ...]]\n\
             \nCommon options to both client and worker modes.\n\
             \t-f <function> - Function name to use for jobs (can give many)\n\
             \t-h <host>     - Job server host\n\
             \t-H            - Print this help menu\n\
             \t-v            - Print diagnostic information to stdout({v})\n\
             \t-p <port>     - Job server port\n\
             \t-t <timeout>  - Timeout in milliseconds\n\
             \t-i <pidfile>  - Create a pidfile for the process\n\
             \t-S            - Enable SSL connections\n\
             \nClient options:\n\
             \t-b            - Run jobs in the background({b})\n\
             \t-I            - Run jobs as high priority\n\
             \t-L            - Run jobs as low priority\n\
             \t-n            - Run one job per line({n})\n\
             \t-N            - Same as -n, but strip off the newline({nn})\n\
             \t-P            - Prefix all output lines with functions names\n\
             \t-s            - Send job without reading from standard input\n\
             \t-u <unique>   - Unique key to use for job\n\
             \nWorker options:\n\
             \t-c <count>    - Number of jobs for worker to run before exiting\n\
             \t-n            - Send data packet for each line({n})\n\
             \t-N            - Same as -n, but strip off the newline({nn})\n\
             \t-w            - Run in worker mode({w})\n",
            v = tf(self.verbose),
            b = tf(self.background),
            n = tf(self.job_per_newline),
            nn = tf(self.strip_newline),
            w = tf(self.worker),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Args {
        Args::parse(&args.iter().map(OsString::from).collect::<Vec<_>>())
    }

    #[test]
    fn getopt_permutes_and_clusters() {
        let a = p(&["-f", "rev", "hello", "-bI", "-ufoo", "world"]);
        assert_eq!(a.functions, vec!["rev"]);
        assert_eq!(a.arguments, vec![OsString::from("hello"), "world".into()]);
        assert!(a.background && a.priority == Priority::High);
        assert_eq!(a.unique.as_deref(), Some("foo"));
        assert!(!a.is_error);
        let w = p(&["-w", "-f", "x", "--", "sh", "-c", "cat"]);
        assert_eq!(
            w.arguments,
            vec![OsString::from("sh"), "-c".into(), "cat".into()]
        );
        assert_eq!(w.count, 0);
        let c = p(&["-w", "-f", "x", "sh", "-c", "3"]);
        assert_eq!((c.count, c.arguments.len()), (3, 1));
        assert_eq!(p(&["-f", "x", "-p", "abc"]).port, 0);
        assert_eq!(p(&["-f", "x", "-t", "250ms"]).timeout, 250);
    }

    #[test]
    fn errors_and_usage_as_the_c_tool() {
        assert_eq!(p(&["-z"]).arg_error, Some("No Functions were provided"));
        let e = p(&["-f", "x", "-z"]);
        assert_eq!((e.is_error, e.arg_error), (true, Some("-?")));
        let e = p(&["-f", "x", "--help"]);
        assert_eq!(e.arg_error, Some("-?"));
        let e = p(&["-f", "x", "-u"]);
        assert_eq!(e.arg_error, Some("-?"));
        let h = p(&["-v", "-N", "-f", "x", "-H", "-b"]);
        assert!(h.usage && !h.background && h.arg_error.is_none());
        let text = h.usage_text("gearman");
        assert!(text.starts_with("\ngearman\tError in usage((null)).\n\nClient mode: gearman"));
        assert!(text.contains("stdout(true)\n") && text.contains("newline(true)\n"));
        assert!(text.ends_with("\t-w            - Run in worker mode(false)\n"));
        assert_eq!(atoi(b" -12x"), -12);
    }
}
