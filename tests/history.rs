//! `history`: every pin and evict with its origin (a CLI run, the admin API, a client's
//! pull-through), from the CLI on the store and through the server holding it; and the
//! journal's hash chain, which `verify` checks: a line edited by hand is named.

mod common;

use common::cli::Sb;
use common::fixtures;
use common::registry::Registry;
use common::server::Server;
use serde_json::Value;

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .unwrap()
        .trim()
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_names_cli_admin_and_pull_through_origins_oldest_first() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let single = fixtures::push_single(&reg.url()).await;
    let many = fixtures::push_many(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    sb.run(&["pin", "multi:1"]).await.ok();

    let srv = Server::start(&sb, &[]).await;
    sb.run(&["pin", "single:1"]).await.ok(); // through the server: the admin API
    let resp = reqwest::Client::new()
        .get(format!("{}/v2/library/many/manifests/1", srv.url()))
        .header("user-agent", "history-test/1.0")
        .header("accept", "application/vnd.oci.image.manifest.v1+json")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 200);
    srv.wait_pinned(&sb, "library/many:1").await;
    sb.run(&["evict", "multi:1"]).await.ok();

    let through = sb.run(&["--json", "history"]).await.ok().json();
    let entries = through.as_array().unwrap();
    let summary: Vec<(String, String, String)> = entries
        .iter()
        .map(|e| {
            (
                e["action"].as_str().unwrap().to_string(),
                e["reference"].as_str().unwrap().to_string(),
                e["origin"]["by"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    let want = |a: &str, r: &str, by: &str| (a.to_string(), r.to_string(), by.to_string());
    assert_eq!(
        summary,
        vec![
            want("pin", "docker.io/library/multi:1", "cli"),
            want("pin", "docker.io/library/single:1", "admin"),
            want("pin", "docker.io/library/many:1", "pull-through"),
            want("evict", "docker.io/library/multi:1", "admin"),
        ]
    );
    let digests: Vec<&str> = entries
        .iter()
        .map(|e| e["digest"].as_str().unwrap())
        .collect();
    assert_eq!(
        digests,
        [&multi.digest, &single.digest, &many.digest, &multi.digest]
    );
    let cli = &entries[0]["origin"];
    assert_eq!(cli["host"], host_name().as_str());
    let user = std::env::var("USER").unwrap_or_default();
    if user.is_empty() {
        assert!(!cli["user"].as_str().unwrap().is_empty(), "{cli}");
    } else {
        assert_eq!(cli["user"], user.as_str());
    }
    assert!(
        entries[1]["origin"]["remote"]
            .as_str()
            .unwrap()
            .starts_with("127.0.0.1:"),
        "{}",
        entries[1]
    );
    let pull = &entries[2]["origin"];
    assert!(
        pull["client"].as_str().unwrap().starts_with("127.0.0.1:"),
        "{pull}"
    );
    assert_eq!(pull["user_agent"], "history-test/1.0");
    assert!(entries[0]["time"].as_str().unwrap().ends_with('Z'));

    srv.stop().await;
    // On the store itself, the same history; a filter keeps the matching references.
    let local = sb.run(&["--json", "history"]).await.ok().json();
    assert_eq!(local, through);
    let table = sb.run(&["history", "multi"]).await.ok().stdout;
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(lines.len(), 3, "{table}");
    assert!(lines[0].contains("ORIGIN"), "{table}");
    assert!(lines[1].contains(&format!("cli {user}")), "{table}");
    assert!(
        lines[2].contains("evict") && lines[2].contains("admin 127.0.0.1:"),
        "{table}"
    );
    let none = sb.run(&["history", "nothing-like-this"]).await.ok();
    assert!(none.stderr.contains("nothing-like-this"), "{}", none.stderr);
}

/// Rewrite line `n` (1-based) of the journal with `f`, keeping every other byte.
fn edit_line(sb: &Sb, n: usize, f: impl Fn(&str) -> String) -> String {
    let path = sb.store().join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    let original = text.clone();
    lines[n - 1] = f(&lines[n - 1]);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
    original
}

/// The line with its first digest's first hex digit changed (same length).
fn tampered(line: &str) -> String {
    let at = line.find("\"digest\":\"sha256:").unwrap() + "\"digest\":\"sha256:".len();
    let mut bytes = line.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'0' { b'1' } else { b'0' };
    String::from_utf8(bytes).unwrap()
}

async fn verify(sb: &Sb) -> (i32, Value) {
    let run = sb.run(&["--json", "verify"]).await;
    (run.code, run.json())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_line_edited_by_hand_makes_verify_fail_naming_it() {
    let reg = Registry::start().await;
    fixtures::push_multi(&reg.url(), 0).await;
    fixtures::push_single(&reg.url()).await;
    fixtures::push_many(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    sb.run(&["pin", "multi:1", "single:1", "many:1"]).await.ok();
    let (code, clean) = verify(&sb).await;
    assert_eq!(code, 0, "{clean}");
    assert!(clean.get("journal_break").is_none(), "{clean}");

    for n in [1, 2, 3] {
        let original = edit_line(&sb, n, tampered);
        let (code, report) = verify(&sb).await;
        assert_eq!(code, 1, "line {n} edited: {report}");
        assert_eq!(report["journal_break"]["line"], n, "{report}");
        let text = sb.run(&["verify"]).await;
        assert!(
            text.stdout.contains(&format!("journal broken at line {n}")),
            "{}",
            text.stdout
        );
        std::fs::write(sb.store().join("journal.jsonl"), original).unwrap();
    }
    // A line removed: the one before the gap is named.
    let path = sb.store().join("journal.jsonl");
    let original = std::fs::read_to_string(&path).unwrap();
    let kept: Vec<&str> = original
        .lines()
        .enumerate()
        .filter(|(i, _)| *i != 1)
        .map(|(_, l)| l)
        .collect();
    std::fs::write(&path, kept.join("\n") + "\n").unwrap();
    let (code, report) = verify(&sb).await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["journal_break"]["line"], 1, "{report}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_journal_written_before_the_chain_keeps_working_and_the_chain_starts_after_it() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    sb.run(&["pin", "multi:1"]).await.ok();
    // As an older stablebuild wrote it: no `prev`; the index rebuilt from it.
    let path = sb.store().join("journal.jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let re_prev = text.find(",\"prev\":\"").unwrap();
    let end = text[re_prev + 9..].find('"').unwrap() + re_prev + 10;
    let legacy = format!("{}{}", &text[..re_prev], &text[end..]);
    assert!(!legacy.contains("prev"), "{legacy}");
    std::fs::write(&path, legacy).unwrap();
    sb.run(&["verify", "--repair"]).await.ok();
    sb.run(&["pin", "single:1"]).await.ok();
    let (code, report) = verify(&sb).await;
    assert_eq!(code, 0, "{report}");
    let history = sb.run(&["--json", "history"]).await.ok().json();
    assert_eq!(history[0]["digest"], multi.digest.as_str());
    assert_eq!(history.as_array().unwrap().len(), 2);
    assert_eq!(history[1]["origin"]["by"], "cli");
    // The first chained line records the hash of the line before it: an edit is named.
    edit_line(&sb, 1, tampered);
    let (code, report) = verify(&sb).await;
    assert_eq!(code, 1, "{report}");
    assert_eq!(report["journal_break"]["line"], 1, "{report}");
}
