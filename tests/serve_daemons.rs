//! Real container daemons pulling through `stablebuild serve`, each one private to its test
//! (own root, state and socket in a temp dir; killed and unmounted at the end):
//!
//! - containerd 1.6 (`ctr images pull --hosts-dir`, a `hosts.toml` mirror for docker.io), which
//!   adds `?ns=docker.io` to every request;
//! - a Dockerfile locked with `lock --mirror` through the server, built by dockerd pulling by
//!   digest through the mirror;
//! - dockerd 20.10 with `registry-mirrors` (pull by tag and by digest), and a prefix pull from
//!   the server as an insecure registry.
//! - over TLS (`serve --tls-cert`, a test CA): containerd trusting the CA named in
//!   `hosts.toml`, dockerd with an https `registry-mirrors` entry trusting
//!   `/etc/docker/certs.d/HOST:PORT/ca.crt`.
//! - `serve --pull-auth`: dockerd refused before `docker login`, pulling after it.
//!
//! A pull that succeeds proves little on its own: dockerd silently falls back to Docker Hub on
//! any mirror error. So every test checks that the server logged the manifest and blob
//! requests, that the daemon stored the expected digests, and (dockerd) that the daemon log has
//! no "Attempting next endpoint" line about the mirror.

mod common;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use tempfile::TempDir;
use tokio::process::{Child, Command};

use common::cli::Sb;
use common::fixtures::{self, Pushed};
use common::registry::Registry;
use common::server::Server;
use common::tls::TestCa;

/// The CLI of the `docker.io` package; another `docker` may come first in PATH.
const DOCKER: &str = "/usr/bin/docker";
/// How long a daemon gets to answer on its socket.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one client command (a pull, an inspect) may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(40);
/// How long dockerd gets to shut down after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(15);
/// What dockerd logs when it gives up on an endpoint (the mirror) and tries the next one.
const FALLBACK: &str = "Attempting next endpoint";
/// Proxy variables the daemons must not see (the mirror is on loopback).
const PROXY_VARS: [&str; 6] = [
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "NO_PROXY",
    "http_proxy",
    "https_proxy",
    "no_proxy",
];

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_pulls_through_a_hosts_toml_mirror() {
    let reg = Registry::start().await;
    let multi = fixtures::push_multi(&reg.url(), 0).await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;
    let containerd = Containerd::start().await;
    let hosts = containerd.write_hosts_dir(&srv.url(), None);

    let image = "docker.io/library/multi:1";
    let hosts = hosts.to_str().unwrap();
    containerd
        .ctr_ok(&["images", "pull", "--hosts-dir", hosts, image], &srv)
        .await;
    let listed = containerd.ctr_ok(&["images", "ls"], &srv).await;
    let row = listed
        .lines()
        .find(|line| line.split_whitespace().next() == Some(image))
        .unwrap_or_else(|| panic!("{image} not in `ctr images ls`:\n{listed}"));
    assert!(row.contains(&multi.digest), "{row}\nwant {}", multi.digest);

    let log = srv.log();
    assert_manifest_served(&log, &multi.repo, "1", "?ns=docker.io");
    let manifest = local_manifest(&reg.url(), &multi).await;
    assert_blobs_served(&log, &multi.repo, &blobs_of(&manifest), "?ns=docker.io");
    containerd.stop().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn containerd_pulls_over_tls_trusting_the_ca_named_in_hosts_toml() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let ca = TestCa::new();
    let srv = Server::start_tls(&sb, &ca, &[]).await;
    let containerd = Containerd::start().await;
    let hosts = containerd.write_hosts_dir(&srv.url(), Some(&ca.root()));

    let image = "docker.io/library/single:1";
    let hosts = hosts.to_str().unwrap();
    containerd
        .ctr_ok(&["images", "pull", "--hosts-dir", hosts, image], &srv)
        .await;
    let listed = containerd.ctr_ok(&["images", "ls"], &srv).await;
    assert!(listed.contains(&single.digest), "{listed}");
    let log = srv.log();
    assert_manifest_served(&log, &single.repo, "1", "?ns=docker.io");
    let manifest = local_manifest(&reg.url(), &single).await;
    assert_blobs_served(&log, &single.repo, &blobs_of(&manifest), "?ns=docker.io");
    containerd.stop().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerd_pulls_through_an_https_mirror_trusting_certs_d() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let ca = TestCa::new();
    let srv = Server::start_tls(&sb, &ca, &[]).await;
    // dockerd reads /etc/docker/certs.d/HOST:PORT/ca.crt and has no flag for another place:
    // the test's port is its own, and the directory goes when the test ends.
    let certs = CertsD::install(&srv.addr, &ca.root());
    let config = serde_json::json!({ "registry-mirrors": [srv.url()] });
    let dockerd = Dockerd::start_with(config).await;

    dockerd.pull("library/single:1", &srv).await;
    let manifest = local_manifest(&reg.url(), &single).await;
    let repo_digest = format!("single@{}", single.digest);
    dockerd
        .assert_image("single:1", &repo_digest, &manifest, &srv)
        .await;
    let log = srv.log();
    assert_manifest_served(&log, &single.repo, "1", "");
    assert_blobs_served(&log, &single.repo, &blobs_of(&manifest), "");
    dockerd.assert_no_fallback(&srv, &[]);
    dockerd.stop().await;
    srv.stop().await;
    drop(certs);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerd_logs_in_to_a_mirror_with_pull_auth_and_pulls() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let htpasswd = sb.path("htpasswd");
    common::tools::htpasswd(&htpasswd, "ci", "s3cret");
    let auth = format!("htpasswd:{}", htpasswd.display());
    let srv = Server::start(&sb, &["--pull-auth", &auth]).await;
    let dockerd = Dockerd::start(&srv.addr).await;
    let image = format!("{}/{}:{}", srv.addr, single.repo, single.tag);

    let refused = dockerd.docker(&["pull", &image]).output().await.unwrap();
    assert!(!refused.status.success(), "pulled without logging in");
    let mut login = dockerd.docker(&["login", &srv.addr, "-u", "ci", "--password-stdin"]);
    login.stdin(Stdio::piped());
    let mut child = login
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"s3cret").await.unwrap();
    }
    let out = child.wait_with_output().await.unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(said.contains("Login Succeeded"), "{said}");
    dockerd.pull(&image, &srv).await;
    let manifest = local_manifest(&reg.url(), &single).await;
    let repo_digest = format!("{}/{}@{}", srv.addr, single.repo, single.digest);
    dockerd
        .assert_image(&image, &repo_digest, &manifest, &srv)
        .await;
    dockerd.stop().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerd_pulls_through_registry_mirrors_by_tag_and_by_digest() {
    let reg = Registry::start().await;
    let url = reg.url();
    let (single, multi) = tokio::join!(fixtures::push_single(&url), fixtures::push_multi(&url, 0));
    let sb = Sb::new(&url);
    let srv = Server::start(&sb, &[]).await;
    let dockerd = Dockerd::start(&srv.addr).await;

    dockerd.pull("library/single:1", &srv).await;
    let by_digest = format!("library/multi@{}", multi.digest);
    dockerd.pull(&by_digest, &srv).await;

    let single_manifest = local_manifest(&url, &single).await;
    let multi_manifest = local_manifest(&url, &multi).await;
    let repo_digest =
        |p: &Pushed| format!("{}@{}", p.repo.trim_start_matches("library/"), p.digest);
    dockerd
        .assert_image("single:1", &repo_digest(&single), &single_manifest, &srv)
        .await;
    dockerd
        .assert_image(&by_digest, &repo_digest(&multi), &multi_manifest, &srv)
        .await;

    let log = srv.log();
    assert_manifest_served(&log, &single.repo, "1", "");
    assert_manifest_served(&log, &multi.repo, &multi.digest, "");
    assert_blobs_served(&log, &single.repo, &blobs_of(&single_manifest), "");
    assert_blobs_served(&log, &multi.repo, &blobs_of(&multi_manifest), "");
    dockerd.assert_no_fallback(&srv, &[]);
    dockerd.stop().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dockerd_pulls_by_prefix_from_the_server_as_an_insecure_registry() {
    let reg = Registry::start().await;
    let list = fixtures::push_dockerlist(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;
    let dockerd = Dockerd::start(&srv.addr).await;

    let image = format!("{}/{}:{}", srv.addr, list.repo, list.tag);
    dockerd.pull(&image, &srv).await;

    let manifest = local_manifest(&reg.url(), &list).await;
    let repo_digest = format!("{}/{}@{}", srv.addr, list.repo, list.digest);
    dockerd
        .assert_image(&image, &repo_digest, &manifest, &srv)
        .await;
    let log = srv.log();
    assert_manifest_served(&log, &list.repo, &list.tag, "");
    assert_blobs_served(&log, &list.repo, &blobs_of(&manifest), "");
    // An insecure registry is tried over https first: the server's plain-http answer to the
    // TLS ClientHello sends dockerd on to http on the same port, not to Docker Hub.
    let https_probe = format!(
        r#"Get \"https://{}/v2/\": http: server gave HTTP response to HTTPS client"#,
        srv.addr
    );
    dockerd.assert_no_fallback(&srv, &[&https_probe]);
    dockerd.stop().await;
    srv.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dockerfile_locked_through_the_server_builds_with_dockerd_pulling_by_digest() {
    let reg = Registry::start().await;
    let single = fixtures::push_single(&reg.url()).await;
    let sb = Sb::new(&reg.url());
    let srv = Server::start(&sb, &[]).await;
    let ctx = sb.path("context");
    std::fs::create_dir_all(&ctx).unwrap();
    let dockerfile = ctx.join("Dockerfile");
    std::fs::write(
        &dockerfile,
        "FROM single:1\nLABEL stablebuild.test=locked\n",
    )
    .unwrap();
    // The server holds the store: lock pins through its admin API.
    let path = dockerfile.to_str().unwrap();
    sb.run(&["lock", "--mirror", &srv.addr, path]).await.ok();
    let locked = std::fs::read_to_string(&dockerfile).unwrap();
    let from = format!("FROM {}/library/single:1@{}\n", srv.addr, single.digest);
    assert!(locked.starts_with(&from), "{locked}");

    let dockerd = Dockerd::start(&srv.addr).await;
    let mut build = dockerd.docker(&["build", "-q", "-t", "locked:1", ctx.to_str().unwrap()]);
    build.env("DOCKER_BUILDKIT", "0");
    let log = dockerd.log_path();
    run_ok(&mut build, || {
        format!(
            "dockerd log:\n{}\nserver log:\n{}",
            tail(&log, 30),
            srv.log()
        )
    })
    .await;
    let label = dockerd
        .docker_ok(
            &[
                "image",
                "inspect",
                "-f",
                "{{index .Config.Labels \"stablebuild.test\"}}",
                "locked:1",
            ],
            &srv,
        )
        .await;
    assert_eq!(label.trim(), "locked");
    assert_manifest_served(&srv.log(), &single.repo, &single.digest, "");
    // As for any pull by prefix: https first, then http on the same port (see above).
    let https_probe = format!(
        r#"Get \"https://{}/v2/\": http: server gave HTTP response to HTTPS client"#,
        srv.addr
    );
    dockerd.assert_no_fallback(&srv, &[&https_probe]);
    dockerd.stop().await;
    srv.stop().await;
}

// ---------------------------------------------------------------------------------------------
// Expected content and the server's log
// ---------------------------------------------------------------------------------------------

/// The manifest (as JSON) a daemon on this machine pulls for `pushed`: the tag's own manifest,
/// or the index entry for linux on this machine's architecture.
/// `/etc/docker/certs.d/HOST:PORT/ca.crt`, removed on drop.
struct CertsD(PathBuf);

impl CertsD {
    fn install(addr: &str, root: &Path) -> CertsD {
        let dir = Path::new("/etc/docker/certs.d").join(addr);
        std::fs::create_dir_all(&dir).expect("create /etc/docker/certs.d/HOST:PORT");
        std::fs::copy(root, dir.join("ca.crt")).expect("install ca.crt");
        CertsD(dir)
    }
}

impl Drop for CertsD {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

async fn local_manifest(upstream: &str, pushed: &Pushed) -> Value {
    let root = manifest_json(upstream, &pushed.repo, &pushed.digest).await;
    let Some(entries) = root["manifests"].as_array() else {
        return root;
    };
    let entry = entries
        .iter()
        .find(|m| m["platform"]["os"] == "linux" && m["platform"]["architecture"] == arch())
        .unwrap_or_else(|| panic!("no linux/{} in {root}", arch()));
    manifest_json(upstream, &pushed.repo, entry["digest"].as_str().unwrap()).await
}

async fn manifest_json(upstream: &str, repo: &str, reference: &str) -> Value {
    let (bytes, _) = fixtures::fetch_manifest_bytes(upstream, repo, reference).await;
    serde_json::from_slice(&bytes).expect("manifest is JSON")
}

/// The config digest, then the layer digests, of an image manifest.
fn blobs_of(manifest: &Value) -> Vec<String> {
    let layers = manifest["layers"].as_array().expect("manifest has layers");
    std::iter::once(&manifest["config"])
        .chain(layers)
        .map(|d| d["digest"].as_str().expect("descriptor digest").to_string())
        .collect()
}

/// This machine's architecture as OCI names it.
fn arch() -> &'static str {
    match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        other => other,
    }
}

/// True when the server logged `METHOD URI` (query included) answered with 200.
fn served(log: &str, method: &str, uri: &str) -> bool {
    let needle = format!("{method} {uri} 200 ");
    log.lines().any(|line| line.contains(&needle))
}

/// The server answered a HEAD or a GET of `repo`'s manifest `reference` with 200.
fn assert_manifest_served(log: &str, repo: &str, reference: &str, query: &str) {
    let uri = format!("/v2/{repo}/manifests/{reference}{query}");
    assert!(
        served(log, "HEAD", &uri) || served(log, "GET", &uri),
        "no 200 for {uri} in the server log:\n{log}"
    );
}

/// The server answered a GET of every blob in `blobs` with 200.
fn assert_blobs_served(log: &str, repo: &str, blobs: &[String], query: &str) {
    for blob in blobs {
        let uri = format!("/v2/{repo}/blobs/{blob}{query}");
        assert!(served(log, "GET", &uri), "no 200 for GET {uri}:\n{log}");
    }
}

// ---------------------------------------------------------------------------------------------
// Processes
// ---------------------------------------------------------------------------------------------

/// Runs `cmd` (at most `COMMAND_TIMEOUT`); panics with its output and `context()` unless it
/// exited 0. Returns its stdout.
async fn run_ok(cmd: &mut Command, context: impl FnOnce() -> String) -> String {
    let what = format!("{:?}", cmd.as_std());
    let out = run(cmd).await;
    assert!(
        out.status.success(),
        "{what} failed ({})\nstdout:\n{}\nstderr:\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
        context()
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Runs `cmd` to completion, killing it after `COMMAND_TIMEOUT`.
async fn run(cmd: &mut Command) -> Output {
    cmd.stdin(Stdio::null()).kill_on_drop(true);
    let what = format!("{:?}", cmd.as_std());
    tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} did not finish in {COMMAND_TIMEOUT:?}"))
        .unwrap_or_else(|e| panic!("{what}: {e}"))
}

/// Spawns a daemon with stdout and stderr appended to `log`, killed when dropped.
fn spawn_daemon(cmd: &mut Command, log: &Path) -> Child {
    let file = File::create(log).expect("create daemon log");
    for var in PROXY_VARS {
        cmd.env_remove(var);
    }
    cmd.stdin(Stdio::null())
        .stdout(file.try_clone().expect("clone log handle"))
        .stderr(file)
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {:?}: {e}", cmd.as_std()))
}

/// Polls `probe` until it exits 0; panics if `child` exits or `READY_TIMEOUT` passes.
async fn wait_ready(child: &mut Child, mut probe: impl FnMut() -> Command, log: &Path) {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            panic!("daemon exited with {status}:\n{}", tail(log, 40));
        }
        if run(&mut probe()).await.status.success() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "daemon not ready after {READY_TIMEOUT:?}:\n{}",
            tail(log, 40)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The last `lines` lines of a daemon log, without gRPC connection chatter.
fn tail(log: &Path, lines: usize) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let kept: Vec<&str> = text
        .lines()
        .filter(|l| !l.contains("module=grpc"))
        .collect();
    kept[kept.len().saturating_sub(lines)..].join("\n")
}

/// Sends `signal` (e.g. "TERM") to `pid`.
fn signal(pid: u32, signal: &str) {
    let _ = std::process::Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(pid.to_string())
        .stderr(Stdio::null())
        .status();
}

/// Lazily unmounts every mount point at or under `dir`, deepest first.
fn unmount_under(dir: &Path) {
    let mounts = std::fs::read_to_string("/proc/mounts").unwrap_or_default();
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|line| line.split(' ').nth(1))
        .filter(|point| Path::new(point).starts_with(dir))
        .collect();
    points.sort_by_key(|point| std::cmp::Reverse(point.len()));
    for point in points {
        let _ = std::process::Command::new("umount")
            .args(["-R", "-l", point])
            .status();
    }
}

// ---------------------------------------------------------------------------------------------
// containerd
// ---------------------------------------------------------------------------------------------

/// A private containerd: root, state, sockets and log in a temp dir; CRI disabled.
struct Containerd {
    child: Child,
    dir: TempDir,
}

impl Containerd {
    async fn start() -> Containerd {
        let dir = tempfile::Builder::new()
            .prefix("sb-containerd-")
            .tempdir()
            .expect("containerd temp dir");
        let config = dir.path().join("config.toml");
        std::fs::write(&config, containerd_config(dir.path())).expect("write config.toml");
        let log = dir.path().join("containerd.log");
        let mut child = spawn_daemon(
            Command::new("containerd").arg("--config").arg(&config),
            &log,
        );
        let socket = dir.path().join("containerd.sock");
        let probe = || {
            let mut cmd = Command::new("ctr");
            cmd.arg("--address").arg(&socket).arg("version");
            cmd
        };
        wait_ready(&mut child, probe, &log).await;
        Containerd { child, dir }
    }

    /// Writes `DIR/docker.io/hosts.toml` sending docker.io pulls to `mirror` (a URL),
    /// trusting the CA certificate `ca` when given; returns DIR.
    fn write_hosts_dir(&self, mirror: &str, ca: Option<&Path>) -> PathBuf {
        let hosts = self.dir.path().join("certs.d");
        std::fs::create_dir_all(hosts.join("docker.io")).expect("create hosts dir");
        let ca = ca.map_or(String::new(), |ca| format!("  ca = \"{}\"\n", ca.display()));
        let toml = format!(
            "server = \"https://registry-1.docker.io\"\n\n\
             [host.\"{mirror}\"]\n  capabilities = [\"pull\", \"resolve\"]\n{ca}"
        );
        std::fs::write(hosts.join("docker.io/hosts.toml"), toml).expect("write hosts.toml");
        hosts
    }

    /// Runs `ctr -n test ARGS` against this daemon; panics with both logs unless it succeeds.
    async fn ctr_ok(&self, args: &[&str], srv: &Server) -> String {
        let mut cmd = Command::new("ctr");
        cmd.arg("--address")
            .arg(self.dir.path().join("containerd.sock"))
            .args(["-n", "test"])
            .args(args);
        let log = self.dir.path().join("containerd.log");
        run_ok(&mut cmd, || {
            format!(
                "containerd log:\n{}\nserver log:\n{}",
                tail(&log, 30),
                srv.log()
            )
        })
        .await
    }

    async fn stop(mut self) {
        let _ = self.child.kill().await;
    }
}

impl Drop for Containerd {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if std::thread::panicking() {
            let log = self.dir.path().join("containerd.log");
            eprintln!("--- containerd log tail:\n{}", tail(&log, 30));
        }
        unmount_under(self.dir.path());
    }
}

fn containerd_config(dir: &Path) -> String {
    let d = dir.display();
    format!(
        "version = 2\n\
         root = \"{d}/root\"\n\
         state = \"{d}/state\"\n\
         disabled_plugins = [\"io.containerd.grpc.v1.cri\"]\n\n\
         [grpc]\n  address = \"{d}/containerd.sock\"\n\n\
         [ttrpc]\n  address = \"{d}/containerd.sock.ttrpc\"\n"
    )
}

// ---------------------------------------------------------------------------------------------
// dockerd
// ---------------------------------------------------------------------------------------------

/// A private dockerd (and the containerd it starts): data, exec root, socket, key and log in a
/// temp dir; vfs storage, no iptables, no bridge. `mirror` (`HOST:PORT`) is both its
/// `registry-mirrors` entry (over http) and an insecure registry.
struct Dockerd {
    child: Option<Child>,
    dir: TempDir,
}

impl Dockerd {
    async fn start(mirror: &str) -> Dockerd {
        let config = serde_json::json!({
            "registry-mirrors": [format!("http://{mirror}")],
            "insecure-registries": [mirror],
        });
        Dockerd::start_with(config).await
    }

    /// A dockerd with `config` as its daemon.json (plus its private key path).
    async fn start_with(mut config: Value) -> Dockerd {
        let dir = tempfile::Builder::new()
            .prefix("sb-dockerd-")
            .tempdir()
            .expect("dockerd temp dir");
        let d = dir.path();
        config["deprecated-key-path"] = d.join("key.json").to_str().unwrap().into();
        std::fs::write(d.join("daemon.json"), config.to_string()).expect("write daemon.json");
        let mut dockerd = Dockerd { child: None, dir };
        let mut child = spawn_daemon(
            &mut dockerd_command(dockerd.dir.path()),
            &dockerd.log_path(),
        );
        wait_ready(
            &mut child,
            || dockerd.docker(&["info"]),
            &dockerd.log_path(),
        )
        .await;
        dockerd.child = Some(child);
        dockerd
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("dockerd.log")
    }

    /// `docker -H unix://DIR/docker.sock ARGS`
    fn docker(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(DOCKER);
        cmd.arg("-H")
            .arg(format!("unix://{}/docker.sock", self.dir.path().display()))
            .args(args)
            .env("DOCKER_CONFIG", self.dir.path().join("client"));
        cmd
    }

    /// Runs `docker ARGS`; panics with both logs unless it succeeds. Returns stdout.
    async fn docker_ok(&self, args: &[&str], srv: &Server) -> String {
        let log = self.log_path();
        run_ok(&mut self.docker(args), || {
            format!(
                "dockerd log:\n{}\nserver log:\n{}",
                tail(&log, 30),
                srv.log()
            )
        })
        .await
    }

    async fn pull(&self, image: &str, srv: &Server) {
        self.docker_ok(&["pull", image], srv).await;
    }

    /// `docker image inspect IMAGE` lists `repo_digest` and has the config of `manifest` as Id.
    async fn assert_image(&self, image: &str, repo_digest: &str, manifest: &Value, srv: &Server) {
        let out = self.docker_ok(&["image", "inspect", image], srv).await;
        let inspect: Value = serde_json::from_str(&out).expect("inspect prints JSON");
        let digests = &inspect[0]["RepoDigests"];
        assert!(
            digests.as_array().unwrap().iter().any(|d| d == repo_digest),
            "{image}: RepoDigests {digests}, want {repo_digest}"
        );
        assert_eq!(
            inspect[0]["Id"], manifest["config"]["digest"],
            "{image}: Id"
        );
    }

    /// dockerd never gave up on the mirror (it would have tried Docker Hub next): its log has
    /// no "Attempting next endpoint" line but for errors containing one of `tolerated`.
    fn assert_no_fallback(&self, srv: &Server, tolerated: &[&str]) {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let fallbacks: Vec<&str> = log
            .lines()
            .filter(|l| l.contains(FALLBACK) && !tolerated.iter().any(|t| l.contains(t)))
            .collect();
        assert!(
            fallbacks.is_empty(),
            "dockerd fell back from the mirror:\n{}\nserver log:\n{}",
            fallbacks.join("\n"),
            srv.log()
        );
    }

    /// SIGTERM (dockerd then stops its containerd and unmounts), SIGKILL after `STOP_TIMEOUT`.
    async fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Some(pid) = child.id() {
            signal(pid, "TERM");
        }
        if tokio::time::timeout(STOP_TIMEOUT, child.wait())
            .await
            .is_err()
        {
            let _ = child.kill().await;
        }
        self.clean_up();
    }

    /// Kills the containerd that dockerd started (if still alive) and unmounts what is left.
    fn clean_up(&self) {
        let exec = self.dir.path().join("exec");
        let pid_file = exec.join("containerd/containerd.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            if String::from_utf8_lossy(&cmdline).contains(exec.to_str().unwrap()) {
                signal(pid, "KILL");
            }
        }
        unmount_under(self.dir.path());
    }
}

impl Drop for Dockerd {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
            if std::thread::panicking() {
                eprintln!("--- dockerd log tail:\n{}", tail(&self.log_path(), 30));
            }
        }
        self.clean_up();
    }
}

fn dockerd_command(d: &Path) -> Command {
    let mut cmd = Command::new("dockerd");
    cmd.arg("--config-file")
        .arg(d.join("daemon.json"))
        .arg("--data-root")
        .arg(d.join("data"))
        .arg("--exec-root")
        .arg(d.join("exec"))
        .arg("--pidfile")
        .arg(d.join("docker.pid"))
        .arg("--host")
        .arg(format!("unix://{}/docker.sock", d.display()))
        .args([
            "--storage-driver",
            "vfs",
            "--iptables=false",
            "--ip6tables=false",
        ])
        .args(["--ip-forward=false", "--ip-masq=false", "--bridge=none"])
        .args(["--exec-opt", "native.cgroupdriver=cgroupfs"]);
    cmd
}
