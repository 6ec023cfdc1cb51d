//! Several `serve` replicas on one bucket, on SeaweedFS's distributed layout (master, two
//! volume servers, filer, one S3 gateway per replica): every replica answers a tag with the
//! digest the first one pinned, even after the upstream tag moved; an evict on one replica
//! reaches all within the refresh interval; concurrent cold pulls over the replicas fetch
//! each blob from the upstream once (under its lease) and give every client the same bytes; with the bucket down, cached tags keep being served and the rest get 503.

mod common;

use std::time::{Duration, Instant};

use common::cli::Sb;
use common::fixtures::{self, Pushed};
use common::registry::Registry;
use common::seaweed::Seaweed;
use common::server::Server;

const INDEX: &str = "application/vnd.oci.image.index.v1+json";

/// One replica per gateway, each with its own cache, refreshing every 2 s.
async fn replicas(reg: &Registry, sw: &Seaweed, prefix: &str, n: usize) -> Vec<(Sb, Server)> {
    let url = format!("s3://{}/{prefix}", sw.bucket());
    let mut out = Vec::new();
    for i in 0..n {
        let sb = Sb::shared(&reg.url(), &url, sw.env(i % sw.gateways()));
        let srv = Server::start(&sb, &["--refresh", "2s"]).await;
        out.push((sb, srv));
    }
    out
}

async fn tag_digest(srv: &Server, repo: &str) -> (u16, String) {
    let resp = reqwest::Client::new()
        .get(format!("{}/v2/{repo}/manifests/1", srv.url()))
        .header("accept", INDEX)
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let digest = resp
        .headers()
        .get("docker-content-digest")
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default();
    (status, digest)
}

/// Everything a client pulls for one platform: (path, body) of each GET, by digest.
async fn pull_amd64(base: &str, repo: &str) -> Vec<(String, Vec<u8>)> {
    let http = reqwest::Client::new();
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{base}{path}");
        async move {
            let resp = http
                .get(&url)
                .header("accept", INDEX)
                .header("accept", "application/vnd.oci.image.manifest.v1+json")
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status().as_u16(), 200, "{url}");
            resp.bytes().await.unwrap().to_vec()
        }
    };
    let root = get(format!("/v2/{repo}/manifests/1")).await;
    let index: serde_json::Value = serde_json::from_slice(&root).unwrap();
    // An index names the platform's manifest; a single manifest is the image itself.
    let image = match index["manifests"][0]["digest"].as_str() {
        Some(amd64) => amd64.to_string(),
        None => fixtures::sha256_digest(&root),
    };
    let manifest_path = format!("/v2/{repo}/manifests/{image}");
    let manifest = get(manifest_path.clone()).await;
    let parsed: serde_json::Value = serde_json::from_slice(&manifest).unwrap();
    let mut out = vec![(manifest_path, manifest)];
    let blobs = std::iter::once(&parsed["config"]).chain(parsed["layers"].as_array().unwrap());
    for b in blobs {
        let path = format!("/v2/{repo}/blobs/{}", b["digest"].as_str().unwrap());
        let body = get(path.clone()).await;
        out.push((path, body));
    }
    out
}

fn check(pulled: &[(String, Vec<u8>)]) {
    for (path, body) in pulled {
        let digest = path.rsplit('/').next().unwrap();
        assert_eq!(fixtures::sha256_digest(body), digest, "{path}");
    }
}

/// Every blob of `p`, and how often the upstream served it.
fn upstream_gets(reg: &Registry, p: &Pushed) -> Vec<(String, usize)> {
    p.blobs
        .iter()
        .map(|b| (b.clone(), reg.count_requests("GET", &format!("/blobs/{b}"))))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_answer_the_first_digest_and_an_evict_reaches_them_all() {
    let reg = Registry::start().await;
    let first = fixtures::push_multi(&reg.url(), 0).await;
    let sw = Seaweed::distributed(3).await;
    let reps = replicas(&reg, &sw, "agree", 3).await;

    assert_eq!(
        tag_digest(&reps[0].1, "library/multi").await,
        (200, first.digest.clone())
    );
    reps[0].1.wait_pinned(&reps[0].0, "multi:1").await;
    let moved = fixtures::push_multi(&reg.url(), 1).await;
    for (_, srv) in &reps[1..] {
        assert_eq!(
            tag_digest(srv, "library/multi").await,
            (200, first.digest.clone())
        );
    }
    // Blobs through the other replicas come from the bucket, not the upstream.
    check(&pull_amd64(&reps[1].1.url(), "library/multi").await);
    check(&pull_amd64(&reps[2].1.url(), "library/multi").await);
    for (blob, gets) in upstream_gets(&reg, &first) {
        assert_eq!(gets, 1, "{blob} was fetched upstream once");
    }

    let evicted = reps[2]
        .0
        .run(&["--json", "evict", "multi:1"])
        .await
        .ok()
        .json();
    assert_eq!(evicted[0]["digest"], first.digest.as_str());
    let started = Instant::now();
    for (_, srv) in &reps {
        loop {
            let (status, digest) = tag_digest(srv, "library/multi").await;
            if status == 200 && digest == moved.digest {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "still {digest} after {:?}",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    eprintln!(
        "every replica answered the new digest {:?} after the evict",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_cold_pulls_over_three_replicas_fetch_each_blob_from_the_upstream_once() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let sw = Seaweed::distributed(3).await;
    let reps = replicas(&reg, &sw, "cold", 3).await;
    let bases: Vec<String> = reps.iter().map(|(_, s)| s.url()).collect();
    let pulls = (0..20).map(|i| {
        let base = bases[i % 3].clone();
        tokio::spawn(async move { pull_amd64(&base, "library/multi").await })
    });
    let results = futures_util::future::join_all(pulls).await;
    let first = results[0].as_ref().unwrap().clone();
    check(&first);
    for r in &results {
        assert!(
            r.as_ref().unwrap() == &first,
            "every client got the same bytes"
        );
    }
    // The pull answers before the pin-through has stored every platform's blobs: count once
    // the tag is pinned, not while another platform's blob may not have been asked for yet.
    let (sb, srv) = &reps[0];
    srv.wait_pinned(sb, "multi:1").await;
    // The replica holding a blob's lease fetches it; the others read the bucket.
    for (blob, n) in upstream_gets(&reg, &multi) {
        assert_eq!(n, 1, "{blob} was fetched upstream {n} times");
    }
    let manifests = reg.count_requests("GET", "/manifests/1");
    assert!(manifests <= 3, "the tag was resolved {manifests} times");
}

/// `(status, body)` of a listing endpoint of a replica.
async fn listing(srv: &Server, path: &str) -> (u16, serde_json::Value) {
    let resp = reqwest::get(format!("{}{path}", srv.url())).await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or_default())
}

/// Wait (10 s at most) until every replica's tags/list, _catalog and dashboard page
/// (whether it has the row of multi:1) are as `wanted`.
async fn until_listed(
    reps: &[(Sb, Server)],
    wanted: impl Fn(&(u16, serde_json::Value), &(u16, serde_json::Value), bool) -> bool,
) {
    let started = Instant::now();
    for (_, srv) in reps {
        loop {
            let tags = listing(srv, "/v2/library/multi/tags/list").await;
            let catalog = listing(srv, "/v2/_catalog").await;
            let page = reqwest::get(format!("{}/", srv.url())).await.unwrap();
            let page = page.text().await.unwrap();
            let row = page.contains("data-ref=\"docker.io/library/multi:1\"");
            if wanted(&tags, &catalog, row) {
                break;
            }
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "after {:?}: tags/list {tags:?}, _catalog {catalog:?}, dashboard row {row}",
                started.elapsed()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_list_and_show_what_another_process_pinned_into_the_bucket_and_drop_what_it_evicted()
 {
    let reg = Registry::start().await;
    fixtures::push_multi(&reg.url(), 0).await;
    let sw = Seaweed::mini().await;
    let reps = replicas(&reg, &sw, "listed", 2).await;
    for (_, srv) in &reps {
        assert_eq!(listing(srv, "/v2/library/multi/tags/list").await.0, 404);
    }
    // A CI pre-warm step on another machine: its own cache, the same bucket.
    let url = format!("s3://{}/listed", sw.bucket());
    let laptop = Sb::shared(&reg.url(), &url, sw.env(0));
    laptop.run(&["pin", "multi:1"]).await.ok();

    until_listed(&reps, |tags, catalog, row| {
        tags.0 == 200
            && tags.1["tags"] == serde_json::json!(["1"])
            && catalog.1["repositories"] == serde_json::json!(["library/multi"])
            && row
    })
    .await;
    laptop.run(&["evict", "multi:1"]).await.ok();
    until_listed(&reps, |tags, catalog, row| {
        tags.0 == 404 && catalog.1["repositories"] == serde_json::json!([]) && !row
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_bucket_down_cached_tags_are_served_and_others_get_503() {
    let reg = Registry::start().await;
    fixtures::push_multi(&reg.url(), 0).await;
    fixtures::push_single(&reg.url()).await;
    let mut sw = Seaweed::distributed(2).await;
    let reps = replicas(&reg, &sw, "down", 2).await;
    for (sb, srv) in &reps {
        check(&pull_amd64(&srv.url(), "library/multi").await);
        srv.wait_pinned(sb, "multi:1").await;
    }
    sw.kill_all().await;
    for (_, srv) in &reps {
        check(&pull_amd64(&srv.url(), "library/multi").await);
        let started = Instant::now();
        let resp = reqwest::get(format!("{}/v2/library/single/manifests/1", srv.url()))
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 503);
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "no hang: {:?}",
            started.elapsed()
        );
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{body}");
        let message = body["errors"][0]["message"].as_str().unwrap();
        assert!(
            message.contains("cannot reach the S3 endpoint"),
            "{message}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_redirect_skopeo_reads_blobs_from_the_bucket_through_presigned_urls() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    let sw = Seaweed::mini().await;
    let url = format!("s3://{}/redirect", sw.bucket());
    Sb::shared(&reg.url(), &url, sw.env(0))
        .run(&["pin", "single:1"])
        .await
        .ok();
    let replica = Sb::shared(&reg.url(), &url, sw.env(0));
    let srv = Server::start(&replica, &["--redirect"]).await;
    let layer = single.blobs.last().unwrap();
    let resp = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}/v2/library/single/blobs/{layer}", srv.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 307);
    let location = resp.headers()["location"].to_str().unwrap().to_string();
    assert!(
        location.starts_with(&sw.endpoint(0)) && location.contains("X-Amz-Signature"),
        "{location}"
    );

    let policy = common::tools::policy(&replica.path(""));
    let dest = format!("oci:{}:1", replica.path("layout").display());
    let src = format!("docker://{}/library/single:1", srv.addr);
    common::tools::skopeo(&[
        "--policy",
        &policy,
        "copy",
        "--src-tls-verify=false",
        &src,
        &dest,
    ])
    .await;
    let blob = replica
        .path("layout")
        .join("blobs/sha256")
        .join(&layer["sha256:".len()..]);
    assert_eq!(
        fixtures::sha256_digest(&std::fs::read(blob).unwrap()),
        *layer
    );
    assert!(
        srv.log()
            .contains(&format!("GET /v2/library/single/blobs/{layer} 307")),
        "{}",
        srv.log()
    );
    assert_eq!(
        srv.metric("stablebuild_sendfile_bytes_total").await,
        0,
        "no blob bytes went through the replica"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_pull_through_leaves_nothing_wrong_and_another_completes_it() {
    let reg = Registry::start().await;
    let big = fixtures::push_big(&reg.url(), 40 << 20).await;
    let sw = Seaweed::distributed(2).await;
    let mut reps = replicas(&reg, &sw, "killed", 2).await;
    let (_doomed_sb, doomed) = reps.remove(0); // the Sb owns the cache dir: keep it
    let layer = big.blobs.last().unwrap().clone();
    let url = format!("{}/v2/library/big/blobs/{layer}", doomed.url());
    let first = tag_digest(&doomed, "library/big").await;
    assert_eq!(first, (200, big.digest.clone()), "{}", doomed.log());
    let reader = tokio::spawn(async move { reqwest::get(url).await.map(|r| r.status()) });
    let mut open = Vec::new();
    for _ in 0..500 {
        open = sw.list("killed/uploads/").await;
        if !open.is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert!(!open.is_empty(), "the layer's upload had started");
    doomed.kill().await;
    let _ = reader.await;
    assert!(
        sw.list("killed/records/").await.is_empty(),
        "no record for the killed pin"
    );

    let (sb, other) = &reps[0];
    check(&pull_amd64(&other.url(), "library/big").await);
    other.wait_pinned(sb, "big:1").await;
    let (status, bytes) = sw
        .get(&format!(
            "killed/blobs/sha256/{}",
            &layer["sha256:".len()..]
        ))
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        fixtures::sha256_digest(&bytes),
        layer,
        "the bucket's layer is whole"
    );
    let verify = sb.run(&["verify"]).await.ok();
    assert!(
        verify.stdout.contains("0 corrupt, 0 missing"),
        "{}",
        verify.stdout
    );
}
