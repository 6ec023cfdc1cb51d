//! Runs the real `stablebuild` binary against a private store and an upstream override.

use std::path::{Path, PathBuf};
use std::process::Output;

use tempfile::TempDir;

pub struct Sb {
    dir: TempDir,
    upstream: String,
    bucket: Option<Bucket>,
}

/// A shared store: `s3://…`, its cache directory, and the environment that reaches it.
struct Bucket {
    store: String,
    cache: PathBuf,
    env: Vec<(String, String)>,
}

/// What a run printed, and how it ended.
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "stdout is not JSON ({e}):\n{}\nstderr:\n{}",
                self.stdout, self.stderr
            )
        })
    }

    /// Panics with everything printed unless the run exited 0.
    pub fn ok(self) -> Run {
        assert_eq!(
            self.code, 0,
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout, self.stderr
        );
        self
    }
}

impl From<Output> for Run {
    fn from(o: Output) -> Run {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_stablebuild")
}

impl Sb {
    /// A fresh store; docker.io is reached at `upstream_url`.
    pub fn new(upstream_url: &str) -> Sb {
        Sb {
            dir: tempfile::tempdir().expect("temp dir"),
            upstream: upstream_url.to_string(),
            bucket: None,
        }
    }

    /// A store in a bucket (`store` is `s3://BUCKET/PREFIX`), reached with `env`, cached in
    /// a fresh directory of this Sb's own: a process on another machine, in effect.
    pub fn shared(upstream_url: &str, store: &str, env: Vec<(String, String)>) -> Sb {
        let dir = tempfile::tempdir().expect("temp dir");
        let cache = dir.path().join("cache");
        Sb {
            dir,
            upstream: upstream_url.to_string(),
            bucket: Some(Bucket {
                store: store.to_string(),
                cache,
                env,
            }),
        }
    }

    /// The local store directory, or a shared store's cache.
    pub fn local(&self) -> PathBuf {
        match &self.bucket {
            Some(b) => b.cache.clone(),
            None => self.store(),
        }
    }

    pub fn store(&self) -> PathBuf {
        self.dir.path().join("store")
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    pub fn command(&self, args: &[&str]) -> tokio::process::Command {
        self.command_via(&[], args)
    }

    /// `command` run through `wrapper` (its words come first, then the binary and its
    /// arguments): e.g. `setpriv --reuid=65534 …` to run as another user.
    pub fn command_via(&self, wrapper: &[&str], args: &[&str]) -> tokio::process::Command {
        let mut cmd = match wrapper.split_first() {
            Some((program, rest)) => {
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(rest).arg(bin());
                cmd
            }
            None => tokio::process::Command::new(bin()),
        };
        match &self.bucket {
            Some(b) => {
                cmd.arg("--store")
                    .arg(&b.store)
                    .arg("--cache")
                    .arg(&b.cache);
                cmd.envs(b.env.iter().map(|(k, v)| (k, v)));
            }
            None => {
                cmd.arg("--store").arg(self.store());
            }
        }
        cmd.arg("--upstream")
            .arg(format!("docker.io={}", self.upstream))
            .args(args)
            .env_remove("STABLEBUILD_STORE")
            .env_remove("STABLEBUILD_UPSTREAM")
            .env_remove("STABLEBUILD_CACHE")
            .env_remove("RUST_LOG")
            // Hermetic: never the user's ~/.docker/config.json (see `docker_config`).
            .env("DOCKER_CONFIG", self.path("docker"))
            .kill_on_drop(true);
        cmd
    }

    /// `run` through `wrapper` (see `command_via`).
    pub async fn run_via(&self, wrapper: &[&str], args: &[&str]) -> Run {
        self.command_via(wrapper, args)
            .output()
            .await
            .expect("run stablebuild")
            .into()
    }

    /// Writes Docker's `config.json` (what `docker login` keeps) where this Sb's commands
    /// look for it (`$DOCKER_CONFIG`).
    pub fn docker_config(&self, config: &serde_json::Value) {
        let dir = self.path("docker");
        std::fs::create_dir_all(&dir).expect("create the docker config dir");
        let json = serde_json::to_vec_pretty(config).expect("docker config json");
        std::fs::write(dir.join("config.json"), json).expect("write docker config.json");
    }

    /// The temp dir holding the store, readable by every user (a temp dir is private).
    pub fn share(&self) {
        use std::os::unix::fs::PermissionsExt;
        let open = std::fs::Permissions::from_mode(0o755);
        std::fs::set_permissions(self.dir.path(), open).expect("chmod the test dir");
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        self.command(args)
            .output()
            .await
            .expect("run stablebuild")
            .into()
    }

    /// Stored blob path for a digest "sha256:…".
    pub fn blob_path(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").expect("sha256 digest");
        self.store().join("blobs/sha256").join(&hex[..2]).join(hex)
    }
}

pub fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}
