//! `pull -o` output read back by the real tools: skopeo reads the OCI layout and the
//! docker archive, and `podman load` loads the archive.

mod common;

use std::path::Path;

use common::cli::{Sb, read};
use common::fixtures;
use common::registry::Registry;

async fn tool(program: &str, args: &[&str]) -> String {
    let out = tokio::process::Command::new(program)
        .args(args)
        .output()
        .await
        .unwrap_or_else(|e| panic!("{program}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{program} {args:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn policy(dir: &Path) -> String {
    let path = dir.join("policy.json");
    std::fs::write(&path, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    path.to_str().unwrap().to_string()
}

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
    let (root, runroot, tmp) = (d.join("root"), d.join("runroot"), d.join("tmp"));
    std::fs::create_dir_all(&tmp).unwrap();
    let podman = |extra: &[&str]| {
        let mut args = vec![
            "--root",
            root.to_str().unwrap(),
            "--runroot",
            runroot.to_str().unwrap(),
            "--tmpdir",
            tmp.to_str().unwrap(),
            "--storage-driver",
            "vfs",
            "--cgroup-manager",
            "cgroupfs",
            "--events-backend",
            "file",
        ];
        args.extend_from_slice(extra);
        args.into_iter().map(String::from).collect::<Vec<_>>()
    };
    let load = podman(&["load", "-i", tar.to_str().unwrap()]);
    let load: Vec<&str> = load.iter().map(String::as_str).collect();
    let out = tool("podman", &load).await;
    assert!(out.contains("docker.io/library/dockerlist:1"), "{out}");
    let inspect = podman(&["image", "inspect", "docker.io/library/dockerlist:1"]);
    let inspect: Vec<&str> = inspect.iter().map(String::as_str).collect();
    let out: serde_json::Value = serde_json::from_str(&tool("podman", &inspect).await).unwrap();
    assert_eq!(out[0]["Architecture"], "arm64");
}
