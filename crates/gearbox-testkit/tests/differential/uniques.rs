//! Unique ids: coalescing keys, the 64-byte limit, and `-` (payload as unique).

use gearbox_proto::{Priority, Request};

use crate::support_ext::{
    bg, can_do, differential, fg, get_status_unique, show, submit, Target, Transcript,
};

/// Unique ids: coalescing keys, the 64-byte limit, and `-` (payload as unique).
#[tokio::test]
async fn unique_ids() {
    differential(|t: Target, mut tr: Transcript| async move {
        let [mut a, mut c, mut c2] = t.connections().await;
        let same_high = submit("jf", "same", "2", Priority::High, true);
        tr.ask("bg same", &mut c, &bg("jf", "same", "1")).await;
        tr.ask("bg same again", &mut c2, &same_high).await;
        tr.ask("fg same", &mut c2, &fg("jf", "same", "3")).await;
        let steps = [
            ("same unique, other function", bg("jf2", "same", "1")),
            ("empty unique", bg("jf", "", "1")),
            ("empty unique again", bg("jf", "", "1")),
        ];
        tr.ask_each(&mut c, &steps).await;
        c.send(&bg("jf", &"u".repeat(65), "1")).await;
        let too_large = ("ARGUMENT_TOO_LARGE", "Unique value too large");
        crate::errors::expect_error(&t, &mut tr, "65-byte unique", &mut c, too_large).await;
        let u63 = "v".repeat(63);
        tr.ask("63-byte unique", &mut c, &bg("jf", &u63, "1")).await;
        tr.ask("63-byte unique again", &mut c, &bg("jf", &u63, "2"))
            .await;
        tr.admin(&mut a, "show unique jobs").await;
        tr.admin(&mut a, "status").await;
        // A unique shared by two functions: both answer for the most recently created job
        // (jf2's, no client).
        let r = c.ask(&get_status_unique("same")).await;
        t.expect_same(
            "GET_STATUS_UNIQUE of a unique on two functions",
            &show(&r),
            "STATUS_RES_UNIQUE \"same\" 1 0 \"0\" \"0\" 0",
        );

        // Unique `-`: both coalesce `-` jobs by payload but keep `-` as their unique
        // (JOB_ASSIGN_UNIQ, show unique jobs), so an explicit unique equal to the payload is a
        // different job and GET_STATUS_UNIQUE of the payload knows nothing.
        let mut d = t.connect().await;
        let first = show(&d.ask(&bg("dash", "-", "PAY")).await);
        tr.push("dash unique", first.clone());
        tr.push(
            "dash unique again",
            show(&d.ask(&bg("dash", "-", "PAY")).await),
        );
        tr.push(
            "dash, other payload",
            show(&d.ask(&bg("dash", "-", "PAY2")).await),
        );
        let status = show(&d.ask(&get_status_unique("PAY")).await);
        t.expect_same(
            "GET_STATUS_UNIQUE of a `-` job's payload",
            &status,
            "STATUS_RES_UNIQUE \"PAY\" 0 0 \"0\" \"0\" 0",
        );
        let explicit = show(&d.ask(&bg("dash", "PAY", "other")).await);
        t.expect_same(
            "explicit unique equal to a `-` job's payload",
            &explicit,
            "JOB_CREATED H:8",
        );
        d.send(&can_do("dash")).await;
        let assigned = show(&d.ask(&Request::GrabJobUniq).await);
        t.expect_same(
            "JOB_ASSIGN_UNIQ of a `-` job",
            &assigned,
            "JOB_ASSIGN_UNIQ H:6 \"dash\" \"-\" \"PAY\"",
        );
        tr
    })
    .await;
}
