//! Typed replies of gearbox's cluster admin commands (a gearbox server in cluster mode; other
//! servers answer `ERR`, gearbox servers not in a cluster `ERR NOT_CLUSTER ...`):
//!
//! | command | line |
//! |---|---|
//! | `cluster status` | `FUNC\tFREE\tQUEUED\tRUNNING\tWORKERS` (cluster-wide) |
//! | `cluster members` | `ID\tADDRESS\tHEARTBEAT_AGE_MS\tJOBS_HELD\tCONNECTIONS\tWORKERS`, then `\t*` on the answering server's line |

use bytes::Bytes;

use super::reply::{bad, name_and_columns, number, Parsed};

/// One line of `cluster status`: a function's numbers over the whole cluster.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterFunctionStatus {
    /// Function name.
    pub function: Bytes,
    /// Jobs in the shared queue that no member holds (waiting to be claimed).
    pub free: u64,
    /// Jobs queued on the members (held, waiting for a worker there), summed.
    pub queued: u64,
    /// Jobs running on the members' workers, summed.
    pub running: u64,
    /// Registered workers on the members, summed.
    pub workers: u64,
}

/// One line of `cluster members`: a live member as of the answering server's last view.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ClusterMemberStatus {
    /// The member's cluster id.
    pub id: String,
    /// Its Gearman address (`host:port`).
    pub address: String,
    /// Milliseconds since its last heartbeat.
    pub heartbeat_age_ms: u64,
    /// Jobs it holds (queued, running or waiting for their time there).
    pub jobs_held: u64,
    /// Its open connections, as it published them.
    pub connections: u64,
    /// Its connections with a registered function.
    pub workers: u64,
    /// Whether this is the server that answered.
    pub this_server: bool,
}

/// Parses one `cluster status` line.
pub(crate) fn cluster_status_line(line: &[u8]) -> Parsed<ClusterFunctionStatus> {
    let (name, c) = name_and_columns(line, 4)?;
    Ok(ClusterFunctionStatus {
        function: Bytes::copy_from_slice(name),
        free: number(c[0], line)?,
        queued: number(c[1], line)?,
        running: number(c[2], line)?,
        workers: number(c[3], line)?,
    })
}

/// Parses one `cluster members` line.
pub(crate) fn cluster_member_line(line: &[u8]) -> Parsed<ClusterMemberStatus> {
    let fields: Vec<&[u8]> = line.split(|b| *b == b'\t').collect();
    let this_server = match fields.len() {
        6 => false,
        7 if fields[6] == b"*" => true,
        _ => {
            return Err(bad(
                line,
                "expected six tab-separated columns and an optional *",
            ))
        }
    };
    let text = |f: &[u8]| String::from_utf8_lossy(f).into_owned();
    Ok(ClusterMemberStatus {
        id: text(fields[0]),
        address: text(fields[1]),
        heartbeat_age_ms: number(fields[2], line)?,
        jobs_held: number(fields[3], line)?,
        connections: number(fields[4], line)?,
        workers: number(fields[5], line)?,
        this_server,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_lines_keep_tabs_in_names() {
        let s = cluster_status_line(b"a\tb\t4\t3\t2\t1").unwrap();
        assert_eq!(s.function, "a\tb");
        assert_eq!((s.free, s.queued, s.running, s.workers), (4, 3, 2, 1));
        assert!(cluster_status_line(b"a\t1\t2\t3").is_err());
        assert!(cluster_status_line(b"a\t1\t2\t3\tx").is_err());
    }

    #[test]
    fn member_lines_mark_this_server() {
        let m = cluster_member_line(b"s1\thost:4730\t120\t3\t5\t2").unwrap();
        assert_eq!(
            m,
            ClusterMemberStatus {
                id: "s1".into(),
                address: "host:4730".into(),
                heartbeat_age_ms: 120,
                jobs_held: 3,
                connections: 5,
                workers: 2,
                this_server: false,
            }
        );
        assert!(
            cluster_member_line(b"s2\th:1\t0\t0\t0\t0\t*")
                .unwrap()
                .this_server
        );
        assert!(cluster_member_line(b"s2\th:1\t0\t0\t0\t0\tx").is_err());
        assert!(cluster_member_line(b"s2\th:1\t0\t0\t0").is_err());
    }
}
