//! Upstream credentials: `--upstream-auth REGISTRY=FILE` and Docker's config.json (`auths`,
//! `credHelpers`, `credsStore`), sent as Basic to a registry that asks for Basic (a real
//! distribution registry with htpasswd auth) and to the token realm of one that runs the
//! token flow (the scripted upstream, with an account that alone may pull `acme/private`).
//! A repository the credentials reach but an anonymous user does not is refused, by `pin`
//! and by `serve`'s pull-through, unless `--allow-private` names it; the secret never
//! appears in output, logs, `/metrics` or the dashboard.

mod common;

use std::path::{Path, PathBuf};

use base64::Engine as _;
use common::cli::{Run, Sb};
use common::faulty::{self, Faulty, PRIVATE_REPOSITORY};
use common::fixtures;
use common::registry::Registry;
use common::server::Server;
use serde_json::json;

const USER: &str = "builder";
const SECRET: &str = "dckr_pat_s3cret-0123456789";

/// `USER:secret` in a file, as `--upstream-auth docker.io=FILE` reads it.
fn auth_file(sb: &Sb, secret: &str) -> PathBuf {
    let path = sb.path("hub-credentials");
    std::fs::write(&path, format!("{USER}:{secret}\n")).unwrap();
    path
}

fn auth_flag(path: &Path) -> String {
    format!("docker.io={}", path.display())
}

fn base64(text: &str) -> String {
    base64::engine::general_purpose::STANDARD.encode(text)
}

/// Neither the secret nor its Basic encoding is anywhere in `text`.
fn assert_no_secret(text: &str, what: &str) {
    assert!(!text.contains(SECRET), "{what} shows the secret:\n{text}");
    let encoded = base64(&format!("{USER}:{SECRET}"));
    assert!(
        !text.contains(&encoded),
        "{what} shows the Basic header:\n{text}"
    );
}

fn assert_refused_as_private(run: &Run, repo: &str) {
    assert_eq!(
        run.code, 1,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stderr.contains("is not public"), "{}", run.stderr);
    let hint = format!("--allow-private docker.io/{repo}");
    assert!(run.stderr.contains(&hint), "{}", run.stderr);
    assert_no_secret(&run.stderr, "pin's error");
}

async fn pinned_count(sb: &Sb) -> usize {
    let list = sb.run(&["--json", "list"]).await.ok().json();
    list.as_array().expect("list --json is an array").len()
}

/// A real registry holding `library/single:1` that then wants Basic `USER`:`SECRET`.
async fn basic_registry() -> Registry {
    let mut reg = Registry::start().await;
    fixtures::push_single(&reg.url()).await;
    reg.protect(USER, SECRET).await;
    reg
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_registry_that_wants_basic_without_credentials_names_the_flag() {
    let reg = basic_registry().await;
    let sb = Sb::new(&reg.url());
    let run = sb.run(&["pin", "single:1"]).await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("--upstream-auth docker.io=FILE"),
        "{}",
        run.stderr
    );
    assert_eq!(pinned_count(&sb).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_credentials_reach_a_private_registry_only_with_allow_private() {
    let reg = basic_registry().await;
    let sb = Sb::new(&reg.url());
    let flag = auth_flag(&auth_file(&sb, SECRET));

    let refused = sb.run(&["--upstream-auth", &flag, "pin", "single:1"]).await;
    assert_refused_as_private(&refused, "library/single");
    assert_eq!(pinned_count(&sb).await, 0);
    assert_eq!(reg.count_requests("GET", "/blobs/"), 0, "no blob fetched");

    let args = [
        "--upstream-auth",
        &flag,
        "--allow-private",
        "docker.io/library/*",
    ];
    let pinned = sb
        .run(&[&args[..], &["--json", "pin", "single:1"]].concat())
        .await;
    let out = pinned.ok().json();
    assert_eq!(out[0]["reference"], "docker.io/library/single:1");
    assert_eq!(pinned_count(&sb).await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn docker_config_auths_go_to_the_token_realm_and_a_public_image_pins() {
    let upstream = Faulty::start_with_account(USER, SECRET).await;
    let sb = Sb::new(&upstream.url());
    let auth = base64(&format!("{USER}:{SECRET}"));
    sb.docker_config(&json!({ "auths": { "https://index.docker.io/v1/": { "auth": auth } } }));

    let out = sb.run(&["--json", "pin", "library/faulty:1"]).await.ok();
    assert_eq!(out.json()[0]["digest"], upstream.index_digest().as_str());
    assert!(
        upstream.credentialed_token_requests() >= 1,
        "no token fetched with the account"
    );
    assert_eq!(upstream.refused_token_requests(), 0);
    // The public-only check: one anonymous token, for the anonymous HEAD of the tag.
    let anonymous = upstream.token_requests() - upstream.credentialed_token_requests();
    assert_eq!(anonymous, 1, "anonymous token requests");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_private_repository_is_refused_until_allow_private_names_it() {
    let upstream = Faulty::start_with_account(USER, SECRET).await;
    let sb = Sb::new(&upstream.url());
    let flag = auth_flag(&auth_file(&sb, SECRET));
    let image = format!("{PRIVATE_REPOSITORY}:{}", faulty::TAG);

    let refused = sb.run(&["--upstream-auth", &flag, "pin", &image]).await;
    assert_refused_as_private(&refused, PRIVATE_REPOSITORY);
    assert_eq!(pinned_count(&sb).await, 0);

    let anonymous = sb.run(&["pin", &image]).await;
    assert_eq!(anonymous.code, 1, "{}", anonymous.stderr);
    assert!(
        anonymous.stderr.contains("--upstream-auth docker.io=FILE"),
        "{}",
        anonymous.stderr
    );

    let allow = "docker.io/acme/*";
    let args = [
        "--upstream-auth",
        &flag,
        "--allow-private",
        allow,
        "--json",
        "pin",
        &image,
    ];
    let pinned = sb.run(&args).await.ok().json();
    assert_eq!(pinned[0]["digest"], upstream.index_digest().as_str());
}

/// A `docker-credential-NAME` on PATH that logs the server URL it was asked for and answers
/// with `secret` (or "credentials not found" when `secret` is empty).
fn credential_helper(sb: &Sb, name: &str, secret: &str) -> PathBuf {
    let bin = sb.path("bin");
    std::fs::create_dir_all(&bin).unwrap();
    let asked = sb.path(&format!("{name}.asked"));
    let answer = if secret.is_empty() {
        "echo 'credentials not found in native keychain'; exit 1".to_string()
    } else {
        format!(r#"printf '{{"ServerURL":"%s","Username":"{USER}","Secret":"{secret}"}}' "$url""#)
    };
    let script = format!(
        "#!/bin/sh\n[ \"$1\" = get ] || exit 3\nread -r url\necho \"$url\" >> {}\n{answer}\n",
        asked.display()
    );
    let path = bin.join(format!("docker-credential-{name}"));
    std::fs::write(&path, script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    asked
}

/// `pin library/faulty:1` with the test's credential helpers first on PATH; must succeed.
async fn pin_with_helpers(sb: &Sb) {
    let mut cmd = sb.command(&["pin", "library/faulty:1"]);
    let path = std::env::var("PATH").unwrap_or_default();
    cmd.env("PATH", format!("{}:{path}", sb.path("bin").display()));
    let run: Run = cmd.output().await.expect("run stablebuild").into();
    run.ok();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cred_helpers_and_creds_store_are_asked_for_docker_hub() {
    let upstream = Faulty::start_with_account(USER, SECRET).await;
    let sb = Sb::new(&upstream.url());
    let asked = credential_helper(&sb, "farm", SECRET);
    credential_helper(&sb, "desktop", "");
    sb.docker_config(&json!({ "credsStore": "desktop", "credHelpers": { "docker.io": "farm" } }));

    pin_with_helpers(&sb).await;
    let asked = std::fs::read_to_string(asked).expect("the credHelpers entry was run");
    assert_eq!(asked.trim(), "https://index.docker.io/v1/");
    assert!(upstream.credentialed_token_requests() >= 1);
    assert!(
        !sb.path("desktop.asked").exists(),
        "credHelpers comes before credsStore"
    );

    // credsStore alone, with nothing stored for the registry: anonymous, and still pinned.
    let other = Faulty::start_with_account(USER, SECRET).await;
    let sb = Sb::new(&other.url());
    let asked = credential_helper(&sb, "desktop", "");
    sb.docker_config(&json!({ "credsStore": "desktop" }));
    pin_with_helpers(&sb).await;
    assert!(
        std::fs::read_to_string(asked)
            .unwrap()
            .contains("index.docker.io")
    );
    assert_eq!(other.credentialed_token_requests(), 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_password_names_its_source_but_not_the_secret() {
    let upstream = Faulty::start_with_account(USER, "another-password").await;
    let sb = Sb::new(&upstream.url());
    let file = auth_file(&sb, SECRET);
    let run = sb
        .run(&[
            "--upstream-auth",
            &auth_flag(&file),
            "pin",
            "library/faulty:1",
        ])
        .await;
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains("refused the credentials"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains(&file.display().to_string()),
        "{}",
        run.stderr
    );
    assert_no_secret(&run.stderr, "pin's error");
    assert_eq!(upstream.refused_token_requests(), 1);
    assert_eq!(pinned_count(&sb).await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_private_pull_through_with_403_and_never_shows_the_secret() {
    let upstream = Faulty::start_with_account(USER, SECRET).await;
    let sb = Sb::new(&upstream.url());
    let flag = auth_flag(&auth_file(&sb, SECRET));
    let args = [
        "-vv",
        "--upstream-auth",
        &flag,
        "--admin-token",
        "t0ken-for-the-dashboard",
    ];
    let srv = Server::start(&sb, &args).await;
    let http = reqwest::Client::new();

    let private = format!(
        "{}/v2/{PRIVATE_REPOSITORY}/manifests/{}",
        srv.url(),
        faulty::TAG
    );
    let resp = http.get(&private).send().await.unwrap();
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["errors"][0]["code"], "DENIED", "{body}");
    let message = body["errors"][0]["message"].as_str().unwrap();
    assert!(message.contains("--allow-private"), "{message}");
    assert_no_secret(&body.to_string(), "the 403");

    let public = format!("{}/v2/library/faulty/manifests/{}", srv.url(), faulty::TAG);
    assert_eq!(http.get(&public).send().await.unwrap().status(), 200);
    assert!(upstream.credentialed_token_requests() >= 1);

    for page in ["/metrics", "/", "/store"] {
        let text = http
            .get(format!("{}{page}", srv.url()))
            .send()
            .await
            .unwrap();
        assert_no_secret(&text.text().await.unwrap(), page);
    }
    let config = sb.run(&["--upstream-auth", &flag, "config"]).await.ok();
    assert!(config.stdout.contains("upstream-auth"), "{}", config.stdout);
    assert_no_secret(&config.stdout, "stablebuild config");
    let log = srv.log();
    srv.stop().await;
    assert_no_secret(&log, "serve's log");
    assert!(log.contains("is public"), "the check is logged:\n{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credential_settings_are_usage_errors_that_name_what_to_fix() {
    let upstream = Faulty::start().await;
    let sb = Sb::new(&upstream.url());
    let missing = sb.path("no-such-file");
    let cases: [(Vec<String>, &str); 4] = [
        (
            vec!["--upstream-auth".into(), "docker.io".into()],
            "expected REGISTRY=FILE",
        ),
        (
            vec!["--upstream-auth".into(), auth_flag(&missing)],
            "no-such-file",
        ),
        (
            vec!["--allow-private".into(), "acme".into()],
            "expected REGISTRY/REPO-GLOB",
        ),
        (vec![], "config.json"),
    ];
    for (flags, expected) in cases {
        if flags.is_empty() {
            std::fs::create_dir_all(sb.path("docker")).unwrap();
            std::fs::write(sb.path("docker/config.json"), "{ not json").unwrap();
        }
        let mut args: Vec<&str> = flags.iter().map(String::as_str).collect();
        args.extend(["pin", "library/faulty:1"]);
        let run = sb.run(&args).await;
        assert_eq!(run.code, 2, "{args:?}: {}", run.stderr);
        assert!(run.stderr.contains(expected), "{args:?}: {}", run.stderr);
    }
    assert_eq!(upstream.requests(&upstream.manifest_path(faulty::TAG)), 0);
}
