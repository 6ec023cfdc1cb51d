//! Self-test of the browser harness in `tests/common/browser.rs`, against a tiny axum server on
//! `127.0.0.1:0`: typing into a search form and submitting it, reading attributes, seeing which
//! URLs the page made the browser fetch, saving a screenshot, and leaving no process behind.

mod common;

use std::time::Duration;

use axum::Router;
use axum::extract::Query;
use axum::response::Html;
use axum::routing::get;
use common::browser::Browser;
use fantoccini::Locator;
use serde::Deserialize;

const REFS: [&str; 4] = ["alpine:3.20", "alpine:3.21", "debian:12", "nginx:1.27"];
const EXTERNAL_IMAGE: &str = "http://198.51.100.7/x.png";
const WAIT: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
struct Search {
    #[serde(default)]
    q: String,
}

/// `/`: a search form and the rows of [`REFS`] containing `q`; `/external`: a page with an
/// image on a TEST-NET address.
async fn serve() -> String {
    let app = Router::new()
        .route(
            "/",
            get(|Query(search): Query<Search>| async move { index(&search.q) }),
        )
        .route("/external", get(|| async { external() }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("local address");
    tokio::spawn(async move { axum::serve(listener, app).await.expect("serve") });
    format!("http://{addr}")
}

fn index(q: &str) -> Html<String> {
    let rows: Vec<&str> = REFS.into_iter().filter(|r| r.contains(q)).collect();
    let cells: String = rows
        .iter()
        .map(|r| format!("<tr data-ref=\"{r}\"><td>{r}</td></tr>"))
        .collect();
    let (shown, q) = (rows.len(), escape(q));
    Html(format!(
        "<!doctype html><title>refs</title>\
         <form method=\"get\" action=\"/\"><input type=\"search\" name=\"q\" value=\"{q}\">\
         <button type=\"submit\">Search</button></form>\
         <p id=\"count\">{shown} of {total}</p><table>{cells}</table>",
        total = REFS.len()
    ))
}

fn external() -> Html<String> {
    Html(format!(
        "<!doctype html><title>external</title><p id=\"ready\">external</p>\
         <img src=\"{EXTERNAL_IMAGE}\">"
    ))
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn visit(browser: &Browser, url: &str) {
    let visited = browser.client().goto(url).await;
    visited.unwrap_or_else(|e| panic!("goto {url}: {e}"));
}

/// The `data-ref` attribute of every table row on the page.
async fn shown_refs(browser: &Browser) -> Vec<String> {
    let rows = browser
        .client()
        .find_all(Locator::Css("tr[data-ref]"))
        .await;
    let mut refs = Vec::new();
    for row in rows.expect("rows") {
        refs.push(row.attr("data-ref").await.expect("attr").expect("data-ref"));
    }
    refs
}

#[tokio::test(flavor = "multi_thread")]
async fn typing_a_search_and_submitting_narrows_the_rows() {
    let base = serve().await;
    let browser = Browser::start().await;
    visit(&browser, &format!("{base}/")).await;
    browser.wait_text("#count", "4 of 4", WAIT).await;
    assert_eq!(shown_refs(&browser).await, REFS);

    let input = browser.wait_for("input[type=search][name=q]", WAIT).await;
    input.send_keys("alpine").await.expect("type");
    let form = browser.client().form(Locator::Css("form")).await;
    form.expect("form").submit().await.expect("submit");
    browser.wait_text("#count", "2 of 4", WAIT).await;

    assert_eq!(shown_refs(&browser).await, ["alpine:3.20", "alpine:3.21"]);
    let url = browser.client().current_url().await.expect("url");
    assert_eq!(url.query(), Some("q=alpine"));
    let input = browser.wait_for("input[name=q]", WAIT).await;
    assert_eq!(
        input.prop("value").await.expect("value").as_deref(),
        Some("alpine")
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn network_urls_show_a_request_to_another_host() {
    let base = serve().await;
    let browser = Browser::start().await;
    assert_eq!(
        browser.network_urls().await,
        Vec::<String>::new(),
        "before any page"
    );

    visit(&browser, &format!("{base}/")).await;
    browser.wait_for("table", WAIT).await;
    let local = browser.network_urls().await;
    assert!(local.contains(&format!("{base}/")), "{local:?}");
    let origin = format!("{base}/");
    assert!(local.iter().all(|u| u.starts_with(&origin)), "{local:?}");

    visit(&browser, &format!("{base}/external")).await;
    browser.wait_for("#ready", WAIT).await;
    let external = browser.network_urls().await;
    assert!(
        external.contains(&format!("{base}/external")),
        "{external:?}"
    );
    assert!(external.iter().any(|u| u == EXTERNAL_IMAGE), "{external:?}");
    assert!(
        !external.contains(&format!("{base}/")),
        "read twice: {external:?}"
    );
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn screenshot_writes_a_png() {
    let base = serve().await;
    let browser = Browser::start().await;
    visit(&browser, &format!("{base}/")).await;
    browser.wait_for("table", WAIT).await;
    browser
        .client()
        .set_window_size(800, 600)
        .await
        .expect("window size");

    let path = browser.screenshot("browser-selftest").await;
    let _ = std::fs::remove_file(&path);
    let path = browser.screenshot("browser-selftest").await;
    assert!(
        path.ends_with("dashboard-screenshots/browser-selftest.png"),
        "{path:?}"
    );
    let png = std::fs::read(&path).expect("read the screenshot");
    assert!(png.starts_with(b"\x89PNG\r\n\x1a\n"), "not a PNG: {path:?}");
    assert!(png.len() > 1000, "{} bytes", png.len());
    browser.close().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn dropping_the_browser_ends_chromedriver_and_chromium() {
    let base = serve().await;
    let browser = Browser::start().await;
    visit(&browser, &format!("{base}/")).await;
    browser.wait_for("table", WAIT).await;
    let group = browser.process_group();
    assert!(
        live_members(group) > 1,
        "chromedriver and chromium in group {group}"
    );

    drop(browser); // as when a test panics: no close
    let deadline = std::time::Instant::now() + WAIT;
    while live_members(group) > 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "group {group} still running"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How many processes in process group `group` are alive (zombies not counted).
fn live_members(group: u32) -> usize {
    let procs = std::fs::read_dir("/proc").expect("/proc");
    let stats = procs.filter_map(|e| std::fs::read_to_string(e.ok()?.path().join("stat")).ok());
    stats
        .filter(|stat| {
            // pid (comm) state ppid pgrp ...; comm may hold spaces and parentheses
            let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
            let fields: Vec<&str> = after.split_whitespace().collect();
            fields.len() > 2 && fields[2] == group.to_string() && !matches!(fields[0], "Z" | "X")
        })
        .count()
}
