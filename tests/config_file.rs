//! The config file (`--config FILE` / `STABLEBUILD_CONFIG`): `stablebuild config` says where
//! each setting came from (flags > environment > file > defaults, secrets as `<set>`), a
//! mistake in the file is a usage error naming the key and line, and a real `serve` runs on
//! nothing but a file.

mod common;

use std::path::Path;

use common::cli::{Run, bin};
use common::server::Server;

/// The binary with `args` and `env`, and no STABLEBUILD_* variable of the caller's.
fn command(args: &[&str], env: &[(&str, &str)]) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("STABLEBUILD_") {
            cmd.env_remove(name);
        }
    }
    cmd.args(args).envs(env.iter().copied()).kill_on_drop(true);
    cmd
}

async fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let output = command(args, env).output().await.expect("run stablebuild");
    output.into()
}

fn write(dir: &Path, text: &str) -> String {
    let path = dir.join("stablebuild.toml");
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_string()
}

const FILE: &str = r#"# a mirror
store = "/srv/from-file"
cache-size = "10G"
verbose = 2

listen = "0.0.0.0:5000"
allow = ["docker.io", "ghcr.io"]
admin-token = "file-secret"
dashboard = "private"
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_shows_each_setting_and_where_it_came_from() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), FILE);
    let env = [
        ("STABLEBUILD_STORE", "/srv/from-env"),
        ("STABLEBUILD_CACHE_SIZE", "20G"),
        ("STABLEBUILD_TOKEN", "env-secret"),
    ];
    let args = ["--config", &file, "config", "--json", "--cache-size", "30G"];
    let settings = run(&args, &env).await.ok().json();
    let at = |line| format!("file {file}:{line}");
    let expect = [
        ("config", serde_json::json!(file), "flag".to_string()),
        (
            "store",
            "/srv/from-env".into(),
            "env STABLEBUILD_STORE".into(),
        ),
        ("cache-size", "30G".into(), "flag".into()),
        ("verbose", 2.into(), at(4)),
        ("token", "<set>".into(), "env STABLEBUILD_TOKEN".into()),
        ("listen", "0.0.0.0:5000".into(), at(6)),
        ("allow", serde_json::json!(["docker.io", "ghcr.io"]), at(7)),
        ("admin-token", "<set>".into(), at(8)),
        ("dashboard", "private".into(), at(9)),
        ("jobs", "4".into(), "default".into()),
        ("drift-every", serde_json::Value::Null, "unset".into()),
    ];
    for (key, value, source) in expect {
        let got = &settings[key];
        assert_eq!(got["value"], value, "{key}: {settings:#}");
        assert_eq!(got["source"], source, "{key}: {settings:#}");
    }
    assert_eq!(settings["listen"]["for"], "serve");
    assert_eq!(settings["store"]["for"], "all");
    let text = serde_json::to_string(&settings).unwrap();
    assert!(!text.contains("secret"), "a secret is shown: {text}");

    // The table says the same, and needs no store either.
    let table = run(&["--config", &file, "config"], &[]).await.ok().stdout;
    let line = table
        .lines()
        .find(|l| l.trim_start().starts_with("listen "));
    let words: Vec<_> = line.expect("a listen row").split_whitespace().collect();
    assert_eq!(
        words,
        [
            "listen",
            "0.0.0.0:5000",
            "serve",
            "file",
            &format!("{file}:6")
        ]
    );
    assert!(!table.contains("file-secret"), "{table}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_in_the_file_are_usage_errors_that_name_key_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "store = \"/s\"\n\nlisen = \"127.0.0.1:1\"\n",
            "line 3: unknown key \"lisen\"",
        ),
        (
            "listen = \"nope\"\n",
            "line 1: listen: \"nope\": invalid socket address",
        ),
        (
            "dashboard = \"none\"\n",
            "line 1: dashboard: \"none\": expected one of public",
        ),
        ("\njson = \"yes\"\n", "line 2: json: expected true or false"),
        ("store = \"/s\"\nlisten = \n", "line 2:"),
    ];
    for (text, needle) in cases {
        let file = write(dir.path(), text);
        for args in [
            vec!["--config", &file, "config"],
            vec!["--config", &file, "list"],
        ] {
            let run = run(&args, &[]).await;
            assert_eq!(run.code, 2, "{text}: {}", run.stderr);
            assert!(
                run.stderr.contains(&format!("config {file} {needle}")),
                "{text}: {}",
                run.stderr
            );
        }
    }
    let missing = dir.path().join("nothere.toml");
    let missing = missing.to_str().unwrap();
    let run = run(&["list"], &[("STABLEBUILD_CONFIG", missing)]).await;
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!("config {missing}: ")),
        "{}",
        run.stderr
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_runs_on_nothing_but_a_config_file() {
    let dir = tempfile::tempdir().unwrap();
    let store = dir.path().join("store");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let text = format!(
        "listen = \"127.0.0.1:{port}\"\nstore = {store:?}\ndashboard = \"off\"\n\
         admin-token = \"from-the-file\"\n"
    );
    let file = write(dir.path(), &text);
    let server = Server::spawn(command(&["--config", &file, "serve"], &[])).await;
    assert_eq!(server.addr, format!("127.0.0.1:{port}"));
    let get = |path: &str| reqwest::get(format!("http://127.0.0.1:{port}{path}"));
    assert_eq!(get("/v2/").await.unwrap().status().as_u16(), 200);
    assert_eq!(
        get("/").await.unwrap().status().as_u16(),
        404,
        "dashboard off"
    );
    let info = std::fs::read(store.join("server.json")).expect("server.json in the file's store");
    let info: serde_json::Value = serde_json::from_slice(&info).unwrap();
    assert_eq!(info["token"], "from-the-file");
    assert!(server.stop().await.success());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_environment_variable_names_the_file_as_the_flag_does() {
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), FILE);
    let env = [("STABLEBUILD_CONFIG", file.as_str())];
    let settings = run(&["config", "--json"], &env).await.ok().json();
    assert_eq!(settings["config"]["value"], file.as_str());
    assert_eq!(settings["config"]["source"], "env STABLEBUILD_CONFIG");
    assert_eq!(settings["store"]["source"], format!("file {file}:2"));
    assert_eq!(settings["listen"]["value"], "0.0.0.0:5000");
    // The flag names another file, and wins.
    let other = dir.path().join("other.toml");
    std::fs::write(&other, "listen = \"127.0.0.1:7\"\n").unwrap();
    let other = other.to_str().unwrap();
    let settings = run(&["--config", other, "config", "--json"], &env)
        .await
        .ok()
        .json();
    assert_eq!(settings["listen"]["value"], "127.0.0.1:7");
    assert_eq!(settings["store"]["source"], "unset");
}
