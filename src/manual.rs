//! The man pages: clap's sections (name, synopsis, description, options, subcommands,
//! version) plus EXAMPLES and EXIT STATUS for each command, written here as data. The pages
//! in `man/` are generated from this and committed (`tests/generated.rs` checks they are
//! current).
//! Must not touch: anything but the roff text it returns.

use std::io::Write;

/// (what it does, the command line) for each command, `stablebuild` itself as "".
fn examples(command: &str) -> &'static [(&'static str, &'static str)] {
    match command {
        "" => &[
            (
                "Snapshot two tags, every platform.",
                "stablebuild pin ubuntu:22.04 ghcr.io/org/app:1.2",
            ),
            (
                "Pin what a Dockerfile builds from (the CI pre-warm step).",
                "stablebuild pin -f Dockerfile",
            ),
            (
                "Run the mirror on every interface.",
                "stablebuild serve --listen 0.0.0.0:5000",
            ),
            ("See what is pinned.", "stablebuild list"),
        ],
        "pin" => &[
            (
                "Snapshot two tags, every platform.",
                "stablebuild pin ubuntu:22.04 ghcr.io/org/app:1.2",
            ),
            (
                "Pin the images a Dockerfile uses (FROM, COPY --from, RUN --mount=from).",
                "stablebuild pin -f Dockerfile",
            ),
            (
                "Pin a list, one reference per line, and read the results as JSON.",
                "stablebuild --json pin -f images.txt",
            ),
            (
                "Pre-warm a remote mirror from CI.",
                "stablebuild --server http://mirror:5000 --token \"$TOKEN\" pin -f Dockerfile",
            ),
            (
                "Pin from a registry on this machine (plain http).",
                "stablebuild pin 127.0.0.1:5000/library/app:1",
            ),
            (
                "Pin the most specific tag naming the same image (ubuntu:focal-20230801).",
                "stablebuild pin --dated ubuntu:20.04",
            ),
            (
                "Pin with a Docker Hub account (USER:TOKEN in the file) for its higher limit.",
                "stablebuild --upstream-auth docker.io=/etc/stablebuild/hub pin ubuntu:22.04",
            ),
            (
                "Mirror a team's own private images too (only public ones by default).",
                "stablebuild --allow-private 'docker.io/acme/*' pin acme/base:1",
            ),
        ],
        "pull" => &[
            (
                "An OCI image layout with every platform.",
                "stablebuild pull ubuntu:22.04 -o ./ubuntu",
            ),
            (
                "One platform.",
                "stablebuild pull ubuntu:22.04 -o ./ubuntu-arm64 --platform linux/arm64",
            ),
            (
                "A docker load-able archive for this machine's platform, compressed.",
                "stablebuild pull ubuntu:22.04 -o ubuntu.tar.gz",
            ),
            (
                "Straight into docker.",
                "stablebuild pull ubuntu:22.04 -o - | docker load",
            ),
        ],
        "list" => &[
            ("Everything pinned.", "stablebuild list"),
            (
                "The ubuntu tags, as JSON.",
                "stablebuild --json list ubuntu",
            ),
        ],
        "evict" => &[(
            "Take a new snapshot of a tag that moved upstream.",
            "stablebuild evict ubuntu:22.04 && stablebuild pin ubuntu:22.04",
        )],
        "gc" => &[
            ("See what would be removed.", "stablebuild gc --dry-run"),
            ("Remove the blobs no pinned tag reaches.", "stablebuild gc"),
        ],
        "verify" => &[
            ("Re-hash every blob.", "stablebuild verify"),
            (
                "Remove corrupt blobs and rebuild the index; pin fetches what is missing again.",
                "stablebuild verify --repair && stablebuild pin -f images.txt",
            ),
        ],
        "serve" => &[
            (
                "The mirror on every interface, on the default store.",
                "stablebuild serve --listen 0.0.0.0:5000",
            ),
            (
                "Only Docker Hub and GitHub's registry.",
                "stablebuild serve --allow docker.io --allow ghcr.io",
            ),
            (
                "Serve a store on a read-only mount; misses answer 503.",
                "stablebuild --store /mnt/snapshots serve --read-only",
            ),
            (
                "Check every 10 minutes which pinned tags moved upstream (stablebuild_drift_* in /metrics).",
                "stablebuild serve --drift-every 10m",
            ),
        ],
        "migrate" => &[
            (
                "Move a local store into a bucket, with nothing fetched upstream again.",
                "stablebuild --store ~/.local/share/stablebuild migrate --to s3://mirror-store/team",
            ),
            (
                "Then use the bucket.",
                "stablebuild --store s3://mirror-store/team list",
            ),
        ],
        "inspect" => &[
            (
                "The tree of a pinned tag.",
                "stablebuild inspect ubuntu:22.04",
            ),
            (
                "Every layer digest, with jq.",
                "stablebuild --json inspect ubuntu:22.04 | jq -r '.. | objects | select(.kind == \"layer\") | .digest'",
            ),
        ],
        "lock" => &[
            (
                "Lock the Dockerfile here: every FROM, COPY --from and RUN --mount=from image pinned and written as NAME:TAG@sha256:ROOT.",
                "stablebuild lock",
            ),
            (
                "The CI gate: exit 1 with the diff when a reference is not locked or not as the store pins it.",
                "stablebuild --server https://mirror.example lock --check Dockerfile compose.yml k8s/deploy.yaml",
            ),
            (
                "Write the names the mirror serves (mirror:5000/library/ubuntu:20.04@sha256:…), and review first.",
                "stablebuild lock --mirror mirror:5000 --diff",
            ),
        ],
        "history" => &[
            (
                "Who pinned and evicted ubuntu tags, and when.",
                "stablebuild history ubuntu",
            ),
            (
                "Every pin made by pull-through, with jq.",
                "stablebuild --json history | jq -r '.[] | select(.origin.by == \"pull-through\") | .reference'",
            ),
        ],
        "drift" => &[
            (
                "Which pinned tags moved or vanished upstream (HEAD requests only: no pull spent).",
                "stablebuild drift",
            ),
            (
                "Fail a CI job when a pinned ubuntu tag moved, is gone or cannot be checked.",
                "stablebuild drift ubuntu --exit-code",
            ),
            (
                "The tags that moved, with jq.",
                "stablebuild --json drift | jq -r '.entries[] | select(.state == \"moved\") | .reference'",
            ),
        ],
        "twins" => &[
            (
                "The tags that name the same image as ubuntu:20.04, most specific first.",
                "stablebuild twins ubuntu:20.04",
            ),
            (
                "Pin the dated twin instead (ubuntu:focal-20230801).",
                "stablebuild pin --dated ubuntu:20.04",
            ),
        ],
        "config" => &[
            (
                "The settings in effect and where each came from (flag, env, file and line, default).",
                "stablebuild --config /etc/stablebuild.toml config",
            ),
            (
                "Only the values the config file set, with jq.",
                "stablebuild --config mirror.toml --json config | jq 'map_values(select(.source | startswith(\"file \")) | .value)'",
            ),
        ],
        _ => &[],
    }
}

/// (status, meaning) for each command.
fn exit_status(command: &str) -> Vec<(&'static str, &'static str)> {
    let failure = match command {
        "pin" => {
            "At least one image could not be pinned; every image is still tried and each failure is named on stderr."
        }
        "verify" => {
            "A blob is corrupt or missing (each is listed), the journal's hash chain is broken (the first line that no longer matches is named), or the store could not be read."
        }
        "inspect" => "The image is not pinned, or the store could not be read.",
        "lock" => {
            "--check: a reference is not locked, is locked to another digest than the store's pin, or is not pinned. Otherwise: an image could not be pinned (its reference is left as written)."
        }
        "migrate" => {
            "A tag could not be copied (a conflict with the bucket's record, a local snapshot incomplete, the bucket failing); run it again to resume."
        }
        "serve" => "The server could not start (the address is taken, the store cannot be opened).",
        "drift" => {
            "With --exit-code: a tag moved, is gone, or could not be checked (the upstream failed). Without it, only a store that cannot be read."
        }
        "twins" => {
            "IMAGE is neither pinned nor found upstream, or the upstream's tag list could not be read."
        }
        "config" => {
            "Not used: a config file that cannot be read or holds a mistake is a usage error (2)."
        }
        _ => "A failure; the message on stderr names the image and the cause.",
    };
    let success = match command {
        "serve" => "Stopped by SIGTERM or Ctrl-C after finishing the responses in flight.",
        _ => "Success.",
    };
    vec![
        ("0", success),
        ("1", failure),
        (
            "2",
            "A usage error: a bad reference, flag or file (in a config file: its line and key are named); nothing was changed.",
        ),
    ]
}

/// The man page of `cmd` (`stablebuild` or `stablebuild-<sub>`; built, so that global flags
/// appear on every page).
pub fn man_page(cmd: clap::Command) -> Vec<u8> {
    let sub = cmd
        .get_name()
        .strip_prefix("stablebuild-")
        .unwrap_or("")
        .to_string();
    let man = clap_mangen::Man::new(cmd.clone());
    let mut out = Vec::new();
    let write = |out: &mut Vec<u8>| -> std::io::Result<()> {
        man.render_title(out)?;
        man.render_name_section(out)?;
        man.render_synopsis_section(out)?;
        man.render_description_section(out)?;
        if cmd.get_arguments().any(|a| !a.is_hide_set()) {
            man.render_options_section(out)?;
        }
        if cmd.get_subcommands().next().is_some() {
            man.render_subcommands_section(out)?;
        }
        out.write_all(extra_sections(&sub).as_bytes())?;
        match cmd.get_version().or(cmd.get_long_version()) {
            Some(_) => man.render_version_section(out),
            None => Ok(()),
        }
    };
    write(&mut out).expect("writing to memory");
    out
}

fn extra_sections(command: &str) -> String {
    let mut roff = String::new();
    let examples = examples(command);
    if !examples.is_empty() {
        roff.push_str(".SH EXAMPLES\n");
        for (what, line) in examples {
            roff.push_str(&format!(
                ".TP\n\\fB{}\\fR\n{}\n",
                escape(line),
                escape(what)
            ));
        }
    }
    roff.push_str(".SH \"EXIT STATUS\"\n");
    for (status, meaning) in exit_status(command) {
        roff.push_str(&format!(".TP\n{status}\n{}\n", escape(meaning)));
    }
    roff
}

/// Text for roff: backslashes and hyphens escaped, no line starting with a control character.
fn escape(text: &str) -> String {
    let escaped = text.replace('\\', "\\e").replace('-', "\\-");
    match escaped.starts_with(['.', '\'']) {
        true => format!("\\&{escaped}"),
        false => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_command_has_an_exit_status_and_every_real_one_examples() {
        let cmd = crate::cli::command();
        for sub in cmd.get_subcommands().map(|s| s.get_name()) {
            let sections = extra_sections(sub);
            assert!(sections.contains(".SH \"EXIT STATUS\"\n.TP\n0\n"), "{sub}");
            if sub != "help" {
                assert!(sections.contains(".SH EXAMPLES"), "{sub} has examples");
            }
        }
    }

    #[test]
    fn roff_text_is_escaped() {
        assert_eq!(escape("pin -f x"), "pin \\-f x");
        assert_eq!(escape("a\\b"), "a\\eb");
        assert_eq!(escape(".hidden"), "\\&.hidden");
    }
}
