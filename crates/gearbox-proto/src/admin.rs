//! The admin text protocol that shares the job port: parsing command lines.
//!
//! A line is split on runs of spaces (a trailing `\r` is stripped) and the command word is
//! matched case-insensitively, as gearmand does. Only the space separates words: a tab is part
//! of a word, as in gearmand. Unlike gearmand, leading and trailing spaces are ignored (gearmand
//! reads them as empty words, so ` status` is an unknown command there) and a line of more than
//! [`MAX_WORDS`] words is answered with `INVALID_ARGUMENTS` (gearmand closes the connection).
//! Replies are formatted by the server, which owns the state they describe; this module only
//! says what was asked.

use bytes::Bytes;

/// One parsed admin command.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum AdminCommand {
    /// `status`: per function total, running and available workers.
    Status,
    /// `prioritystatus`: per function queued jobs by priority and workers.
    PriorityStatus,
    /// `workers`: every connection with its client id and functions.
    Workers,
    /// `maxqueue FUNC [N | HIGH NORMAL LOW]`; 0 means unlimited, indexed high, normal, low.
    MaxQueue {
        /// Function name.
        function: Bytes,
        /// Limits for high, normal and low priority.
        limits: [u32; 3],
    },
    /// `cancel job HANDLE`.
    CancelJob {
        /// Job handle.
        handle: Bytes,
    },
    /// `show jobs`.
    ShowJobs,
    /// `show unique jobs`.
    ShowUniqueJobs,
    /// `create function F`.
    CreateFunction {
        /// Function name.
        name: Bytes,
    },
    /// `drop function F`.
    DropFunction {
        /// Function name.
        name: Bytes,
    },
    /// `metrics`: gearbox's own, the server's gauges and counters in Prometheus' text format
    /// (read by the HTTP listener's `/metrics`).
    Metrics,
    /// `metrics totals`: gearbox's own, the job counters summed over every function (no
    /// per-function series) and the server-wide metrics: what a once-a-second sampler needs,
    /// at a cost that does not grow with the number of functions' text.
    MetricsTotals,
    /// `cluster status`: gearbox's own, per function the cluster-wide free, queued and
    /// running jobs and workers (`FUNCTION\tFREE\tQUEUED\tRUNNING\tWORKERS`).
    ClusterStatus,
    /// `cluster members`: gearbox's own, every live cluster member
    /// (`ID\tADDRESS\tHEARTBEAT_AGE_MS\tJOBS_HELD\tCONNECTIONS\tWORKERS`, this server's line
    /// ending in `\t*`).
    ClusterMembers,
    /// `getpid`.
    GetPid,
    /// `version`.
    Version,
    /// `verbose`.
    Verbose,
    /// `shutdown` or `shutdown graceful`.
    Shutdown {
        /// Finish queued work before exiting.
        graceful: bool,
    },
    /// A known command word with arguments that do not fit it (gearmand: `INVALID_ARGUMENTS`).
    InvalidArguments {
        /// The command word as sent.
        command: Bytes,
    },
    /// `show` followed by something other than `jobs` or `unique jobs`.
    UnknownShowArguments,
    /// `cancel` with arguments other than `job HANDLE` (gearmand answers `UNKNOWN_ERROR`).
    MalformedCancel,
    /// An empty line.
    Empty,
    /// Anything else; holds the command word.
    Unknown {
        /// The command word as sent.
        command: Bytes,
    },
}

/// What running an admin command needs, for access control: reading the server's state,
/// changing it, or nothing (replies that are only error lines).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum AdminAccess {
    /// Answers with an error line whatever the caller may do (malformed or unknown commands).
    Nothing,
    /// Only reads: listings, version, pid, metrics.
    Read,
    /// Changes state: cancel, queue limits, functions, shutdown.
    Write,
}

impl AdminCommand {
    /// Whether the command reads or changes the server's state. Every command is classified
    /// here, so a new one cannot be added without deciding.
    pub fn access(&self) -> AdminAccess {
        match self {
            AdminCommand::Status
            | AdminCommand::PriorityStatus
            | AdminCommand::Workers
            | AdminCommand::ShowJobs
            | AdminCommand::ShowUniqueJobs
            | AdminCommand::Metrics
            | AdminCommand::MetricsTotals
            | AdminCommand::ClusterStatus
            | AdminCommand::ClusterMembers
            | AdminCommand::GetPid
            | AdminCommand::Version
            | AdminCommand::Verbose => AdminAccess::Read,
            // A malformed cancel is still an attempt to cancel.
            AdminCommand::MaxQueue { .. }
            | AdminCommand::CancelJob { .. }
            | AdminCommand::MalformedCancel
            | AdminCommand::CreateFunction { .. }
            | AdminCommand::DropFunction { .. }
            | AdminCommand::Shutdown { .. } => AdminAccess::Write,
            AdminCommand::InvalidArguments { .. }
            | AdminCommand::UnknownShowArguments
            | AdminCommand::Empty
            | AdminCommand::Unknown { .. } => AdminAccess::Nothing,
        }
    }

    /// The command's name as typed (`cancel job`, `maxqueue`), for logs and error lines;
    /// empty for an empty line, the word sent for an unknown command.
    pub fn name(&self) -> String {
        let name = match self {
            AdminCommand::Status => "status",
            AdminCommand::PriorityStatus => "prioritystatus",
            AdminCommand::Workers => "workers",
            AdminCommand::MaxQueue { .. } => "maxqueue",
            AdminCommand::CancelJob { .. } | AdminCommand::MalformedCancel => "cancel job",
            AdminCommand::ShowJobs => "show jobs",
            AdminCommand::ShowUniqueJobs => "show unique jobs",
            AdminCommand::UnknownShowArguments => "show",
            AdminCommand::CreateFunction { .. } => "create function",
            AdminCommand::DropFunction { .. } => "drop function",
            AdminCommand::Metrics => "metrics",
            AdminCommand::MetricsTotals => "metrics totals",
            AdminCommand::ClusterStatus => "cluster status",
            AdminCommand::ClusterMembers => "cluster members",
            AdminCommand::GetPid => "getpid",
            AdminCommand::Version => "version",
            AdminCommand::Verbose => "verbose",
            AdminCommand::Shutdown { graceful: false } => "shutdown",
            AdminCommand::Shutdown { graceful: true } => "shutdown graceful",
            AdminCommand::Empty => "",
            AdminCommand::InvalidArguments { command } | AdminCommand::Unknown { command } => {
                return String::from_utf8_lossy(command).into_owned()
            }
        };
        name.to_owned()
    }
}

/// Most words an admin line may have (gearmand 1.1.20 drops the connection past five).
pub const MAX_WORDS: usize = 5;

fn is(word: &Bytes, name: &str) -> bool {
    word.eq_ignore_ascii_case(name.as_bytes())
}

/// Parses one admin line (without its `\n`; a trailing `\r` is ignored).
pub fn parse_admin_line(line: Bytes) -> AdminCommand {
    let end = line.len() - usize::from(line.ends_with(b"\r"));
    let line = line.slice(..end);
    let mut args: Vec<Bytes> = Vec::with_capacity(4);
    let mut start = None;
    for (i, &b) in line.iter().enumerate() {
        match (b == b' ', start) {
            (true, Some(s)) => {
                args.push(line.slice(s..i));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        args.push(line.slice(s..));
    }
    let Some(cmd) = args.first().cloned() else {
        return AdminCommand::Empty;
    };
    let argc = args.len();
    if argc > MAX_WORDS {
        return AdminCommand::InvalidArguments { command: cmd };
    }
    let arg = |i: usize| args.get(i).cloned().unwrap_or_default();
    if is(&cmd, "workers") {
        AdminCommand::Workers
    } else if is(&cmd, "status") {
        AdminCommand::Status
    } else if is(&cmd, "prioritystatus") {
        AdminCommand::PriorityStatus
    } else if is(&cmd, "metrics") && argc == 1 {
        AdminCommand::Metrics
    } else if is(&cmd, "metrics") && argc == 2 && is(&arg(1), "totals") {
        AdminCommand::MetricsTotals
    } else if is(&cmd, "cancel") && argc >= 3 {
        if argc == 3 && is(&arg(1), "job") {
            AdminCommand::CancelJob { handle: arg(2) }
        } else {
            AdminCommand::MalformedCancel
        }
    } else if is(&cmd, "show") && argc >= 2 {
        if argc == 3 && is(&arg(1), "unique") && is(&arg(2), "jobs") {
            AdminCommand::ShowUniqueJobs
        } else if argc == 2 && is(&arg(1), "jobs") {
            AdminCommand::ShowJobs
        } else {
            AdminCommand::UnknownShowArguments
        }
    } else if is(&cmd, "create") || is(&cmd, "drop") {
        if argc == 3 && is(&arg(1), "function") {
            if is(&cmd, "create") {
                AdminCommand::CreateFunction { name: arg(2) }
            } else {
                AdminCommand::DropFunction { name: arg(2) }
            }
        } else {
            AdminCommand::InvalidArguments { command: cmd }
        }
    } else if is(&cmd, "maxqueue") {
        if argc == 1 {
            return AdminCommand::InvalidArguments { command: cmd };
        }
        let mut limits = [0u32; 3];
        for (p, limit) in limits.iter_mut().enumerate() {
            if let Some(a) = args.get(p + 2) {
                *limit = atoi_clamped(a);
            }
        }
        if argc <= 3 {
            limits = [limits[0]; 3];
        }
        AdminCommand::MaxQueue {
            function: arg(1),
            limits,
        }
    } else if is(&cmd, "cluster") {
        match argc {
            2 if is(&arg(1), "status") => AdminCommand::ClusterStatus,
            2 if is(&arg(1), "members") => AdminCommand::ClusterMembers,
            _ => AdminCommand::InvalidArguments { command: cmd },
        }
    } else if is(&cmd, "getpid") {
        AdminCommand::GetPid
    } else if is(&cmd, "shutdown") {
        match argc {
            1 => AdminCommand::Shutdown { graceful: false },
            2 if is(&arg(1), "graceful") => AdminCommand::Shutdown { graceful: true },
            _ => AdminCommand::InvalidArguments { command: cmd },
        }
    } else if is(&cmd, "verbose") {
        AdminCommand::Verbose
    } else if is(&cmd, "version") {
        AdminCommand::Version
    } else {
        AdminCommand::Unknown { command: cmd }
    }
}

/// C `atoi` semantics clamped to `u32`: leading digits (after an optional sign), negatives and
/// garbage become 0.
fn atoi_clamped(s: &[u8]) -> u32 {
    let (neg, digits) = match s.first() {
        Some(b'-') => (true, &s[1..]),
        Some(b'+') => (false, &s[1..]),
        _ => (false, s),
    };
    let mut v: u64 = 0;
    for &b in digits.iter().take_while(|b| b.is_ascii_digit()) {
        v = (v * 10 + u64::from(b - b'0')).min(u64::from(u32::MAX));
    }
    if neg {
        0
    } else {
        v as u32
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> AdminCommand {
        parse_admin_line(Bytes::copy_from_slice(s.as_bytes()))
    }

    fn unknown(command: &str) -> AdminCommand {
        AdminCommand::Unknown {
            command: Bytes::copy_from_slice(command.as_bytes()),
        }
    }

    fn invalid(command: &str) -> AdminCommand {
        AdminCommand::InvalidArguments {
            command: Bytes::copy_from_slice(command.as_bytes()),
        }
    }

    #[test]
    fn cluster_commands() {
        assert_eq!(p("cluster status"), AdminCommand::ClusterStatus);
        assert_eq!(p("CLUSTER  Members\r"), AdminCommand::ClusterMembers);
        assert_eq!(p("cluster"), invalid("cluster"));
        assert_eq!(p("cluster jobs"), invalid("cluster"));
        assert_eq!(p("cluster status now"), invalid("cluster"));
        assert_eq!(AdminCommand::ClusterStatus.name(), "cluster status");
        assert_eq!(AdminCommand::ClusterMembers.name(), "cluster members");
    }

    #[test]
    fn every_state_changing_command_needs_write_access() {
        for (line, want) in [
            ("status", AdminAccess::Read),
            ("prioritystatus", AdminAccess::Read),
            ("workers", AdminAccess::Read),
            ("show jobs", AdminAccess::Read),
            ("show unique jobs", AdminAccess::Read),
            ("metrics", AdminAccess::Read),
            ("metrics totals", AdminAccess::Read),
            ("cluster status", AdminAccess::Read),
            ("cluster members", AdminAccess::Read),
            ("getpid", AdminAccess::Read),
            ("version", AdminAccess::Read),
            ("verbose", AdminAccess::Read),
            ("maxqueue f 3", AdminAccess::Write),
            ("cancel job H:x:1", AdminAccess::Write),
            ("cancel what now", AdminAccess::Write),
            ("create function f", AdminAccess::Write),
            ("drop function f", AdminAccess::Write),
            ("shutdown", AdminAccess::Write),
            ("shutdown graceful", AdminAccess::Write),
            ("show nothing", AdminAccess::Nothing),
            ("create f", AdminAccess::Nothing),
            ("", AdminAccess::Nothing),
            ("bogus", AdminAccess::Nothing),
        ] {
            assert_eq!(p(line).access(), want, "{line:?}");
        }
        assert_eq!(p("cancel job H:x:1").name(), "cancel job");
        assert_eq!(p("SHUTDOWN graceful").name(), "shutdown graceful");
        assert_eq!(p("bogus").name(), "bogus");
    }

    #[test]
    fn parses_commands_case_insensitively_with_either_line_ending() {
        assert_eq!(p("STATUS"), AdminCommand::Status);
        assert_eq!(p("status\r"), AdminCommand::Status);
        assert_eq!(p("  workers  "), AdminCommand::Workers);
        let newfn = AdminCommand::CreateFunction {
            name: Bytes::from_static(b"newfn"),
        };
        assert_eq!(p("create function newfn\r"), newfn);
        assert_eq!(p("create function newfn"), newfn);
        assert_eq!(p("show   unique jobs"), AdminCommand::ShowUniqueJobs);
        assert_eq!(p("show jobs"), AdminCommand::ShowJobs);
        assert_eq!(p("metrics"), AdminCommand::Metrics);
        assert_eq!(p("METRICS Totals\r"), AdminCommand::MetricsTotals);
        assert_eq!(p("metrics bogus"), unknown("metrics"));
        assert_eq!(p("show foo"), AdminCommand::UnknownShowArguments);
        assert_eq!(
            p("cancel job H:x:1"),
            AdminCommand::CancelJob {
                handle: "H:x:1".into()
            }
        );
        assert_eq!(p("cancel foo bar"), AdminCommand::MalformedCancel);
        assert_eq!(p(""), AdminCommand::Empty);
        assert_eq!(p("\r"), AdminCommand::Empty);
        assert_eq!(p("bogus x"), unknown("bogus"));
        assert_eq!(p("cancel"), unknown("cancel"));
        assert_eq!(
            p("shutdown graceful"),
            AdminCommand::Shutdown { graceful: true }
        );
        assert_eq!(p("shutdown now"), invalid("shutdown"));
    }

    #[test]
    fn only_spaces_separate_words_and_at_most_five_are_accepted() {
        assert_eq!(p("status\tx"), unknown("status\tx"));
        assert_eq!(p("bogus a b c d"), unknown("bogus"));
        assert_eq!(p("maxqueue f 1 2 3 4"), invalid("maxqueue"));
        assert_eq!(p("status a b c d e"), invalid("status"));
    }

    #[test]
    fn maxqueue_follows_gearmand_argument_rules() {
        let mq = |f: &'static str, limits| AdminCommand::MaxQueue {
            function: f.into(),
            limits,
        };
        assert_eq!(p("maxqueue"), invalid("maxqueue"));
        assert_eq!(p("maxqueue f"), mq("f", [0, 0, 0]));
        assert_eq!(p("maxqueue f 5"), mq("f", [5, 5, 5]));
        assert_eq!(p("maxqueue f 1 2"), mq("f", [1, 2, 0]));
        assert_eq!(p("maxqueue f 1 2 3"), mq("f", [1, 2, 3]));
        assert_eq!(p("maxqueue f -4"), mq("f", [0, 0, 0]));
        assert_eq!(p("maxqueue f 7x"), mq("f", [7, 7, 7]));
        assert_eq!(p("maxqueue f 99999999999"), mq("f", [u32::MAX; 3]));
    }
}
