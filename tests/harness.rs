//! Self-test of the integration harness (`tests/common/`): the real registry starts, stops and
//! restarts, its access log is counted right, and the fixture images push, come back byte for
//! byte, and are accepted by real tooling (skopeo).

mod common;

use std::time::Instant;

use common::fixtures::{self, Pushed};
use common::registry::{Registry, parse_access_line};
use common::tools;
use serde_json::Value;

fn json(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).expect("manifest is JSON")
}

/// Fetches `reference` and checks its media type and that its bytes hash to `digest`.
async fn fetch_checked(
    url: &str,
    repo: &str,
    reference: &str,
    media_type: &str,
    digest: &str,
) -> Value {
    let (bytes, content_type) = fixtures::fetch_manifest_bytes(url, repo, reference).await;
    assert_eq!(content_type, media_type, "{repo}:{reference}");
    assert_eq!(
        fixtures::sha256_digest(&bytes),
        digest,
        "{repo}:{reference}"
    );
    json(&bytes)
}

/// Checks one pushed image: root and children come back intact; returns the root's JSON.
async fn check_pushed(url: &str, pushed: &Pushed) -> Value {
    let root = fetch_checked(
        url,
        &pushed.repo,
        &pushed.tag,
        &pushed.media_type,
        &pushed.digest,
    )
    .await;
    let entries = root["manifests"].as_array().cloned().unwrap_or_default();
    assert_eq!(entries.len(), pushed.manifests.len(), "{}", pushed.repo);
    for (entry, digest) in entries.iter().zip(&pushed.manifests) {
        assert_eq!(entry["digest"], **digest);
        let media_type = entry["mediaType"].as_str().expect("entry mediaType");
        fetch_checked(url, &pushed.repo, digest, media_type, digest).await;
    }
    root
}

fn platform_of(entry: &Value) -> String {
    let p = &entry["platform"];
    let mut text = format!(
        "{}/{}",
        p["os"].as_str().unwrap(),
        p["architecture"].as_str().unwrap()
    );
    if let Some(variant) = p["variant"].as_str() {
        text = format!("{text}/{variant}");
    }
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pushed_images_come_back_intact() {
    let registry = Registry::start().await;
    let url = registry.url();
    let started = Instant::now();
    let pushed = fixtures::push_all(&url).await;
    eprintln!("push_all: {:?}", started.elapsed());

    let names: Vec<String> = pushed
        .iter()
        .map(|p| format!("{}:{}", p.repo, p.tag))
        .collect();
    let expected = [
        "library/multi:1",
        "library/dockerlist:1",
        "library/single:1",
        "library/many:1",
        "library/big:1",
    ];
    assert_eq!(names, expected);
    let media_types: Vec<&str> = pushed.iter().map(|p| p.media_type.as_str()).collect();
    let oci = fixtures::OCI_MANIFEST;
    assert_eq!(
        media_types,
        [fixtures::OCI_INDEX, fixtures::DOCKER_LIST, oci, oci, oci]
    );

    let mut roots = Vec::new();
    for p in &pushed {
        roots.push(check_pushed(&url, p).await);
    }
    check_multi(&url, &pushed[0], &roots[0]).await;
    check_dockerlist(&roots[1], &pushed[1]);
    assert_eq!(roots[2]["layers"].as_array().unwrap().len(), 1);
    assert_eq!(roots[3]["layers"].as_array().unwrap().len(), 40);
    assert_eq!(pushed[3].blobs.len(), 41);
    let big_layer = &roots[4]["layers"][0];
    assert_eq!(big_layer["mediaType"], fixtures::OCI_LAYER_TAR);
    assert!(big_layer["size"].as_u64().unwrap() > fixtures::DEFAULT_BIG_SIZE);
    assert!(pushed[4].total_size > fixtures::DEFAULT_BIG_SIZE);
    assert_eq!(
        pushed[4].blobs[1],
        known_big_digest(fixtures::DEFAULT_BIG_SIZE)
    );
}

/// The big layer's digest pinned in images.json for `size` (pushes of that size skip hashing).
fn known_big_digest(size: u64) -> String {
    let spec: Value = serde_json::from_str(include_str!("../fixtures/images.json")).unwrap();
    let big = spec["images"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == "big");
    let known = &big.unwrap()["random_file"]["known_digests"][size.to_string()];
    known.as_str().expect("a pinned digest").to_string()
}

/// The multi index: 3 platforms + attestation, one base layer shared by all platforms.
async fn check_multi(url: &str, pushed: &Pushed, index: &Value) {
    let entries = index["manifests"].as_array().expect("manifests");
    let platforms: Vec<String> = entries.iter().map(platform_of).collect();
    assert_eq!(
        platforms,
        [
            "linux/amd64",
            "linux/arm64",
            "linux/arm/v7",
            "unknown/unknown"
        ]
    );
    let attestation = &entries[3]["annotations"];
    assert_eq!(
        attestation["vnd.docker.reference.type"],
        "attestation-manifest"
    );
    assert_eq!(
        attestation["vnd.docker.reference.digest"],
        *pushed.manifests[0]
    );

    let mut first_layers = Vec::new();
    for digest in &pushed.manifests[..3] {
        let (bytes, _) = fixtures::fetch_manifest_bytes(url, &pushed.repo, digest).await;
        let manifest = json(&bytes);
        assert_eq!(manifest["config"]["mediaType"], fixtures::OCI_CONFIG);
        let layers = manifest["layers"].as_array().unwrap();
        assert_eq!(layers.len(), 3);
        assert!(
            layers
                .iter()
                .all(|l| l["mediaType"] == fixtures::OCI_LAYER_GZIP)
        );
        first_layers.push(layers[0]["digest"].clone());
    }
    assert!(
        first_layers.iter().all(|d| *d == first_layers[0]),
        "base layer is shared"
    );
    // 3 platforms x (config + 2 own layers) + shared layer + attestation config + statement.
    assert_eq!(pushed.blobs.len(), 3 * 3 + 1 + 2);

    let (bytes, _) = fixtures::fetch_manifest_bytes(url, &pushed.repo, &pushed.manifests[3]).await;
    let statement = &json(&bytes)["layers"][0];
    assert_eq!(statement["mediaType"], fixtures::IN_TOTO);
    let blob = fixtures::fetch_blob(url, &pushed.repo, statement["digest"].as_str().unwrap()).await;
    let subject = &json(&blob)["subject"][0]["digest"]["sha256"];
    assert_eq!(
        format!("sha256:{}", subject.as_str().unwrap()),
        pushed.manifests[0]
    );
}

fn check_dockerlist(list: &Value, pushed: &Pushed) {
    let entries = list["manifests"].as_array().expect("manifests");
    let platforms: Vec<String> = entries.iter().map(platform_of).collect();
    assert_eq!(platforms, ["linux/amd64", "linux/arm64"]);
    assert!(
        entries
            .iter()
            .all(|e| e["mediaType"] == fixtures::DOCKER_MANIFEST)
    );
    assert_eq!(pushed.blobs.len(), 2 * 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_tag_changes_digest_but_not_base_layer() {
    let registry = Registry::start().await;
    let url = registry.url();
    let gen0 = fixtures::push_multi(&url, 0).await;
    let gen1 = fixtures::push_multi(&url, 1).await;
    assert_ne!(gen0.digest, gen1.digest);
    let (bytes, _) = fixtures::fetch_manifest_bytes(&url, "library/multi", "1").await;
    assert_eq!(fixtures::sha256_digest(&bytes), gen1.digest);
    let common: Vec<&String> = gen0
        .blobs
        .iter()
        .filter(|b| gen1.blobs.contains(b))
        .collect();
    assert_eq!(
        common.len(),
        1,
        "only the shared base layer survives a new generation"
    );
    assert!(gen0.manifests.iter().all(|m| !gen1.manifests.contains(m)));

    let again = fixtures::push_multi(&url, 0).await;
    assert_eq!(again, gen0, "fixtures are deterministic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn count_requests_sees_each_blob_get() {
    let registry = Registry::start().await;
    let url = registry.url();
    let single = fixtures::push_single(&url).await;
    let layer = &single.blobs[1];
    let path = format!("/blobs/{layer}");
    assert_eq!(
        registry.count_requests("GET", &path),
        0,
        "pushing GETs nothing"
    );
    assert_eq!(registry.count_requests("PUT", "/manifests/1"), 1);

    fixtures::fetch_blob(&url, &single.repo, layer).await;
    assert_eq!(registry.count_requests("GET", &path), 1);
    assert_eq!(registry.count_requests("HEAD", &path), 0);
    fixtures::fetch_blob(&url, &single.repo, layer).await;
    assert_eq!(registry.count_requests("GET", &path), 2);
    let all_gets = registry.count_requests("GET", "/v2/");
    assert_eq!(
        registry.count_requests("GET", "/v2/"),
        all_gets,
        "barriers never count"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stop_and_restart_keep_the_data() {
    let mut registry = Registry::start().await;
    let url = registry.url();
    let single = fixtures::push_single(&url).await;
    registry.stop().await;
    let ping = reqwest::Client::builder().no_proxy().build().unwrap();
    assert!(
        ping.get(format!("{url}/v2/")).send().await.is_err(),
        "stopped registry answers"
    );

    registry.restart().await;
    assert_eq!(registry.url(), url);
    let (bytes, _) = fixtures::fetch_manifest_bytes(&url, &single.repo, "1").await;
    assert_eq!(fixtures::sha256_digest(&bytes), single.digest);
    assert_eq!(
        registry
            .log()
            .matches("--- harness: starting registry")
            .count(),
        2
    );

    registry.delete_manifest(&single.repo, &single.digest).await;
    let gone = ping
        .get(format!("{url}/v2/{}/manifests/1", single.repo))
        .send()
        .await
        .unwrap();
    assert_eq!(gone.status().as_u16(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn big_layer_is_a_tar_of_the_requested_size() {
    let registry = Registry::start().await;
    let url = registry.url();
    let size = (1 << 20) + 3; // not a multiple of 8 nor 512
    let big = fixtures::push_big(&url, size).await;
    let layer = fixtures::fetch_blob(&url, &big.repo, &big.blobs[1]).await;
    assert_eq!(big.total_size, fetched_total(&url, &big).await);
    let mut archive = tar::Archive::new(layer.as_slice());
    let entries: Vec<(String, u64)> = archive
        .entries()
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (e.path().unwrap().display().to_string(), e.size())
        })
        .collect();
    assert_eq!(
        entries,
        [
            ("big/".to_string(), 0),
            ("big/random.bin".to_string(), size)
        ]
    );
    let again = fixtures::push_big(&url, size).await;
    assert_eq!(again, big, "the big layer is deterministic");
}

/// Sum of the sizes the registry reports: root manifest + config + layers.
async fn fetched_total(url: &str, pushed: &Pushed) -> u64 {
    let (bytes, _) = fixtures::fetch_manifest_bytes(url, &pushed.repo, &pushed.tag).await;
    let manifest = json(&bytes);
    let layers: u64 = manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["size"].as_u64().unwrap())
        .sum();
    bytes.len() as u64 + manifest["config"]["size"].as_u64().unwrap() + layers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_accepts_the_fixtures() {
    let registry = Registry::start().await;
    let url = registry.url();
    let (multi, dockerlist) = tokio::join!(
        fixtures::push_multi(&url, 0),
        fixtures::push_dockerlist(&url)
    );
    let dir = tempfile::tempdir().unwrap();
    let policy = tools::policy(dir.path());
    let source = |p: &Pushed| format!("docker://{}/{}:{}", registry.host(), p.repo, p.tag);
    let copy_all = |source: String, dest: String| {
        let policy = policy.clone();
        async move {
            let args = [
                "--policy",
                &policy,
                "copy",
                "--all",
                "--src-tls-verify=false",
            ];
            tools::skopeo(&[&args[..], &[&source, &dest]].concat()).await;
        }
    };

    let raw = tools::skopeo(&[
        "--policy",
        &policy,
        "inspect",
        "--tls-verify=false",
        "--raw",
        &source(&multi),
    ])
    .await;
    assert_eq!(fixtures::sha256_digest(raw.as_bytes()), multi.digest);

    let layout = dir.path().join("oci");
    copy_all(source(&multi), format!("oci:{}:1", layout.display())).await;
    let index = json(&std::fs::read(layout.join("index.json")).unwrap());
    assert_eq!(index["manifests"][0]["digest"], *multi.digest, "index kept");
    let copied = std::fs::read_dir(layout.join("blobs/sha256")).unwrap();
    assert_eq!(
        copied.count(),
        1 + multi.manifests.len() + multi.blobs.len()
    );

    let listed = dir.path().join("dockerlist");
    copy_all(source(&dockerlist), format!("dir:{}", listed.display())).await;
}

#[test]
fn access_log_lines_parse() {
    let line = r#"127.0.0.1 - - [28/Nov/2026:00:40:46 +0000] "GET /v2/x/blobs/sha256:ab?ns=docker.io HTTP/1.1" 200 2 "" "curl/7.88.1""#;
    let parsed = Some(("GET", "/v2/x/blobs/sha256:ab", "ns=docker.io"));
    assert_eq!(parse_access_line(line), parsed);
    let logrus = r#"time="2026-11-28T00:40:46Z" level=info msg="response completed" http.request.method=GET http.request.uri=/v2/"#;
    assert_eq!(parse_access_line(logrus), None);
    assert_eq!(
        parse_access_line("--- harness: starting registry on 127.0.0.1:1"),
        None
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn layers_are_reproducible_tar_archives() {
    let registry = Registry::start().await;
    let url = registry.url();
    let single = fixtures::push_single(&url).await;
    let gz = fixtures::fetch_blob(&url, &single.repo, &single.blobs[1]).await;
    let tar = tar_bytes(&gz);
    let config = fixtures::fetch_blob(&url, &single.repo, &single.blobs[0]).await;
    let config = json(&config);
    assert_eq!(
        config["rootfs"]["diff_ids"][0],
        fixtures::sha256_digest(&tar)
    );
    assert_eq!(config["architecture"], "amd64");
    assert!(config["config"]["Cmd"].is_array());
    let mut archive = tar::Archive::new(tar.as_slice());
    let mut listed = Vec::new();
    for entry in archive.entries().unwrap() {
        let entry = entry.unwrap();
        let h = entry.header();
        assert_eq!(
            (h.mtime().unwrap(), h.uid().unwrap(), h.gid().unwrap()),
            (0, 0, 0)
        );
        listed.push(format!(
            "{} {:o}",
            entry.path().unwrap().display(),
            h.mode().unwrap()
        ));
    }
    let expected = [
        "fixture/ 755",
        "fixture/layer-0/ 755",
        "fixture/layer-0/file-0.txt 644",
        "fixture/layer-0/file-1.txt 644",
    ];
    assert_eq!(listed, expected);
}

fn tar_bytes(gz: &[u8]) -> Vec<u8> {
    use std::io::Read;
    let mut tar = Vec::new();
    flate2::read::GzDecoder::new(gz)
        .read_to_end(&mut tar)
        .unwrap();
    tar
}
