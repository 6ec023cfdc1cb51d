//! Self-test of the SeaweedFS harness in `tests/common/seaweed.rs`, and of the facts about a real
//! S3 store the product relies on: bytes come back exact, `If-None-Match: *` creates once (also
//! when creates race through two gateways), listings paginate, a stopped gateway refuses
//! connections and a restarted one still has the objects, gateways share one store.

mod common;

use std::net::TcpStream;
use std::time::Instant;

use common::seaweed::{ACCESS_KEY, BUCKET, SECRET_KEY, Seaweed};

/// `len` bytes with every byte value in them (no text decoding would keep them intact).
fn binary(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// Asserts a GET answered 200 with exactly `expected`, without printing megabytes when not.
fn assert_same((status, body): (u16, Vec<u8>), expected: &[u8], what: &str) {
    assert_eq!(
        status,
        200,
        "{what}: GET answered {status}: {}",
        String::from_utf8_lossy(&body[..body.len().min(500)])
    );
    assert_eq!(body.len(), expected.len(), "{what}: length");
    assert!(body == expected, "{what}: other bytes than were stored");
}

fn port_of(endpoint: &str) -> u16 {
    endpoint.rsplit(':').next().unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mini_starts_and_round_trips_bytes() {
    let started = Instant::now();
    let s3 = Seaweed::mini().await;
    println!(
        "weed mini ready (bucket created, signed list answered) in {:?}",
        started.elapsed()
    );
    assert_eq!(s3.bucket(), BUCKET);
    assert_eq!(s3.gateways(), 1);

    let env = s3.env(0);
    let var = |name: &str| {
        env.iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
            .unwrap_or_else(|| panic!("{name} missing from env"))
    };
    assert_eq!(var("AWS_ENDPOINT_URL"), s3.endpoint(0));
    assert_eq!(var("AWS_ACCESS_KEY_ID"), ACCESS_KEY);
    assert_eq!(var("AWS_SECRET_ACCESS_KEY"), SECRET_KEY);
    assert_eq!(var("AWS_REGION"), "us-east-1");
    assert_eq!(var("AWS_ALLOW_HTTP"), "true");
    assert_eq!(env.len(), 5);

    // A digest-like key: `:` must be encoded for the signature to match.
    let key = "roundtrip/blobs/sha256:0123abcd";
    let bytes = binary(300_000, 7);
    let first_put = Instant::now();
    assert_eq!(s3.put(key, &bytes, false).await, 200);
    println!("first PUT took {:?}", first_put.elapsed());
    assert_same(s3.get(key).await, &bytes, "round trip");

    // Empty objects and keys with spaces work too.
    assert_eq!(s3.put("roundtrip/empty file", b"", false).await, 200);
    assert_eq!(s3.get("roundtrip/empty file").await, (200, Vec::new()));

    // Without a signature the bucket is closed.
    let anonymous = reqwest::Client::builder().no_proxy().build().unwrap();
    let url = format!("{}/{BUCKET}/{key}", s3.endpoint(0));
    let status = anonymous.get(&url).send().await.unwrap().status().as_u16();
    assert_eq!(status, 403, "anonymous GET {url}");

    assert_eq!(s3.delete(key).await, 204);
    assert_eq!(s3.get(key).await.0, 404);
    assert_eq!(s3.get("roundtrip/never-written").await.0, 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mini_if_none_match_creates_once() {
    let s3 = Seaweed::mini().await;
    let key = "create-once/blob";
    assert_eq!(s3.put(key, b"first", true).await, 200);
    assert_eq!(s3.put(key, b"second, longer", true).await, 412);
    assert_eq!(s3.get(key).await, (200, b"first".to_vec()));
    // An unconditional PUT still overwrites: the condition is what protects the object.
    assert_eq!(s3.put(key, b"third", false).await, 200);
    assert_eq!(s3.get(key).await, (200, b"third".to_vec()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mini_list_follows_pagination() {
    let s3 = Seaweed::mini().await;
    let mut expected: Vec<String> = (0..5).map(|i| format!("list/a/key-{i}")).collect();
    // Keys the XML answer escapes, and a `:` the signature needs encoded.
    expected.push("list/a/sub/sha256:ff".to_string());
    expected.push("list/a/odd & <key> \"quoted\"".to_string());
    for key in &expected {
        assert_eq!(s3.put(key, key.as_bytes(), true).await, 200, "{key}");
    }
    assert_eq!(s3.put("list/b/outside", b"x", true).await, 200);
    assert_eq!(s3.put("list/a-sibling", b"x", true).await, 200);
    expected.sort();

    let pages = s3.list_pages("list/a/", Some(2)).await;
    let sizes: Vec<usize> = pages.iter().map(Vec::len).collect();
    assert_eq!(sizes, [2, 2, 2, 1], "pages of two keys each: {pages:?}");
    assert_eq!(pages.concat(), expected);

    assert_eq!(s3.list("list/a/").await, expected);
    assert_eq!(s3.list("list/").await.len(), expected.len() + 2);
    assert!(s3.list("nothing/").await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mini_stopped_gateway_refuses_and_restart_keeps_objects() {
    let mut s3 = Seaweed::mini().await;
    let key = "restart/blob";
    let bytes = binary(10_000, 3);
    assert_eq!(s3.put(key, &bytes, true).await, 200);

    s3.stop_gateway(0).await;
    let port = port_of(&s3.endpoint(0));
    let refused = TcpStream::connect(("127.0.0.1", port)).unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(
        s3.get(key).await.0,
        0,
        "no HTTP answer from a stopped gateway"
    );
    assert_eq!(s3.put("restart/other", b"x", false).await, 0);

    let restarted = Instant::now();
    s3.start_gateway(0).await;
    println!("weed mini restarted in {:?}", restarted.elapsed());
    assert_eq!(s3.endpoint(0), format!("http://127.0.0.1:{port}"));
    assert_same(s3.get(key).await, &bytes, "after restart");
    assert_eq!(s3.put(key, b"again", true).await, 412);

    s3.kill_all().await;
    assert!(TcpStream::connect(("127.0.0.1", port)).is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_gateways_share_one_store() {
    let started = Instant::now();
    let mut s3 = Seaweed::distributed(2).await;
    println!(
        "distributed SeaweedFS (master, 2 volume servers, filer, 2 gateways) ready in {:?}",
        started.elapsed()
    );
    assert_eq!(s3.gateways(), 2);
    assert_ne!(s3.endpoint(0), s3.endpoint(1));
    let (g0, g1) = (s3.s3(0), s3.s3(1));

    let key = "shared/blobs/sha256:beef";
    let bytes = binary(200_000, 11);
    assert_eq!(g0.put(key, &bytes, true).await, 200);
    assert_same(g1.get(key).await, &bytes, "through the other gateway");
    assert_eq!(g1.put(key, b"other", true).await, 412);
    assert_eq!(g1.list("shared/").await, [key]);

    // One gateway down: the other serves on; back up, it serves what was written meanwhile.
    s3.stop_gateway(1).await;
    assert!(TcpStream::connect(("127.0.0.1", port_of(&s3.endpoint(1)))).is_err());
    assert_eq!(g0.get(key).await.0, 200);
    assert_eq!(g0.put("shared/while-down", b"meanwhile", true).await, 200);
    s3.start_gateway(1).await;
    assert_eq!(
        g1.get("shared/while-down").await,
        (200, b"meanwhile".to_vec())
    );

    assert_eq!(g1.delete(key).await, 204);
    assert_eq!(g0.get(key).await.0, 404);
    assert!(s3.log("master").contains("Start Seaweed Master"));
}

/// Racing creates through one gateway all answer within milliseconds; across two gateways the
/// losers were seen to take up to ~3 s (in steps of ~1 s) to get their 412.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distributed_racing_creates_have_one_winner() {
    let s3 = Seaweed::distributed(2).await;
    let key = "race/blob";
    let body = |n: u8| vec![n; 1000 + usize::from(n)];
    let tasks: Vec<_> = (0..8u8)
        .map(|n| {
            let client = s3.s3(usize::from(n % 2));
            tokio::spawn(async move {
                let started = Instant::now();
                let status = client.put(key, &body(n), true).await;
                (n, status, started.elapsed())
            })
        })
        .collect();
    let mut results = Vec::new();
    for task in tasks {
        results.push(task.await.unwrap());
    }
    println!("8 racing creates through 2 gateways (n, status, time): {results:?}");
    let winners: Vec<u8> = results
        .iter()
        .filter(|(_, status, _)| *status == 200)
        .map(|(n, _, _)| *n)
        .collect();
    let losers = results.iter().filter(|(_, s, _)| *s == 412).count();
    assert_eq!(winners.len(), 1, "exactly one create wins: {results:?}");
    assert_eq!(losers, 7, "every other create gets 412: {results:?}");

    let expected = body(winners[0]);
    assert_same(
        s3.s3(0).get(key).await,
        &expected,
        "winner through gateway 0",
    );
    assert_same(
        s3.s3(1).get(key).await,
        &expected,
        "winner through gateway 1",
    );
}
