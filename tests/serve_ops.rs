//! Operating the mirror: a SIGTERM finishes the responses in flight and the pull-through
//! behind them; a server killed mid pull-through resumes it on the next request, from the
//! root it first saw; an upstream that rate-limits gets a registry error that names it, and
//! /metrics counts all of it. The upstream is the scripted one (pauses and 429s).

mod common;

use std::time::{Duration, Instant};

use common::cli::{Sb, read};
use common::faulty::{Fault, Faulty};
use common::server::Server;

const INDEX: &str = "/v2/library/faulty/manifests/1";

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// Reads until at least `n` bytes have arrived.
async fn read_at_least(resp: &mut reqwest::Response, n: usize) -> Vec<u8> {
    let mut got = Vec::new();
    while got.len() < n {
        got.extend_from_slice(&resp.chunk().await.unwrap().expect("more bytes"));
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_the_response_in_flight_and_the_pull_through_behind_it() {
    let up = Faulty::start().await;
    let sb = Sb::new(&up.url());
    let layer = up.layer_digests()[0].clone();
    let full = up.blob(&layer);
    let wait = Duration::from_secs(2);
    up.push_fault(&up.blob_path(&layer), Fault::Pause { after: 1000, wait });
    let srv = Server::start(&sb, &[]).await;
    let base = srv.url();

    let index = reqwest::get(format!("{base}{INDEX}")).await.unwrap();
    assert_eq!(index.status(), 200);
    let mut blob = reqwest::get(format!("{base}/v2/library/faulty/blobs/{layer}"))
        .await
        .unwrap();
    let mut got = read_at_least(&mut blob, 1000).await;
    let stopped = tokio::spawn(srv.stop());
    while let Some(chunk) = blob.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, full, "the response in flight was finished");
    assert!(stopped.await.unwrap().success());

    let listed = sb.run(&["--json", "list"]).await.ok().json();
    assert_eq!(listed[0]["image"], "docker.io/library/faulty:1");
    assert_eq!(listed[0]["complete"], true, "{listed}");
    assert_eq!(read(&sb.blob_path(&layer)), full);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_killed_mid_pull_through_resumes_it_on_the_next_request() {
    let up = Faulty::start().await;
    let sb = Sb::new(&up.url());
    let layer = up.layer_digests()[0].clone();
    let wait = Duration::from_secs(60);
    up.push_fault(&up.blob_path(&layer), Fault::Pause { after: 1000, wait });
    let srv = Server::start(&sb, &[]).await;
    let index = reqwest::get(format!("{}{INDEX}", srv.url())).await.unwrap();
    assert_eq!(index.status(), 200);
    let root = header(&index, "docker-content-digest");
    let layer_path = up.blob_path(&layer);
    let deadline = Instant::now() + Duration::from_secs(20);
    while up.pending_faults(&layer_path) > 0 {
        assert!(Instant::now() < deadline, "the layer was never fetched");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    srv.kill().await;

    let listed = sb.run(&["--json", "list"]).await.ok().json();
    assert_eq!(listed[0]["complete"], false, "an interrupted pin: {listed}");
    assert!(!sb.blob_path(&layer).exists());

    let srv = Server::start(&sb, &[]).await;
    let blob = reqwest::get(format!("{}/v2/library/faulty/blobs/{layer}", srv.url()))
        .await
        .unwrap();
    assert_eq!(header(&blob, "x-stablebuild-cache"), "miss");
    assert_eq!(blob.bytes().await.unwrap().to_vec(), up.blob(&layer));
    let again = reqwest::get(format!("{}{INDEX}", srv.url())).await.unwrap();
    assert_eq!(header(&again, "docker-content-digest"), root);
    let entry = srv.wait_pinned(&sb, "faulty:1").await;
    assert_eq!(entry["digest"], root.as_str());
    assert_eq!(
        up.requests(INDEX),
        1,
        "the resumed pin used the root it saw first, not the tag again"
    );
    assert!(srv.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limited_upstream_gets_a_registry_error_and_metrics_count_it() {
    let up = Faulty::start().await;
    let sb = Sb::new(&up.url());
    up.push_fault(INDEX, Fault::TooMany { retry_after: 600 });
    let srv = Server::start(&sb, &[]).await;
    let url = format!("{}{INDEX}", srv.url());

    let limited = reqwest::get(&url).await.unwrap();
    assert_eq!(limited.status(), 429);
    assert_eq!(header(&limited, "retry-after"), "600");
    let body: serde_json::Value = limited.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "TOOMANYREQUESTS", "{body}");

    let ok = reqwest::get(&url).await.unwrap();
    assert_eq!(ok.status(), 200, "the next request pins");
    assert_eq!(header(&ok, "x-stablebuild-cache"), "miss");
    srv.wait_pinned(&sb, "faulty:1").await;
    let hit = reqwest::get(&url).await.unwrap();
    assert_eq!(header(&hit, "x-stablebuild-cache"), "hit");
    let size = hit.bytes().await.unwrap().len() * 2;

    // At least: the 429, the miss, the hit (the admin API polls of wait_pinned count too).
    assert!(srv.metric("stablebuild_requests_total").await >= 3);
    assert_eq!(srv.metric("stablebuild_request_errors_total").await, 1);
    assert_eq!(srv.metric("stablebuild_cache_hits_total").await, 1);
    assert_eq!(srv.metric("stablebuild_cache_misses_total").await, 1);
    assert!(srv.metric("stablebuild_served_bytes_total").await >= size as u64);
    assert!(srv.metric("stablebuild_upstream_requests_total").await >= 7);
    let budget = srv.metric("stablebuild_upstream_ratelimit_remaining").await;
    assert!(budget > 0 && budget < 100, "budget {budget}");
    assert!(srv.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stored_blob_is_sent_from_its_file_whole_and_by_range() {
    let up = Faulty::start().await;
    let sb = Sb::new(&up.url());
    let layer = up.layer_digests()[0].clone();
    let full = up.blob(&layer);
    let srv = Server::start(&sb, &[]).await;
    assert_eq!(
        reqwest::get(format!("{}{INDEX}", srv.url()))
            .await
            .unwrap()
            .status(),
        200
    );
    srv.wait_pinned(&sb, "faulty:1").await;
    let before = srv.metric("stablebuild_sendfile_bytes_total").await;

    let url = format!("{}/v2/library/faulty/blobs/{layer}", srv.url());
    let whole = reqwest::get(&url).await.unwrap();
    assert_eq!(header(&whole, "x-stablebuild-cache"), "hit");
    assert!(
        whole.bytes().await.unwrap() == full,
        "the whole blob, byte for byte"
    );
    let client = reqwest::Client::new();
    let part = client
        .get(&url)
        .header("range", "bytes=100-1099")
        .send()
        .await
        .unwrap();
    assert_eq!(part.status(), 206);
    assert!(part.bytes().await.unwrap() == full[100..1100]);
    let head = client.head(&url).send().await.unwrap();
    assert_eq!(header(&head, "content-length"), full.len().to_string());

    let sent = srv.metric("stablebuild_sendfile_bytes_total").await - before;
    assert_eq!(
        sent,
        full.len() as u64 + 1000,
        "the body bytes, and only those, by sendfile"
    );
    assert!(srv.stop().await.success());
}
