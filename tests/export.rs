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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn archives_go_to_tar_tar_gz_or_stdout_and_unknown_extensions_are_refused() {
    use std::io::Read;
    let reg = Registry::start().await;
    fixtures::push_dockerlist(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let pull = |out: String| {
        let args = [
            "pull",
            "dockerlist:1",
            "-o",
            &out,
            "--platform",
            "linux/arm64",
        ];
        let mut cmd = sb.command(&args);
        cmd.current_dir(sb.path(""));
        async move { common::cli::Run::from(cmd.output().await.unwrap()) }
    };
    let tar = sb.path("a.tar");
    pull(tar.display().to_string()).await.ok();
    let plain = read(&tar);

    let gz = sb.path("a.tar.gz");
    pull(gz.display().to_string()).await.ok();
    let packed = read(&gz);
    assert_eq!(&packed[..2], &[0x1f, 0x8b], "gzip magic");
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&packed[..])
        .read_to_end(&mut unpacked)
        .unwrap();
    assert_eq!(unpacked, plain, "the same tar, compressed");
    let d = sb.path("podman");
    let out = run_ok(podman(&d).args(["load", "-i", gz.to_str().unwrap()])).await;
    assert!(out.contains("docker.io/library/dockerlist:1"), "{out}");

    let args = [
        "pull",
        "dockerlist:1",
        "-o",
        "-",
        "--platform",
        "linux/arm64",
    ];
    let mut cmd = sb.command(&args);
    let raw = cmd.current_dir(sb.path("")).output().await.unwrap();
    assert!(raw.status.success());
    assert!(raw.stdout == plain, "the tar on stdout, byte for byte");
    let summary = String::from_utf8_lossy(&raw.stderr);
    assert!(
        summary.contains("dockerlist:1"),
        "the summary on stderr: {summary}"
    );
    assert!(!sb.path("-").exists(), "no directory named -");

    for bad in ["a.zip", "a.tar.zst"] {
        let run = pull(bad.into()).await;
        assert_eq!(run.code, 2, "{bad}: {}", run.stderr);
        assert!(run.stderr.contains("NAME.tar.gz"), "{}", run.stderr);
        assert!(!sb.path(bad).exists(), "{bad} was not created");
    }
    let line = format!(
        "'{}' --store '{}' pull dockerlist:1 -o -",
        common::cli::bin(),
        sb.store().display()
    );
    let tty = tokio::process::Command::new("script")
        .args(["-qec", &line, "/dev/null"])
        .output()
        .await
        .unwrap();
    assert_eq!(tty.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&tty.stdout).contains("refusing to write an archive to a terminal")
    );
}
