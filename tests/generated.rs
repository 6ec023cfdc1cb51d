//! `completions/` and `man/` are generated from the clap definitions and committed; this
//! test fails when they are stale. Regenerate with:
//! `UPDATE_GENERATED=1 cargo test --test generated`.

use std::path::{Path, PathBuf};

use clap_complete::Shell;

fn generated() -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for (shell, file) in [
        (Shell::Bash, "stablebuild.bash"),
        (Shell::Zsh, "_stablebuild"),
        (Shell::Fish, "stablebuild.fish"),
    ] {
        let mut buf = Vec::new();
        clap_complete::generate(
            shell,
            &mut stablebuild::cli::command(),
            "stablebuild",
            &mut buf,
        );
        out.push((PathBuf::from("completions").join(file), buf));
    }
    let mut cmd = stablebuild::cli::command();
    cmd.build(); // propagates the global flags into the subcommands' pages
    out.push((PathBuf::from("man/stablebuild.1"), man(cmd.clone())));
    for sub in cmd.get_subcommands() {
        let name = format!("stablebuild-{}", sub.get_name());
        let page = man(sub.clone().name(name.clone()));
        out.push((PathBuf::from("man").join(format!("{name}.1")), page));
    }
    out
}

fn man(cmd: clap::Command) -> Vec<u8> {
    stablebuild::manual::man_page(cmd)
}

#[test]
fn completions_and_man_pages_are_up_to_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let update = std::env::var_os("UPDATE_GENERATED").is_some();
    let mut stale = Vec::new();
    for (path, content) in generated() {
        let full = root.join(&path);
        if update {
            std::fs::create_dir_all(full.parent().unwrap()).unwrap();
            std::fs::write(&full, &content).unwrap();
        } else if std::fs::read(&full).ok().as_deref() != Some(content.as_slice()) {
            stale.push(path.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale generated files {stale:?}: run `UPDATE_GENERATED=1 cargo test --test generated`"
    );
}

#[test]
fn every_subcommand_has_a_man_page_and_completion() {
    let files = generated();
    let bash = &files[0].1;
    for sub in stablebuild::cli::command().get_subcommands() {
        let page = format!("man/stablebuild-{}.1", sub.get_name());
        assert!(
            files.iter().any(|(p, _)| p.to_str() == Some(page.as_str())),
            "{page}"
        );
        let text = String::from_utf8_lossy(bash);
        assert!(
            text.contains(sub.get_name()),
            "bash completion lacks {}",
            sub.get_name()
        );
    }
}
