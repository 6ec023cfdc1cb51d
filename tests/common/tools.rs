//! Runs the real client tools (skopeo, podman) the way the tests need them: with a signature
//! policy that accepts anything, podman with private storage, and a run that must succeed.

use std::path::Path;

use tokio::process::Command;

/// Writes a signature policy that accepts any image to `dir/policy.json` and returns its path,
/// for `skopeo --policy` and `podman pull --signature-policy`.
pub fn policy(dir: &Path) -> String {
    let path = dir.join("policy.json");
    std::fs::write(&path, r#"{"default":[{"type":"insecureAcceptAnything"}]}"#).unwrap();
    path.to_str().unwrap().to_string()
}

/// Runs `program args`; panics with its stderr unless it succeeds. Returns its stdout.
pub async fn tool(program: &str, args: &[&str]) -> String {
    run_ok(Command::new(program).args(args)).await
}

/// Runs skopeo; panics with its stderr unless it succeeds. Returns its stdout.
pub async fn skopeo(args: &[&str]) -> String {
    tool("skopeo", args).await
}

/// Runs `cmd`; panics with its stderr unless it succeeds. Returns its stdout.
pub async fn run_ok(cmd: &mut Command) -> String {
    let out = cmd.output().await;
    let shown = cmd.as_std();
    let out = out.unwrap_or_else(|e| panic!("{shown:?}: {e}"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{shown:?} failed: {stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `podman` with all its state under `dir` (root, runroot, tmpdir; vfs storage, cgroupfs, events
/// to a file), so that it needs no system storage and no systemd. Add the subcommand's args.
pub fn podman(dir: &Path) -> Command {
    let tmp = dir.join("tmp");
    std::fs::create_dir_all(&tmp).unwrap();
    let mut cmd = Command::new("podman");
    cmd.arg("--root")
        .arg(dir.join("root"))
        .arg("--runroot")
        .arg(dir.join("runroot"))
        .arg("--tmpdir")
        .arg(tmp)
        .args(["--storage-driver", "vfs"])
        .args(["--cgroup-manager", "cgroupfs"])
        .args(["--events-backend", "file"]);
    cmd
}

/// An htpasswd file at `path` with one bcrypt entry, made by Apache's `htpasswd -B`.
pub fn htpasswd(path: &Path, user: &str, password: &str) {
    let out = std::process::Command::new("htpasswd")
        .args(["-B", "-b", "-c"])
        .arg(path)
        .args([user, password])
        .output()
        .expect("run htpasswd (apt-get install apache2-utils)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
