//! Admin text commands, answered byte for byte as gearmand 1.1 does (see protocol.md §4).
//! Listings end in `.\n`; `OK`/`ERR` replies of state-changing commands end in `\r\n`.
//! Names, handles and unknown command words are echoed as the raw bytes received (they need
//! not be UTF-8), as gearmand does.

use std::io::Write as _;

use bytes::Bytes;
use gearbox_proto::{AdminCommand, ErrorCode};

use super::ids::ConnId;
use super::lookup::handle_for;
use super::time::UnixMillis;
use super::{Core, Effect, Outbox};

const OK: &str = "OK\r\n";
/// gearmand's text after `ERR UNKNOWN_COMMAND`; the command word follows with no space.
const UNKNOWN_COMMAND: &str = "Unknown+server+command";

/// A reply under construction: `write!` for formatted parts, [`Reply::raw`] for peer bytes.
#[derive(Default)]
struct Reply(Vec<u8>);

impl Reply {
    fn push_str(&mut self, s: &str) {
        self.0.extend_from_slice(s.as_bytes());
    }

    fn push(&mut self, c: char) {
        let mut b = [0u8; 4];
        self.push_str(c.encode_utf8(&mut b));
    }

    /// Appends bytes a peer sent (names, handles, command words) unchanged.
    fn raw(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
    }

    /// An error line: `ERR <code>`, then ` <text><echoed>` unless both are empty, then
    /// `\r\n`. `echoed` is what the peer sent, unchanged (gearmand glues it to `text`).
    fn err(&mut self, code: ErrorCode, text: &str, echoed: &[u8]) {
        self.push_str("ERR ");
        self.push_str(code.as_str());
        if !text.is_empty() || !echoed.is_empty() {
            self.push(' ');
            self.push_str(text);
            self.raw(echoed);
        }
        self.push_str("\r\n");
    }
}

impl std::io::Write for Reply {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Core {
    fn sorted_functions(&self) -> Vec<(&Bytes, &super::state::Function)> {
        let mut v: Vec<_> = self.functions.values().map(|f| (&f.name, f)).collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    pub(super) fn admin_reply(
        &mut self,
        conn: ConnId,
        cmd: AdminCommand,
        now: UnixMillis,
        out: &mut Outbox,
    ) -> Bytes {
        let mut s = Reply::default();
        match cmd {
            AdminCommand::Status => {
                for (name, f) in self.sorted_functions() {
                    s.raw(name);
                    let _ = writeln!(s, "\t{}\t{}\t{}", f.total(), f.running, f.workers.len());
                }
                s.push_str(".\n");
            }
            AdminCommand::PriorityStatus => {
                // Jobs waiting for their time (EPOCH, always normal priority) count as queued
                // at NORMAL, as in gearmand, which queues them at once.
                for (name, f) in self.sorted_functions() {
                    s.raw(name);
                    let _ = writeln!(
                        s,
                        "\t{}\t{}\t{}\t{}",
                        f.queues[0].len(),
                        f.queues[1].len() + f.waiting as usize,
                        f.queues[2].len(),
                        f.workers.len()
                    );
                }
                s.push_str(".\n");
            }
            AdminCommand::Metrics => {
                self.render_metrics(&mut s.0, now);
                s.push_str(".\n");
            }
            AdminCommand::MetricsTotals => {
                self.render_metric_totals(&mut s.0, now);
                s.push_str(".\n");
            }
            AdminCommand::Workers => {
                let mut ids: Vec<_> = self.conns.keys().copied().collect();
                ids.sort_unstable();
                for id in ids {
                    let c = &self.conns[&id];
                    let _ = write!(s, "{} {} ", c.info.fd, c.info.peer_ip);
                    s.raw(&c.client_id);
                    s.push_str(" :");
                    // gearmand lists a worker's functions most recent CAN_DO first.
                    for a in c.abilities.iter().rev() {
                        s.push(' ');
                        s.raw(&self.functions[a.function].name);
                    }
                    s.push('\n');
                }
                s.push_str(".\n");
            }
            AdminCommand::ShowJobs => {
                let mut jobs: Vec<_> = self.jobs.values().collect();
                jobs.sort_by_key(|j| j.id);
                for j in jobs {
                    // IGNORED: a foreground job every client has left. QUEUED is gearmand's
                    // `job_queued`, "handed to the persistent queue": 1 for background jobs,
                    // running or not, and 0 for foreground ones.
                    let ignored = !j.background && j.clients().is_empty();
                    let queued = j.background;
                    s.raw(&handle_for(&self.config.handle_prefix, j));
                    let _ = writeln!(
                        s,
                        "\t{}\t{}\t{}",
                        j.retries(),
                        u8::from(ignored),
                        u8::from(queued)
                    );
                }
                s.push_str(".\n");
            }
            AdminCommand::ShowUniqueJobs => {
                // Every job, as gearmand: one without a unique id is an empty line.
                let mut jobs: Vec<_> = self.jobs.values().collect();
                jobs.sort_by_key(|j| j.id);
                for j in jobs {
                    s.raw(j.unique());
                    s.push('\n');
                }
                s.push_str(".\n");
            }
            AdminCommand::MaxQueue { function, limits } => {
                let function = self.functions.intern(&function);
                self.functions[function].max_queue = limits;
                s.push_str(OK);
            }
            AdminCommand::CancelJob { handle } => {
                if self.cancel(&handle, now, out) {
                    s.push_str(OK);
                } else {
                    s.err(ErrorCode::UnknownJob, "", b"");
                }
            }
            AdminCommand::MalformedCancel => s.err(ErrorCode::UnknownError, "", b""),
            AdminCommand::CreateFunction { name } => {
                if name.len() > self.config.max_function {
                    s.err(ErrorCode::CreateFunction, "", &name);
                } else {
                    self.functions.intern(&name);
                    s.push_str(OK);
                }
            }
            AdminCommand::DropFunction { name } => match self.functions.id(&name) {
                None => s.push_str("ERR function not found\r\n"),
                Some(id)
                    if !self.functions[id].workers.is_empty() || self.functions[id].running > 0 =>
                {
                    s.push_str("ERR there are still connected workers or executing clients\r\n")
                }
                // Jobs still waiting for the store count too: they hold the function.
                Some(id) if self.functions[id].total() > 0 || self.functions[id].jobs > 0 => {
                    s.push_str("ERR there are still queued jobs for this function\r\n")
                }
                Some(id) => {
                    self.functions.remove(id);
                    s.push_str(OK);
                }
            },
            AdminCommand::ClusterStatus => self.render_cluster_status(&mut s.0),
            AdminCommand::ClusterMembers => self.render_cluster_members(&mut s.0, now),
            AdminCommand::GetPid => {
                let _ = writeln!(s, "OK {}", std::process::id());
            }
            AdminCommand::Version => {
                let _ = writeln!(s, "OK {}", self.config.version);
            }
            AdminCommand::Verbose => {
                let _ = writeln!(s, "OK {}", self.config.verbose);
            }
            AdminCommand::Shutdown { graceful } => {
                if self.conns.get(&conn).is_some_and(|c| c.info.loopback) {
                    if graceful {
                        // Refuse new jobs from this moment, not when the network layer gets
                        // round to the effect.
                        self.draining = true;
                    }
                    out.effects.push(Effect::Shutdown { graceful });
                    s.push_str(OK);
                } else {
                    let text = "shutdown+is+only+accepted+from+loopback";
                    s.err(ErrorCode::PermissionDenied, text, b"");
                }
            }
            AdminCommand::InvalidArguments { command } => {
                let text = "An+incomplete+set+of+arguments+was+sent+to+this+command+";
                s.err(ErrorCode::InvalidArguments, text, &command);
            }
            AdminCommand::UnknownShowArguments => s.err(ErrorCode::UnknownShowArguments, "", b""),
            // gearmand 1.1.20 reads an empty line as an empty command word.
            AdminCommand::Empty => s.err(ErrorCode::UnknownCommand, UNKNOWN_COMMAND, b""),
            AdminCommand::Unknown { command } => {
                s.err(ErrorCode::UnknownCommand, UNKNOWN_COMMAND, &command)
            }
            _ => s.err(ErrorCode::UnknownError, "", b""),
        }
        Bytes::from(s.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::core::{ConnInfo, CoreConfig, Outbox};

    const C1: ConnId = ConnId::new(1);

    /// Every admin error line, byte for byte as gearmand words it.
    #[test]
    fn error_lines_are_gearmands() {
        let mut core = Core::new(CoreConfig {
            max_function: 3,
            ..CoreConfig::default()
        });
        let remote = ConnInfo {
            peer_ip: "192.0.2.7".into(),
            fd: 7,
            loopback: false,
            identity: Vec::new(),
        };
        core.connect(C1, remote);
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        let cases = [
            (
                AdminCommand::CancelJob { handle: b("H:x:9") },
                "ERR UNKNOWN_JOB\r\n",
            ),
            (AdminCommand::MalformedCancel, "ERR UNKNOWN_ERROR\r\n"),
            (
                AdminCommand::CreateFunction { name: b("long") },
                "ERR CREATE_FUNCTION long\r\n",
            ),
            (
                AdminCommand::Shutdown { graceful: false },
                "ERR PERMISSION_DENIED shutdown+is+only+accepted+from+loopback\r\n",
            ),
            (
                AdminCommand::InvalidArguments {
                    command: b("maxqueue"),
                },
                "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+maxqueue\r\n",
            ),
            (
                AdminCommand::UnknownShowArguments,
                "ERR UNKNOWN_SHOW_ARGUMENTS\r\n",
            ),
            (
                AdminCommand::Empty,
                "ERR UNKNOWN_COMMAND Unknown+server+command\r\n",
            ),
            (
                AdminCommand::Unknown { command: b("bogus") },
                "ERR UNKNOWN_COMMAND Unknown+server+commandbogus\r\n",
            ),
            (
                AdminCommand::DropFunction { name: b("nope") },
                "ERR function not found\r\n",
            ),
        ];
        for (cmd, want) in cases {
            let mut out = Outbox::default();
            let shown = format!("{cmd:?}");
            let got = core.admin_reply(C1, cmd, UnixMillis::default(), &mut out);
            assert_eq!(got, want.as_bytes(), "{shown}");
            assert!(out.effects.is_empty(), "{shown}");
        }
    }
}
