//! `pull -o` output read back by the real tools: skopeo reads the OCI layout and the
//! docker archive, and `podman load` loads the archive.

mod common;

use common::cli::{Sb, read};
use common::fixtures;
use common::registry::Registry;
use common::tools::{podman, policy, run_ok, tool};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_reads_the_oci_layout_with_every_platform() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let sb = Sb::new(&reg.url());
    let layout = sb.path("layout");
    sb.run(&["pull", "multi:1", "-o", layout.to_str().unwrap()])
        .await
        .ok();
    let policy = policy(&sb.path(""));
    let src = format!("oci:{}:1", layout.display());
    let raw = tool("skopeo", &["--policy", &policy, "inspect", "--raw", &src]).await;
    assert_eq!(fixtures::sha256_digest(raw.as_bytes()), multi.digest);
    let copy = sb.path("copy");
    let dest = format!("oci:{}:1", copy.display());
    tool(
        "skopeo",
        &[
            "--policy",
            &policy,
            "copy",
            "--all",
            "--preserve-digests",
            &src,
            &dest,
        ],
    )
    .await;
    for d in multi.manifests.iter().chain(&multi.blobs) {
        let hex = d.strip_prefix("sha256:").unwrap();
        assert_eq!(
            read(&copy.join("blobs/sha256").join(hex)),
            read(&sb.blob_path(d)),
            "{d}"
        );
    }

    // One platform: the layout's index names that platform's manifest directly.
    let arm = sb.path("arm");
    sb.run(&[
        "pull",
        "multi:1",
        "-o",
        arm.to_str().unwrap(),
        "--platform",
        "linux/arm/v7",
    ])
    .await
    .ok();
    let src = format!("oci:{}:1", arm.display());
    let config = tool(
        "skopeo",
        &["--policy", &policy, "inspect", "--config", &src],
    )
    .await;
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(
        (config["architecture"].as_str(), config["variant"].as_str()),
        (Some("arm"), Some("v7"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_archives_load_in_skopeo_and_podman() {
    let reg = Registry::start().await;
    fixtures::push_dockerlist(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let tar = sb.path("arm64.tar");
    let run = sb
        .run(&[
            "--json",
            "pull",
            "dockerlist:1",
            "-o",
            tar.to_str().unwrap(),
            "--platform",
            "linux/arm64",
        ])
        .await
        .ok();
    assert_eq!(run.json()["format"], "docker-archive");
    let policy = policy(&sb.path(""));
    let src = format!("docker-archive:{}", tar.display());
    let inspect = tool("skopeo", &["--policy", &policy, "inspect", &src]).await;
    let inspect: serde_json::Value = serde_json::from_str(&inspect).unwrap();
    assert_eq!(inspect["Architecture"], "arm64");

    let d = sb.path("podman");
    let out = run_ok(podman(&d).args(["load", "-i", tar.to_str().unwrap()])).await;
    assert!(out.contains("docker.io/library/dockerlist:1"), "{out}");
    let inspect = ["image", "inspect", "docker.io/library/dockerlist:1"];
    let out: serde_json::Value =
        serde_json::from_str(&run_ok(podman(&d).args(inspect)).await).unwrap();
    assert_eq!(out[0]["Architecture"], "arm64");
}
