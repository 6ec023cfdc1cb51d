//! `serve --tls-cert --tls-key`: real clients (curl, skopeo, podman) trusting a test CA made
//! by the test with openssl, given only the root so that the server must send the whole
//! chain; HTTP/1.1 and HTTP/2 by ALPN; SIGHUP swaps the certificate without dropping a
//! download in flight; local commands reach the TLS server through `server.json`; bad files
//! are refused at start; and `--upstream-ca` / `SSL_CERT_FILE` for an upstream behind a
//! private CA.

mod common;

use std::path::Path;
use std::time::Duration;

use common::cli::Sb;
use common::fixtures;
use common::registry::Registry;
use common::server::Server;
use common::tls::TestCa;
use common::tools::{podman, policy, run_ok, skopeo};
use tokio::process::Command;

/// `curl` trusting only `root`; returns (exit success, stdout, stderr).
async fn curl(root: &Path, args: &[&str]) -> (bool, String, String) {
    let out = Command::new("curl")
        .args(["-sS", "--cacert"])
        .arg(root)
        .args(args)
        .output()
        .await
        .expect("run curl");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn curl_gets_http1_and_http2_over_tls_with_the_whole_chain() {
    let reg = Registry::start().await;
    let sb = Sb::new(&reg.url());
    let ca = TestCa::new();
    let srv = Server::start_tls(&sb, &ca, &[]).await;
    let v2 = format!("{}/v2/", srv.url());
    for (flag, version) in [("--http1.1", "1.1"), ("--http2", "2")] {
        let (ok, out, err) = curl(
            &ca.root(),
            &[
                flag,
                "-o",
                "/dev/null",
                "-w",
                "%{http_code} %{http_version}",
                &v2,
            ],
        )
        .await;
        assert!(ok, "{flag}: {err}");
        assert_eq!(out, format!("200 {version}"), "{flag}");
    }
    // Without the CA the handshake is refused: the certificate really is checked.
    let out = Command::new("curl")
        .args(["-sS", "-o", "/dev/null", &v2])
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    // Signing in to the dashboard over HTTP/2 (no Host header: the host is the :authority)
    // passes the same-origin check, and the session cookie is marked Secure.
    let form = format!("token={}", admin_token(&sb));
    let signin = format!("{}/sign-in", srv.url());
    let origin = format!("Origin: {}", srv.url());
    let args = [
        "--http2",
        "-D",
        "-",
        "-o",
        "/dev/null",
        "-H",
        &origin,
        "-d",
        &form,
        &signin,
    ];
    let (ok, headers, err) = curl(&ca.root(), &args).await;
    assert!(ok, "{err}");
    assert!(headers.starts_with("HTTP/2 303"), "{headers}");
    let cookie = headers
        .lines()
        .find(|l| l.to_ascii_lowercase().starts_with("set-cookie:"))
        .unwrap_or_else(|| panic!("no Set-Cookie in\n{headers}"));
    assert!(cookie.contains("; Secure"), "{cookie}");
    assert!(cookie.contains("HttpOnly"), "{cookie}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_and_podman_pull_over_tls_trusting_only_the_root() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let sb = Sb::new(&reg.url());
    let ca = TestCa::new();
    let srv = Server::start_tls(&sb, &ca, &[]).await;
    let certs = ca.cert_dir();
    let p = policy(&sb.path(""));
    let src = format!("docker://{}/library/multi:1", srv.addr);

    // Without the CA, skopeo refuses the server's certificate.
    let refused = Command::new("skopeo")
        .args(["--policy", &p, "inspect", "--raw", &src])
        .output()
        .await
        .unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(err.contains("certificate"), "{err}");

    let raw = skopeo(&[
        "--policy",
        &p,
        "inspect",
        "--raw",
        "--cert-dir",
        certs.to_str().unwrap(),
        &src,
    ])
    .await;
    assert_eq!(fixtures::sha256_digest(raw.as_bytes()), multi.digest);
    let dest = format!("oci:{}:1", sb.path("oci").display());
    skopeo(&[
        "--policy",
        &p,
        "copy",
        "--all",
        "--preserve-digests",
        "--src-cert-dir",
        certs.to_str().unwrap(),
        &src,
        &dest,
    ])
    .await;
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.path("oci/index.json")).unwrap()).unwrap();
    assert_eq!(index["manifests"][0]["digest"], multi.digest.as_str());

    let image = format!("{}/library/multi:1", srv.addr);
    run_ok(podman(&sb.path("podman")).args([
        "pull",
        "--signature-policy",
        &p,
        "--cert-dir",
        certs.to_str().unwrap(),
        &image,
    ]))
    .await;
    let digest = run_ok(podman(&sb.path("podman")).args([
        "image",
        "inspect",
        "--format",
        "{{.Digest}}",
        &image,
    ]))
    .await;
    assert_eq!(digest.trim(), multi.digest);
    assert!(
        srv.log().contains("GET /v2/library/multi/manifests/1 200"),
        "{}",
        srv.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_swaps_the_certificate_without_dropping_a_download_in_flight() {
    let reg = Registry::start().await;
    let big = fixtures::push_big(&reg.url(), 48 << 20).await;
    let sb = Sb::new(&reg.url());
    sb.run(&["pin", "big:1"]).await.ok();
    let (first, second) = (TestCa::new(), TestCa::new());
    // The server reads its files from paths of its own, which the test overwrites.
    let (chain, key) = (sb.path("chain.pem"), sb.path("key.pem"));
    std::fs::copy(first.chain(), &chain).unwrap();
    std::fs::copy(first.key(), &key).unwrap();
    let tls = [
        "--tls-cert",
        chain.to_str().unwrap(),
        "--tls-key",
        key.to_str().unwrap(),
    ];
    let srv = Server::start(&sb, &tls).await;
    let layer = big.blobs.last().unwrap().clone();
    let blob = format!("{}/v2/library/big/blobs/{layer}", srv.url());

    // A download at 6 MB/s takes ~8 s: the reload happens in the middle of it.
    let root = first.root();
    let slow = tokio::spawn({
        let (root, blob) = (root.clone(), blob.clone());
        let out = sb.path("slow.blob");
        async move {
            let args = ["--limit-rate", "6M", "-o", out.to_str().unwrap(), &blob];
            let done = curl(&root, &args).await;
            (done, out)
        }
    });
    tokio::time::sleep(Duration::from_secs(2)).await;
    std::fs::copy(second.chain(), &chain).unwrap();
    std::fs::copy(second.key(), &key).unwrap();
    signal(srv.pid(), "HUP");
    wait_log(&srv, "SIGHUP: reloaded").await;

    let v2 = format!("{}/v2/", srv.url());
    let status = ["-o", "/dev/null", "-w", "%{http_code}", &v2];
    let (ok, out, err) = curl(&second.root(), &status).await;
    assert!(ok && out == "200", "new certificate: {out} {err}");
    let (ok, _, _) = curl(&first.root(), &status).await;
    assert!(!ok, "new connections must get the new certificate");

    let ((ok, _, err), out) = slow.await.unwrap();
    assert!(ok, "the download in flight was cut: {err}");
    let bytes = std::fs::read(out).unwrap();
    assert_eq!(fixtures::sha256_digest(&bytes), layer);

    // A reload that fails keeps the certificate in use, and the server.
    std::fs::write(&key, "not a key").unwrap();
    signal(srv.pid(), "HUP");
    wait_log(&srv, "SIGHUP: keeping the previous certificate").await;
    let (ok, out, err) = curl(&second.root(), &status).await;
    assert!(ok && out == "200", "after a failed reload: {out} {err}");
    assert!(srv.log().contains(key.to_str().unwrap()), "{}", srv.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn local_commands_reach_a_tls_server_through_server_json() {
    let reg = Registry::start().await;
    fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let ca = TestCa::new();
    let srv = Server::start_tls(&sb, &ca, &[]).await;
    // The store is held by the server: pin and list go through it, over TLS.
    sb.run(&["pin", "single:1"]).await.ok();
    let listed = sb.run(&["--json", "list"]).await.ok().json();
    assert_eq!(listed[0]["image"], "docker.io/library/single:1");
    assert!(
        srv.log().contains("POST /_stablebuild/v1/pin 200"),
        "{}",
        srv.log()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_tls_files_are_refused_at_start_naming_the_file() {
    let sb = Sb::new("http://127.0.0.1:9");
    let (ca, other) = (TestCa::new(), TestCa::new());
    let (chain, key, other_key) = (ca.chain(), ca.key(), other.key());
    let missing = sb.path("missing.pem");
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (
            vec![
                "--tls-cert",
                missing.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
            1,
            format!("--tls-cert {}: No such file", missing.display()),
        ),
        (
            vec![
                "--tls-cert",
                key.to_str().unwrap(),
                "--tls-key",
                key.to_str().unwrap(),
            ],
            1,
            "no CERTIFICATE block".to_string(),
        ),
        (
            vec![
                "--tls-cert",
                chain.to_str().unwrap(),
                "--tls-key",
                other_key.to_str().unwrap(),
            ],
            1,
            "do not go together".to_string(),
        ),
        (
            vec!["--tls-cert", chain.to_str().unwrap()],
            2,
            "--tls-key".to_string(),
        ),
    ];
    for (flags, code, message) in cases {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend(flags.iter().copied());
        let out = sb.run(&args).await;
        assert_eq!(out.code, code, "{flags:?}: {}", out.stderr);
        assert!(out.stderr.contains(&message), "{flags:?}: {}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
        // The files are read before the store is opened: nothing was made.
        assert!(!sb.store().exists(), "{flags:?} created the store");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_upstream_behind_a_private_ca_is_trusted_with_upstream_ca_or_ssl_cert_file() {
    // The upstream speaks TLS with a certificate of the test's own CA: a stablebuild server
    // over TLS in front of the real registry.
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    let front = Sb::new(&reg.url());
    let ca = TestCa::new();
    let upstream = Server::start_tls(&front, &ca, &[]).await;

    // docker.io is not a loopback name, so its certificate is verified.
    let sb = Sb::new(&upstream.url());
    let refused = sb.run(&["pin", "single:1"]).await;
    assert_eq!(refused.code, 1, "{}", refused.stderr);
    assert!(refused.stderr.contains("certificate"), "{}", refused.stderr);

    let root = ca.root();
    sb.run(&["--upstream-ca", root.to_str().unwrap(), "pin", "single:1"])
        .await
        .ok();
    let listed = sb.run(&["--json", "list"]).await.ok().json();
    assert_eq!(listed[0]["digest"], single.digest.as_str());

    let other = Sb::new(&upstream.url());
    let mut pin = other.command(&["pin", "single:1"]);
    pin.env("SSL_CERT_FILE", &root);
    let out = pin.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let nope = sb.path("nope.pem");
    let bad = sb
        .run(&["--upstream-ca", nope.to_str().unwrap(), "pin", "single:1"])
        .await;
    assert_eq!(bad.code, 2, "{}", bad.stderr);
    assert!(bad.stderr.contains("--upstream-ca"), "{}", bad.stderr);
}

/// The admin token the server wrote to its store's `server.json`.
fn admin_token(sb: &Sb) -> String {
    let info: serde_json::Value =
        serde_json::from_slice(&std::fs::read(sb.store().join("server.json")).unwrap()).unwrap();
    info["token"].as_str().unwrap().to_string()
}

fn signal(pid: u32, name: &str) {
    let status = std::process::Command::new("kill")
        .arg(format!("-{name}"))
        .arg(pid.to_string())
        .status()
        .unwrap();
    assert!(status.success());
}

async fn wait_log(srv: &Server, text: &str) {
    for _ in 0..100 {
        if srv.log().contains(text) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{text:?} not logged:\n{}", srv.log());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sighup_without_tls_is_logged_and_the_server_keeps_serving() {
    let reg = Registry::start().await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;
    signal(srv.pid(), "HUP");
    wait_log(&srv, "SIGHUP: nothing to reload").await;
    let resp = reqwest::get(format!("{}/v2/", srv.url())).await.unwrap();
    assert_eq!(resp.status(), 200);
    assert!(srv.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_http2_sign_in_on_the_plain_listener_passes_the_same_origin_check() {
    // h2c (prior knowledge) has no Host header either: the host comes from :authority.
    let reg = Registry::start().await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;
    let form = format!("token={}", admin_token(&sb));
    let origin = format!("Origin: {}", srv.url());
    let signin = format!("{}/sign-in", srv.url());
    let out = Command::new("curl")
        .args([
            "-sS",
            "--http2-prior-knowledge",
            "-D",
            "-",
            "-o",
            "/dev/null",
        ])
        .args(["-H", &origin, "-d", &form, &signin])
        .output()
        .await
        .unwrap();
    let headers = String::from_utf8_lossy(&out.stdout);
    assert!(headers.starts_with("HTTP/2 303"), "{headers}");
}
