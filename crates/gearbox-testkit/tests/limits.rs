//! Limits: queue sizes, argument lengths, connection count and unsent output.

mod common;

use common::*;
use gearbox_proto::{Priority, Request, Response};
use gearbox_testkit::build::can_do;

#[tokio::test]
async fn maxqueue_refuses_submits_beyond_the_limit() {
    let (_server, [mut c]) = start().await;
    admin_ok(&mut c, "maxqueue f 2").await;
    let first = submit_ok(&mut c, &bg("f", "u1", "1")).await;
    submit_ok(&mut c, &fg("f", "", "2")).await;
    for p in Priority::ALL {
        expect_error(&mut c, &submit("f", "", "3", p, true), "QUEUE_ERROR").await;
        expect_error(&mut c, &submit("f", "", "3", p, false), "QUEUE_ERROR").await;
    }
    // A duplicate of a held job is not a new job: still accepted.
    assert_eq!(submit_ok(&mut c, &bg("f", "u1", "x")).await, first);
    assert_eq!(status(&mut c, "f").await, Some((2, 0, 0)));
}

#[tokio::test]
async fn maxqueue_counts_running_jobs_and_frees_room_when_they_end() {
    let (server, [mut c]) = start().await;
    admin_ok(&mut c, "maxqueue f 1").await;
    let handle = submit_ok(&mut c, &bg("f", "", "1")).await;
    let mut w = worker(&server, &["f"]).await;
    grab_uniq(&mut w).await;
    expect_error(&mut c, &bg("f", "", "2"), "QUEUE_ERROR").await;
    w.send(&complete(&handle, "")).await;
    w.assert_quiet().await;
    submit_ok(&mut c, &bg("f", "", "3")).await;
    // Other functions are not limited.
    submit_ok(&mut c, &bg("g", "", "1")).await;
    submit_ok(&mut c, &bg("g", "", "2")).await;
}

#[tokio::test]
async fn maxqueue_limits_each_priority() {
    let (_server, [mut c]) = start().await;
    admin_ok(&mut c, "maxqueue f 1 5 5").await;
    // The high limit of 1 is compared with the function's total, as are the others of 5.
    let high = |data: &str| submit("f", "", data, Priority::High, true);
    submit_ok(&mut c, &high("h1")).await;
    expect_error(&mut c, &high("h2"), "QUEUE_ERROR").await;
    for i in 2..=5 {
        submit_ok(&mut c, &bg("f", "", &format!("n{i}"))).await;
    }
    expect_error(&mut c, &bg("f", "", "n6"), "QUEUE_ERROR").await;
    let low = submit("f", "", "l6", Priority::Low, true);
    expect_error(&mut c, &low, "QUEUE_ERROR").await;
    // No limit given: unlimited again.
    admin_ok(&mut c, "maxqueue f").await;
    submit_ok(&mut c, &high("h3")).await;
}

#[tokio::test]
async fn a_too_long_unique_is_refused_and_the_connection_carries_on() {
    let (_server, [mut c]) = start().await;
    let long = "u".repeat(65);
    expect_error(&mut c, &bg("f", &long, "x"), "ARGUMENT_TOO_LARGE").await;
    expect_error(&mut c, &fg("f", &long, "x"), "ARGUMENT_TOO_LARGE").await;
    c.send(&Request::SubmitEpoch {
        function: b("f"),
        unique: b(&long),
        epoch: 0,
        data: b(""),
    })
    .await;
    assert!(matches!(c.recv().await, Response::Error { .. }));
    let ok = "u".repeat(64);
    assert_eq!(
        submit_ok(&mut c, &bg("f", &ok, "x")).await,
        h(1),
        "64 bytes is fine"
    );
    assert_eq!(status(&mut c, "f").await, Some((1, 0, 0)));
}

#[tokio::test]
async fn a_too_long_function_name_is_refused() {
    let server = server_with(|cfg| cfg.max_function = 8).await;
    let mut c = server.connect().await;
    let long = "f".repeat(9);
    expect_error(&mut c, &bg(&long, "", "x"), "ARGUMENT_TOO_LARGE").await;
    expect_error(&mut c, &can_do(&long), "ARGUMENT_TOO_LARGE").await;
    let timeout = Request::CanDoTimeout {
        function: b(&long),
        timeout: b("1000"),
    };
    expect_error(&mut c, &timeout, "ARGUMENT_TOO_LARGE").await;
    c.assert_quiet().await;
    let list = c.admin_list("status").await;
    assert!(
        !list.contains(&long),
        "no trace of the refused name: {list:?}"
    );
    submit_ok(&mut c, &bg(&"f".repeat(8), "", "x")).await;
}

#[tokio::test]
async fn the_default_function_limit_is_gearmands_512() {
    let (_server, [mut c]) = start().await;
    expect_error(&mut c, &bg(&"f".repeat(513), "", "x"), "ARGUMENT_TOO_LARGE").await;
    submit_ok(&mut c, &bg(&"f".repeat(512), "", "x")).await;
}

#[tokio::test]
async fn a_too_long_client_id_is_refused() {
    let (_server, [mut c]) = start().await;
    let client_id = |len: usize| Request::SetClientId {
        id: b(&"i".repeat(len)),
    };
    expect_error(&mut c, &client_id(255), "ARGUMENT_TOO_LARGE").await;
    let list = c.admin_list("workers").await;
    assert!(!list.contains("iiii"), "id not set: {list:?}");
    c.send(&client_id(254)).await;
    c.assert_quiet().await;
    assert!(c.admin_list("workers").await.contains(&"i".repeat(254)));
}

#[tokio::test]
async fn connections_past_the_limit_get_server_busy_and_are_closed() {
    let server = server_with(|cfg| cfg.max_connections = 2).await;
    let [mut c1, mut c2] = server.connections().await;
    c1.assert_quiet().await;
    c2.assert_quiet().await;
    let mut c3 = server.connect().await;
    match c3.recv_or_close().await {
        Some(Response::Error { code, .. }) => assert_eq!(code, b("SERVER_BUSY")),
        other => panic!("expected ERROR SERVER_BUSY, got {other:?}"),
    }
    assert_eq!(c3.recv_or_close().await, None, "then closed");
    // The first two are unaffected.
    let handle = submit_ok(&mut c1, &fg("f", "", "x")).await;
    c2.send(&Request::CanDo { function: b("f") }).await;
    assert_eq!(grab_uniq(&mut c2).await.0, handle);
    // Once one leaves, there is room again.
    drop(c1);
    let mut attempts = 0;
    let mut admin = loop {
        attempts += 1;
        assert!(attempts < 1000, "a slot never became free");
        let mut c = server.connect().await;
        c.send(&Request::EchoReq { data: b("hi") }).await;
        match c.recv_or_close().await {
            Some(Response::EchoRes { .. }) => break c,
            Some(Response::Error { code, .. }) if code == b("SERVER_BUSY") => {
                // The server had not processed c1's disconnect yet: that refusal is correct.
                tokio::task::yield_now().await;
            }
            other => panic!("unexpected {other:?}"),
        }
    };
    admin.assert_quiet().await;
}

#[tokio::test]
async fn a_client_that_never_reads_is_dropped_and_others_carry_on() {
    // 1 MiB: well above what one read of worker output can queue at once, so only a peer
    // that stops reading reaches it.
    let server = server_with(|cfg| {
        cfg.max_unsent = 1 << 20;
        cfg.send_stall_timeout_ms = 200;
    })
    .await;
    let [mut admin, mut lazy, mut other] = server.connections().await;
    let handle = submit_ok(&mut lazy, &fg("f", "", "x")).await;
    let mut w = worker(&server, &["f"]).await;
    assert_eq!(grab_uniq(&mut w).await.0, handle);
    // Small packets, but far more in total than the kernel's socket buffers plus the allowance.
    let chunk = bytes::Bytes::from(vec![b'z'; 16 * 1024]);
    let chunks = 3 * 1024;
    for _ in 0..chunks {
        w.send(&Request::WorkData {
            handle: handle.clone(),
            data: chunk.clone(),
        })
        .await;
    }
    w.assert_quiet().await;
    // The lazy client finally reads: it gets part of the stream, then the server's close.
    let received = lazy.read_to_close().await;
    assert!(
        received.len() < chunks * chunk.len(),
        "dropped before everything was sent"
    );
    wait_connections(&mut admin, 3).await;
    // The worker, the other client and the admin connection carry on; the job is still held
    // by its worker (its only client left while it ran).
    other.assert_quiet().await;
    w.send(&complete(&handle, "done")).await;
    w.assert_quiet().await;
    let h2 = submit_ok(&mut other, &fg("f", "", "y")).await;
    assert_eq!(grab_uniq(&mut w).await.0, h2);
    w.send(&complete(&h2, "done")).await;
    assert_eq!(other.recv().await, Work::Complete("done").response(&h2));
}

#[tokio::test]
async fn a_slow_reader_throttles_its_producer_instead_of_being_dropped() {
    // The cap is far below the stream: past a quarter of it the server stops reading the
    // worker until the client has caught up, so a client that does read gets everything.
    let server = server_with(|cfg| {
        cfg.max_unsent = 128 * 1024;
        cfg.send_stall_timeout_ms = 60_000;
    })
    .await;
    let mut client = server.connect().await;
    let handle = submit_ok(&mut client, &fg("f", "", "x")).await;
    let mut w = worker(&server, &["f"]).await;
    assert_eq!(grab_uniq(&mut w).await.0, handle);
    let chunk = bytes::Bytes::from(vec![b'y'; 16 * 1024]);
    let chunks = 512;
    let producer = {
        let (handle, chunk) = (handle.clone(), chunk.clone());
        tokio::spawn(async move {
            for _ in 0..chunks {
                w.send(&Request::WorkData {
                    handle: handle.clone(),
                    data: chunk.clone(),
                })
                .await;
            }
            w.send(&complete(&handle, "end")).await;
            w
        })
    };
    for i in 0..chunks {
        assert_eq!(
            client.recv().await,
            Response::WorkData {
                handle: handle.clone(),
                data: chunk.clone()
            },
            "chunk {i}"
        );
    }
    assert_eq!(client.recv().await, Work::Complete("end").response(&handle));
    let mut w = producer.await.expect("producer task");
    w.assert_quiet().await;
}

#[tokio::test]
async fn large_payloads_cross_the_server_byte_for_byte() {
    // Payloads past the server's copy threshold travel by reference and leave with vectored
    // writes, interleaved with small packets: every byte must arrive, in order.
    let (server, [mut client]) = start().await;
    let mut w = sleeping_worker(&server, &["big"]).await;
    let pattern = |len: usize, seed: u8| -> bytes::Bytes {
        (0..len)
            .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
            .collect::<Vec<u8>>()
            .into()
    };
    for (n, len) in [16 * 1024, 1024 * 1024 + 7, 3 * 1024 * 1024]
        .into_iter()
        .enumerate()
    {
        let input = pattern(len, n as u8);
        let handle = submit_ok(
            &mut client,
            &Request::Submit(gearbox_proto::SubmitJob {
                function: b("big"),
                unique: bytes::Bytes::new(),
                data: input.clone(),
                priority: Priority::Normal,
                background: false,
            }),
        )
        .await;
        assert_eq!(w.recv().await, Response::Noop);
        let (h, _, _, data) = grab_uniq(&mut w).await;
        assert_eq!(h, handle);
        assert!(data == input, "job {n}: the worker got different bytes");
        let output = pattern(len + 1, 100 + n as u8);
        // A small packet before and after the large one, in the same direction.
        w.send(&Work::Status("1", "2").request(&handle)).await;
        w.send(&Request::WorkData {
            handle: handle.clone(),
            data: output.clone(),
        })
        .await;
        w.send(&complete(&handle, "end")).await;
        assert!(matches!(client.recv().await, Response::WorkStatus { .. }));
        match client.recv().await {
            Response::WorkData { data, .. } => {
                assert!(data == output, "job {n}: the client got different bytes")
            }
            other => panic!("expected WORK_DATA, got {other:?}"),
        }
        assert_eq!(client.recv().await, Work::Complete("end").response(&handle));
        w.send(&Request::PreSleep).await;
    }
}
