//! `drift`: every pinned tag compared with the upstream by HEAD only — `same`, `moved`
//! (both digests), `gone` (404), `error` (the upstream stopped) — on the store and through
//! the server holding it, `--exit-code`, `serve --drift-every` in `/metrics`, and the time
//! drift takes over 1,000 pinned tags.

mod common;

use std::time::{Duration, Instant};

use common::cli::{Run, Sb};
use common::fixtures::{self, Pushed};
use common::registry::Registry;
use common::server::Server;
use futures_util::StreamExt;
use serde_json::Value;

const MULTI: &str = "docker.io/library/multi:1";
const SINGLE: &str = "docker.io/library/single:1";
const LIST: &str = "docker.io/library/dockerlist:1";

/// multi:1, single:1 and dockerlist:1 pinned (and dockerlist by digest too, which drift
/// skips); then multi:1 re-pushed with other content and single:1 deleted upstream.
async fn pinned_then_drifted(reg: &Registry, sb: &Sb) -> (Pushed, Pushed, Pushed) {
    let url = reg.url();
    let (old, single, list) = tokio::join!(
        fixtures::push_multi(&url, 0),
        fixtures::push_single(&url),
        fixtures::push_dockerlist(&url),
    );
    let by_digest = format!("dockerlist@{}", list.digest);
    sb.run(&["pin", "multi:1", "single:1", "dockerlist:1", &by_digest])
        .await
        .ok();
    let new = fixtures::push_multi(&reg.url(), 1).await;
    assert_ne!(new.digest, old.digest);
    reg.delete_manifest("library/single", &single.digest).await;
    (old, new, single)
}

fn entry<'a>(report: &'a Value, reference: &str) -> &'a Value {
    report["entries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["reference"] == reference)
        .unwrap_or_else(|| panic!("{reference} missing from {report:#}"))
}

/// The JSON report says multi moved, single is gone and dockerlist is the same.
fn assert_drifted(report: &Value, old: &Pushed, new: &Pushed, single: &Pushed) {
    assert_eq!(report["entries"].as_array().unwrap().len(), 3, "{report:#}");
    let multi = entry(report, MULTI);
    assert_eq!(multi["state"], "moved");
    assert_eq!(multi["pinned"], old.digest.as_str());
    assert_eq!(multi["current"], new.digest.as_str());
    let gone = entry(report, SINGLE);
    assert_eq!(gone["state"], "gone");
    assert_eq!(gone["pinned"], single.digest.as_str());
    assert!(gone["current"].is_null());
    assert_eq!(entry(report, LIST)["state"], "same");
    assert_eq!(
        report["counts"],
        serde_json::json!({"same": 1, "moved": 1, "gone": 1, "error": 0})
    );
}

async fn timed(sb: &Sb, args: &[&str]) -> (Run, Duration) {
    let started = Instant::now();
    let run = sb.run(args).await;
    (run, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_names_moved_gone_and_same_tags_with_head_requests_only() {
    let reg = Registry::start().await;
    let sb = Sb::new(&reg.url());
    let (old, new, single) = pinned_then_drifted(&reg, &sb).await;
    let (gets, heads) = (
        reg.count_requests("GET", "/manifests/"),
        reg.count_requests("HEAD", "/manifests/"),
    );

    let (text, took) = timed(&sb, &["drift"]).await;
    let text = text.ok();
    eprintln!("drift of 3 tags: {took:?}");
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(
        lines,
        [
            format!("same   {LIST}  {}", fixtures_digest(&sb, LIST).await),
            format!("moved  {MULTI}  {} → {}", old.digest, new.digest),
            format!("gone   {SINGLE}  {}", single.digest),
            "1 same, 1 moved, 1 gone, 0 errors".to_string(),
        ],
        "{}",
        text.stdout
    );
    let report = sb.run(&["--json", "drift"]).await.ok().json();
    assert_drifted(&report, &old, &new, &single);
    let strict = sb.run(&["drift", "--exit-code"]).await;
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    let only = sb.run(&["--json", "drift", "multi"]).await.ok().json();
    assert_eq!(only["entries"].as_array().unwrap().len(), 1);
    assert_eq!(only["entries"][0]["reference"], MULTI);

    assert_eq!(
        reg.count_requests("GET", "/manifests/"),
        gets,
        "drift GETs no manifest"
    );
    assert_eq!(
        reg.count_requests("HEAD", "/manifests/"),
        heads + 3 * 3 + 1,
        "one HEAD per tag and run"
    );
    let listed = sb.run(&["--json", "list"]).await.ok().json();
    let digests: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["image"] == MULTI)
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    assert_eq!(digests, [old.digest.as_str()], "the store is not changed");
}

/// The digest the store pinned `reference` at.
async fn fixtures_digest(sb: &Sb, reference: &str) -> String {
    let listed = sb.run(&["--json", "list", reference]).await.ok().json();
    listed[0]["digest"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_upstream_is_an_error_per_tag_and_fails_only_with_exit_code() {
    let mut reg = Registry::start().await;
    let sb = Sb::new(&reg.url());
    pinned_then_drifted(&reg, &sb).await;
    reg.stop().await;

    let (run, took) = timed(&sb, &["drift"]).await;
    eprintln!("drift of 3 tags, upstream stopped: {took:?}");
    // Not a speed target (bench/workflow.sh measures those): a stopped upstream must fail
    // fast rather than retry for minutes.
    assert!(took < Duration::from_secs(30), "took {took:?}");
    let run = run.ok();
    let errors: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.starts_with("error  "))
        .collect();
    assert_eq!(errors.len(), 3, "{}", run.stdout);
    assert!(
        errors[0].contains("cannot reach") && errors[0].contains(&reg.host()),
        "{}",
        errors[0]
    );
    assert!(
        run.stdout.ends_with("0 same, 0 moved, 0 gone, 3 errors\n"),
        "{}",
        run.stdout
    );
    let strict = sb.run(&["--json", "drift", "--exit-code"]).await;
    assert_eq!(strict.code, 1, "{}", strict.stderr);
    assert_eq!(strict.json()["counts"]["error"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_through_the_server_and_in_its_metrics() {
    let reg = Registry::start().await;
    let sb = Sb::new(&reg.url());
    let (old, new, single) = pinned_then_drifted(&reg, &sb).await;
    let gets = reg.count_requests("GET", "/manifests/");
    let srv = Server::start(&sb, &["--drift-every", "1s"]).await;

    // The server holds the store: the CLI goes through its admin API.
    let report = sb.run(&["--json", "drift"]).await.ok().json();
    assert_drifted(&report, &old, &new, &single);
    let strict = sb.run(&["drift", "--exit-code"]).await;
    assert_eq!(strict.code, 1, "{}", strict.stderr);

    let metrics = loop_until_drift_metrics(&srv).await;
    for line in [
        "stablebuild_drift_tags{state=\"same\"} 1",
        "stablebuild_drift_tags{state=\"moved\"} 1",
        "stablebuild_drift_tags{state=\"gone\"} 1",
        "stablebuild_drift_tags{state=\"error\"} 0",
        &format!("stablebuild_drift_state{{reference=\"{MULTI}\",state=\"moved\"}} 1"),
        &format!("stablebuild_drift_state{{reference=\"{SINGLE}\",state=\"gone\"}} 1"),
        &format!("stablebuild_drift_state{{reference=\"{LIST}\",state=\"same\"}} 1"),
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    let ran = srv
        .metric("stablebuild_drift_last_run_timestamp_seconds")
        .await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    assert!(ran <= now && ran + 30 > now, "last run {ran}, now {now}");
    assert_eq!(
        reg.count_requests("GET", "/manifests/"),
        gets,
        "the server's drift GETs no manifest"
    );
}

async fn loop_until_drift_metrics(srv: &Server) -> String {
    for _ in 0..100 {
        let metrics = reqwest::get(format!("{}/metrics", srv.url()))
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        if metrics.contains("stablebuild_drift_tags{") {
            return metrics;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("no drift metrics after 10 s; log:\n{}", srv.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn drift_of_a_thousand_pinned_tags_checks_each_once() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    let (bytes, media_type) =
        fixtures::fetch_manifest_bytes(&reg.url(), "library/single", "1").await;
    let tags: Vec<String> = (0..1000).map(|i| format!("t{i:04}")).collect();
    let client = reqwest::Client::new();
    let puts = tags.iter().map(|tag| {
        let req = client
            .put(format!("{}/v2/library/single/manifests/{tag}", reg.url()))
            .header("Content-Type", &media_type)
            .body(bytes.clone());
        async move { assert_eq!(req.send().await.unwrap().status().as_u16(), 201) }
    });
    futures_util::stream::iter(puts)
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    let sb = Sb::new(&reg.url());
    let refs: Vec<String> = tags.iter().map(|t| format!("single:{t}")).collect();
    let mut pin = vec!["pin"];
    pin.extend(refs.iter().map(String::as_str));
    let (pinned, took) = timed(&sb, &pin).await;
    pinned.ok();
    eprintln!("pinned 1000 tags in {took:?}");

    let (gets, heads) = (
        reg.count_requests("GET", "/manifests/"),
        reg.count_requests("HEAD", "/manifests/"),
    );
    let (run, took) = timed(&sb, &["--json", "drift"]).await;
    eprintln!("drift of 1000 pinned tags: {took:?}");
    assert_eq!(reg.count_requests("GET", "/manifests/"), gets);
    assert_eq!(reg.count_requests("HEAD", "/manifests/"), heads + 1000);
    let report = run.ok().json();
    assert_eq!(report["counts"]["same"], 1000, "{}", single.digest);
    // Speed is bench/workflow.sh's to measure; here, every tag once, by HEAD only.
    assert_eq!(report["entries"].as_array().unwrap().len(), 1000);
}
