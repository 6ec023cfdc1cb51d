//! Self-test of the scripted upstream in `tests/common/faulty.rs`, using plain reqwest: the
//! image it serves is consistent, and every fault looks to a client the way it is documented.

mod common;

use std::time::{Duration, Instant};

use common::faulty::{self, Fault, Faulty};
use reqwest::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderMap, RETRY_AFTER, WWW_AUTHENTICATE};
use reqwest::{Client, StatusCode};
use serde_json::Value;

fn client() -> Client {
    Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client")
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> &'h str {
    headers
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .expect("ascii header")
}

/// GETs `path`, checks the answer is 200 with the digest and length of its bytes, returns them.
async fn fetch_verified(client: &Client, base: &str, path: &str, digest: &str) -> Vec<u8> {
    let response = client
        .get(format!("{base}{path}"))
        .send()
        .await
        .expect("send");
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let headers = response.headers().clone();
    let bytes = response.bytes().await.expect("body").to_vec();
    assert_eq!(header(&headers, "docker-content-digest"), digest);
    assert_eq!(
        header(&headers, CONTENT_LENGTH.as_str()),
        bytes.len().to_string()
    );
    assert_eq!(faulty::sha256_digest(&bytes), digest, "{path}");
    bytes
}

async fn error_code(response: reqwest::Response) -> String {
    let body: Value = serde_json::from_slice(&response.bytes().await.expect("body")).expect("json");
    body["errors"][0]["code"]
        .as_str()
        .expect("error code")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn serves_a_consistent_two_platform_index() {
    let upstream = Faulty::start().await;
    let (client, base) = (client(), upstream.url());
    let base_response = client
        .get(format!("{base}/v2/"))
        .send()
        .await
        .expect("send");
    assert_eq!(base_response.status(), StatusCode::OK);

    let tag = client
        .get(format!("{base}{}", upstream.manifest_path("1")))
        .send()
        .await
        .unwrap();
    assert_eq!(
        header(tag.headers(), CONTENT_TYPE.as_str()),
        faulty::INDEX_MEDIA_TYPE
    );
    assert_eq!(header(tag.headers(), "ratelimit-limit"), "100;w=21600");
    assert_eq!(header(tag.headers(), "ratelimit-remaining"), "99;w=21600");
    let index_bytes = tag.bytes().await.unwrap();
    assert_eq!(faulty::sha256_digest(&index_bytes), upstream.index_digest());

    let index: Value = serde_json::from_slice(&index_bytes).unwrap();
    let entries = index["manifests"].as_array().unwrap();
    let arches: Vec<&str> = entries
        .iter()
        .map(|m| m["platform"]["architecture"].as_str().unwrap())
        .collect();
    assert_eq!(arches, ["amd64", "arm64"]);
    for (i, entry) in entries.iter().enumerate() {
        let digest = entry["digest"].as_str().unwrap();
        assert_eq!(digest, upstream.manifest_digests()[i]);
        let path = upstream.manifest_path(digest);
        let bytes = fetch_verified(&client, &base, &path, digest).await;
        let manifest: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(
            manifest["config"]["digest"],
            upstream.config_digests()[i].as_str()
        );
        assert_eq!(
            manifest["layers"][0]["digest"],
            upstream.layer_digests()[i].as_str()
        );
        assert_eq!(manifest["layers"][0]["mediaType"], faulty::LAYER_MEDIA_TYPE);
        for blob in [&manifest["config"], &manifest["layers"][0]] {
            let digest = blob["digest"].as_str().unwrap();
            let bytes = fetch_verified(&client, &base, &upstream.blob_path(digest), digest).await;
            assert_eq!(blob["size"], bytes.len());
            assert_eq!(bytes, upstream.blob(digest));
        }
    }
    assert_eq!(
        upstream.blob(&upstream.layer_digests()[0]).len(),
        256 * 1024
    );
    assert_ne!(upstream.layer_digests()[0], upstream.layer_digests()[1]);
}

#[tokio::test(flavor = "multi_thread")]
async fn head_answers_headers_only_and_get_counts_down_the_rate_limit() {
    let upstream = Faulty::start().await;
    let (client, base) = (client(), upstream.url());
    let layer = &upstream.layer_digests()[1];
    let head = client
        .head(format!("{base}{}", upstream.blob_path(layer)))
        .send()
        .await
        .unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        header(head.headers(), CONTENT_LENGTH.as_str()),
        (256 * 1024).to_string()
    );
    assert_eq!(
        header(head.headers(), CONTENT_TYPE.as_str()),
        "application/octet-stream"
    );
    assert_eq!(header(head.headers(), "docker-content-digest"), layer);
    assert!(head.bytes().await.unwrap().is_empty());

    let tag_url = format!("{base}{}", upstream.manifest_path("1"));
    let remaining = |r: &reqwest::Response| header(r.headers(), "ratelimit-remaining").to_owned();
    let first = client.get(&tag_url).send().await.unwrap();
    let peek = client.head(&tag_url).send().await.unwrap();
    let second = client.get(&tag_url).send().await.unwrap();
    assert_eq!(
        [remaining(&first), remaining(&peek), remaining(&second)],
        ["99;w=21600", "99;w=21600", "98;w=21600"]
    );
    assert_eq!(upstream.requests(&upstream.manifest_path("1")), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_content_is_404_with_registry_error_codes() {
    let upstream = Faulty::start().await;
    let (client, base) = (client(), upstream.url());
    let missing = format!("sha256:{}", "0".repeat(64));
    let get = |path: String| client.get(format!("{base}{path}")).send();
    let manifest = get(upstream.manifest_path("2")).await.unwrap();
    assert_eq!(manifest.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(manifest).await, "MANIFEST_UNKNOWN");
    let blob = get(upstream.blob_path(&missing)).await.unwrap();
    assert_eq!(blob.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(blob).await, "BLOB_UNKNOWN");
    let layer_as_manifest = get(upstream.manifest_path(&upstream.layer_digests()[0]))
        .await
        .unwrap();
    assert_eq!(error_code(layer_as_manifest).await, "MANIFEST_UNKNOWN");
    let other_repo = get("/v2/library/other/manifests/1".to_owned())
        .await
        .unwrap();
    assert_eq!(other_repo.status(), StatusCode::NOT_FOUND);
    assert_eq!(error_code(other_repo).await, "NAME_UNKNOWN");
}

#[tokio::test(flavor = "multi_thread")]
async fn status_faults_are_consumed_in_order_then_served_normally() {
    let upstream = Faulty::start().await;
    let (client, base) = (client(), upstream.url());
    let path = upstream.manifest_path(&upstream.manifest_digests()[0]);
    upstream.push_fault(&path, Fault::Status(500));
    upstream.push_fault(&path, Fault::Status(503));
    assert_eq!(upstream.pending_faults(&path), 2);

    let first = client.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(error_code(first).await, "UNKNOWN");
    let second = client
        .get(format!("{base}{path}?ignored=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(second.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(error_code(second).await, "UNAVAILABLE");
    fetch_verified(&client, &base, &path, &upstream.manifest_digests()[0]).await;
    assert_eq!(upstream.requests(&path), 3);
    assert_eq!(upstream.requests(&upstream.manifest_path("1")), 0);
    assert_eq!(upstream.pending_faults(&path), 0);
}

#[tokio::test(flavor = "multi_thread")]
async fn too_many_carries_retry_after() {
    let upstream = Faulty::start().await;
    let (client, base) = (client(), upstream.url());
    let path = upstream.manifest_path("1");
    upstream.push_fault(&path, Fault::TooMany { retry_after: 7 });
    let response = client.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(response.headers(), RETRY_AFTER.as_str()), "7");
    assert_eq!(error_code(response).await, "TOOMANYREQUESTS");
    fetch_verified(&client, &base, &path, &upstream.index_digest()).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn wrong_bytes_keep_the_length_but_not_the_digest() {
    let upstream = Faulty::start().await;
    let (client, base) = (client(), upstream.url());
    for digest in [&upstream.layer_digests()[0], &upstream.config_digests()[1]] {
        let path = upstream.blob_path(digest);
        upstream.push_fault(&path, Fault::WrongBytes);
        let response = client.get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(header(response.headers(), "docker-content-digest"), digest);
        let bytes = response.bytes().await.unwrap();
        assert_eq!(bytes.len(), upstream.blob(digest).len());
        assert_ne!(&faulty::sha256_digest(&bytes), digest);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn truncate_drops_the_connection_mid_body() {
    let upstream = Faulty::start().await;
    let (client, base) = (client(), upstream.url());
    let digest = &upstream.layer_digests()[0];
    let path = upstream.blob_path(digest);
    upstream.push_fault(&path, Fault::Truncate(1000));
    let head = client.head(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(
        upstream.pending_faults(&path),
        1,
        "a HEAD leaves the body fault queued"
    );
    let mut response = client.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.content_length(), Some(256 * 1024));
    let mut received = 0;
    let error = loop {
        match response.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => panic!("body ended cleanly after {received} bytes"),
            Err(error) => break error,
        }
    };
    assert!(error.is_body() || error.is_decode(), "{error:?}");
    assert_eq!(received, 1000, "the first N bytes arrive before the drop");
    // The same client (and its pool) then gets the whole blob.
    fetch_verified(&client, &base, &path, digest).await;
    assert_eq!(upstream.requests(&path), 3);
}

#[tokio::test(flavor = "multi_thread")]
async fn stall_delays_then_answers_normally() {
    let upstream = Faulty::start().await;
    let (client, base) = (client(), upstream.url());
    let digest = &upstream.config_digests()[0];
    let path = upstream.blob_path(digest);
    upstream.push_fault(&path, Fault::Stall(Duration::from_millis(300)));
    let started = Instant::now();
    fetch_verified(&client, &base, &path, digest).await;
    assert!(started.elapsed() >= Duration::from_millis(300));
    let short = Client::builder()
        .timeout(Duration::from_millis(100))
        .build()
        .unwrap();
    upstream.push_fault(&path, Fault::Stall(Duration::from_secs(2)));
    let timed_out = short.get(format!("{base}{path}")).send().await.unwrap_err();
    assert!(timed_out.is_timeout(), "{timed_out:?}");
}

/// Percent-encodes a query value (everything but unreserved characters).
fn encode(value: &str) -> String {
    value
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// Asks the token endpoint for `scope`; returns the token.
async fn token(client: &Client, realm: &str, scope: &str) -> String {
    let url = format!(
        "{realm}?service={}&scope={}",
        encode(faulty::SERVICE),
        encode(scope)
    );
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = serde_json::from_slice(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(body["token"], body["access_token"]);
    assert_eq!(body["expires_in"], 300);
    assert!(body["issued_at"].as_str().unwrap().ends_with('Z'));
    body["token"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn token_flow_challenges_issues_and_checks_scope() {
    let upstream = Faulty::start_with_auth().await;
    let (client, base) = (client(), upstream.url());
    let challenged = client.get(format!("{base}/v2/")).send().await.unwrap();
    assert_eq!(challenged.status(), StatusCode::UNAUTHORIZED);
    let realm = format!("{base}/token");
    let expected = format!(
        r#"Bearer realm="{realm}",service="faulty.test",scope="repository:library/faulty:pull""#
    );
    assert_eq!(
        header(challenged.headers(), WWW_AUTHENTICATE.as_str()),
        expected
    );

    let path = upstream.manifest_path("1");
    upstream.push_fault(&path, Fault::Status(502));
    let anonymous = client.get(format!("{base}{path}")).send().await.unwrap();
    assert_eq!(
        anonymous.status(),
        StatusCode::UNAUTHORIZED,
        "401 comes before any fault"
    );

    let good = token(&client, &realm, faulty::PULL_SCOPE).await;
    let get = |bearer: String| {
        client
            .get(format!("{base}{path}"))
            .bearer_auth(bearer)
            .send()
    };
    assert_eq!(
        get(good.clone()).await.unwrap().status(),
        StatusCode::BAD_GATEWAY
    );
    let served = get(good.clone()).await.unwrap();
    assert_eq!(served.status(), StatusCode::OK);
    assert_eq!(
        faulty::sha256_digest(&served.bytes().await.unwrap()),
        upstream.index_digest()
    );

    let other = token(&client, &realm, "repository:library/other:pull").await;
    let refused = get(other.clone()).await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    assert!(header(refused.headers(), WWW_AUTHENTICATE.as_str()).starts_with("Bearer realm="));
    assert_eq!(
        get("not-a-token".to_owned()).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let base_with_token = client
        .get(format!("{base}/v2/"))
        .bearer_auth(other)
        .send()
        .await;
    assert_eq!(base_with_token.unwrap().status(), StatusCode::OK);

    upstream.push_fault(&path, Fault::Status(401));
    let expired = get(good.clone()).await.unwrap();
    assert_eq!(expired.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        header(expired.headers(), WWW_AUTHENTICATE.as_str()),
        expected
    );
    assert_eq!(get(good).await.unwrap().status(), StatusCode::OK);

    assert_eq!(upstream.token_requests(), 2);
    assert_eq!(upstream.requests(&path), 7);
    assert_eq!(upstream.requests("/v2/"), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn shutdown_stops_serving() {
    let upstream = Faulty::start().await;
    let url = format!("{}/v2/", upstream.url());
    assert!(
        client()
            .get(&url)
            .send()
            .await
            .unwrap()
            .status()
            .is_success()
    );
    upstream.shutdown();
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(client().get(&url).send().await.is_err());
}
