//! The CLI next to a running server: pin, list, evict, gc and verify go through the server
//! that holds the store (same output), `pull -o` pins through it and exports from the
//! store's files, `--server URL --token T` reaches a remote mirror, and mirror clients
//! without the token cannot use the admin API.

mod common;

use common::cli::Sb;
use common::fixtures;
use common::registry::Registry;
use common::server::Server;
use common::tools::{policy, skopeo};

async fn manifest_digest(srv: &Server, repo: &str) -> String {
    let resp = reqwest::get(format!("{}/v2/{repo}/manifests/1", srv.url()))
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    resp.headers()["docker-content-digest"]
        .to_str()
        .unwrap()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_work_through_the_server_holding_the_store() {
    let reg = Registry::start().await;
    let old = fixtures::push_multi(&reg.url(), 0).await;
    fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;

    let pinned = sb.run(&["pin", "multi:1"]).await.ok();
    assert!(
        pinned.stdout.contains(&old.digest) && pinned.stdout.ends_with("pinned\n"),
        "{}",
        pinned.stdout
    );
    assert_eq!(manifest_digest(&srv, "library/multi").await, old.digest);
    let listed = sb.run(&["list", "--json"]).await.ok().json();
    assert_eq!(listed[0]["image"], "docker.io/library/multi:1");
    assert_eq!(listed[0]["complete"], true);
    let failed = sb.run(&["pin", "nothere:1"]).await;
    assert_eq!(failed.code, 1);
    assert!(
        failed.stderr.contains("docker.io/library/nothere:1"),
        "{}",
        failed.stderr
    );

    let new = fixtures::push_multi(&reg.url(), 1).await;
    assert_eq!(
        manifest_digest(&srv, "library/multi").await,
        old.digest,
        "pinned until evicted"
    );
    let evicted = sb.run(&["evict", "multi:1"]).await.ok();
    assert!(evicted.stdout.contains("evicted"), "{}", evicted.stdout);
    assert_eq!(
        manifest_digest(&srv, "library/multi").await,
        new.digest,
        "fetched anew after evict"
    );

    let gc = sb.run(&["--json", "gc"]).await.ok().json();
    assert!(
        !gc["removed"].as_array().unwrap().is_empty(),
        "the old generation's blobs go: {gc}"
    );
    let verify = sb.run(&["verify"]).await.ok();
    assert!(
        verify.stdout.contains("0 corrupt, 0 missing"),
        "{}",
        verify.stdout
    );
    assert!(srv.stop().await.success());
    assert!(
        !sb.store().join("server.json").exists(),
        "the handoff file goes with the server"
    );
    sb.run(&["list"]).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_exports_through_the_server_holding_the_store() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;

    let layout = sb.path("layout");
    let pulled = sb
        .run(&["--json", "pull", "multi:1", "-o", layout.to_str().unwrap()])
        .await
        .ok()
        .json();
    assert_eq!(pulled["digest"], multi.digest.as_str());
    assert_eq!(pulled["pinned_now"], true, "{pulled}");
    let policy = policy(&sb.path(""));
    let src = format!("oci:{}:1", layout.display());
    let raw = skopeo(&["--policy", &policy, "inspect", "--raw", &src]).await;
    assert_eq!(fixtures::sha256_digest(raw.as_bytes()), multi.digest);
    let copy = format!("oci:{}:1", sb.path("copy").display());
    skopeo(&[
        "--policy",
        &policy,
        "copy",
        "--all",
        "--preserve-digests",
        &src,
        &copy,
    ])
    .await;

    let again = sb
        .run(&[
            "--json",
            "pull",
            "multi:1",
            "-o",
            sb.path("again").to_str().unwrap(),
        ])
        .await
        .ok()
        .json();
    assert_eq!(again["pinned_now"], false);
    assert_eq!(reg.count_requests("GET", "/manifests/1"), 1, "pinned once");

    let remote = sb
        .run(&["--server", &srv.url(), "pull", "multi:1", "-o", "/tmp/x"])
        .await;
    assert_eq!(remote.code, 2, "{}", remote.stderr);
    assert!(remote.stderr.contains("--server"), "{}", remote.stderr);
    assert!(srv.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_remote_mirror_is_pre_warmed_with_its_token_and_clients_without_it_are_refused() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &["--admin-token", "s3cret"]).await;
    let other = Sb::new(&reg.url()); // another machine: its own (unused) store

    let refused = other
        .run(&["--server", &srv.url(), "pin", "single:1"])
        .await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("admin token"), "{}", refused.stderr);
    let wrong = other
        .run(&[
            "--server",
            &srv.url(),
            "--token",
            "guess",
            "evict",
            "single:1",
        ])
        .await;
    assert_eq!(wrong.code, 1, "{}", wrong.stderr);

    let out = other
        .run(&[
            "--server",
            &srv.url(),
            "--token",
            "s3cret",
            "--json",
            "pin",
            "single:1",
        ])
        .await
        .ok()
        .json();
    assert_eq!(out[0]["digest"], single.digest.as_str());
    assert_eq!(out[0]["already_pinned"], false);
    assert_eq!(manifest_digest(&srv, "library/single").await, single.digest);
    assert_eq!(reg.count_requests("GET", "/library/single/manifests/1"), 1);

    let anonymous = reqwest::Client::new()
        .post(format!("{}/_stablebuild/v1/gc", srv.url()))
        .json(&serde_json::json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);
    assert!(srv.stop().await.success());
}

/// `sb`'s command line as one shell word list, for `script -c`.
fn shell_line(sb: &Sb, args: &[&str]) -> String {
    let cmd = sb.command(args);
    let std = cmd.as_std();
    std::iter::once(std.get_program())
        .chain(std.get_args())
        .map(|w| format!("'{}'", w.to_string_lossy().replace('\'', "'\\''")))
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pins_through_the_server_stream_progress_to_the_terminal() {
    use common::faulty::{Fault, Faulty};
    let up = Faulty::start().await;
    let layers = up.layer_digests();
    for layer in &layers {
        let wait = std::time::Duration::from_millis(800);
        up.push_fault(&up.blob_path(layer), Fault::Pause { after: 4096, wait });
    }
    let sb = Sb::new(&up.url());
    let srv = Server::start(&sb, &[]).await;

    // The admin API's progress answer: events as JSON lines, the result last.
    let token: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.store().join("server.json")).unwrap()).unwrap();
    let resp = reqwest::Client::new()
        .post(format!("{}/_stablebuild/v1/pin", srv.url()))
        .bearer_auth(token["token"].as_str().unwrap())
        .json(&serde_json::json!({"images": ["faulty:1"], "progress": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let text = resp.text().await.unwrap();
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"started") && kinds.contains(&"advanced"),
        "{kinds:?}"
    );
    assert_eq!(kinds.last(), Some(&"done"), "{kinds:?}");
    let done = events.last().unwrap();
    assert_eq!(done["result"][0]["digest"], up.index_digest().as_str());
    let advanced: u64 = events
        .iter()
        .filter(|e| e["event"] == "advanced")
        .map(|e| e["bytes"].as_u64().unwrap())
        .sum();
    let total: u64 = layers
        .iter()
        .chain(&up.config_digests())
        .map(|d| up.blob(d).len() as u64)
        .sum();
    assert_eq!(advanced, total, "every byte of every blob is reported once");

    // The CLI on a terminal draws the bars of a pin the server runs.
    sb.run(&["evict", "faulty:1"]).await.ok();
    sb.run(&["gc"]).await.ok();
    for layer in &layers {
        let wait = std::time::Duration::from_millis(800);
        up.push_fault(&up.blob_path(layer), Fault::Pause { after: 4096, wait });
    }
    let line = shell_line(&sb, &["pin", "faulty:1"]);
    let out = tokio::process::Command::new("script")
        .args(["-qfec", &line, "/dev/null"])
        .output()
        .await
        .unwrap();
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{shown}");
    assert!(shown.contains("fetched"), "the total bar: {shown}");
    let short = &layers[0]["sha256:".len()..][..12];
    assert!(shown.contains(short), "the layer's bar: {shown}");
    assert!(
        shown.contains(&up.index_digest()),
        "and the result: {shown}"
    );
    assert!(
        srv.log().contains("POST /_stablebuild/v1/pin 200"),
        "{}",
        srv.log()
    );
}
