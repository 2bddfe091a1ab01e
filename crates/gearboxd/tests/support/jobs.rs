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
    server.stop_with(libc::SIGTERM);
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
    run_all_at(server.connect(), function)
}

/// [`run_all`] on a connection to any server (gearmand too).
pub fn run_all_at(mut worker: Conn, function: &str) -> Vec<Assigned> {
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

/// `status` for one function: (jobs, running); `None` if it is not listed.
pub fn status(server: &Gearboxd, function: &str) -> Option<(u64, u64)> {
    server
        .connect()
        .admin_listing("status")
        .into_iter()
        .find_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0] == function).then(|| {
                let n = |i: usize| f[i].parse::<u64>().unwrap();
                (n(1), n(2))
            })
        })
}

/// The unique id and payload of every job of `function` run by a worker, sorted.
pub fn run_uniques(server: &Gearboxd, function: &str) -> Vec<(String, Vec<u8>)> {
    let mut ran: Vec<(String, Vec<u8>)> = run_all(server, function)
        .into_iter()
        .map(|a| (a.unique, a.data))
        .collect();
    ran.sort();
    ran
}

/// Submits jobs to gearboxd started by `first`, restarts it with `second` (the same store,
/// maybe named another way), checks the handles came back (the high-priority one first) and
/// runs them, then restarts once more with `first` and finds nothing.
pub fn restart_keeps_background_jobs(first: &dyn Fn() -> Gearboxd, second: &dyn Fn() -> Gearboxd) {
    let server = first();
    let mut client = server.connect();
    let mut submitted = Vec::new();
    for i in 0..5 {
        let data = format!("payload {i}\0with a NUL").into_bytes();
        let handle = submit(
            &mut client,
            SUBMIT_JOB_BG,
            "resize",
            &format!("u{i}"),
            &data,
        );
        submitted.push((handle, format!("u{i}"), data));
    }
    let urgent = submit(
        &mut client,
        SUBMIT_JOB_HIGH_BG,
        "resize",
        "urgent",
        b"first",
    );
    assert_eq!(
        submit(&mut client, SUBMIT_JOB_BG, "resize", "u0", b"ignored"),
        submitted[0].0,
        "the same unique id is coalesced"
    );
    let before = show_jobs(&server);
    assert_eq!(before.len(), 6, "{before:?}");
    stop(server);

    let server = second();
    assert_eq!(
        show_jobs(&server),
        before,
        "the same handles after the restart"
    );
    assert_eq!(status(&server, "resize"), Some((6, 0)));
    let mut client = server.connect();
    let new = submit(&mut client, SUBMIT_JOB_BG, "other", "", b"new");
    assert!(!before.contains(&new), "{new} reused");
    let ran = run_all(&server, "resize");
    assert_eq!(ran.len(), 6, "{ran:?}");
    assert_eq!(ran[0].handle, urgent, "the high-priority job runs first");
    assert_eq!(ran[0].data, b"first");
    for (handle, unique, data) in &submitted {
        let job = ran
            .iter()
            .find(|a| &a.handle == handle)
            .unwrap_or_else(|| panic!("{handle} not run: {ran:?}"));
        assert_eq!(
            (&job.function[..], &job.unique, &job.data),
            ("resize", unique, data)
        );
    }
    assert_eq!(run_all(&server, "other").len(), 1);
    assert_eq!(status(&server, "resize"), Some((0, 0)));
    stop(server);

    let server = first();
    assert_eq!(
        show_jobs(&server),
        BTreeSet::new(),
        "finished jobs were removed"
    );
    stop(server);
}
