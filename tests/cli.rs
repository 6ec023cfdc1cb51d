//! Bad input and misuse: exit codes 2 (usage) and 1 (failure), messages that name the
//! problem, no panics, and nothing half-written.

mod common;

use common::cli::{Run, Sb};
use common::fixtures;
use common::registry::Registry;

fn assert_no_panic(run: &common::cli::Run) {
    assert!(!run.stderr.contains("panicked"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_references_are_usage_errors_that_name_the_problem() {
    let sb = Sb::new("http://127.0.0.1:9");
    let cases = [
        (vec!["pin", "Ubuntu"], "lowercase"),
        (vec!["pin", "ubuntu@sha256:abc"], "invalid digest"),
        (vec!["pin", "a//b"], "a//b"),
        (vec!["pin", "a/../b"], "a/../b"),
        (vec!["pin", "ubuntu@sha512:00"], "only sha256"),
        (vec!["pin"], "at least one IMAGE"),
        (vec!["evict", "UPPER:1"], "lowercase"),
        (vec!["pull", "ubuntu:", "-o", "x"], "tag"),
        (vec!["--upstream", "docker.io", "pin", "x"], "REGISTRY=URL"),
        (vec!["pin", "--jobs", "0", "x"], "jobs"),
        (vec!["frobnicate"], "unrecognized subcommand"),
    ];
    for (args, needle) in cases {
        let run = sb.run(&args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(needle), "{args:?}: {}", run.stderr);
        assert_no_panic(&run);
    }
    assert!(
        !sb.store().join("journal.jsonl").exists(),
        "usage errors must not touch the store"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_images_fail_with_exit_1_and_leave_nothing() {
    let reg = Registry::start().await;
    fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let run = sb.run(&["pin", "nothere:1", "single:1"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("docker.io/library/nothere:1"),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("not found upstream"), "{}", run.stderr);
    assert!(
        run.stdout.contains("docker.io/library/single:1"),
        "the other image is still pinned: {}",
        run.stdout
    );
    assert_no_panic(&run);
    let run = sb.run(&["--json", "pin", "nothere:1", "single:1"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    let results = run.json();
    assert_eq!(
        results[0]["reference"], "docker.io/library/nothere:1",
        "{results}"
    );
    let error = results[0]["error"].as_str().unwrap();
    assert!(error.contains("not found upstream"), "{results}");
    assert!(results[0].get("digest").is_none(), "{results}");
    assert_eq!(results[1]["reference"], "docker.io/library/single:1");
    assert_eq!(results[1]["already_pinned"], true, "{results}");
    assert_eq!(results.as_array().unwrap().len(), 2);

    let out = sb.path("out");
    let run = sb
        .run(&["pull", "nothere:2", "-o", out.to_str().unwrap()])
        .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(!out.exists(), "a failed pull writes nothing");
    let listed = sb.run(&["list", "--json"]).await.ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_errors_name_the_cause_and_damage_nothing() {
    let reg = Registry::start().await;
    fixtures::push_dockerlist(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let tar = sb.path("x.tar");
    let run = sb
        .run(&[
            "pull",
            "dockerlist:1",
            "-o",
            tar.to_str().unwrap(),
            "--platform",
            "linux/s390x",
        ])
        .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr
            .contains("has no platform linux/s390x; it has linux/amd64, linux/arm64"),
        "{}",
        run.stderr
    );
    assert!(!tar.exists());

    let dir = sb.path("notalayout");
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("precious.txt"), "keep").unwrap();
    let run = sb
        .run(&["pull", "dockerlist:1", "-o", dir.to_str().unwrap()])
        .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("is not an OCI image layout"),
        "{}",
        run.stderr
    );
    let entries: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert_eq!(entries.len(), 1, "nothing was added to the directory");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verbosity_shows_stablebuilds_own_events_and_dependencies_stay_at_warn() {
    let reg = Registry::start().await;
    fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let request = format!("GET {}/v2/library/single/manifests/1 → 200 in", reg.url());

    let info = sb.run(&["-v", "pin", "single:1"]).await.ok();
    assert!(
        !info.stderr.contains(&request),
        "-v: no debug: {}",
        info.stderr
    );
    sb.run(&["evict", "single:1"]).await.ok();
    sb.run(&["gc"]).await.ok();
    let debug = sb.run(&["-vv", "pin", "single:1"]).await.ok();
    assert!(
        debug.stderr.contains(&request),
        "-vv: upstream requests: {}",
        debug.stderr
    );
    assert!(
        debug.stderr.contains("stored in"),
        "-vv: blob writes: {}",
        debug.stderr
    );
    let again = sb.run(&["-vv", "pin", "single:1"]).await.ok();
    assert!(
        again.stderr.contains("nothing asked upstream"),
        "-vv: cache decisions: {}",
        again.stderr
    );

    let mut cmd = sb.command(&["pin", "single:1"]);
    let env_debug: Run = cmd.env("RUST_LOG", "debug").output().await.unwrap().into();
    assert!(
        env_debug.stderr.contains("nothing asked upstream"),
        "{}",
        env_debug.stderr
    );
    let foreign: Vec<&str> = env_debug
        .stderr
        .lines()
        .filter(|l| l.contains("DEBUG") && !l.contains("stablebuild"))
        .collect();
    assert!(
        foreign.is_empty(),
        "RUST_LOG=debug is stablebuild's: {foreign:?}"
    );
    let mut cmd = sb.command(&["list"]);
    let named: Run = cmd
        .env("RUST_LOG", "sled=trace")
        .output()
        .await
        .unwrap()
        .into();
    assert!(
        named.stderr.contains("sled::"),
        "a named crate is shown: {}",
        named.stderr
    );
}
