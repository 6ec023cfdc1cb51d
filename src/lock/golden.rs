//! Golden files: `fixtures/lock/NAME` locked with fake roots must equal `NAME.locked`
//! (and `NAME.mirror.locked` through mirror `mirror.example:5000`, when present), with
//! the warnings in `NAME.skipped`; locking the output again changes nothing; every LF
//! fixture locks the same with CRLF line endings. `STABLEBUILD_BLESS=1` rewrites the
//! expected files (review them before committing). See `fixtures/lock/README.md`.

use std::path::{Path, PathBuf};

use sha2::{Digest as _, Sha256};

use super::*;
use crate::reference::Reference;

const MIRROR: &str = "mirror.example:5000";

/// The fake root of an image: its digest if it has one (pinning by digest yields it), else
/// sha256 of its normalised `registry/repository:tag`.
fn fake_root(image: &str) -> Digest {
    let r = Reference::parse(image).unwrap_or_else(|e| panic!("{image}: {e}"));
    if let Some(d) = r.digest() {
        return d.clone();
    }
    let tag = r.tag().expect("a reference without digest has a tag");
    let key = format!("{}:{tag}", r.name());
    Digest::from_sha256(Sha256::digest(key.as_bytes()).into())
}

fn platform() -> Platform {
    Platform {
        os: "linux".into(),
        arch: "amd64".into(),
        variant: None,
    }
}

fn lock(text: &str, kind: FileKind, mirror: Option<&str>) -> (String, Plan) {
    let plan = plan(text, kind, &platform()).unwrap_or_else(|e| panic!("{e}"));
    let edits: Vec<_> = plan
        .sites
        .iter()
        .map(|s| s.edit(&fake_root(&s.image), mirror).unwrap())
        .collect();
    (apply(text, &edits), plan)
}

fn skipped_text(plan: &Plan) -> String {
    let line = |s: &Skipped| format!("{}\t{}\t{}\n", s.line, s.raw, s.why);
    plan.skipped.iter().map(line).collect()
}

fn inputs() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lock");
    let mut out: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_str().unwrap();
            let derived = [".locked", ".skipped", ".md"]
                .iter()
                .any(|s| name.ends_with(s));
            !derived && !name.starts_with('.')
        })
        .collect();
    out.sort();
    assert!(out.len() >= 4, "fixtures missing in {}", dir.display());
    out
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(suffix);
    PathBuf::from(s)
}

/// `got` equals the file at `path` (or, blessing, becomes it).
#[track_caller]
fn check(path: &Path, got: &str) {
    if std::env::var_os("STABLEBUILD_BLESS").is_some() {
        std::fs::write(path, got).unwrap();
    }
    let want = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    assert!(
        got == want,
        "{} differs:\n{}",
        path.display(),
        unified_diff("want", "got", &want, got)
    );
}

#[test]
fn fixtures_lock_to_their_golden_files_and_stay_locked() {
    for input in inputs() {
        let kind = kind_of(&input);
        let text = std::fs::read_to_string(&input).unwrap();
        let (locked, plan) = lock(&text, kind, None);
        check(&with_suffix(&input, ".locked"), &locked);
        check(&with_suffix(&input, ".skipped"), &skipped_text(&plan));
        let (again, replan) = lock(&locked, kind, None);
        assert_eq!(
            again,
            locked,
            "{}: locking twice changes it",
            input.display()
        );
        assert_eq!(replan.sites.len(), plan.sites.len(), "{}", input.display());
        let mirrored = with_suffix(&input, ".mirror.locked");
        if mirrored.exists() || std::env::var_os("STABLEBUILD_BLESS").is_some() {
            let (locked, _) = lock(&text, kind, Some(MIRROR));
            check(&mirrored, &locked);
            assert_eq!(
                lock(&locked, kind, Some(MIRROR)).0,
                locked,
                "{}",
                input.display()
            );
        }
    }
}

#[test]
fn fixtures_lock_the_same_with_crlf_line_endings() {
    for input in inputs() {
        let text = std::fs::read_to_string(&input).unwrap();
        if text.contains('\r') {
            continue;
        }
        let crlf = |s: &str| s.replace('\n', "\r\n");
        // The LF result is the golden file (the test above checks it).
        let (want, _) = lock(&text, kind_of(&input), None);
        let (got, _) = lock(&crlf(&text), kind_of(&input), None);
        assert!(
            got == crlf(&want),
            "{}:\n{}",
            input.display(),
            unified_diff("want", "got", &crlf(&want), &got)
        );
    }
}

#[test]
fn the_diff_of_a_lock_is_its_changed_lines() {
    let input = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/lock/compose.yml");
    let text = std::fs::read_to_string(&input).unwrap();
    let (locked, plan) = lock(&text, FileKind::Yaml, None);
    let diff = unified_diff("compose.yml", "compose.yml", &text, &locked);
    let removed = diff
        .lines()
        .filter(|l| l.starts_with('-') && !l.starts_with("---"));
    assert_eq!(removed.count(), plan.sites.len(), "{diff}");
    assert!(
        diff.starts_with("--- a/compose.yml\n+++ b/compose.yml\n@@ -3,"),
        "{diff}"
    );
}
