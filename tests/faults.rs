//! What a real registry cannot be made to do, from a scripted upstream: wrong bytes,
//! truncated transfers, 5xx, 429 with Retry-After, Docker Hub's token flow.

mod common;

use std::time::{Duration, Instant};

use common::cli::{Sb, read};
use common::faulty::{Fault, Faulty};

const IMAGE: &str = "faulty:1";

fn tmp_is_empty(sb: &Sb) -> bool {
    std::fs::read_dir(sb.store().join("tmp"))
        .map(|mut d| d.next().is_none())
        .unwrap_or(true)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_bytes_are_retried_and_never_stored() {
    let up = Faulty::start().await;
    let sb = Sb::new(&up.url());
    let layer = up.layer_digests()[0].clone();
    up.push_fault(&up.blob_path(&layer), Fault::WrongBytes);

    let run = sb.run(&["pin", IMAGE]).await.ok();
    assert!(
        run.stderr
            .contains(&format!("blob {layer}: content has digest")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("retrying"), "{}", run.stderr);
    assert_eq!(up.requests(&up.blob_path(&layer)), 2);
    assert_eq!(read(&sb.blob_path(&layer)), up.blob(&layer));
    sb.run(&["verify"]).await.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn persistently_wrong_bytes_fail_the_pin_and_leave_nothing() {
    let up = Faulty::start().await;
    let sb = Sb::new(&up.url());
    let layer = up.layer_digests()[1].clone();
    for _ in 0..5 {
        up.push_fault(&up.blob_path(&layer), Fault::WrongBytes);
    }
    let run = sb.run(&["pin", IMAGE]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("error: docker.io/library/faulty:1"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("the bytes were discarded"),
        "{}",
        run.stderr
    );
    assert!(
        !sb.blob_path(&layer).exists(),
        "a wrong blob reached the store"
    );
    assert!(tmp_is_empty(&sb));
    let listed = sb.run(&["list", "--json"]).await.ok().json();
    assert!(
        listed
            .as_array()
            .unwrap()
            .iter()
            .all(|e| e["complete"] == false),
        "{listed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn truncated_transfers_and_server_errors_are_retried() {
    let up = Faulty::start().await;
    let sb = Sb::new(&up.url());
    let layer = up.layer_digests()[0].clone();
    up.push_fault(&up.blob_path(&layer), Fault::Truncate(1000));
    up.push_fault(&up.manifest_path("1"), Fault::Status(500));
    let config = up.config_digests()[1].clone();
    up.push_fault(&up.blob_path(&config), Fault::Status(503));

    let run = sb.run(&["--json", "pin", IMAGE]).await.ok();
    assert_eq!(run.json()[0]["digest"], up.index_digest().as_str());
    assert!(run.stderr.contains("transfer failed"), "{}", run.stderr);
    assert!(
        run.stderr.contains("upstream answered 500"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("upstream answered 503"),
        "{}",
        run.stderr
    );
    assert_eq!(read(&sb.blob_path(&layer)), up.blob(&layer));
    assert!(tmp_is_empty(&sb));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_are_waited_out_or_reported() {
    let up = Faulty::start().await;
    let sb = Sb::new(&up.url());
    up.push_fault(&up.manifest_path("1"), Fault::TooMany { retry_after: 1 });
    let started = Instant::now();
    let run = sb.run(&["-v", "pin", IMAGE]).await.ok();
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "Retry-After was not honoured"
    );
    assert!(run.stderr.contains("rate limited (429)"), "{}", run.stderr);
    assert!(run.stderr.contains("retry after 1s"), "{}", run.stderr);
    assert!(
        run.stderr.contains("rate-limit budget"),
        "-v shows the budget: {}",
        run.stderr
    );

    let sb = Sb::new(&up.url());
    up.push_fault(&up.manifest_path("1"), Fault::TooMany { retry_after: 3600 });
    let started = Instant::now();
    let run = sb.run(&["pin", IMAGE]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "a one-hour Retry-After must fail fast"
    );
    assert!(run.stderr.contains("retry after 3600s"), "{}", run.stderr);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_tokens_are_fetched_once_per_scope() {
    let up = Faulty::start_with_auth().await;
    let sb = Sb::new(&up.url());
    let run = sb.run(&["--json", "pin", IMAGE]).await.ok();
    assert_eq!(run.json()[0]["digest"], up.index_digest().as_str());
    assert_eq!(up.token_requests(), 1, "the token is cached for the scope");
    for d in up.layer_digests() {
        assert_eq!(read(&sb.blob_path(&d)), up.blob(&d));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_manifest_with_wrong_bytes_is_refused() {
    let up = Faulty::start().await;
    let sb = Sb::new(&up.url());
    let m = up.manifest_digests()[0].clone();
    for _ in 0..5 {
        up.push_fault(&up.manifest_path(&m), Fault::WrongBytes);
    }
    let run = sb.run(&["pin", IMAGE]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("manifest library/faulty@{m}")),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("refusing it"), "{}", run.stderr);
    assert!(!sb.blob_path(&m).exists());
}
