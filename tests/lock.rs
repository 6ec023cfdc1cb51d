//! `lock`: Dockerfiles, Compose and Kubernetes files locked in place against the real
//! registry, byte-compared with expected files (`fixtures/lock-e2e/`); `--check` as a CI
//! gate before and after; a second lock changes nothing and asks the upstream nothing;
//! `--diff` writes nothing; `--mirror` writes the mirror's names; bad files are usage errors.

mod common;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use common::cli::{Run, Sb};
use common::fixtures;
use common::registry::Registry;

const FILES: [&str; 3] = ["Dockerfile", "compose.yml", "deployment.yaml"];

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lock-e2e")
}

/// The inputs, copied into `dir`.
fn copy_inputs(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for f in FILES {
        std::fs::copy(fixture_dir().join(f), dir.join(f)).unwrap();
    }
}

/// The expected file, `{NAME}` replaced by the digest of `library/NAME:1`.
fn want(name: &str, digests: &HashMap<&str, String>) -> Vec<u8> {
    let mut text = std::fs::read_to_string(fixture_dir().join(format!("{name}.want"))).unwrap();
    for (repo, digest) in digests {
        text = text.replace(&format!("{{{repo}}}"), digest);
    }
    assert!(
        !text.contains("@{"),
        "every placeholder replaced in {name}.want"
    );
    text.into_bytes()
}

async fn lock_in(sb: &Sb, dir: &Path, args: &[&str]) -> Run {
    let mut cmd = sb.command(&[&["lock"], args].concat());
    cmd.current_dir(dir);
    cmd.output().await.expect("run stablebuild lock").into()
}

async fn push_fixtures(reg: &Registry) -> HashMap<&'static str, String> {
    let url = reg.url();
    let (multi, single, dockerlist, many) = tokio::join!(
        fixtures::push_multi(&url, 0),
        fixtures::push_single(&url),
        fixtures::push_dockerlist(&url),
        fixtures::push_many(&url),
    );
    HashMap::from([
        ("multi", multi.digest),
        ("single", single.digest),
        ("dockerlist", dockerlist.digest),
        ("many", many.digest),
    ])
}

fn manifest_gets(reg: &Registry) -> usize {
    reg.count_requests("GET", "/manifests/") + reg.count_requests("HEAD", "/manifests/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lock_rewrites_dockerfiles_compose_and_kubernetes_files_byte_for_byte() {
    let reg = Registry::start().await;
    let digests = push_fixtures(&reg).await;
    let sb = Sb::new(&reg.url());
    let dir = sb.path("work");
    copy_inputs(&dir);

    let before = lock_in(&sb, &dir, &["--check"]).await;
    assert_eq!(before.code, 1, "nothing is locked yet: {}", before.stderr);
    for f in FILES {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            std::fs::read(fixture_dir().join(f)).unwrap(),
            "--check writes nothing"
        );
    }

    let locked = lock_in(&sb, &dir, &FILES).await.ok();
    for f in FILES {
        let got = std::fs::read(dir.join(f)).unwrap();
        assert_eq!(
            String::from_utf8_lossy(&got),
            String::from_utf8_lossy(&want(f, &digests)),
            "{f}"
        );
    }
    // What is left alone is named: stages, scratch, a variable without a value.
    for named in [
        "Dockerfile:10: left alone: build",
        "Dockerfile:13: left alone: scratch",
        "Dockerfile:17: left alone: ${X}",
        "compose.yml:7: left alone",
    ] {
        assert!(locked.stderr.contains(named), "{named}: {}", locked.stderr);
    }

    // Locked and pinned: the check passes, a second lock changes nothing and asks nothing.
    let asked = manifest_gets(&reg);
    let again = lock_in(&sb, &dir, &FILES).await.ok();
    assert!(
        again
            .stderr
            .contains("Dockerfile: locked 0 references, 4 already locked"),
        "{}",
        again.stderr
    );
    for f in FILES {
        assert_eq!(
            std::fs::read(dir.join(f)).unwrap(),
            want(f, &digests),
            "{f}"
        );
    }
    let check = lock_in(&sb, &dir, &["--check", FILES[0], FILES[1], FILES[2]]).await;
    assert_eq!(check.code, 0, "{}{}", check.stdout, check.stderr);
    assert_eq!(check.stdout, "", "no diff");
    assert_eq!(
        manifest_gets(&reg),
        asked,
        "no upstream request once pinned"
    );

    // The upstream tag moves: the store keeps its pin, so the lock still holds. Evicted
    // and pinned again at the new digest, the file's digest is the store's no more.
    fixtures::push_multi(&reg.url(), 1).await;
    assert_eq!(lock_in(&sb, &dir, &["--check"]).await.code, 0);
    sb.run(&["evict", "multi:1"]).await.ok();
    sb.run(&["pin", "multi:1"]).await.ok();
    let moved = lock_in(&sb, &dir, &["--check", "compose.yml"]).await;
    assert_eq!(moved.code, 1, "{}", moved.stderr);
    assert!(
        moved.stderr.contains("compose.yml:5: locked to")
            && moved
                .stderr
                .contains("but the store pins docker.io/library/multi:1 at"),
        "{}",
        moved.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diff_writes_nothing_and_mirror_writes_the_mirrors_names() {
    let reg = Registry::start().await;
    let digests = push_fixtures(&reg).await;
    let sb = Sb::new(&reg.url());
    let dir = sb.path("work");
    copy_inputs(&dir);

    let diff = lock_in(&sb, &dir, &["--diff", "compose.yml"]).await.ok();
    assert_eq!(
        std::fs::read(dir.join("compose.yml")).unwrap(),
        std::fs::read(fixture_dir().join("compose.yml")).unwrap(),
        "--diff writes nothing"
    );
    let single = &digests["single"];
    assert!(
        diff.stdout
            .starts_with("--- a/compose.yml\n+++ b/compose.yml\n@@ "),
        "{}",
        diff.stdout
    );
    assert!(
        diff.stdout
            .contains("-    image: \"single:1\"   # quoted, CRLF\r\n")
            && diff.stdout.contains(&format!(
                "+    image: \"single:1@{single}\"   # quoted, CRLF\r\n"
            )),
        "{}",
        diff.stdout
    );

    let mirror = "127.0.0.1:5999";
    lock_in(&sb, &dir, &["--mirror", mirror, "Dockerfile"])
        .await
        .ok();
    let text = std::fs::read_to_string(dir.join("Dockerfile")).unwrap();
    assert!(
        text.contains(&format!(
            "FROM --platform=$BUILDPLATFORM {mirror}/library/single:1@{single} AS build"
        )),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "ARG BASE={mirror}/library/multi:1@{}",
            digests["multi"]
        )),
        "{text}"
    );
    // Under the mirror's names, the references are still those of the upstream: locked.
    let again = lock_in(&sb, &dir, &["--mirror", mirror, "--check", "Dockerfile"]).await;
    assert_eq!(again.code, 0, "{}{}", again.stdout, again.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("Dockerfile")).unwrap(),
        text
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_files_are_usage_errors_that_change_nothing() {
    let reg = Registry::start().await;
    let sb = Sb::new(&reg.url());
    let dir = sb.path("work");
    std::fs::create_dir_all(&dir).unwrap();

    let missing = lock_in(&sb, &dir, &[]).await;
    assert_eq!(missing.code, 2, "{}", missing.stderr);
    assert!(
        missing.stderr.contains("cannot read Dockerfile"),
        "{}",
        missing.stderr
    );

    std::fs::write(dir.join("Dockerfile"), "FROM single:1\nFROM\n").unwrap();
    let bad = lock_in(&sb, &dir, &[]).await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("Dockerfile: line 2"), "{}", bad.stderr);
    assert_eq!(
        std::fs::read_to_string(dir.join("Dockerfile")).unwrap(),
        "FROM single:1\nFROM\n"
    );
    assert!(
        !sb.store().exists(),
        "nothing pinned for a file that does not parse"
    );

    std::fs::write(dir.join("Dockerfile"), "FROM nothere:1\n").unwrap();
    let unpinnable = lock_in(&sb, &dir, &[]).await;
    assert_eq!(unpinnable.code, 1, "{}", unpinnable.stderr);
    assert!(
        unpinnable.stderr.contains("nothere:1"),
        "{}",
        unpinnable.stderr
    );
    assert_eq!(
        std::fs::read_to_string(dir.join("Dockerfile")).unwrap(),
        "FROM nothere:1\n"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dated_writes_the_most_specific_twin() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    fixtures::retag(&reg.url(), "library/single", "1", "1.0.3-20240101").await;
    fixtures::retag(&reg.url(), "library/single", "1", "latest").await;
    let sb = Sb::new(&reg.url());
    let dir = sb.path("work");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("Dockerfile"), "FROM single:1 AS base\n").unwrap();

    let run = lock_in(&sb, &dir, &["--dated"]).await.ok();
    assert_eq!(
        std::fs::read_to_string(dir.join("Dockerfile")).unwrap(),
        format!("FROM single:1.0.3-20240101@{} AS base\n", single.digest)
    );
    assert!(
        run.stderr
            .contains("docker.io/library/single:1 → docker.io/library/single:1.0.3-20240101"),
        "{}",
        run.stderr
    );
    let listed = sb.run(&["--json", "list"]).await.ok().json();
    assert_eq!(
        listed[0]["image"],
        "docker.io/library/single:1.0.3-20240101"
    );
    assert_eq!(lock_in(&sb, &dir, &["--check"]).await.code, 0);
}
