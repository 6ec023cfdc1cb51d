//! The mirror's HTTP surface, checked with a plain HTTP client against a real upstream
//! registry: headers, HEAD, Range, tags, errors in the spec's JSON, read-only endpoints.

mod common;

use common::cli::Sb;
use common::fixtures;
use common::registry::Registry;
use common::server::Server;
use reqwest::{Method, StatusCode};

async fn send(method: Method, url: &str, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut req = reqwest::Client::new().request(method, url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

fn header(resp: &reqwest::Response, name: &str) -> String {
    resp.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

/// A GET with the path sent exactly as written (reqwest would normalise `..`).
async fn raw_get(addr: &str, path: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut conn = tokio::net::TcpStream::connect(addr).await.unwrap();
    let req = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n");
    conn.write_all(req.as_bytes()).await.unwrap();
    let mut resp = String::new();
    conn.read_to_string(&mut resp).await.unwrap();
    let status = resp.split_whitespace().nth(1).unwrap().parse().unwrap();
    (status, resp)
}

async fn error_code(resp: reqwest::Response) -> String {
    let body: serde_json::Value = resp.json().await.unwrap();
    body["errors"][0]["code"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn manifests_and_blobs_carry_exact_headers_and_come_from_the_store_after_a_miss() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;
    let base = srv.url();

    let ping = send(Method::GET, &format!("{base}/v2/"), &[]).await;
    assert_eq!(ping.status(), StatusCode::OK);
    assert_eq!(
        header(&ping, "docker-distribution-api-version"),
        "registry/2.0"
    );

    let url = format!("{base}/v2/library/multi/manifests/1");
    let head = send(Method::HEAD, &url, &[]).await;
    assert_eq!(head.status(), StatusCode::OK);
    assert_eq!(header(&head, "x-stablebuild-cache"), "miss");
    assert_eq!(header(&head, "docker-content-digest"), multi.digest);
    assert_eq!(header(&head, "content-type"), fixtures::OCI_INDEX);
    assert_eq!(header(&head, "etag"), format!("\"{}\"", multi.digest));
    let (upstream_bytes, _) =
        fixtures::fetch_manifest_bytes(&reg.url(), "library/multi", &multi.digest).await;
    assert_eq!(
        header(&head, "content-length"),
        upstream_bytes.len().to_string()
    );
    assert_eq!(head.bytes().await.unwrap().len(), 0, "HEAD has no body");

    // The manifest was answered once stored; the pin goes on to every platform's blobs.
    srv.wait_pinned(&sb, "multi:1").await;
    let get = send(Method::GET, &format!("{base}/v2/multi/manifests/1"), &[]).await;
    assert_eq!(header(&get, "x-stablebuild-cache"), "hit");
    assert_eq!(get.bytes().await.unwrap().to_vec(), upstream_bytes);

    // Every platform was pinned although only the index was asked for.
    let layer = multi.blobs.last().unwrap();
    let blob_url = format!("{base}/v2/library/multi/blobs/{layer}");
    let whole = send(Method::GET, &blob_url, &[]).await;
    assert_eq!(header(&whole, "x-stablebuild-cache"), "hit");
    assert_eq!(header(&whole, "docker-content-digest"), *layer);
    let whole = whole.bytes().await.unwrap();
    let part = send(Method::GET, &blob_url, &[("range", "bytes=10-19")]).await;
    assert_eq!(part.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        header(&part, "content-range"),
        format!("bytes 10-19/{}", whole.len())
    );
    assert_eq!(part.bytes().await.unwrap(), whole.slice(10..20));
    let bad = send(Method::GET, &blob_url, &[("range", "bytes=999999999-")]).await;
    assert_eq!(bad.status(), StatusCode::RANGE_NOT_SATISFIABLE);

    let tags = send(
        Method::GET,
        &format!("{base}/v2/library/multi/tags/list"),
        &[],
    )
    .await;
    let tags: serde_json::Value = tags.json().await.unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1"]));
    let gets = reg.count_requests("GET", "/manifests/1");
    assert_eq!(gets, 1, "the tag was resolved upstream once");
    assert!(
        srv.log().contains("GET /v2/multi/manifests/1 200"),
        "{}",
        srv.log()
    );
    assert!(srv.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_and_bad_input_get_spec_errors_and_the_server_stays_up() {
    let reg = Registry::start().await;
    fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;
    let base = srv.url();
    let cases: Vec<(Method, String, StatusCode, &str)> = vec![
        (
            Method::PUT,
            format!("{base}/v2/library/single/manifests/2"),
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
        ),
        (
            Method::DELETE,
            format!("{base}/v2/library/single/manifests/1"),
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
        ),
        (
            Method::POST,
            format!("{base}/v2/library/single/blobs/uploads/"),
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
        ),
        (
            Method::PATCH,
            format!("{base}/v2/library/single/blobs/uploads/x"),
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
        ),
        (
            Method::GET,
            format!("{base}/v2/library/Single/manifests/1"),
            StatusCode::BAD_REQUEST,
            "NAME_INVALID",
        ),
        (
            Method::GET,
            format!("{base}/v2/library/single/manifests/sha256:xyz"),
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
        ),
        (
            Method::GET,
            format!("{base}/v2/library/single/blobs/md5:abc"),
            StatusCode::BAD_REQUEST,
            "DIGEST_INVALID",
        ),
        (
            Method::GET,
            format!("{base}/v2/evil.example.com/x/manifests/1"),
            StatusCode::FORBIDDEN,
            "DENIED",
        ),
        (
            Method::GET,
            format!("{base}/v2/x/manifests/1?ns=evil.example.com"),
            StatusCode::FORBIDDEN,
            "DENIED",
        ),
        (
            Method::GET,
            format!("{base}/v2/library/nothere/manifests/1"),
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
        ),
        (
            // Not a valid tag, in a valid repository: no such manifest (as distribution).
            Method::GET,
            format!("{base}/v2/library/single/manifests/.INVALID_MANIFEST_NAME"),
            StatusCode::NOT_FOUND,
            "MANIFEST_UNKNOWN",
        ),
        (
            Method::HEAD,
            format!("{base}/v2/library/single/manifests/-x"),
            StatusCode::NOT_FOUND,
            "",
        ),
        (
            Method::GET,
            format!("{base}/v2/library/single/tags/list?n=ten"),
            StatusCode::BAD_REQUEST,
            "PAGINATION_NUMBER_INVALID",
        ),
    ];
    for (method, url, status, code) in cases {
        // reqwest normalises "..": send the raw path with a raw client where needed.
        let resp = send(method.clone(), &url, &[]).await;
        assert_eq!(resp.status(), status, "{method} {url}");
        if method != Method::HEAD {
            assert_eq!(error_code(resp).await, code, "{method} {url}");
        }
    }
    let unknown = format!("sha256:{}", "ab".repeat(32));
    let resp = send(
        Method::GET,
        &format!("{base}/v2/library/single/blobs/{unknown}"),
        &[],
    )
    .await;
    assert_eq!(resp.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "BLOB_UNKNOWN", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains(&unknown), "names the digest: {message}");
    assert!(
        !message.contains(":latest"),
        "names no made-up tag: {message}"
    );
    let (status, body) = raw_get(&srv.addr, "/v2/library/a/../b/manifests/1").await;
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("NAME_INVALID"), "{body}");
    let ok = send(
        Method::GET,
        &format!("{base}/v2/library/single/manifests/1"),
        &[],
    )
    .await;
    assert_eq!(
        ok.status(),
        StatusCode::OK,
        "the server is still up and serving"
    );
    assert_eq!(reg.count_requests("GET", "evil"), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_and_tags_are_paginated_with_link_headers() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    fixtures::push_dockerlist(&reg.url()).await;
    for tag in ["2", "3"] {
        fixtures::retag(&reg.url(), "library/single", "1", tag).await;
    }
    let sb = Sb::new(&reg.url());
    sb.run(&["pin", "single:1", "single:2", "single:3", "dockerlist:1"])
        .await
        .ok();
    sb.run(&["pin", &format!("single@{}", single.digest)])
        .await
        .ok();
    let srv = Server::start(&sb, &[]).await;
    let base = srv.url();
    let get = |path: String| {
        let url = format!("{base}{path}");
        async move { send(Method::GET, &url, &[]).await }
    };

    let all = get("/v2/_catalog".into()).await;
    assert_eq!(all.status(), StatusCode::OK);
    assert_eq!(header(&all, "link"), "");
    let all: serde_json::Value = all.json().await.unwrap();
    assert_eq!(
        all["repositories"],
        serde_json::json!(["library/dockerlist", "library/single"])
    );
    let first = get("/v2/_catalog?n=1".into()).await;
    let link = header(&first, "link");
    assert_eq!(
        link,
        "</v2/_catalog?last=library/dockerlist&n=1>; rel=\"next\""
    );
    let first: serde_json::Value = first.json().await.unwrap();
    assert_eq!(
        first["repositories"],
        serde_json::json!(["library/dockerlist"])
    );
    let next = link.trim_start_matches('<').split('>').next().unwrap();
    let second = get(next.to_string()).await;
    assert_eq!(header(&second, "link"), "", "the last page has no next");
    let second: serde_json::Value = second.json().await.unwrap();
    assert_eq!(
        second["repositories"],
        serde_json::json!(["library/single"])
    );

    // Tags by digest are not tags; pages of two.
    let tags = get("/v2/library/single/tags/list?n=2".into()).await;
    assert_eq!(
        header(&tags, "link"),
        "</v2/library/single/tags/list?last=2&n=2>; rel=\"next\""
    );
    let tags: serde_json::Value = tags.json().await.unwrap();
    assert_eq!(tags["tags"], serde_json::json!(["1", "2"]));
    let rest = get("/v2/library/single/tags/list?last=2&n=2".into()).await;
    let rest: serde_json::Value = rest.json().await.unwrap();
    assert_eq!(rest["tags"], serde_json::json!(["3"]));
}
