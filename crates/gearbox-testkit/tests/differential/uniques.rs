//! Unique ids: coalescing keys, the 64-byte limit, and `-` (payload as unique).

use gearbox_proto::{Priority, Request};

use crate::support_ext::{b, differential, show, submit, RawConnExt, Target, Transcript};

/// Unique ids: coalescing keys, the 64-byte limit, and `-` (payload as unique).
#[tokio::test]
async fn unique_ids() {
    differential(|t: Target| async move {
        let mut tr = Transcript::default();
        let mut a = t.connect().await;
        let mut c = t.connect().await;
        let mut c2 = t.connect().await;
        tr.ask(
            "bg same",
            &mut c,
            &submit("jf", "same", "1", Priority::Normal, true),
        )
        .await;
        tr.ask(
            "bg same again",
            &mut c2,
            &submit("jf", "same", "2", Priority::High, true),
        )
        .await;
        tr.ask(
            "fg same",
            &mut c2,
            &submit("jf", "same", "3", Priority::Normal, false),
        )
        .await;
        tr.ask(
            "same unique, other function",
            &mut c,
            &submit("jf2", "same", "1", Priority::Normal, true),
        )
        .await;
        tr.ask(
            "empty unique",
            &mut c,
            &submit("jf", "", "1", Priority::Normal, true),
        )
        .await;
        tr.ask(
            "empty unique again",
            &mut c,
            &submit("jf", "", "1", Priority::Normal, true),
        )
        .await;
        let u65: &'static str = Box::leak("u".repeat(65).into_boxed_str());
        c.send(&submit("jf", u65, "1", Priority::Normal, true))
            .await;
        let (code, text) = ("ARGUMENT_TOO_LARGE", "Unique value too large");
        crate::errors::expect_error(&t, &mut tr, "65-byte unique", &mut c, code, text).await;
        let u63: &'static str = Box::leak("v".repeat(63).into_boxed_str());
        tr.ask(
            "63-byte unique",
            &mut c,
            &submit("jf", u63, "1", Priority::Normal, true),
        )
        .await;
        tr.ask(
            "63-byte unique again",
            &mut c,
            &submit("jf", u63, "2", Priority::Normal, true),
        )
        .await;
        tr.admin(&mut a, "show unique jobs").await;
        tr.admin(&mut a, "status").await;
        // A unique shared by two functions: both answer for the most recently created job
        // (jf2's, no client).
        let r = c.ask_unique_status("same").await;
        t.expect_same(
            "GET_STATUS_UNIQUE of a unique on two functions",
            &show(&r),
            "STATUS_RES_UNIQUE \"same\" 1 0 \"0\" \"0\" 0",
        );

        // Unique `-`: both coalesce `-` jobs by payload but keep `-` as their unique
        // (JOB_ASSIGN_UNIQ, show unique jobs), so an explicit unique equal to the payload is a
        // different job and GET_STATUS_UNIQUE of the payload knows nothing.
        let mut d = t.connect().await;
        let first = show(
            &d.ask(&submit("dash", "-", "PAY", Priority::Normal, true))
                .await,
        );
        tr.push("dash unique", first.clone());
        tr.push(
            "dash unique again",
            show(
                &d.ask(&submit("dash", "-", "PAY", Priority::Normal, true))
                    .await,
            ),
        );
        tr.push(
            "dash, other payload",
            show(
                &d.ask(&submit("dash", "-", "PAY2", Priority::Normal, true))
                    .await,
            ),
        );
        let status = show(&d.ask_unique_status("PAY").await);
        t.expect_same(
            "GET_STATUS_UNIQUE of a `-` job's payload",
            &status,
            "STATUS_RES_UNIQUE \"PAY\" 0 0 \"0\" \"0\" 0",
        );
        let explicit = show(
            &d.ask(&submit("dash", "PAY", "other", Priority::Normal, true))
                .await,
        );
        t.expect_same(
            "explicit unique equal to a `-` job's payload",
            &explicit,
            "JOB_CREATED H:8",
        );
        d.send(&Request::CanDo {
            function: b("dash"),
        })
        .await;
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
