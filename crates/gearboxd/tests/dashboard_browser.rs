//! The dashboard in headless Chromium (Debian's `chromium` and `chromium-driver`, driven
//! through chromedriver with fantoccini): a function and its queue appear and change live, a
//! job is looked up by handle and by unique id and cancelled through the page, maxqueue is
//! set (and a refusal shown), the layout fits a phone, and 3,000 functions stay quick.
//! Screenshots go to `target/test-artifacts/dashboard/`. Skipped with a printed reason when
//! Chromium or chromedriver is missing, unless `CI=true`.

#[path = "support/browser.rs"]
mod browser;
mod support;

use std::time::Instant;

use browser::{artifacts, driver, screenshot, session, wait_js, wait_text};
use fantoccini::{Client, Locator};
use gearbox_proto::PacketType::{CAN_DO, ERROR};
use serde_json::{json, Value};
use support::http::{start, start_on};
use support::jobs::{show_jobs, submit, SUBMIT_JOB_BG};

/// The cells of `function`'s row as the page shows them; `null` while it has none.
const ROW: &str = "const tr = [...document.querySelectorAll('#functions tbody tr')]
    .find(r => r.dataset.function === arguments[0]);
  return tr ? [...tr.children].map(td => td.textContent) : null;";

/// Waits until `function`'s row shows `queued` jobs queued in all.
async fn wait_queued(c: &Client, function: &str, queued: u64) -> Value {
    let want = queued.to_string();
    wait_js(
        c,
        &format!("{function} queued {queued}"),
        ROW,
        vec![json!(function)],
        |v| v[1] == want.as_str(),
    )
    .await
}

async fn type_into(c: &Client, css: &str, text: &str) {
    let e = c.find(Locator::Css(css)).await.unwrap();
    e.clear().await.unwrap();
    e.send_keys(text).await.unwrap();
}

/// Looks `handle` up and presses "cancel job" once the page offers it.
async fn cancel_through_the_page(c: &Client, handle: &str) {
    type_into(c, "#lookup-input", handle).await;
    click(c, "#lookup-handle").await;
    wait_js(
        c,
        "cancel enabled",
        "return !document.getElementById('cancel').disabled;",
        vec![],
        |v| v == true,
    )
    .await;
    click(c, "#cancel").await;
}

async fn click(c: &Client, css: &str) {
    c.find(Locator::Css(css))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_follows_a_live_load_and_acts_through_the_api() {
    let Some(driver) = driver() else { return };
    let (server, addr) = start(&[]);
    let c = session(&driver, 1280, 900).await;
    c.goto(&format!("http://{addr}/")).await.unwrap();
    wait_text(&c, "#feed", |t| t == "live").await;

    // A function and its queue appear, then change, as jobs are submitted.
    let mut client = server.connect();
    let first = submit(&mut client, SUBMIT_JOB_BG, "resize", "", b"1");
    submit(&mut client, SUBMIT_JOB_BG, "resize", "photo-7", b"2");
    let row = wait_queued(&c, "resize", 2).await;
    // function, queued, high, normal, low, running, workers, total
    assert_eq!(row, json!(["resize", "2", "0", "2", "0", "0", "0", "2"]));
    submit(&mut client, SUBMIT_JOB_BG, "resize", "", b"3");
    wait_queued(&c, "resize", 3).await;
    wait_text(&c, "#t-queued", |t| t == "3").await;
    // The charts drew something.
    wait_js(
        &c,
        "chart pixels",
        "const c = document.getElementById('chart-queue');
         const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
         let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n;",
        vec![],
        |v| v.as_u64().unwrap() > 100,
    )
    .await;
    screenshot(&c, "live").await;

    // The connections panel lists the worker and its function once opened.
    let mut worker = server.connect();
    worker.send(CAN_DO, b"resize");
    click(&c, "#conns summary").await;
    wait_js(
        &c,
        "the worker in the connections",
        "return [...document.querySelectorAll('#conn-table tbody tr')]
           .some(r => r.children[3].textContent === 'resize');",
        vec![],
        |v| v == true,
    )
    .await;
    wait_text(&c, "#conn-note", |t| t.ends_with(" connections")).await;
    drop(worker);

    // Look-ups by handle and by unique id.
    type_into(&c, "#lookup-input", &first).await;
    click(&c, "#lookup-handle").await;
    wait_text(&c, "#lookup-result", |t| {
        t == format!("{first}: queued · progress 0/0")
    })
    .await;
    type_into(&c, "#lookup-input", "photo-7").await;
    click(&c, "#lookup-unique").await;
    wait_text(&c, "#lookup-result", |t| {
        t == "photo-7: queued · progress 0/0 · clients waiting 0"
    })
    .await;

    // Cancel through the page: gone from the server and from the table.
    cancel_through_the_page(&c, &first).await;
    wait_text(&c, "#lookup-result", |t| t == format!("cancelled {first}")).await;
    assert!(!show_jobs(&server).contains(&first));
    wait_queued(&c, "resize", 2).await;
    click(&c, "#lookup-handle").await;
    wait_text(&c, "#lookup-result", |t| {
        t == format!("404: no job {first}")
    })
    .await;
    screenshot(&c, "cancelled").await;

    // maxqueue: the row fills in the function; the server enforces the limit set.
    c.execute(
        "[...document.querySelectorAll('#functions tbody tr')]
           .find(r => r.dataset.function === 'resize').click();",
        vec![],
    )
    .await
    .unwrap();
    let f = c.find(Locator::Css("#mq-function")).await.unwrap();
    assert_eq!(f.prop("value").await.unwrap().as_deref(), Some("resize"));
    type_into(&c, "#mq-value", "2").await;
    click(&c, "#mq-set").await;
    wait_text(&c, "#mq-result", |t| {
        t == "resize: at most 2 queued per priority"
    })
    .await;
    client.send(SUBMIT_JOB_BG, b"resize\0\0over");
    assert_eq!(client.recv().0, ERROR, "the queue is full at 2");
    // The server's refusal is shown as it gave it.
    type_into(&c, "#mq-function", "two words").await;
    click(&c, "#mq-set").await;
    wait_text(&c, "#mq-result", |t| {
        t.starts_with("400: bad function: `two words`")
    })
    .await;

    // A phone: nothing wider than the screen, the table scrolls inside its panel.
    c.set_window_size(390, 844).await.unwrap();
    let width = wait_js(
        &c,
        "phone layout",
        "return [document.documentElement.scrollWidth, window.innerWidth];",
        vec![],
        |v| v[1].as_u64().unwrap() <= 420,
    )
    .await;
    assert!(
        width[0].as_u64() <= width[1].as_u64(),
        "page wider than the screen: {width}"
    );
    screenshot(&c, "phone").await;
    c.execute("window.scrollTo(0, document.body.scrollHeight);", vec![])
        .await
        .unwrap();
    screenshot(&c, "phone-bottom").await;
    c.close().await.unwrap();
}

/// A non-loopback IPv4 address of this host (the one its default route leaves from; no packet
/// is sent).
fn outside_address() -> Option<std::net::IpAddr> {
    let s = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    s.connect("198.51.100.1:9").ok()?;
    let ip = s.local_addr().ok()?.ip();
    (!ip.is_loopback() && !ip.is_unspecified()).then_some(ip)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changes_from_a_peer_not_allowed_are_refused_and_the_page_says_why() {
    let Some(ip) = outside_address() else {
        eprintln!("skipped: this host has no non-loopback IPv4 address to be a remote peer from");
        return;
    };
    let Some(driver) = driver() else { return };
    let (server, addr) = start_on(&ip.to_string(), &[]);
    let mut client = server.connect();
    let handle = submit(&mut client, SUBMIT_JOB_BG, "resize", "", b"1");
    let c = session(&driver, 1280, 900).await;
    // The page from the host's outside address: the browser is a peer that is not loopback.
    c.goto(&format!("http://{addr}/")).await.unwrap();
    wait_text(&c, "#feed", |t| t == "live").await;
    wait_queued(&c, "resize", 1).await;
    cancel_through_the_page(&c, &handle).await;
    let refused = wait_text(&c, "#lookup-result", |t| t.starts_with("403: ")).await;
    assert!(refused.contains("cancel"), "{refused}");
    type_into(&c, "#mq-function", "resize").await;
    type_into(&c, "#mq-value", "1").await;
    click(&c, "#mq-set").await;
    let refused = wait_text(&c, "#mq-result", |t| t.starts_with("403: ")).await;
    assert!(refused.contains("maxqueue"), "{refused}");
    screenshot(&c, "refused").await;
    assert!(
        show_jobs(&server).contains(&handle),
        "the job is still held"
    );
    c.close().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_thousand_functions_load_update_and_filter_quickly() {
    let Some(driver) = driver() else { return };
    let (server, addr) = start(&[]);
    let mut worker = server.connect();
    for i in 0..3000 {
        worker.send(CAN_DO, format!("bulk_f{i:04}").as_bytes());
    }
    // Every function is known before the page loads.
    assert!(support::wait_until(support::TIMEOUT, || {
        server.connect().admin_listing("status").len() == 3000
    }));
    let c = session(&driver, 1280, 900).await;

    let t = Instant::now();
    c.goto(&format!("http://{addr}/")).await.unwrap();
    wait_text(&c, "#page-info", |t| {
        t == "1–100 of 3,000" || t == "1–100 of 3000"
    })
    .await;
    let load = t.elapsed();

    let t = Instant::now();
    let mut client = server.connect();
    for i in 0..5 {
        submit(
            &mut client,
            SUBMIT_JOB_BG,
            "bulk_f0042",
            "",
            format!("{i}").as_bytes(),
        );
    }
    wait_queued(&c, "bulk_f0042", 5).await;
    let update = t.elapsed();

    let t = Instant::now();
    type_into(&c, "#filter", "f2999").await;
    wait_text(&c, "#page-info", |t| t == "1–1 of 1").await;
    let filter = t.elapsed();
    let rows = c
        .find_all(Locator::Css("#functions tbody tr"))
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    screenshot(&c, "3000-filtered").await;

    // The page keeps its rows: an update rewrites cells, it does not rebuild the table.
    // (WebDriver's clear fires no `input` event: emptied the way a user's deleting does.)
    c.execute(
        "const f = document.getElementById('filter');
         f.value = ''; f.dispatchEvent(new Event('input'));",
        vec![],
    )
    .await
    .unwrap();
    wait_text(&c, "#page-info", |t| t.starts_with("1–100 of 3")).await;
    c.execute(
        "document.querySelector('#functions tbody tr').dataset.mark = 'kept';",
        vec![],
    )
    .await
    .unwrap();
    submit(&mut client, SUBMIT_JOB_BG, "bulk_f0000", "", b"x");
    wait_queued(&c, "bulk_f0000", 1).await;
    let kept = c
        .execute(
            "return document.querySelector('#functions tbody tr').dataset.mark;",
            vec![],
        )
        .await
        .unwrap();
    assert_eq!(kept, "kept");
    // Sorting by a column (largest first) is the server's: across all 3,000 functions.
    click(&c, "#functions th[data-sort=queued]").await;
    wait_js(
        &c,
        "sorted by queued",
        "return [...document.querySelectorAll('#functions tbody tr')].slice(0, 2)
           .map(r => r.dataset.function);",
        vec![],
        |v| v == &json!(["bulk_f0042", "bulk_f0000"]),
    )
    .await;
    screenshot(&c, "3000").await;
    c.close().await.unwrap();

    let report = format!(
        "3,000 functions, page of 100: load {load:?} (goto to first rows), update {update:?} \
         (5 submits to a row showing them; the sampler ticks every 1 s), filter {filter:?} \
         (typing to the one matching row)\n"
    );
    eprint!("{report}");
    std::fs::write(artifacts().join("timings.txt"), &report).unwrap();
    for (what, d) in [("load", load), ("update", update), ("filter", filter)] {
        assert!(d.as_secs() < 5, "{what} took {d:?}");
    }
}
