//! Pull-through without waiting for the whole pin: a cold manifest is answered once the
//! manifests are stored, and a layer still downloading is streamed to the client from the
//! same single upstream fetch, never whole unless the store verified it. The upstream is the
//! scripted one: a real registry cannot be made to pause in the middle of a blob or send
//! wrong bytes.

mod common;

use std::time::Duration;

use common::cli::{Sb, read};
use common::faulty::{Fault, Faulty};
use common::server::Server;

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cold_manifest_is_answered_before_its_layers_and_a_layer_streams_while_written() {
    let up = Faulty::start().await;
    let sb = Sb::new(&up.url());
    let layer = up.layer_digests()[0].clone();
    let full = up.blob(&layer);
    let half = full.len() / 2;
    let wait = Duration::from_secs(4);
    up.push_fault(&up.blob_path(&layer), Fault::Pause { after: half, wait });
    let srv = Server::start(&sb, &[]).await;
    let base = srv.url();
    let http = reqwest::Client::new();
    let by_sendfile = srv.metric("stablebuild_sendfile_bytes_total").await;

    let index = http
        .get(format!("{base}/v2/library/faulty/manifests/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(index.status(), 200);
    assert_eq!(header(&index, "x-stablebuild-cache"), "miss");
    assert_eq!(header(&index, "docker-content-digest"), up.index_digest());
    assert!(
        !sb.blob_path(&layer).exists(),
        "the manifest was answered before the paused layer was stored"
    );

    let mut blob = http
        .get(format!("{base}/v2/library/faulty/blobs/{layer}"))
        .send()
        .await
        .unwrap();
    assert_eq!(blob.status(), 200);
    assert_eq!(header(&blob, "x-stablebuild-cache"), "miss");
    assert_eq!(header(&blob, "content-length"), full.len().to_string());
    let mut got = Vec::new();
    while got.len() < half {
        got.extend_from_slice(&blob.chunk().await.unwrap().expect("more bytes"));
    }
    assert!(
        !sb.blob_path(&layer).exists(),
        "the first half arrived while the layer was still being written"
    );
    while let Some(chunk) = blob.chunk().await.unwrap() {
        got.extend_from_slice(&chunk);
    }
    assert_eq!(got, full);
    let by_sendfile = srv.metric("stablebuild_sendfile_bytes_total").await - by_sendfile;
    assert_eq!(
        by_sendfile,
        full.len() as u64,
        "streamed from the temp file by sendfile"
    );
    assert_eq!(
        up.requests(&up.blob_path(&layer)),
        1,
        "the pin and the client shared one upstream fetch"
    );
    let entry = srv.wait_pinned(&sb, "faulty:1").await;
    assert_eq!(entry["platforms"].as_array().unwrap().len(), 2, "{entry}");
    assert_eq!(read(&sb.blob_path(&layer)), full);
    assert!(srv.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_streamed_blob_that_fails_verification_is_never_served_whole() {
    let up = Faulty::start().await;
    let sb = Sb::new(&up.url());
    let layer = up.layer_digests()[1].clone();
    let full = up.blob(&layer);
    // Two bad transfers, so that whichever the client joins is a bad one; the third is good.
    up.push_fault(&up.blob_path(&layer), Fault::WrongBytes);
    up.push_fault(&up.blob_path(&layer), Fault::WrongBytes);
    let srv = Server::start(&sb, &[]).await;
    let url = format!("{}/v2/library/faulty/blobs/{layer}", srv.url());

    let resp = reqwest::get(&url).await.unwrap();
    assert_eq!(resp.status(), 200);
    match resp.bytes().await {
        Ok(body) => assert!(
            body.len() < full.len(),
            "a short body, not a whole wrong one"
        ),
        Err(e) => assert!(e.is_body() || e.is_decode(), "{e:?}"),
    }
    for _ in 0..100 {
        if sb.blob_path(&layer).exists() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        read(&sb.blob_path(&layer)),
        full,
        "the retried fetch stored it"
    );
    assert_eq!(up.requests(&up.blob_path(&layer)), 3);
    let again = reqwest::get(&url).await.unwrap();
    assert_eq!(header(&again, "x-stablebuild-cache"), "hit");
    assert_eq!(again.bytes().await.unwrap().to_vec(), full);
    assert!(srv.log().contains("retrying"), "{}", srv.log());
    assert!(srv.stop().await.success());
}
