//! One connection submitting the same foreground unique more than once: gearmand attaches it
//! once per submission and sends it every WORK_* packet once per submission, which
//! libgearman's task sets (PHP `addTask` twice, then `runTasks`) wait for. Packets are counted
//! on both servers, and the transcripts compared.

use bytes::Bytes;
use gearbox_proto::{Request, Response};
use gearbox_testkit::RawConn;

use crate::support_ext::{
    bg, can_do, differential, fg, get_status_unique, show, wait_for_clients, Target, Transcript,
    Work,
};

/// Every packet `c` has been sent so far, shown, once the worker `w`'s packets before it are
/// known to be handled (an echo round trip on `w`, then one on `c`).
async fn received(w: &mut RawConn, c: &mut RawConn) -> Vec<String> {
    w.assert_quiet().await;
    c.drain().await.iter().map(show).collect()
}

/// How many of `shown` packets are `want`.
fn count(shown: &[String], want: &Response) -> usize {
    let want = show(want);
    shown.iter().filter(|s| **s == want).count()
}

/// `w` takes the next job of its functions and returns its handle.
async fn grab(w: &mut RawConn) -> Bytes {
    match w.ask(&Request::GrabJob).await {
        Response::JobAssign { handle, .. } => handle,
        other => panic!("expected JOB_ASSIGN, got {other:?}"),
    }
}

#[tokio::test]
async fn work_packets_go_once_per_submission() {
    differential(|t: Target, mut tr: Transcript| async move {
        let [mut a, mut w, mut c, mut c2] = t.connections().await;
        for f in ["dup", "dup2", "dup3"] {
            w.send(&can_do(f)).await;
        }
        c.enable_exceptions().await;
        c2.enable_exceptions().await;

        // Twice from `c`, once from `c2`: one job, three attachments.
        let h = c.submit(&fg("dup", "same", "x")).await;
        assert_eq!(c.submit(&fg("dup", "same", "x")).await, h, "{}", t.name());
        assert_eq!(c2.submit(&fg("dup", "same", "x")).await, h, "{}", t.name());
        tr.admin(&mut a, "status").await;
        tr.ask("clients of `same`", &mut a, &get_status_unique("same"))
            .await;
        let job = grab(&mut w).await;
        let work = [
            Work::Data("part"),
            Work::Warning("careful"),
            Work::Status("1", "2"),
            Work::Exception("oops"),
        ];
        for p in work {
            w.send(&p.request(&job)).await;
        }
        let to_c = received(&mut w, &mut c).await;
        let to_c2 = received(&mut w, &mut c2).await;
        assert_eq!(
            (to_c.len(), to_c2.len()),
            (8, 4),
            "{}: {to_c:?} {to_c2:?}",
            t.name()
        );
        for p in work {
            let r = p.response(&job);
            assert_eq!(count(&to_c, &r), 2, "{}: twice to c: {to_c:?}", t.name());
            assert_eq!(count(&to_c2, &r), 1, "{}: once to c2: {to_c2:?}", t.name());
        }
        tr.push("packets to the twice-attached client", to_c.join(", "));
        tr.push("packets to the once-attached client", to_c2.join(", "));
        tr.admin(&mut a, "status").await;

        // The twice-attached client leaves: both its attachments go, c2's stays.
        let mut c3 = t.connect().await;
        let h2 = c3.submit(&fg("dup2", "u2", "y")).await;
        c3.submit(&fg("dup2", "u2", "y")).await;
        assert_eq!(c2.submit(&fg("dup2", "u2", "y")).await, h2);
        wait_for_clients(t.addr(), "u2", 3).await;
        drop(c3);
        wait_for_clients(t.addr(), "u2", 1).await;
        tr.admin(&mut a, "status").await;
        let job = grab(&mut w).await;
        w.send(&Work::Fail.request(&job)).await;
        let to_c2 = received(&mut w, &mut c2).await;
        assert_eq!(to_c2, [show(&Work::Fail.response(&job))], "{}", t.name());
        tr.push("the client that stayed", to_c2.join(", "));

        // Background first, then the foreground twice: two results, the job still runs once.
        tr.ask("background", &mut c, &bg("dup3", "u3", "z")).await;
        tr.ask("foreground", &mut c, &fg("dup3", "u3", "z")).await;
        tr.ask("foreground again", &mut c, &fg("dup3", "u3", "z"))
            .await;
        tr.ask("clients of `u3`", &mut a, &get_status_unique("u3"))
            .await;
        let job = grab(&mut w).await;
        w.send(&Work::Complete("r3").request(&job)).await;
        let to_c = received(&mut w, &mut c).await;
        let done = Work::Complete("r3").response(&job);
        assert_eq!(
            (to_c.len(), count(&to_c, &done)),
            (2, 2),
            "{}: {to_c:?}",
            t.name()
        );
        tr.push("background + foreground twice", to_c.join(", "));
        tr.ask("nothing left", &mut w, &Request::GrabJob).await;
        tr.admin(&mut a, "status").await;
        tr
    })
    .await;
}
