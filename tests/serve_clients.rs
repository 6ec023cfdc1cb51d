//! Real clients pulling through `stablebuild serve`: skopeo by prefix and through a
//! registries.conf mirror, podman through a mirror; immutability while the upstream moves or
//! goes away; many concurrent cold clients cause one upstream fetch per blob.

mod common;

use std::path::{Path, PathBuf};

use common::cli::Sb;
use common::fixtures;
use common::registry::Registry;
use common::server::Server;
use common::tools::{podman, policy, run_ok, skopeo};

/// A registries.conf that mirrors docker.io through the server (the README's block).
fn registries_conf(dir: &Path, mirror: &str) -> PathBuf {
    let path = dir.join("registries.conf");
    let text = format!(
        "[[registry]]\nprefix = \"docker.io\"\nlocation = \"docker.io\"\n\n\
         [[registry.mirror]]\nlocation = \"{mirror}\"\ninsecure = true\n"
    );
    std::fs::write(&path, text).unwrap();
    path
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_pulls_by_prefix_one_platform_all_and_by_digest() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;
    let p = policy(&sb.path(""));
    let dest = sb.path("one");
    let src = format!("docker://{}/library/multi:1", srv.addr);
    let one = format!("oci:{}:1", dest.display());
    skopeo(&[
        "--policy",
        &p,
        "--override-arch",
        "arm64",
        "copy",
        "--src-tls-verify=false",
        &src,
        &one,
    ])
    .await;
    let all = format!("oci:{}:1", sb.path("all").display());
    skopeo(&[
        "--policy",
        &p,
        "copy",
        "--all",
        "--preserve-digests",
        "--src-tls-verify=false",
        &src,
        &all,
    ])
    .await;
    let by_digest = format!("docker://{}/multi@{}", srv.addr, multi.manifests[0]);
    let raw = skopeo(&[
        "--policy",
        &p,
        "inspect",
        "--raw",
        "--tls-verify=false",
        &by_digest,
    ])
    .await;
    assert_eq!(fixtures::sha256_digest(raw.as_bytes()), multi.manifests[0]);
    let stopped = srv.stop().await;
    assert!(stopped.success());

    // After the one-platform pull the store holds every platform, complete.
    let listed = sb.run(&["list", "--json"]).await.ok().json();
    assert_eq!(listed[0]["image"], "docker.io/library/multi:1");
    assert_eq!(listed[0]["complete"], true);
    assert_eq!(
        listed[0]["platforms"].as_array().unwrap().len(),
        4,
        "{listed}"
    );
    for b in &multi.blobs {
        assert_eq!(reg.count_requests("GET", &format!("/blobs/{b}")), 1, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_and_podman_pull_through_a_registries_conf_mirror() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    fixtures::push_dockerlist(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;
    let conf = registries_conf(&sb.path(""), &srv.addr);
    let p = policy(&sb.path(""));
    let dest = format!("oci:{}:1", sb.path("s").display());
    let conf_s = conf.to_str().unwrap();
    skopeo(&[
        "--policy",
        &p,
        "--registries-conf",
        conf_s,
        "copy",
        "docker://docker.io/library/single:1",
        &dest,
    ])
    .await;
    assert!(
        srv.log().contains("GET /v2/library/single/manifests/1 200"),
        "{}",
        srv.log()
    );

    run_ok(
        podman(&sb.path("podman"))
            .env("CONTAINERS_REGISTRIES_CONF", &conf)
            .args([
                "pull",
                "--signature-policy",
                &p,
                "docker.io/library/dockerlist:1",
            ]),
    )
    .await;
    assert!(
        srv.log()
            .contains("GET /v2/library/dockerlist/manifests/1 200"),
        "{}",
        srv.log()
    );
    let _ = single;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moved_and_vanished_upstream_tags_keep_serving_the_pinned_bytes() {
    let mut reg = Registry::start().await;
    let old = fixtures::push_multi(&reg.url(), 0).await;
    fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;
    let p = policy(&sb.path(""));
    let src = format!("docker://{}/library/multi:1", srv.addr);
    let digest = |out: String| fixtures::sha256_digest(out.as_bytes());
    let inspect_args = [
        "--policy",
        &p,
        "inspect",
        "--raw",
        "--tls-verify=false",
        &src,
    ];
    let inspect = || skopeo(&inspect_args);
    assert_eq!(digest(inspect().await), old.digest);
    // The manifest is answered before the blobs are stored: let the pin finish before the
    // upstream goes away.
    srv.wait_pinned(&sb, "multi:1").await;

    fixtures::push_multi(&reg.url(), 1).await;
    assert_eq!(
        digest(inspect().await),
        old.digest,
        "a moved tag still serves the pinned digest"
    );
    reg.stop().await;
    for platform in ["amd64", "arm64", "arm"] {
        let dest = format!("oci:{}:1", sb.path(platform).display());
        skopeo(&[
            "--policy",
            &p,
            "--override-arch",
            platform,
            "copy",
            "--src-tls-verify=false",
            &src,
            &dest,
        ])
        .await;
    }
    let started = std::time::Instant::now();
    let url = format!("http://{}/v2/library/single/manifests/1", srv.addr);
    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status().as_u16(), 502);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach"),
        "{body}"
    );
    assert!(
        started.elapsed() < std::time::Duration::from_secs(15),
        "an unpinned image fails fast"
    );
    assert!(srv.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_concurrent_cold_clients_cause_one_upstream_fetch_per_blob() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let big = fixtures::push_big(&reg.url(), 32 << 20).await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let base = srv.url();
        let image = if i % 2 == 0 { &multi } else { &big };
        let (repo, blobs) = (image.repo.clone(), image.blobs.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            let m = client
                .get(format!("{base}/v2/{repo}/manifests/1"))
                .send()
                .await
                .unwrap();
            assert_eq!(m.status().as_u16(), 200);
            for b in blobs {
                let body = client
                    .get(format!("{base}/v2/{repo}/blobs/{b}"))
                    .send()
                    .await
                    .unwrap()
                    .bytes()
                    .await
                    .unwrap();
                assert_eq!(fixtures::sha256_digest(&body), b);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for b in multi.blobs.iter().chain(&big.blobs) {
        assert_eq!(reg.count_requests("GET", &format!("/blobs/{b}")), 1, "{b}");
    }
    assert_eq!(reg.count_requests("GET", "/library/multi/manifests/1"), 1);
    assert!(srv.stop().await.success());
}
