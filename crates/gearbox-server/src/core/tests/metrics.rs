//! The `metrics` command's histograms with a controlled clock: each queue wait and run time
//! lands in the bucket its exact duration belongs to, and the text is Prometheus' histogram
//! shape (cumulative buckets, `+Inf`, `_sum`, `_count`).

use super::*;

/// The `metrics` text at `now`.
fn metrics(t: &mut Harness, now: UnixMillis) -> String {
    listing(t, AdminCommand::Metrics, now)
}

/// The text of the listing `command` answers at `now`.
fn listing(t: &mut Harness, command: AdminCommand, now: UnixMillis) -> String {
    t.core.admin(C9, command, now, &mut t.out);
    match t.take().as_slice() {
        [Effect::Text(_, text)] => String::from_utf8(text.to_vec()).unwrap(),
        other => panic!("unexpected reply: {other:?}"),
    }
}

/// The value of `series` in `text`.
fn value<'a>(text: &'a str, series: &str) -> &'a str {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[test]
fn queue_wait_and_run_time_fall_in_their_exact_buckets() {
    let mut t = Harness::two(CoreConfig::default());
    t.connect(C9);
    t.req(C2, Request::CanDo { function: b("f") }, T0);
    // Waits of 1 ms (on the 0.001 bound), 6 ms and 3,600,001 ms (past the last bound).
    let waits = [1, 6, 3_600_001];
    let runs = [0, 2_500, 10];
    for (i, (wait, run)) in waits.into_iter().zip(runs).enumerate() {
        t.req(C1, submit("f", "", true), T0);
        let taken = T0.plus_ms(wait);
        t.req(C2, Request::GrabJob, taken);
        let handle = h(i as u64 + 1);
        let data = b("");
        t.req(
            C2,
            Request::WorkComplete { handle, data },
            taken.plus_ms(run),
        );
    }
    let stats = t.core.function_stats(b"f").unwrap();
    assert_eq!(stats.queue_wait.count(), 3);
    assert_eq!(stats.queue_wait.sum_ms(), 3_600_008);
    assert_eq!(stats.run_time.sum_ms(), 2_510);
    let text = metrics(&mut t, T0.plus_ms(4_000_000));
    let wait = "gearbox_job_queue_wait_seconds";
    assert!(text.contains(&format!("# TYPE {wait} histogram\n")));
    for (le, want) in [
        ("0.001", "1"),
        ("0.005", "1"),
        ("0.01", "2"),
        ("3600", "2"),
        ("+Inf", "3"),
    ] {
        let series = format!("{wait}_bucket{{function=\"f\",le=\"{le}\"}}");
        assert_eq!(value(&text, &series), want, "{series}");
    }
    assert_eq!(
        value(&text, &format!("{wait}_sum{{function=\"f\"}}")),
        "3600.008"
    );
    assert_eq!(
        value(&text, &format!("{wait}_count{{function=\"f\"}}")),
        "3"
    );
    let run = "gearbox_job_run_seconds";
    for (le, want) in [("0.001", "1"), ("0.01", "2"), ("1", "2"), ("2.5", "3")] {
        let series = format!("{run}_bucket{{function=\"f\",le=\"{le}\"}}");
        assert_eq!(value(&text, &series), want, "{series}");
    }
    assert_eq!(
        value(&text, &format!("{run}_sum{{function=\"f\"}}")),
        "2.510"
    );
    // Every bucket series of a histogram is listed, in ascending order of its bound.
    let buckets = text
        .lines()
        .filter(|l| l.starts_with(&format!("{run}_bucket")))
        .count();
    assert_eq!(buckets, crate::metrics::JOB_SECONDS.bounds.len() + 1);
}

#[test]
fn a_job_that_loses_its_worker_counts_its_run_and_waits_again() {
    let mut t = Harness::two(CoreConfig::default());
    t.connect(C9);
    t.req(C2, Request::CanDo { function: b("f") }, T0);
    t.req(C1, submit("f", "", true), T0);
    t.req(C2, Request::GrabJob, T0.plus_ms(20));
    t.core.disconnect(C2, T0.plus_ms(120), &mut t.out);
    t.take();
    let stats = t.core.function_stats(b"f").unwrap();
    assert_eq!((stats.run_time.count(), stats.run_time.sum_ms()), (1, 100));
    t.req(C9, Request::CanDo { function: b("f") }, T0);
    t.req(C9, Request::GrabJob, T0.plus_ms(150));
    let stats = t.core.function_stats(b"f").unwrap();
    // 20 ms before the first worker took it, 30 ms from the requeue to the second.
    assert_eq!(stats.queue_wait.counts()[..5], [0, 0, 0, 1, 1]);
    assert_eq!(stats.queue_wait.sum_ms(), 50);
}

#[test]
fn metrics_totals_sum_every_function_in_one_unlabelled_line_each() {
    let mut t = Harness::two(CoreConfig::default());
    t.connect(C9);
    t.req(C2, Request::CanDo { function: b("f") }, T0);
    for function in ["f", "f", "g", "h\"x"] {
        t.req(C1, submit(function, "", true), T0);
    }
    t.req(C2, Request::GrabJob, T0);
    let (handle, data) = (h(1), b(""));
    t.req(C2, Request::WorkComplete { handle, data }, T0);
    let full = metrics(&mut t, T0);
    let totals = listing(&mut t, AdminCommand::MetricsTotals, T0);
    assert!(!totals.contains("function="), "{totals}");
    for (counter, want) in [
        ("gearbox_jobs_submitted_total", "4"),
        ("gearbox_jobs_completed_total", "1"),
        ("gearbox_jobs_failed_total", "0"),
    ] {
        assert_eq!(value(&totals, counter), want, "{counter}");
        // The same as the per-function series of the full listing, summed.
        let summed: u64 = full
            .lines()
            .filter(|l| l.starts_with(&format!("{counter}{{")))
            .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
            .sum();
        assert_eq!(summed.to_string(), want, "{counter}");
    }
    assert_eq!(
        value(&totals, "gearbox_connections"),
        value(&full, "gearbox_connections")
    );
    // The server-wide part is the same as the full listing's.
    let server_part = |text: &str| {
        let at = text
            .find("# HELP gearbox_connections_accepted_total")
            .unwrap();
        text[at..].to_owned()
    };
    assert_eq!(server_part(&totals), server_part(&full));
}
