//! The cluster seen from this member: the load it publishes with each heartbeat, and the
//! admin commands `cluster status` and `cluster members`, rendered from the last view of the
//! shared queue the cluster task handed in ([`Core::set_cluster_view`]). The core does no I/O:
//! the replies describe that snapshot, however old (`cluster members` adds the snapshot's age
//! to each heartbeat age, so that the ages are as of the command).
//!
//! Formats (tab-separated, each listing ending in `.\n`):
//!
//! - `cluster status`: `FUNCTION\tFREE\tQUEUED\tRUNNING\tWORKERS` per function, sorted by
//!   name: FREE is the jobs in the shared queue no member holds; QUEUED, RUNNING and WORKERS
//!   are the sums over the live members' published loads.
//! - `cluster members`: `ID\tADDRESS\tHEARTBEAT_AGE_MS\tJOBS_HELD\tCONNECTIONS\tWORKERS` per
//!   member, sorted by id; the line of this server ends in `\t*`.
//!
//! On a server that is not in a cluster both answer
//! `ERR NOT_CLUSTER this+server+is+not+in+a+cluster\r\n`. Before the first snapshot (the
//! first heartbeat) the listings are empty.

use std::collections::BTreeMap;
use std::io::Write as _;

use bytes::Bytes;
use gearbox_store::cluster::{ClusterView, FunctionLoad, MemberStatus};

use super::time::UnixMillis;
use super::Core;

/// The reply of a cluster command on a server that is not in a cluster.
pub(super) const NOT_CLUSTER: &str = "ERR NOT_CLUSTER this+server+is+not+in+a+cluster\r\n";

/// The last view of the cluster the cluster task handed in.
#[derive(Debug, Clone)]
pub(super) struct ClusterSnapshot {
    /// This server's member id.
    me: String,
    /// What the store showed.
    view: ClusterView,
    /// When it was taken.
    at: UnixMillis,
}

/// One function's cluster-wide numbers.
#[derive(Debug, Default, Clone, Copy)]
struct Totals {
    free: u64,
    queued: u64,
    running: u64,
    workers: u64,
}

impl Core {
    /// This server's load, to publish with the next heartbeat: connections, connections with
    /// a registered function, and per function (by name) with any queued or running job or
    /// any worker the numbers `status` shows. Other members' bridges are left out: their
    /// jobs run, and are counted, on the member whose worker runs them.
    pub fn cluster_status(&self) -> MemberStatus {
        let mut bridged: BTreeMap<super::functions::FnId, u64> = BTreeMap::new();
        for c in self.conns.values().filter(|c| c.peer) {
            for id in &c.running {
                if let Some(job) = self.jobs.get(id) {
                    *bridged.entry(job.function).or_default() += 1;
                }
            }
        }
        let real = |w: &super::ConnId| self.conns.get(w).is_some_and(|c| !c.peer);
        let mut functions: Vec<FunctionLoad> = self
            .functions
            .ids()
            .map(|id| (id, &self.functions[id]))
            .map(|(id, f)| FunctionLoad {
                function: f.name.clone(),
                queued: f.queued() as u64,
                running: u64::from(f.running)
                    .saturating_sub(bridged.get(&id).copied().unwrap_or(0)),
                workers: f.workers.iter().filter(|w| real(w)).count() as u64,
            })
            .filter(|l| l.queued > 0 || l.running > 0 || l.workers > 0)
            .collect();
        functions.sort_by(|a, b| a.function.cmp(&b.function));
        MemberStatus {
            connections: self.conns.values().filter(|c| !c.peer).count() as u64,
            workers: self
                .conns
                .values()
                .filter(|c| !c.abilities.is_empty() && !c.peer)
                .count() as u64,
            functions,
        }
    }

    /// Keeps `view`, taken at `now`, as the cluster the admin commands show; `me` is this
    /// server's member id. Ignored on a server that is not in a cluster.
    pub fn set_cluster_view(&mut self, me: &str, view: ClusterView, now: UnixMillis) {
        if !self.is_cluster() {
            return;
        }
        self.cluster_view = Some(ClusterSnapshot {
            me: me.to_owned(),
            view,
            at: now,
        });
    }

    /// The `cluster status` reply (see the module documentation).
    pub(super) fn render_cluster_status(&self, s: &mut Vec<u8>) {
        if !self.is_cluster() {
            s.extend_from_slice(NOT_CLUSTER.as_bytes());
            return;
        }
        let mut rows: BTreeMap<Bytes, Totals> = BTreeMap::new();
        if let Some(snap) = &self.cluster_view {
            for (function, free) in &snap.view.free_by_function {
                rows.entry(function.clone()).or_default().free += free;
            }
            for m in &snap.view.members {
                for f in &m.status.functions {
                    let t = rows.entry(f.function.clone()).or_default();
                    t.queued += f.queued;
                    t.running += f.running;
                    t.workers += f.workers;
                }
            }
        }
        for (name, t) in rows {
            s.extend_from_slice(&name);
            let _ = writeln!(
                s,
                "\t{}\t{}\t{}\t{}",
                t.free, t.queued, t.running, t.workers
            );
        }
        s.extend_from_slice(b".\n");
    }

    /// The `cluster members` reply (see the module documentation); ages as of `now`.
    pub(super) fn render_cluster_members(&self, s: &mut Vec<u8>, now: UnixMillis) {
        if !self.is_cluster() {
            s.extend_from_slice(NOT_CLUSTER.as_bytes());
            return;
        }
        if let Some(snap) = &self.cluster_view {
            let age = now.ms_since(snap.at);
            let mut members: Vec<_> = snap.view.members.iter().collect();
            members.sort_by(|a, b| a.id.cmp(&b.id));
            for m in members {
                let _ = write!(
                    s,
                    "{}\t{}\t{}\t{}\t{}\t{}",
                    m.id,
                    m.address,
                    m.last_heartbeat_ms.saturating_add(age),
                    m.jobs,
                    m.status.connections,
                    m.status.workers
                );
                if m.id == snap.me {
                    s.extend_from_slice(b"\t*");
                }
                s.push(b'\n');
            }
        }
        s.extend_from_slice(b".\n");
    }
}

#[cfg(test)]
mod tests {
    use gearbox_proto::{AdminCommand, Priority, Request, SubmitJob};
    use gearbox_store::cluster::MemberInfo;

    use super::*;
    use crate::core::{ConnId, ConnInfo, CoreConfig, Outbox};

    const C1: ConnId = ConnId::new(1);

    fn core(cluster: bool) -> Core {
        let mut core = Core::new(CoreConfig {
            cluster,
            ..CoreConfig::default()
        });
        let info = ConnInfo {
            peer_ip: "127.0.0.1".into(),
            fd: 7,
            loopback: true,
            identity: Vec::new(),
        };
        core.connect(C1, info);
        core
    }

    fn ask(core: &mut Core, cmd: AdminCommand, now: u64) -> String {
        let mut out = Outbox::default();
        let got = core.admin_reply(C1, cmd, UnixMillis::from_millis(now), &mut out);
        String::from_utf8(got.to_vec()).unwrap()
    }

    fn load(function: &str, queued: u64, running: u64, workers: u64) -> FunctionLoad {
        FunctionLoad {
            function: Bytes::from(function.to_owned()),
            queued,
            running,
            workers,
        }
    }

    fn member(id: &str, age: u64, jobs: u64, status: MemberStatus) -> MemberInfo {
        MemberInfo {
            id: id.into(),
            address: format!("{id}:4730"),
            last_heartbeat_ms: age,
            jobs,
            status,
        }
    }

    fn view() -> ClusterView {
        ClusterView {
            members: vec![
                member(
                    "s2",
                    50,
                    3,
                    MemberStatus {
                        connections: 4,
                        workers: 2,
                        functions: vec![load("a", 2, 1, 2), load("b", 0, 0, 1)],
                    },
                ),
                member(
                    "s1",
                    10,
                    0,
                    MemberStatus {
                        connections: 1,
                        workers: 1,
                        functions: vec![load("a", 0, 0, 1)],
                    },
                ),
                member("s3", 0, 0, MemberStatus::default()),
            ],
            free: 7,
            free_by_function: vec![(Bytes::from_static(b"c"), 5), (Bytes::from_static(b"a"), 2)],
        }
    }

    #[test]
    fn cluster_status_sums_the_members_and_the_free_jobs() {
        let mut core = core(true);
        assert_eq!(ask(&mut core, AdminCommand::ClusterStatus, 0), ".\n");
        core.set_cluster_view("s3", view(), UnixMillis::from_millis(1000));
        assert_eq!(
            ask(&mut core, AdminCommand::ClusterStatus, 1000),
            "a\t2\t2\t1\t3\nb\t0\t0\t0\t1\nc\t5\t0\t0\t0\n.\n"
        );
    }

    #[test]
    fn cluster_members_marks_this_server_and_ages_the_snapshot() {
        let mut core = core(true);
        assert_eq!(ask(&mut core, AdminCommand::ClusterMembers, 0), ".\n");
        core.set_cluster_view("s3", view(), UnixMillis::from_millis(1000));
        assert_eq!(
            ask(&mut core, AdminCommand::ClusterMembers, 1250),
            "s1\ts1:4730\t260\t0\t1\t1\n\
             s2\ts2:4730\t300\t3\t4\t2\n\
             s3\ts3:4730\t250\t0\t0\t0\t*\n.\n"
        );
    }

    #[test]
    fn a_server_of_its_own_is_not_a_cluster() {
        let mut core = core(false);
        core.set_cluster_view("s3", view(), UnixMillis::from_millis(1000));
        for cmd in [AdminCommand::ClusterStatus, AdminCommand::ClusterMembers] {
            assert_eq!(
                ask(&mut core, cmd, 1000),
                "ERR NOT_CLUSTER this+server+is+not+in+a+cluster\r\n"
            );
        }
    }

    #[test]
    fn the_published_status_counts_this_servers_load() {
        let mut core = core(true);
        assert_eq!(
            core.cluster_status(),
            MemberStatus {
                connections: 1,
                workers: 0,
                functions: Vec::new(),
            }
        );
        let worker = ConnId::new(2);
        core.connect(
            worker,
            ConnInfo {
                peer_ip: "127.0.0.1".into(),
                fd: 8,
                loopback: true,
                identity: Vec::new(),
            },
        );
        let now = UnixMillis::from_millis(1000);
        let mut out = Outbox::default();
        let b = |s: &'static str| Bytes::from_static(s.as_bytes());
        for f in ["g", "f"] {
            core.request(worker, Request::CanDo { function: b(f) }, now, &mut out);
        }
        for _ in 0..2 {
            let job = Request::Submit(SubmitJob {
                function: b("f"),
                unique: Bytes::new(),
                data: b("x"),
                priority: Priority::Normal,
                background: true,
            });
            core.request(C1, job, now, &mut out);
        }
        core.request(worker, Request::GrabJob, now, &mut out);
        assert_eq!(
            core.cluster_status(),
            MemberStatus {
                connections: 2,
                workers: 1,
                functions: vec![load("f", 1, 1, 1), load("g", 0, 0, 1)],
            }
        );
    }
}
