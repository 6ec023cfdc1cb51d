//! `serve --pull-auth htpasswd:FILE` and `--pull-token FILE`: without valid credentials
//! `/v2/` answers 401 with the Basic challenge; skopeo (`--creds`, `--src-creds`, a token as
//! the password) and podman (`--creds`) pull with them; the admin API still needs
//! the admin token; bad files are refused at start. The htpasswd file is made by Apache's
//! `htpasswd -B` (bcrypt), as an operator would. dockerd's `docker login` is in
//! tests/serve_daemons.rs.

mod common;

use std::path::PathBuf;

use common::cli::Sb;
use common::fixtures;
use common::registry::Registry;
use common::server::Server;
use common::tools::{htpasswd as htpasswd_file, podman, policy, run_ok, skopeo};
use tokio::process::Command;

const TOKEN: &str = "farm-0123456789abcdef0123456789";

/// `htpasswd -B -c` with user `ci` and password `s3cret`; and a token file.
fn credentials(sb: &Sb) -> (PathBuf, PathBuf) {
    let htpasswd = sb.path("htpasswd");
    htpasswd_file(&htpasswd, "ci", "s3cret");
    let tokens = sb.path("tokens");
    std::fs::write(&tokens, format!("# label token\nbuild-farm {TOKEN}\n")).unwrap();
    (htpasswd, tokens)
}

async fn serve_with_auth(sb: &Sb) -> Server {
    let (htpasswd, tokens) = credentials(sb);
    let auth = format!("htpasswd:{}", htpasswd.display());
    let args = [
        "--pull-auth",
        &auth,
        "--pull-token",
        tokens.to_str().unwrap(),
    ];
    Server::start(sb, &args).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pulls_need_credentials_and_get_the_basic_challenge() {
    let reg = Registry::start().await;
    fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let srv = serve_with_auth(&sb).await;
    let http = reqwest::Client::new();
    let manifest = format!("{}/v2/library/single/manifests/1", srv.url());
    for url in [format!("{}/v2/", srv.url()), manifest.clone()] {
        let resp = http.get(&url).send().await.unwrap();
        assert_eq!(resp.status(), 401, "{url}");
        let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
        assert_eq!(challenge, r#"Basic realm="stablebuild""#);
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["errors"][0]["code"], "UNAUTHORIZED");
    }
    let status = |req: reqwest::RequestBuilder| async move { req.send().await.unwrap().status() };
    assert_eq!(
        status(http.get(&manifest).basic_auth("ci", Some("wrong"))).await,
        401
    );
    assert_eq!(
        status(http.get(&manifest).basic_auth("root", Some("s3cret"))).await,
        401
    );
    assert_eq!(
        status(http.get(&manifest).bearer_auth("farm-not-the-token")).await,
        401
    );
    // Nothing was pinned for the refused requests.
    assert_eq!(reg.count_requests("GET", "/manifests/1"), 0);
    assert_eq!(
        status(http.get(&manifest).basic_auth("ci", Some("s3cret"))).await,
        200
    );
    assert_eq!(status(http.get(&manifest).bearer_auth(TOKEN)).await, 200);
    assert_eq!(
        status(http.get(&manifest).basic_auth("any", Some(TOKEN))).await,
        200
    );

    // The admin API still wants the admin token: pull credentials are not enough.
    let list = format!("{}/_stablebuild/v1/list", srv.url());
    let resp = http
        .post(&list)
        .bearer_auth(TOKEN)
        .json(&serde_json::json!({}))
        .send();
    assert_eq!(resp.await.unwrap().status(), 401);
    // Credentials never reach the log.
    let log = srv.log();
    assert!(!log.contains("s3cret") && !log.contains(TOKEN), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn skopeo_and_podman_pull_with_credentials_and_are_refused_without() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let sb = Sb::new(&reg.url());
    let srv = serve_with_auth(&sb).await;
    let p = policy(&sb.path(""));
    let src = format!("docker://{}/library/multi:1", srv.addr);
    let inspect = |extra: &[&str]| {
        let mut cmd = Command::new("skopeo");
        cmd.args(["--policy", &p, "inspect", "--raw", "--tls-verify=false"])
            .args(extra)
            .arg(&src);
        cmd
    };
    let refused = inspect(&[]).output().await.unwrap();
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr).to_lowercase();
    assert!(
        err.contains("unauthorized") || err.contains("authentication"),
        "{err}"
    );

    let raw = run_ok(&mut inspect(&["--creds", "ci:s3cret"])).await;
    assert_eq!(fixtures::sha256_digest(raw.as_bytes()), multi.digest);
    // A token is a password for any user (the challenge is Basic, so clients send Basic).
    let token_creds = format!("build-farm:{TOKEN}");
    let raw = run_ok(&mut inspect(&["--creds", &token_creds])).await;
    assert_eq!(fixtures::sha256_digest(raw.as_bytes()), multi.digest);
    let dest = format!("oci:{}:1", sb.path("oci").display());
    skopeo(&[
        "--policy",
        &p,
        "copy",
        "--src-tls-verify=false",
        "--src-creds",
        "ci:s3cret",
        &src,
        &dest,
    ])
    .await;

    let image = format!("{}/library/multi:1", srv.addr);
    let pull = |creds: Option<&str>| {
        let mut cmd = podman(&sb.path("podman"));
        cmd.args(["pull", "--signature-policy", &p, "--tls-verify=false"]);
        if let Some(c) = creds {
            cmd.args(["--creds", c]);
        }
        cmd.arg(&image);
        cmd
    };
    assert!(!pull(None).output().await.unwrap().status.success());
    run_ok(&mut pull(Some("ci:s3cret"))).await;
    let digest = run_ok(podman(&sb.path("podman")).args([
        "image",
        "inspect",
        "--format",
        "{{.Digest}}",
        &image,
    ]))
    .await;
    assert_eq!(digest.trim(), multi.digest);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credential_files_are_refused_at_start_naming_the_line() {
    let sb = Sb::new("http://127.0.0.1:9");
    let md5 = sb.path("md5");
    std::fs::write(&md5, "ci:$apr1$abcdefgh$0123456789abcdefghijkl\n").unwrap();
    let short = sb.path("short");
    std::fs::write(&short, "\nlabel tooshort\n").unwrap();
    let missing = sb.path("missing");
    let md5_auth = format!("htpasswd:{}", md5.display());
    let missing_auth = format!("htpasswd:{}", missing.display());
    let cases: Vec<(Vec<&str>, i32, String)> = vec![
        (
            vec!["--pull-auth", &md5_auth],
            1,
            format!("{} line 1", md5.display()),
        ),
        (
            vec!["--pull-auth", &missing_auth],
            1,
            missing.display().to_string(),
        ),
        (
            vec!["--pull-token", short.to_str().unwrap()],
            1,
            format!("{} line 2", short.display()),
        ),
        (
            vec!["--pull-auth", "basic:/x"],
            2,
            "expected htpasswd:FILE".into(),
        ),
    ];
    for (flags, code, message) in cases {
        let mut args = vec!["serve", "--listen", "127.0.0.1:0"];
        args.extend(flags.iter().copied());
        let out = sb.run(&args).await;
        assert_eq!(out.code, code, "{flags:?}: {}", out.stderr);
        assert!(out.stderr.contains(&message), "{flags:?}: {}", out.stderr);
        // The files are read before the store is opened: nothing was made.
        assert!(!sb.store().exists(), "{flags:?} created the store");
    }
}
