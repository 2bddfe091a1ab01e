//! Background jobs over raw packets, shared by the store tests: submit, list, run, stop.

use std::collections::BTreeSet;

use gearbox_proto::PacketType;

use super::{Conn, Gearboxd};

// Not every test binary that includes this module uses every packet type.
#[allow(unused_imports)]
pub use gearbox_proto::PacketType::{
    CAN_DO, GRAB_JOB_UNIQ, JOB_ASSIGN_UNIQ, JOB_CREATED, NO_JOB, SUBMIT_JOB_BG, SUBMIT_JOB_HIGH_BG,
    WORK_COMPLETE,
};

/// A job as a worker received it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Assigned {
    pub handle: String,
    pub function: String,
    pub unique: String,
    pub data: Vec<u8>,
}

/// SIGTERM, and a clean exit.
pub fn stop(mut server: Gearboxd) {
    server.signal(libc::SIGTERM);
    let status = server.wait_exit();
    assert!(status.success(), "{status:?}\n{}", server.stderr_text());
}

/// Submits a background job and returns the handle from JOB_CREATED.
pub fn submit(
    conn: &mut Conn,
    ty: PacketType,
    function: &str,
    unique: &str,
    data: &[u8],
) -> String {
    let mut body = format!("{function}\0{unique}\0").into_bytes();
    body.extend_from_slice(data);
    conn.send(ty, &body);
    let (ty, body) = conn.recv();
    assert_eq!(
        ty,
        JOB_CREATED,
        "reply: {:?}",
        String::from_utf8_lossy(&body)
    );
    String::from_utf8(body).unwrap()
}

/// The handles `show jobs` lists.
pub fn show_jobs(server: &Gearboxd) -> BTreeSet<String> {
    server
        .connect()
        .admin_listing("show jobs")
        .into_iter()
        .map(|l| l.split('\t').next().unwrap().to_owned())
        .collect()
}

/// A raw worker for `function` that runs every queued job (WORK_COMPLETE) until NO_JOB, in
/// the order the server hands them out.
pub fn run_all(server: &Gearboxd, function: &str) -> Vec<Assigned> {
    let mut worker = server.connect();
    worker.send(CAN_DO, function.as_bytes());
    let mut done = Vec::new();
    loop {
        worker.send(GRAB_JOB_UNIQ, b"");
        let (ty, body) = worker.recv();
        match ty {
            NO_JOB => return done,
            JOB_ASSIGN_UNIQ => {
                let mut parts = body.splitn(4, |b| *b == 0);
                let mut text = || String::from_utf8(parts.next().unwrap().to_vec()).unwrap();
                let (handle, function, unique) = (text(), text(), text());
                let data = parts.next().unwrap().to_vec();
                let mut reply = handle.clone().into_bytes();
                reply.push(0);
                worker.send(WORK_COMPLETE, &reply);
                done.push(Assigned {
                    handle,
                    function,
                    unique,
                    data,
                });
            }
            other => panic!(
                "worker got packet {other:?}: {:?}",
                String::from_utf8_lossy(&body)
            ),
        }
    }
}
