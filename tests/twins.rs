//! `twins`: on a repository of more than 1,000 tags (listed in pages), exactly the tags that
//! share IMAGE's digest, most specific first, compared with HEAD requests only; and
//! `pin --dated`, which pins the most specific of them.

mod common;

use std::time::{Duration, Instant};

use common::cli::Sb;
use common::fixtures::{self, Pushed};
use common::registry::Registry;
use common::server::Server;
use futures_util::StreamExt;

const REPO: &str = "library/multi";
/// Filler tags: t0000 … t1199, one in three on each of three manifests.
const FILLERS: usize = 1200;
/// Tags named like a distribution's, all on the index.
const NAMED: [&str; 5] = ["20.04", "focal", "focal-20230801", "1.2.3", "latest"];

/// library/multi with its index (tag 1, the `NAMED` tags and a third of the fillers) and its
/// first two platform manifests (a third of the fillers each) tagged; returns the push.
async fn many_tags(reg: &Registry) -> Pushed {
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let url = reg.url();
    let targets = [
        multi.digest.clone(),
        multi.manifests[0].clone(),
        multi.manifests[1].clone(),
    ];
    let mut jobs: Vec<(String, String)> = NAMED
        .iter()
        .map(|t| (multi.digest.clone(), t.to_string()))
        .collect();
    jobs.extend((0..FILLERS).map(|i| (targets[i % 3].clone(), filler(i))));
    let started = Instant::now();
    let mut bodies = std::collections::HashMap::new();
    for digest in &targets {
        bodies.insert(
            digest.clone(),
            fixtures::fetch_manifest_bytes(&url, REPO, digest).await,
        );
    }
    let bodies = &bodies;
    futures_util::stream::iter(jobs)
        .map(|(digest, tag)| {
            let url = url.clone();
            async move { put_tag(&url, &bodies[&digest], &tag).await }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    eprintln!(
        "tagged {} tags in {:?}",
        NAMED.len() + FILLERS,
        started.elapsed()
    );
    multi
}

/// PUT `manifest` (bytes, media type) as `REPO:tag`, as `fixtures::retag` does, trying again
/// when the registry loses a race between concurrent PUTs of an index (it answers 400
/// "manifest blob unknown" now and then).
async fn put_tag(url: &str, manifest: &(Vec<u8>, String), tag: &str) {
    let target = format!("{url}/v2/{REPO}/manifests/{tag}");
    for _ in 0..10 {
        let resp = reqwest::Client::new()
            .put(&target)
            .header("Content-Type", &manifest.1)
            .body(manifest.0.clone())
            .send()
            .await
            .unwrap_or_else(|e| panic!("PUT {target}: {e}"));
        if resp.status().as_u16() == 201 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("PUT {target} failed 10 times");
}

fn filler(i: usize) -> String {
    format!("t{i:04}")
}

/// The twins of the index, in the documented order: the dated tag, then more version
/// components (1.2.3, 20.04), then one component, longer first (t0000 …, then 1), then the
/// names without digits, longer first (latest, focal).
fn expected() -> Vec<String> {
    let mut want: Vec<String> = ["focal-20230801", "1.2.3", "20.04"]
        .map(String::from)
        .to_vec();
    want.extend((0..FILLERS).step_by(3).map(filler));
    want.extend(["1", "latest", "focal"].map(String::from));
    want
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twins_of_a_tag_among_a_thousand_are_listed_most_specific_first_by_head_only() {
    let reg = Registry::start().await;
    let multi = many_tags(&reg).await;
    let sb = Sb::new(&reg.url());
    let (gets, heads, pages) = (
        reg.count_requests("GET", "/manifests/"),
        reg.count_requests("HEAD", "/manifests/"),
        reg.count_requests("GET", "/tags/list"),
    );

    let started = Instant::now();
    let run = sb.run(&["--json", "twins", "multi:20.04"]).await.ok();
    let took = started.elapsed();
    eprintln!("twins over {} tags: {took:?}", FILLERS + NAMED.len() + 1);
    let report = run.json();
    let tags: Vec<&str> = report["twins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert_eq!(tags, expected());
    assert_eq!(report["digest"], multi.digest.as_str());
    assert_eq!(report["source"], "upstream");
    assert_eq!(report["tags_checked"], FILLERS + NAMED.len() + 1);
    let own: Vec<&str> = report["twins"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["image"] == true)
        .map(|t| t["reference"].as_str().unwrap())
        .collect();
    assert_eq!(own, ["docker.io/library/multi:20.04"]);
    // Speed is bench/workflow.sh's to measure (target 5 s); printed above for the log.

    assert_eq!(
        reg.count_requests("GET", "/manifests/"),
        gets,
        "no manifest GET"
    );
    assert_eq!(
        reg.count_requests("HEAD", "/manifests/"),
        heads + FILLERS + NAMED.len() + 1,
        "one HEAD per tag"
    );
    // distribution 2.8 ignores `n` and lists every tag at once (the next test pages).
    assert_eq!(reg.count_requests("GET", "/tags/list"), pages + 1);

    let text = sb.run(&["twins", "multi:20.04"]).await.ok();
    let lines: Vec<&str> = text.stdout.lines().collect();
    assert_eq!(lines[0], "docker.io/library/multi:focal-20230801");
    assert_eq!(lines[2], "docker.io/library/multi:20.04  (IMAGE)");
    assert_eq!(lines.len(), expected().len());
    assert!(
        text.stderr.contains(&format!(
            "{} tags of docker.io/library/multi share its digest upstream {}",
            expected().len(),
            multi.digest
        )),
        "{}",
        text.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pin_dated_pins_the_most_specific_twin_and_twins_then_use_the_pinned_digest() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    for tag in NAMED {
        fixtures::retag(&reg.url(), REPO, "1", tag).await;
    }
    fixtures::retag(&reg.url(), REPO, &multi.manifests[0], "t0001").await;
    let sb = Sb::new(&reg.url());

    let pinned = sb.run(&["pin", "--dated", "multi:20.04"]).await.ok();
    assert!(
        pinned
            .stderr
            .contains("docker.io/library/multi:20.04 → docker.io/library/multi:focal-20230801"),
        "{}",
        pinned.stderr
    );
    assert!(
        pinned.stdout.starts_with(&format!(
            "docker.io/library/multi:focal-20230801  {}",
            multi.digest
        )),
        "{}",
        pinned.stdout
    );
    let listed = sb.run(&["--json", "list"]).await.ok().json();
    let images: Vec<&str> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["image"].as_str().unwrap())
        .collect();
    assert_eq!(images, ["docker.io/library/multi:focal-20230801"]);

    // The dated tag is pinned: its twins are those of the pinned digest, even after the
    // upstream moves the tag itself.
    fixtures::push_multi(&reg.url(), 1).await;
    fixtures::retag(&reg.url(), REPO, "1", "focal-20230801").await;
    let report = sb
        .run(&["--json", "twins", "multi:focal-20230801"])
        .await
        .ok()
        .json();
    assert_eq!(report["source"], "pinned");
    assert_eq!(report["digest"], multi.digest.as_str());
    let tags: Vec<&str> = report["twins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert_eq!(
        tags,
        ["focal-20230801", "1.2.3", "20.04", "latest", "focal"]
    );

    let again = sb
        .run(&["pin", "--dated", "multi:focal-20230801"])
        .await
        .ok();
    assert!(
        !again.stderr.contains('→'),
        "already the most specific: {}",
        again.stderr
    );
    assert!(again.stdout.contains("already pinned"), "{}", again.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twins_follow_the_next_links_of_a_registry_that_pages_its_tags() {
    // stablebuild's own mirror pages tags/list as the spec says (distribution 2.8 does not):
    // it is the upstream here, with 8 pinned tags of library/multi, 2 a page.
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let tags = [
        "20.04",
        "focal",
        "focal-20230801",
        "latest",
        "t0000",
        "t0001",
        "t0002",
    ];
    for tag in tags.iter().take(4) {
        fixtures::retag(&reg.url(), REPO, "1", tag).await;
    }
    for tag in &tags[4..] {
        fixtures::retag(&reg.url(), REPO, &multi.manifests[0], tag).await;
    }
    let mirror_sb = Sb::new(&reg.url());
    let refs: Vec<String> = tags.iter().map(|t| format!("multi:{t}")).collect();
    let mut pin = vec!["pin", "multi:1"];
    pin.extend(refs.iter().map(String::as_str));
    mirror_sb.run(&pin).await.ok();
    let mirror = Server::start(&mirror_sb, &[]).await;

    let sb = Sb::new(&mirror.url());
    let run: common::cli::Run = sb
        .command(&["--json", "twins", "multi:20.04"])
        .env("STABLEBUILD_TAGS_PAGE", "2")
        .output()
        .await
        .unwrap()
        .into();
    let report = run.ok().json();
    assert_eq!(report["tags_checked"], 8, "every page followed: {report:#}");
    let twins: Vec<&str> = report["twins"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["tag"].as_str().unwrap())
        .collect();
    assert_eq!(twins, ["focal-20230801", "20.04", "1", "latest", "focal"]);
}
