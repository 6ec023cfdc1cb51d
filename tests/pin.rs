//! pin, list, evict and pull against a real distribution registry loaded with the fixtures.

mod common;

use common::cli::{Sb, read};
use common::fixtures::{self, Pushed};
use common::registry::Registry;
use common::server::Server;

/// Every manifest and blob of `pushed` is stored with exactly the upstream's bytes.
async fn assert_stored_byte_for_byte(sb: &Sb, reg: &Registry, p: &Pushed) {
    let manifests = std::iter::once(&p.digest).chain(&p.manifests);
    for d in manifests {
        let (upstream, _) = fixtures::fetch_manifest_bytes(&reg.url(), &p.repo, d).await;
        assert_eq!(read(&sb.blob_path(d)), upstream, "manifest {d}");
    }
    for d in &p.blobs {
        let upstream = fixtures::fetch_blob(&reg.url(), &p.repo, d).await;
        assert_eq!(read(&sb.blob_path(d)), upstream, "blob {d}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_snapshots_every_platform_byte_for_byte_and_fetches_each_blob_once() {
    let reg = Registry::start().await;
    let pushed = fixtures::push_multi(&reg.url(), 0).await;
    let sb = Sb::new(&reg.url());

    let out = sb.run(&["--json", "pin", "multi:1"]).await.ok().json();
    let line = &out[0];
    assert_eq!(line["reference"], "docker.io/library/multi:1");
    assert_eq!(line["digest"], pushed.digest.as_str());
    assert_eq!(line["already_pinned"], false);
    assert_eq!(line["size"], pushed.total_size);
    let platforms: Vec<&str> = line["platforms"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    for p in [
        "linux/amd64",
        "linux/arm64",
        "linux/arm/v7",
        "unknown/unknown",
    ] {
        assert!(platforms.contains(&p), "{p} missing from {platforms:?}");
    }
    for b in &pushed.blobs {
        let gets = reg.count_requests("GET", &format!("/blobs/{b}"));
        assert_eq!(gets, 1, "blob {b} fetched {gets} times");
    }
    assert_stored_byte_for_byte(&sb, &reg, &pushed).await;

    // A pinned tag is not asked upstream again.
    let manifest_gets = reg.count_requests("GET", "/manifests/");
    let again = sb.run(&["pin", "docker.io/library/multi:1"]).await.ok();
    assert!(again.stdout.contains("already pinned"), "{}", again.stdout);
    assert!(again.stdout.contains(&pushed.digest), "{}", again.stdout);
    assert_eq!(reg.count_requests("GET", "/manifests/"), manifest_gets);
    assert_eq!(reg.count_requests("HEAD", "/manifests/"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_handles_docker_lists_single_manifests_and_many_layers() {
    let reg = Registry::start().await;
    let list = fixtures::push_dockerlist(&reg.url()).await;
    let single = fixtures::push_single(&reg.url()).await;
    let many = fixtures::push_many(&reg.url()).await;
    let sb = Sb::new(&reg.url());

    let run = sb
        .run(&[
            "pin",
            "--jobs",
            "8",
            "dockerlist:1",
            "library/single:1",
            "docker.io/library/many:1",
        ])
        .await
        .ok();
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{}", run.stdout);
    assert!(
        lines[0].contains(&list.digest) && lines[0].contains("linux/amd64,linux/arm64"),
        "{}",
        lines[0]
    );
    assert!(
        lines[1].contains(&single.digest) && lines[1].ends_with("pinned"),
        "{}",
        lines[1]
    );
    assert!(lines[2].contains(&many.digest), "{}", lines[2]);
    for p in [&list, &single, &many] {
        assert_stored_byte_for_byte(&sb, &reg, p).await;
    }

    let listed = sb.run(&["list", "--json"]).await.ok().json();
    let entries = listed.as_array().unwrap();
    assert_eq!(entries.len(), 3);
    let many_entry = entries
        .iter()
        .find(|e| e["image"] == "docker.io/library/many:1")
        .unwrap();
    assert_eq!(many_entry["complete"], true);
    assert_eq!(many_entry["size"], many.total_size);
    assert_eq!(many_entry["digest"], many.digest.as_str());

    let table = sb.run(&["list", "single"]).await.ok();
    assert!(
        table.stdout.contains("docker.io/library/single:1"),
        "{}",
        table.stdout
    );
    assert!(!table.stdout.contains("many"), "{}", table.stdout);
    assert!(table.stdout.contains("yes"), "{}", table.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_moved_upstream_tag_keeps_its_pinned_digest_until_evicted() {
    let reg = Registry::start().await;
    let old = fixtures::push_multi(&reg.url(), 0).await;
    let sb = Sb::new(&reg.url());
    sb.run(&["pin", "multi:1"]).await.ok();

    let new = fixtures::push_multi(&reg.url(), 1).await;
    assert_ne!(old.digest, new.digest);
    let again = sb.run(&["--json", "pin", "multi:1"]).await.ok().json();
    assert_eq!(again[0]["digest"], old.digest.as_str());
    assert_eq!(again[0]["already_pinned"], true);

    let layout = sb.path("layout");
    sb.run(&["pull", "multi:1", "-o", layout.to_str().unwrap()])
        .await
        .ok();
    let index: serde_json::Value =
        serde_json::from_slice(&read(&layout.join("index.json"))).unwrap();
    assert_eq!(index["manifests"][0]["digest"], old.digest.as_str());
    for d in old.manifests.iter().chain(&old.blobs) {
        let exported = read(
            &layout
                .join("blobs/sha256")
                .join(d.strip_prefix("sha256:").unwrap()),
        );
        assert_eq!(exported, read(&sb.blob_path(d)), "{d}");
    }

    let evicted = sb.run(&["evict", "multi:1"]).await.ok();
    assert!(evicted.stdout.contains("evicted"), "{}", evicted.stdout);
    let fresh = sb.run(&["--json", "pin", "multi:1"]).await.ok().json();
    assert_eq!(fresh[0]["digest"], new.digest.as_str());
    assert_eq!(fresh[0]["already_pinned"], false);
    // Blobs shared between the generations were not fetched again.
    let shared: Vec<_> = old.blobs.iter().filter(|b| new.blobs.contains(b)).collect();
    assert!(!shared.is_empty(), "the fixtures share a base layer");
    for b in shared {
        assert_eq!(reg.count_requests("GET", &format!("/blobs/{b}")), 1, "{b}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_by_digest_and_from_files() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let single = fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());

    let by_digest = format!("multi@{}", multi.manifests[1]);
    let out = sb.run(&["--json", "pin", &by_digest]).await.ok().json();
    assert_eq!(out[0]["digest"], multi.manifests[1].as_str());
    assert_eq!(out[0]["platforms"], serde_json::json!(["linux/arm64"]));
    let both = format!("single:1@{}", single.digest);
    let out = sb.run(&["--json", "pin", &both]).await.ok().json();
    assert_eq!(out[0]["digest"], single.digest.as_str());
    assert_eq!(
        out[0]["reference"],
        format!("docker.io/library/single:1@{}", single.digest)
    );

    let dockerfile = sb.path("Dockerfile");
    std::fs::write(&dockerfile, "ARG BASE=multi:1\nFROM ${BASE} AS build\nRUN make\nFROM scratch\nFROM build\nFROM single:1\n").unwrap();
    let out = sb
        .run(&["--json", "pin", "-f", dockerfile.to_str().unwrap()])
        .await
        .ok()
        .json();
    let refs: Vec<&str> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["reference"].as_str().unwrap())
        .collect();
    assert_eq!(
        refs,
        ["docker.io/library/multi:1", "docker.io/library/single:1"]
    );

    let list = sb.path("images.txt");
    std::fs::write(&list, "# pre-warm\nsingle:1\n\nmulti:1 \n").unwrap();
    let out = sb
        .run(&["--json", "pin", "-f", list.to_str().unwrap()])
        .await
        .ok()
        .json();
    assert!(
        out.as_array()
            .unwrap()
            .iter()
            .all(|l| l["already_pinned"] == true),
        "{out}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerfile_args_resolve_by_whole_name_and_unresolvable_images_are_usage_errors() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    fixtures::push_dockerlist(&reg.url()).await;
    fixtures::retag(&reg.url(), "library/single", "1", "1.0").await;
    let sb = Sb::new(&reg.url());
    let write = |name: &str, text: &str| {
        let path = sb.path(name);
        std::fs::write(&path, text).unwrap();
        path.display().to_string()
    };
    // $VER is VER, not $V followed by "ER"; a stage-local ARG reaches COPY --from.
    let dockerfile = write(
        "Dockerfile",
        "ARG V=1\nARG VER=1.0\nFROM single:$VER AS base\n\
         FROM base\nARG V\nARG LIST=dockerlist:${V}\nCOPY --from=${LIST} /x /x\n",
    );
    let out = sb
        .run(&["--json", "pin", "-f", &dockerfile])
        .await
        .ok()
        .json();
    let pinned: Vec<(&str, &str)> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["reference"].as_str().unwrap(),
                l["digest"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        pinned[0],
        ("docker.io/library/single:1.0", single.digest.as_str())
    );
    assert_eq!(pinned[1].0, "docker.io/library/dockerlist:1");
    assert_eq!(pinned.len(), 2, "{out}");

    let cases = [
        (
            "unresolved",
            "FROM single:1\nRUN true\nFROM single:${NOPE}\n",
            "unresolved:3",
        ),
        ("empty", "", "names no image"),
        ("comments", "# later\n\n", "names no image"),
        (
            "scratch",
            "FROM scratch\nCOPY a /\n",
            "names no image to pin",
        ),
    ];
    for (name, text, needle) in cases {
        let path = write(name, text);
        let run = sb.run(&["pin", "-f", &path]).await;
        assert_eq!(run.code, 2, "{name}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{name}: {}", run.stderr);
        assert!(!run.stderr.contains("at least one IMAGE"), "{}", run.stderr);
    }
    let run = sb
        .run(&["pin", "-f", &sb.path("unresolved").display().to_string()])
        .await;
    assert!(run.stderr.contains("NOPE has no value"), "{}", run.stderr);
    assert_eq!(reg.count_requests("GET", "/manifests/1ER"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pinned_images_survive_the_upstream_going_away() {
    let mut reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let single = fixtures::push_single(&reg.url()).await;
    fixtures::push_many(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    sb.run(&["pin", "multi:1", "single:1"]).await.ok();
    reg.delete_manifest("library/multi", &multi.digest).await;
    reg.stop().await;

    let layout = sb.path("out");
    let pulled = sb
        .run(&[
            "--json",
            "pull",
            "multi:1",
            "-o",
            layout.to_str().unwrap(),
            "--platform",
            "linux/arm/v7",
        ])
        .await
        .ok()
        .json();
    assert_eq!(pulled["digest"], multi.digest.as_str());
    let tar = sb.path("single.tar");
    sb.run(&["pull", "single:1", "-o", tar.to_str().unwrap()])
        .await
        .ok();
    assert!(tar.metadata().unwrap().len() > single.total_size);
    let listed = sb.run(&["list", "--json"]).await.ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 2);
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["complete"] == true)
    );

    let failed = sb.run(&["pin", "many:1"]).await;
    assert_eq!(failed.code, 1, "{}", failed.stderr);
    assert!(
        failed.stderr.contains("docker.io/library/many:1"),
        "{}",
        failed.stderr
    );
    assert!(failed.stderr.contains("cannot reach"), "{}", failed.stderr);
    assert!(!failed.stderr.contains("panicked"), "{}", failed.stderr);
    let listed = sb.run(&["list", "--json"]).await.ok().json();
    assert_eq!(
        listed.as_array().unwrap().len(),
        2,
        "a failed pin records nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn loopback_registries_are_insecure_and_a_plain_http_registry_names_the_flag() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    let sb = Sb::new("http://127.0.0.1:9");
    let port = reg.host().rsplit(':').next().unwrap().to_string();
    for image in [
        format!("{}/library/single:1", reg.host()),
        format!("localhost:{port}/library/single:1"),
    ] {
        let out = sb.run(&["--json", "pin", &image]).await.ok().json();
        assert_eq!(out[0]["digest"], single.digest.as_str(), "{image}");
        assert_eq!(out[0]["reference"], image.as_str());
    }

    // Another name for the same plain-http registry: https fails, and says what to do.
    let over_tls = format!("reg.test=https://{}", reg.host());
    let started = std::time::Instant::now();
    let run = sb
        .run(&["--upstream", &over_tls, "pin", "reg.test/library/single:1"])
        .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("this registry does not speak TLS; use --insecure-registry reg.test"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("retrying"),
        "not retried: {}",
        run.stderr
    );
    assert!(started.elapsed() < std::time::Duration::from_secs(3));
    let run = sb
        .run(&[
            "--upstream",
            &over_tls,
            "--insecure-registry",
            "reg.test",
            "--json",
            "pin",
            "reg.test/library/single:1",
        ])
        .await
        .ok();
    assert_eq!(run.json()[0]["digest"], single.digest.as_str());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_shows_the_stored_tree_without_asking_the_upstream() {
    let mut reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let sb = Sb::new(&reg.url());
    sb.run(&["pin", "multi:1"]).await.ok();
    reg.stop().await;

    let tree = sb.run(&["--json", "inspect", "multi:1"]).await.ok().json();
    assert_eq!(tree["reference"], "docker.io/library/multi:1");
    let root = &tree["root"];
    assert_eq!(
        (root["kind"].as_str(), root["digest"].as_str()),
        (Some("index"), Some(multi.digest.as_str()))
    );
    let manifests = root["children"].as_array().unwrap();
    let digests: Vec<&str> = manifests
        .iter()
        .map(|m| m["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        digests,
        multi
            .manifests
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>()
    );
    assert_eq!(manifests[0]["platform"], "linux/amd64");
    assert_eq!(
        manifests[3]["platform"], "unknown/unknown",
        "the attestation too"
    );
    let mut blobs: Vec<&str> = Vec::new();
    for m in manifests {
        let children = m["children"].as_array().unwrap();
        assert_eq!(children[0]["kind"], "config", "{m}");
        assert!(
            children
                .iter()
                .all(|c| c["stored"] == true && c["size"].is_u64()),
            "{m}"
        );
        blobs.extend(children.iter().map(|c| c["digest"].as_str().unwrap()));
    }
    for b in &multi.blobs {
        assert!(blobs.contains(&b.as_str()), "{b} is in the tree");
    }

    let text = sb.run(&["inspect", "multi:1"]).await.ok().stdout;
    assert!(
        text.contains(&format!(
            "index  {}  application/vnd.oci.image.index.v1+json",
            multi.digest
        )),
        "{text}"
    );
    assert!(text.contains("├─ linux/amd64  manifest  sha256:"), "{text}");
    assert!(text.contains("│  ├─ config  sha256:"), "{text}");
    let by_digest = format!("multi@{}", multi.digest);
    let same = sb.run(&["--json", "inspect", &by_digest]).await.ok().json();
    assert_eq!(
        same["root"], tree["root"],
        "a digest finds the tag pinned at it"
    );

    let missing = sb.run(&["inspect", "single:1"]).await;
    assert_eq!(missing.code, 1, "{}", missing.stderr);
    assert!(
        missing
            .stderr
            .contains("docker.io/library/single:1 is not pinned"),
        "{}",
        missing.stderr
    );

    let srv = Server::start(&sb, &[]).await;
    let through = sb.run(&["--json", "inspect", "multi:1"]).await.ok().json();
    assert_eq!(
        through, tree,
        "the same tree through the server holding the store"
    );
    drop(srv);
}
