//! kill -9 at any moment: the store opens, serves everything pinned before, and the next
//! pin completes what was interrupted, re-using the verified blobs.

mod common;

use std::process::Stdio;
use std::time::{Duration, Instant};

use common::cli::{Sb, read};
use common::fixtures::{self, Pushed};
use common::registry::Registry;

/// Bytes of the largest partial download in the store's tmp dir.
fn partial_bytes(sb: &Sb) -> u64 {
    let Ok(dir) = std::fs::read_dir(sb.store().join("tmp")) else {
        return 0;
    };
    dir.flatten()
        .filter_map(|e| e.metadata().ok())
        .map(|m| m.len())
        .max()
        .unwrap_or(0)
}

async fn spawn_pin(sb: &Sb, images: &[&str]) -> tokio::process::Child {
    let mut args = vec!["pin", "--jobs", "2"];
    args.extend_from_slice(images);
    sb.command(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// A pinned image still exports byte for byte.
async fn assert_still_served(sb: &Sb, p: &Pushed, n: usize) {
    let out = sb.path(&format!("check-{n}"));
    let run = sb
        .run(&["--json", "pull", "single:1", "-o", out.to_str().unwrap()])
        .await
        .ok();
    assert_eq!(run.json()["digest"], p.digest.as_str());
    for d in &p.blobs {
        let exported = read(
            &out.join("blobs/sha256")
                .join(d.strip_prefix("sha256:").unwrap()),
        );
        assert_eq!(exported, read(&sb.blob_path(d)));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_killed_mid_layer_resumes_and_verifies_clean() {
    let reg = Registry::start().await;
    let big = fixtures::push_big(&reg.url(), 256 << 20).await;
    let sb = Sb::new(&reg.url());
    let mut pin = spawn_pin(&sb, &["big:1"]).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    let config = &big.blobs[0];
    // Kill once the config is stored and the layer is part-way (a loaded machine may still
    // be fsyncing the config when the layer has started).
    while partial_bytes(&sb) < 8 << 20 || !sb.blob_path(config).exists() {
        assert!(
            Instant::now() < deadline,
            "the layer download never started"
        );
        assert!(
            pin.try_wait().unwrap().is_none(),
            "the pin finished before it could be killed"
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    pin.start_kill().unwrap();
    pin.wait().await.unwrap();
    let layer = big.blobs.last().unwrap();
    assert!(
        !sb.blob_path(layer).exists(),
        "a partial layer became visible"
    );

    let listed = sb.run(&["list", "--json"]).await.ok().json();
    assert_eq!(listed[0]["image"], "docker.io/library/big:1");
    assert_eq!(listed[0]["complete"], false, "{listed}");

    let run = sb.run(&["--json", "pin", "big:1"]).await.ok();
    assert_eq!(run.json()[0]["digest"], big.digest.as_str());
    assert!(sb.blob_path(layer).exists());
    let verify = sb.run(&["verify"]).await.ok();
    assert!(
        verify.stdout.contains("0 corrupt, 0 missing"),
        "{}",
        verify.stdout
    );
    // The config, verified before the kill, was not fetched again.
    assert_eq!(reg.count_requests("GET", &format!("/blobs/{config}")), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kills_at_any_moment_leave_a_store_that_serves_what_was_pinned() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    fixtures::push_multi(&reg.url(), 0).await;
    fixtures::push_many(&reg.url()).await;
    fixtures::push_big(&reg.url(), 48 << 20).await;
    let sb = Sb::new(&reg.url());
    sb.run(&["pin", "single:1"]).await.ok();

    for (n, delay_ms) in [0u64, 5, 15, 30, 60, 100, 150, 250].into_iter().enumerate() {
        let mut pin = spawn_pin(&sb, &["multi:1", "many:1", "big:1"]).await;
        tokio::time::sleep(Duration::from_millis(delay_ms)).await;
        pin.start_kill().unwrap();
        pin.wait().await.unwrap();
        assert_still_served(&sb, &single, n).await;
        if n % 3 == 2 {
            sb.run(&["evict", "multi:1", "many:1", "big:1"]).await.ok();
        }
    }
    sb.run(&["pin", "multi:1", "many:1", "big:1"]).await.ok();
    let verify = sb.run(&["--json", "verify"]).await.ok().json();
    assert_eq!(verify["corrupt"], serde_json::json!([]));
    assert_eq!(verify["missing"], serde_json::json!([]));
    let listed = sb.run(&["list", "--json"]).await.ok().json();
    let entries = listed.as_array().unwrap();
    assert_eq!(entries.len(), 4, "{listed}");
    assert!(entries.iter().all(|e| e["complete"] == true), "{listed}");
}
