//! The store in a bucket on a real S3-compatible server (SeaweedFS, started per test): pins
//! land in the bucket, any other process with only the bucket and an empty cache lists,
//! exports and verifies them without the upstream, the first writer of a tag wins, evict
//! reaches every process, and a pin killed mid-upload leaves nothing that gc and verify do
//! not clean.

mod common;

use std::collections::BTreeSet;

use common::cli::{Sb, read};
use common::faulty::{Fault, Faulty};
use common::fixtures;
use common::registry::Registry;
use common::seaweed::Seaweed;

/// A fresh prefix per test: one bucket, many stores.
fn store_url(sw: &Seaweed, name: &str) -> String {
    format!("s3://{}/{name}", sw.bucket())
}

/// The bucket key of a blob object under a store's prefix.
fn blob_key(prefix: &str, digest: &str) -> String {
    format!("{prefix}/blobs/sha256/{}", &digest["sha256:".len()..])
}

/// Files of an OCI layout's blob directory, each checked against its name.
fn layout_blobs(layout: &std::path::Path) -> BTreeSet<String> {
    let dir = layout.join("blobs/sha256");
    let mut out = BTreeSet::new();
    for e in std::fs::read_dir(&dir).unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let digest = format!("sha256:{name}");
        assert_eq!(fixtures::sha256_digest(&read(&e.path())), digest, "{name}");
        out.insert(digest);
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bucket_store_is_read_from_an_empty_cache_with_the_upstream_gone() {
    let mut reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let single = fixtures::push_single(&reg.url()).await;
    let sw = Seaweed::mini().await;
    let url = store_url(&sw, "read-back");
    let pinner = Sb::shared(&reg.url(), &url, sw.env(0));
    let out = pinner
        .run(&["--json", "pin", "multi:1", "single:1"])
        .await
        .ok()
        .json();
    assert_eq!(out[0]["digest"], multi.digest.as_str());
    assert_eq!(out[1]["digest"], single.digest.as_str());
    let keys = sw.list("read-back/records/").await;
    assert_eq!(keys.len(), 2, "{keys:?}");
    reg.stop().await;

    let laptop = Sb::shared(&reg.url(), &url, sw.env(0));
    let listed = laptop.run(&["--json", "list"]).await.ok().json();
    let images: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["image"].as_str().unwrap())
        .collect();
    assert_eq!(
        images,
        ["docker.io/library/multi:1", "docker.io/library/single:1"]
    );
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["complete"] == true)
    );

    let layout = laptop.path("layout");
    laptop
        .run(&["pull", "multi:1", "-o", layout.to_str().unwrap()])
        .await
        .ok();
    let exported = layout_blobs(&layout);
    for d in multi
        .manifests
        .iter()
        .chain(&multi.blobs)
        .chain([&multi.digest])
    {
        assert!(exported.contains(d), "{d} is in the layout");
    }
    let index: serde_json::Value =
        serde_json::from_slice(&read(&layout.join("index.json"))).unwrap();
    assert_eq!(index["manifests"][0]["digest"], multi.digest.as_str());

    let verify = laptop.run(&["verify"]).await.ok();
    assert!(
        verify.stdout.contains("0 corrupt, 0 missing"),
        "{}",
        verify.stdout
    );
    let again = laptop.run(&["--json", "pin", "single:1"]).await.ok().json();
    assert_eq!(
        again[0]["already_pinned"], true,
        "no upstream needed: {again}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bucket_problems_are_one_line_naming_the_endpoint_and_the_s3_code() {
    let sw = Seaweed::mini().await;
    let env = sw.env(0);
    let with = |name: &str, value: &str| {
        let mut env = env.clone();
        env.retain(|(k, _)| k != name);
        env.push((name.to_string(), value.to_string()));
        env
    };
    let cases = [
        (
            "s3://no-such-bucket/x".to_string(),
            env.clone(),
            "NoSuchBucket",
        ),
        (
            store_url(&sw, "x"),
            with("AWS_SECRET_ACCESS_KEY", "wrong"),
            "SignatureDoesNotMatch",
        ),
        (
            store_url(&sw, "x"),
            with("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
            "cannot reach",
        ),
    ];
    for (url, env, code) in cases {
        let endpoint = env
            .iter()
            .find(|(k, _)| k == "AWS_ENDPOINT_URL")
            .unwrap()
            .1
            .clone();
        let sb = Sb::shared("http://127.0.0.1:9", &url, env);
        let run = sb.run(&["list"]).await;
        assert_eq!(run.code, 1, "{url}: {}", run.stderr);
        let line = run.stderr.trim();
        assert_eq!(line.lines().count(), 1, "one line: {line}");
        assert!(line.contains(code) && line.contains(&endpoint), "{line}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_pin_of_a_tag_wins_everywhere_and_evict_reaches_every_process() {
    let reg = Registry::start().await;
    let first = fixtures::push_multi(&reg.url(), 0).await;
    let sw = Seaweed::mini().await;
    let url = store_url(&sw, "agree");
    let a = Sb::shared(&reg.url(), &url, sw.env(0));
    let b = Sb::shared(&reg.url(), &url, sw.env(0));
    a.run(&["pin", "multi:1"]).await.ok();
    let moved = fixtures::push_multi(&reg.url(), 1).await;
    assert_ne!(moved.digest, first.digest);
    let out = b.run(&["--json", "pin", "multi:1"]).await.ok().json();
    assert_eq!(
        out[0]["digest"],
        first.digest.as_str(),
        "the tag keeps its first digest"
    );
    assert_eq!(out[0]["already_pinned"], true);

    let evicted = b.run(&["--json", "evict", "multi:1"]).await.ok().json();
    assert_eq!(evicted[0]["digest"], first.digest.as_str());
    let listed = a.run(&["--json", "list"]).await.ok().json();
    assert_eq!(
        listed,
        serde_json::json!([]),
        "gone for the other process too"
    );
    let repinned = a.run(&["--json", "pin", "multi:1"]).await.ok().json();
    assert_eq!(
        repinned[0]["digest"],
        moved.digest.as_str(),
        "fetched again after evict"
    );
    let journal = sw.list("agree/journal/").await;
    assert_eq!(journal.len(), 3, "pin, evict, pin: {journal:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_killed_mid_upload_is_completed_by_the_next_and_gc_aborts_its_upload() {
    let reg = Registry::start().await;
    let big = fixtures::push_big(&reg.url(), 48 << 20).await;
    let sw = Seaweed::mini().await;
    let url = store_url(&sw, "killed");
    let first = Sb::shared(&reg.url(), &url, sw.env(0));
    let mut pin = first.command(&["pin", "big:1"]).spawn().unwrap();
    // Kill it once a multipart upload is open (its marker object exists).
    let mut open = Vec::new();
    for _ in 0..500 {
        open = sw.list("killed/uploads/").await;
        if !open.is_empty() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(!open.is_empty(), "the pin opened a multipart upload");
    pin.start_kill().unwrap();
    pin.wait().await.unwrap();
    assert!(
        sw.list("killed/records/").await.is_empty(),
        "no record for a killed pin"
    );

    let second = Sb::shared(&reg.url(), &url, sw.env(0));
    let out = second.run(&["--json", "pin", "big:1"]).await.ok().json();
    assert_eq!(out[0]["digest"], big.digest.as_str());
    // The killed pin's lease on the layer went stale; the second took it over and let go.
    assert!(
        sw.list("killed/leases/").await.is_empty(),
        "no lease is left behind"
    );
    // Markers carry whole seconds, and `--grace 0s` aborts those of earlier seconds only: a
    // second pin that finished within the killed one's second would find it kept.
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    let gc = second.run(&["gc", "--grace", "0s"]).await.ok();
    assert!(gc.stdout.contains("removed 0 blobs"), "{}", gc.stdout);
    assert!(
        sw.list("killed/uploads/").await.is_empty(),
        "the killed upload was aborted"
    );
    let verify = second.run(&["verify"]).await.ok();
    assert!(
        verify.stdout.contains("0 corrupt, 0 missing"),
        "{}",
        verify.stdout
    );
    let layer = big.blobs.last().unwrap();
    let (status, bytes) = sw.get(&blob_key("killed", layer)).await;
    assert_eq!(status, 200);
    assert_eq!(
        fixtures::sha256_digest(&bytes),
        *layer,
        "the layer object is whole"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pin_killed_holding_a_lease_is_resumed_by_the_same_cache_without_waiting_it_out() {
    let reg = Registry::start().await;
    let big = fixtures::push_big(&reg.url(), 48 << 20).await;
    let sw = Seaweed::mini().await;
    let url = store_url(&sw, "leased");
    let sb = Sb::shared(&reg.url(), &url, sw.env(0));
    let layer = big.blobs.last().unwrap();
    let lease = format!("leased/leases/{}", &layer["sha256:".len()..]);
    let mut pin = sb.command(&["pin", "big:1"]).spawn().unwrap();
    let mut leases = Vec::new();
    for _ in 0..500 {
        leases = sw.list("leased/leases/").await;
        if leases.iter().any(|k| k.ends_with(&lease)) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(
        leases.iter().any(|k| k.ends_with(&lease)),
        "the pin took the layer's lease: {leases:?}"
    );
    pin.start_kill().unwrap();
    pin.wait().await.unwrap();

    // Same host, same cache: the lease is this process's own from a previous run.
    let again = sb.run(&["-v", "--json", "pin", "big:1"]).await.ok();
    assert_eq!(again.json()[0]["digest"], big.digest.as_str());
    assert!(
        again
            .stderr
            .contains("taking over the lease of a previous run"),
        "{}",
        again.stderr
    );
    let leases = sw.list("leased/leases/").await;
    assert!(!leases.iter().any(|k| k.ends_with(&lease)), "{leases:?}");

    // Leases whose holder is gone (the killed pin's on a blob it had sent, one of another
    // host) are gc's once past the grace.
    let left = format!("leased/leases/{}", "0".repeat(64));
    assert_eq!(sw.put(&left, br#"{"holder":"gone:/x"}"#, true).await, 200);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    sb.run(&["gc", "--grace", "1h"]).await.ok();
    let kept = sw.list("leased/leases/").await;
    assert!(
        kept.iter().any(|k| k.ends_with(&left)),
        "kept within the grace"
    );
    sb.run(&["gc", "--grace", "0s"]).await.ok();
    let swept = sw.list("leased/leases/").await;
    assert!(swept.is_empty(), "stale leases are swept: {swept:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bounded_cache_drops_the_least_recently_used_blobs_and_refetches_them_from_the_bucket() {
    let reg = Registry::start().await;
    let big = fixtures::push_big(&reg.url(), 24 << 20).await;
    fixtures::push_multi(&reg.url(), 0).await;
    let sw = Seaweed::mini().await;
    let url = store_url(&sw, "bounded");
    Sb::shared(&reg.url(), &url, sw.env(0))
        .run(&["pin", "big:1", "multi:1"])
        .await
        .ok();
    let layer = big.blobs.last().unwrap().clone();
    let upstream_gets = || reg.count_requests("GET", &format!("/blobs/{layer}"));
    assert_eq!(upstream_gets(), 1);

    let replica = Sb::shared(&reg.url(), &url, sw.env(0));
    let cached = |d: &str| {
        let hex = &d["sha256:".len()..];
        replica
            .local()
            .join("blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .exists()
    };
    let pull = |image: &'static str, out: &'static str| {
        let path = replica.path(out);
        let args = ["--cache-size", "20M", "pull", image, "-o"];
        let mut cmd = replica.command(&args);
        cmd.arg(path);
        async move { common::cli::Run::from(cmd.output().await.unwrap()).ok() }
    };
    pull("big:1", "big").await;
    assert!(cached(&layer), "a blob larger than the bound alone is kept");
    pull("multi:1", "multi").await;
    assert!(
        !cached(&layer),
        "the least recently used blob left the cache"
    );
    let total: u64 = walk_sizes(&replica.local().join("blobs"));
    assert!(total <= 20 << 20, "the cache holds {total} bytes");
    pull("big:1", "big-again").await;
    assert!(cached(&layer), "fetched again");
    assert_eq!(upstream_gets(), 1, "from the bucket, not the upstream");
    let again = layout_blobs(&replica.path("big-again"));
    assert!(again.contains(&layer));
}

fn walk_sizes(dir: &std::path::Path) -> u64 {
    let mut total = 0;
    for e in std::fs::read_dir(dir).unwrap().flatten() {
        let meta = e.metadata().unwrap();
        total += match meta.is_dir() {
            true => walk_sizes(&e.path()),
            false => meta.len(),
        };
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_copies_a_local_store_into_a_bucket_without_the_upstream_and_resumes() {
    let mut reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    fixtures::push_single(&reg.url()).await;
    let local = Sb::new(&reg.url());
    local.run(&["pin", "multi:1", "single:1"]).await.ok();
    reg.stop().await;
    let sw = Seaweed::mini().await;
    let url = store_url(&sw, "migrated");
    let migrate = || {
        let mut cmd = local.command(&["--json", "migrate", "--to", &url]);
        cmd.envs(sw.env(0));
        async move {
            common::cli::Run::from(cmd.output().await.unwrap())
                .ok()
                .json()
        }
    };
    let first = migrate().await;
    assert_eq!(first[0]["reference"], "docker.io/library/multi:1");
    assert!(
        first
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "copied"),
        "{first}"
    );
    let uploaded: u64 = first
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["uploaded_objects"].as_u64().unwrap())
        .sum();
    assert_eq!(
        uploaded as usize,
        1 + multi.manifests.len() + multi.blobs.len() + 3,
        "{first}"
    );
    let again = migrate().await;
    assert!(
        again
            .as_array()
            .unwrap()
            .iter()
            .all(|m| m["state"] == "already there" && m["uploaded_objects"] == 0),
        "{again}"
    );

    let laptop = Sb::shared(&reg.url(), &url, sw.env(0));
    let listed = laptop.run(&["--json", "list"]).await.ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 2, "{listed}");
    let layout = laptop.path("layout");
    laptop
        .run(&["pull", "multi:1", "-o", layout.to_str().unwrap()])
        .await
        .ok();
    let exported = layout_blobs(&layout);
    for d in multi.manifests.iter().chain(&multi.blobs) {
        assert!(exported.contains(d), "{d}");
    }
    assert!(
        laptop
            .run(&["verify"])
            .await
            .ok()
            .stdout
            .contains("0 corrupt, 0 missing")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_finds_a_corrupt_blob_object_and_repair_lets_the_next_pin_fetch_it_again() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    let sw = Seaweed::mini().await;
    let url = store_url(&sw, "repair");
    Sb::shared(&reg.url(), &url, sw.env(0))
        .run(&["pin", "single:1"])
        .await
        .ok();
    // The layer object's bytes are replaced behind the store's back (bit rot, a bad tool).
    let layer = single.blobs.last().unwrap();
    let key = blob_key("repair", layer);
    assert_eq!(sw.put(&key, b"not the layer", false).await, 200);

    // A process with an empty cache reads the bucket: the object is found and named.
    let checker = Sb::shared(&reg.url(), &url, sw.env(0));
    let found = checker.run(&["verify"]).await;
    assert_eq!(found.code, 1, "{}{}", found.stdout, found.stderr);
    assert!(
        found.stdout.contains(&format!("corrupt  {layer}  (found)")),
        "{}",
        found.stdout
    );
    assert_eq!(sw.get(&key).await.0, 200, "plain verify changes nothing");

    let repaired = checker.run(&["verify", "--repair"]).await;
    assert!(
        repaired
            .stdout
            .contains(&format!("corrupt  {layer}  (removed)")),
        "{}",
        repaired.stdout
    );
    assert_eq!(sw.get(&key).await.0, 404, "the corrupt object is gone");

    // The next pin (any process) fetches the layer again by digest; the store is whole.
    Sb::shared(&reg.url(), &url, sw.env(0))
        .run(&["pin", "single:1"])
        .await
        .ok();
    let (status, bytes) = sw.get(&key).await;
    assert_eq!(status, 200, "the layer is back");
    assert_eq!(fixtures::sha256_digest(&bytes), *layer);
    let clean = checker.run(&["verify"]).await.ok();
    assert!(
        clean.stdout.contains("0 corrupt, 0 missing"),
        "{}",
        clean.stdout
    );
}

/// Bytes from the upstream that do not match their digest reach neither the cache nor the
/// bucket, and a pin that fails on them leaves no upload open and no lease for another
/// process to wait out (its leases are removed before it exits, not left to go stale).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_from_the_upstream_never_reach_the_bucket() {
    let up = Faulty::start().await;
    let layer = up.layer_digests()[1].clone();
    for _ in 0..5 {
        up.push_fault(&up.blob_path(&layer), Fault::WrongBytes);
    }
    let sw = Seaweed::mini().await;
    let url = store_url(&sw, "wrong");
    let key = blob_key("wrong", &layer);
    let first = Sb::shared(&up.url(), &url, sw.env(0));
    let failed = first.run(&["pin", "faulty:1"]).await;
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("the bytes were discarded"),
        "{}",
        failed.stderr
    );
    assert_eq!(sw.get(&key).await.0, 404, "a wrong blob reached the bucket");
    assert!(sw.list("wrong/records/").await.is_empty());
    assert!(sw.list("wrong/uploads/").await.is_empty());
    assert!(
        sw.list("wrong/leases/").await.is_empty(),
        "a failed pin leaves no lease for others to wait out"
    );

    // The faults are used up: the next pin stores the right bytes everywhere.
    let second = Sb::shared(&up.url(), &url, sw.env(0));
    let out = second.run(&["--json", "pin", "faulty:1"]).await.ok().json();
    assert_eq!(out[0]["digest"], up.index_digest().as_str());
    let (status, bytes) = sw.get(&key).await;
    assert_eq!(status, 200);
    assert_eq!(bytes, up.blob(&layer));
    second.run(&["verify"]).await.ok();
}
