//! Admin text commands, answered byte for byte as gearmand 1.1 does (see protocol.md §4).
//! Listings end in `.\n`; `OK`/`ERR` replies of state-changing commands end in `\r\n`.

use std::fmt::Write as _;

use bytes::Bytes;
use gearbox_proto::AdminCommand;

use super::state::{ConnId, JobState};
use super::{Core, Effect, Outbox};

const OK: &str = "OK\r\n";

fn text(s: &[u8]) -> std::borrow::Cow<'_, str> {
    String::from_utf8_lossy(s)
}

impl Core {
    fn sorted_functions(&self) -> Vec<(&Bytes, &super::state::Function)> {
        let mut v: Vec<_> = self.functions.iter().collect();
        v.sort_by(|a, b| a.0.cmp(b.0));
        v
    }

    pub(super) fn admin_reply(
        &mut self,
        conn: ConnId,
        cmd: AdminCommand,
        now_ms: u64,
        out: &mut Outbox,
    ) -> Bytes {
        let mut s = String::new();
        match cmd {
            AdminCommand::Status => {
                for (name, f) in self.sorted_functions() {
                    let _ = writeln!(
                        s,
                        "{}\t{}\t{}\t{}",
                        text(name),
                        f.total(),
                        f.running,
                        f.workers.len()
                    );
                }
                s.push_str(".\n");
            }
            AdminCommand::PriorityStatus => {
                for (name, f) in self.sorted_functions() {
                    let _ = writeln!(
                        s,
                        "{}\t{}\t{}\t{}\t{}",
                        text(name),
                        f.queues[0].len(),
                        f.queues[1].len(),
                        f.queues[2].len(),
                        f.workers.len()
                    );
                }
                s.push_str(".\n");
            }
            AdminCommand::Workers => {
                let mut ids: Vec<_> = self.conns.keys().copied().collect();
                ids.sort_unstable();
                for id in ids {
                    let c = &self.conns[&id];
                    let _ = write!(s, "{} {} {} :", c.info.fd, c.info.peer_ip, text(&c.client_id));
                    for a in &c.abilities {
                        let _ = write!(s, " {}", text(&a.function));
                    }
                    s.push('\n');
                }
                s.push_str(".\n");
            }
            AdminCommand::ShowJobs => {
                let mut jobs: Vec<_> = self.jobs.values().collect();
                jobs.sort_by_key(|j| j.id);
                for j in jobs {
                    let ignored = !j.background && j.clients.is_empty();
                    let queued = !matches!(j.state, JobState::Running { .. });
                    let _ = writeln!(
                        s,
                        "{}\t{}\t{}\t{}",
                        text(&j.handle),
                        j.retries,
                        u8::from(ignored),
                        u8::from(queued)
                    );
                }
                s.push_str(".\n");
            }
            AdminCommand::ShowUniqueJobs => {
                let mut jobs: Vec<_> = self.jobs.values().filter(|j| !j.unique.is_empty()).collect();
                jobs.sort_by_key(|j| j.id);
                for j in jobs {
                    let _ = writeln!(s, "{}", text(&j.unique));
                }
                s.push_str(".\n");
            }
            AdminCommand::MaxQueue { function, limits } => {
                self.function_mut(&function).max_queue = limits;
                s.push_str(OK);
            }
            AdminCommand::CancelJob { handle } => {
                if self.cancel(&handle, now_ms, out) {
                    s.push_str(OK);
                } else {
                    s.push_str("ERR UNKNOWN_JOB\r\n");
                }
            }
            AdminCommand::MalformedCancel => s.push_str("ERR UNKNOWN_ERROR\r\n"),
            AdminCommand::CreateFunction { name } => {
                if name.len() > self.config.max_function {
                    let _ = write!(s, "ERR CREATE_FUNCTION {}\r\n", text(&name));
                } else {
                    self.function_mut(&name);
                    s.push_str(OK);
                }
            }
            AdminCommand::DropFunction { name } => match self.functions.get(&name) {
                None => s.push_str("ERR function not found\r\n"),
                Some(f) if !f.workers.is_empty() || f.running > 0 => {
                    s.push_str("ERR there are still connected workers or executing clients\r\n")
                }
                Some(f) if f.total() > 0 => {
                    s.push_str("ERR there are still queued jobs for this function\r\n")
                }
                Some(_) => {
                    self.functions.remove(&name);
                    s.push_str(OK);
                }
            },
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
                    out.effects.push(Effect::Shutdown { graceful });
                    s.push_str(OK);
                } else {
                    s.push_str("ERR PERMISSION_DENIED shutdown+is+only+accepted+from+loopback\r\n");
                }
            }
            AdminCommand::InvalidArguments { command } => {
                let _ = write!(
                    s,
                    "ERR INVALID_ARGUMENTS An+incomplete+set+of+arguments+was+sent+to+this+command+{}\r\n",
                    text(&command)
                );
            }
            AdminCommand::UnknownShowArguments => s.push_str("ERR UNKNOWN_SHOW_ARGUMENTS\r\n"),
            AdminCommand::Empty => s.push_str("ERR UNKNOWN_COMMAND Unknown+server+commandNULL\r\n"),
            AdminCommand::Unknown { command } => {
                let _ = write!(s, "ERR UNKNOWN_COMMAND Unknown+server+command{}\r\n", text(&command));
            }
            _ => s.push_str("ERR UNKNOWN_ERROR\r\n"),
        }
        Bytes::from(s)
    }
}
