//! Who may open a store and how: a store this process may not write (another user's, a
//! read-only mount) is read, never changed; a directory that is not a store is named, not
//! silently made one; a store another process holds is waited for.

mod common;

use std::path::Path;

use common::cli::Sb;
use common::faulty::{Fault, Faulty};
use common::fixtures;
use common::registry::Registry;
use common::server::Server;

/// Runs the wrapped command as `nobody` (the store belongs to root).
const AS_NOBODY: [&str; 4] = [
    "setpriv",
    "--reuid=65534",
    "--regid=65534",
    "--clear-groups",
];

/// Every file under `dir` with its size and modification time, to show nothing changed.
fn snapshot(dir: &Path) -> Vec<(String, u64, std::time::SystemTime)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let meta = e.metadata().unwrap();
            if meta.is_dir() {
                stack.push(e.path());
            }
            let name = e.path().display().to_string();
            out.push((name, meta.len(), meta.modified().unwrap()));
        }
    }
    out.sort();
    out
}

/// `unshare -m` with the store bind-mounted read-only on itself, then the command.
fn read_only_mount(store: &Path) -> Vec<String> {
    let s = store.display();
    let script =
        format!("mount --bind {s} {s} && mount -o remount,bind,ro {s} && exec \"$0\" \"$@\"");
    ["unshare", "-m", "sh", "-c", &script]
        .iter()
        .map(|w| w.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_users_store_is_listed_exported_and_verified_but_never_changed() {
    let reg = Registry::start().await;
    fixtures::push_single(&reg.url()).await;
    fixtures::push_dockerlist(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    sb.run(&["pin", "single:1"]).await.ok();
    sb.share();
    let outputs = sb.path("outputs");
    std::fs::create_dir(&outputs).unwrap();
    std::os::unix::fs::chown(&outputs, Some(65534), Some(65534)).unwrap();
    let before = snapshot(&sb.store());

    let list = sb.run_via(&AS_NOBODY, &["list"]).await.ok();
    assert!(
        list.stdout.contains("docker.io/library/single:1"),
        "{}",
        list.stdout
    );
    assert!(!list.stderr.contains("ermission denied"), "{}", list.stderr);
    let layout = outputs.join("layout");
    let pull = sb
        .run_via(
            &AS_NOBODY,
            &["pull", "single:1", "-o", layout.to_str().unwrap()],
        )
        .await
        .ok();
    assert!(layout.join("index.json").is_file(), "{}", pull.stderr);
    let verify = sb.run_via(&AS_NOBODY, &["verify"]).await.ok();
    assert!(
        verify.stdout.contains("0 corrupt, 0 missing"),
        "{}",
        verify.stdout
    );

    for args in [
        vec!["pin", "dockerlist:1"],
        vec!["evict", "single:1"],
        vec!["gc"],
        vec!["verify", "--repair"],
    ] {
        let run = sb.run_via(&AS_NOBODY, &args).await;
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains("is read-only"),
            "{args:?}: {}",
            run.stderr
        );
        assert_eq!(
            run.stderr.matches("ermission denied").count(),
            1,
            "{}",
            run.stderr
        );
    }
    let out = outputs.join("d.tar");
    let run = sb
        .run_via(
            &AS_NOBODY,
            &["pull", "dockerlist:1", "-o", out.to_str().unwrap()],
        )
        .await;
    assert_eq!(
        run.code, 1,
        "an image not pinned cannot be pinned: {}",
        run.stderr
    );
    assert!(run.stderr.contains("is read-only"), "{}", run.stderr);
    assert!(!out.exists());
    assert_eq!(
        snapshot(&sb.store()),
        before,
        "nothing in the store changed"
    );
    assert_eq!(
        reg.count_requests("GET", "dockerlist"),
        0,
        "nothing was asked upstream"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_on_a_read_only_mount_is_served_and_misses_get_503() {
    let reg = Registry::start().await;
    fixtures::push_single(&reg.url()).await;
    fixtures::push_dockerlist(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let pinned = sb.run(&["--json", "pin", "single:1"]).await.ok().json();
    let wrapper = read_only_mount(&sb.store());
    let wrapper: Vec<&str> = wrapper.iter().map(String::as_str).collect();

    let list = sb.run_via(&wrapper, &["list"]).await.ok();
    assert!(
        list.stdout.contains("docker.io/library/single:1"),
        "{}",
        list.stdout
    );
    let refused = sb
        .run_via(&wrapper, &["serve", "--listen", "127.0.0.1:0"])
        .await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(
        refused.stderr.contains("serve --read-only"),
        "{}",
        refused.stderr
    );

    let srv = Server::start_via(&sb, &wrapper, &["--read-only"]).await;
    let get = |path: &str| reqwest::get(format!("{}{path}", srv.url()));
    let hit = get("/v2/library/single/manifests/1").await.unwrap();
    assert_eq!(hit.status(), 200);
    assert_eq!(
        hit.headers()["docker-content-digest"],
        pinned[0]["digest"].as_str().unwrap()
    );
    let miss = get("/v2/library/dockerlist/manifests/1").await.unwrap();
    assert_eq!(miss.status(), 503);
    let body: serde_json::Value = miss.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "UNAVAILABLE", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("read-only"), "{message}");
    let blob = format!("/v2/library/single/blobs/sha256:{}", "cd".repeat(32));
    assert_eq!(get(&blob).await.unwrap().status(), 503);
    assert_eq!(
        reg.count_requests("GET", "dockerlist"),
        0,
        "nothing was asked upstream"
    );
    assert!(!sb.store().join("server.json").exists());
    assert!(srv.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_directory_that_is_not_a_store_is_named_and_only_pin_creates_one() {
    let sb = Sb::new("http://127.0.0.1:9");
    let path = sb.store().display().to_string();
    for args in [
        vec!["list"],
        vec!["verify"],
        vec!["gc", "--dry-run"],
        vec!["gc"],
        vec!["evict", "x:1"],
        vec!["inspect", "x:1"],
    ] {
        let run = sb.run(&args).await;
        assert_eq!(run.code, 1, "{args:?}: {}", run.stderr);
        assert!(
            run.stderr.contains(&format!("no store at {path}")),
            "{args:?}: {}",
            run.stderr
        );
        assert!(!sb.store().exists(), "{args:?} created nothing");
    }
    // An empty variable means unset: the default store is named.
    let home = sb.path("home");
    let run: common::cli::Run = tokio::process::Command::new(common::cli::bin())
        .arg("list")
        .env("STABLEBUILD_STORE", "")
        .env("STABLEBUILD_UPSTREAM", "")
        .env("HOME", &home)
        .env_remove("XDG_DATA_HOME")
        .output()
        .await
        .unwrap()
        .into();
    assert_eq!(run.code, 1, "{}", run.stderr);
    let default = format!("no store at {}/.local/share/stablebuild", home.display());
    assert!(run.stderr.contains(&default), "{}", run.stderr);

    let reg = Registry::start().await;
    fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let first = sb.run(&["pin", "single:1"]).await.ok();
    let created = format!("created a new store at {}", sb.store().display());
    assert_eq!(
        first.stderr.matches(&created).count(),
        1,
        "{}",
        first.stderr
    );
    let again = sb.run(&["pin", "single:1"]).await.ok();
    assert!(!again.stderr.contains("created"), "{}", again.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_empty_store_lists_its_header_and_a_filter_that_matches_nothing_says_so() {
    let reg = Registry::start().await;
    fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    sb.run(&["pin", "single:1"]).await.ok();
    sb.run(&["evict", "single:1"]).await.ok();
    let empty = sb.run(&["list"]).await.ok();
    assert!(
        empty.stdout.contains("IMAGE") && empty.stdout.contains("DIGEST"),
        "{}",
        empty.stdout
    );
    assert_eq!(empty.stdout.lines().count(), 1, "{}", empty.stdout);
    let json = sb.run(&["--json", "list"]).await.ok();
    assert_eq!(json.json(), serde_json::json!([]));
    sb.run(&["pin", "single:1"]).await.ok();
    let none = sb.run(&["list", "ubuntu"]).await.ok();
    assert!(
        none.stderr.contains("no pinned image matches \"ubuntu\""),
        "{}",
        none.stderr
    );
    assert!(!none.stdout.contains("single"), "{}", none.stdout);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_process_waits_for_the_store_lock_and_says_once_who_holds_it() {
    let up = Faulty::start().await;
    let layer = up.layer_digests()[0].clone();
    up.push_fault(
        &up.blob_path(&layer),
        Fault::Stall(std::time::Duration::from_secs(3)),
    );
    let sb = Sb::new(&up.url());
    let pin = sb
        .command(&["pin", "faulty:1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let pid = pin.id().unwrap();
    // Wait until the pin holds the store (its pid is the first line of the lock file).
    for _ in 0..100 {
        let lock = std::fs::read_to_string(sb.store().join("lock")).unwrap_or_default();
        if lock.lines().next() == Some(pid.to_string().as_str()) {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let started = std::time::Instant::now();
    let busy = sb.run(&["--no-wait", "list"]).await;
    assert_eq!(busy.code, 1, "{}", busy.stderr);
    assert!(
        busy.stderr
            .contains(&format!("in use by pid {pid} (stablebuild ")),
        "{}",
        busy.stderr
    );
    assert!(busy.stderr.contains("pin faulty:1)"), "{}", busy.stderr);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(2),
        "--no-wait does not wait"
    );

    let waited = sb.run(&["list"]).await.ok();
    let blocking = format!("Blocking: waiting for the store lock held by pid {pid} (stablebuild ");
    assert_eq!(
        waited.stderr.matches(&blocking).count(),
        1,
        "said once: {}",
        waited.stderr
    );
    assert!(waited.stderr.contains("pin faulty:1)"), "{}", waited.stderr);
    assert!(
        waited.stdout.contains("docker.io/library/faulty:1"),
        "the list ran after the pin finished, and shows it: {}",
        waited.stdout
    );
    let out = pin.wait_with_output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
