//! Upstream credentials: where a registry's user and password (or token) come from.
//!
//! Owns: reading `--upstream-auth REGISTRY=FILE` files (`user:token`), Docker's
//! `config.json` (`$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`: `auths`
//! entries, `credHelpers` and `credsStore`), and running `docker-credential-NAME get` for
//! the helpers. Precedence for one registry: `--upstream-auth`, then `credHelpers`, then
//! `credsStore`, then `auths` (as the Docker CLI, except that an `auths` entry with data is
//! still used when the store has nothing).
//! Must not touch: the network, and never a log line, error or Debug output holding a
//! secret: [`Credential`]'s Debug prints the user only; errors name files, keys and
//! helpers, never their contents.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;
use tokio::io::AsyncWriteExt;

/// How long a credential helper may take.
const HELPER_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    #[error("--upstream-auth {0:?}: expected REGISTRY=FILE, e.g. docker.io=/etc/stablebuild/hub")]
    Flag(String),
    #[error("--upstream-auth {registry}={path}: {reason}")]
    File {
        registry: String,
        path: String,
        reason: String,
    },
    #[error("{path}: {reason}; fix it, or point DOCKER_CONFIG at another directory")]
    DockerConfig { path: String, reason: String },
    #[error("{registry}: credential helper docker-credential-{helper}: {reason}")]
    Helper {
        registry: String,
        helper: String,
        reason: String,
    },
}

/// A user and its password or access token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential {
    pub user: String,
    pub secret: String,
    /// Where it came from, for messages: `--upstream-auth FILE`, `~/.docker/config.json`, …
    pub source: String,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "Credential({} from {}, secret hidden)",
            self.user, self.source
        )
    }
}

impl Credential {
    /// The `Authorization: Basic …` value.
    pub fn basic(&self) -> String {
        let pair = format!("{}:{}", self.user, self.secret);
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(pair)
        )
    }
}

/// Every source of credentials, loaded once; helpers run when a registry is first used.
#[derive(Debug, Clone, Default)]
pub struct Credentials {
    explicit: BTreeMap<String, Credential>,
    docker: Option<DockerConfig>,
}

/// The parts of Docker's config.json that name credentials.
#[derive(Debug, Clone, Default)]
struct DockerConfig {
    /// Registry name → credential from an `auths` entry.
    auths: BTreeMap<String, Credential>,
    /// Registry name → helper name.
    helpers: BTreeMap<String, String>,
    store: Option<String>,
}

impl Credentials {
    /// `--upstream-auth` items and the Docker config in `docker_dir` (when it has a
    /// config.json; a missing file means no credentials from it).
    pub fn load(
        flags: &[String],
        docker_dir: Option<&Path>,
    ) -> Result<Credentials, CredentialError> {
        let mut explicit = BTreeMap::new();
        for item in flags {
            let (registry, path) = item
                .split_once('=')
                .filter(|(r, p)| !r.trim().is_empty() && !p.trim().is_empty())
                .ok_or_else(|| CredentialError::Flag(item.clone()))?;
            let registry = canonical_registry(registry.trim());
            let credential = read_pair_file(&registry, Path::new(path.trim()))?;
            explicit.insert(registry, credential);
        }
        let docker = match docker_dir.map(|d| d.join("config.json")) {
            Some(path) if path.exists() => Some(DockerConfig::read(&path)?),
            _ => None,
        };
        Ok(Credentials { explicit, docker })
    }

    /// The credential for `registry`, running a helper when the config names one.
    pub async fn lookup(&self, registry: &str) -> Result<Option<Credential>, CredentialError> {
        let registry = canonical_registry(registry);
        if let Some(c) = self.explicit.get(&registry) {
            return Ok(Some(c.clone()));
        }
        let Some(docker) = &self.docker else {
            return Ok(None);
        };
        let helper = docker.helpers.get(&registry).or(docker.store.as_ref());
        if let Some(helper) = helper
            && let Some(found) = run_helper(helper, &registry).await?
        {
            return Ok(Some(found));
        }
        Ok(docker.auths.get(&registry).cloned())
    }
}

/// The directory of Docker's config: `$DOCKER_CONFIG`, else `~/.docker`.
pub fn docker_config_dir() -> Option<PathBuf> {
    match std::env::var_os("DOCKER_CONFIG") {
        Some(dir) if !dir.is_empty() => Some(PathBuf::from(dir)),
        _ => std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".docker")),
    }
}

/// The registry name stablebuild uses for a config key or flag: scheme and path dropped,
/// Docker Hub's aliases folded into `docker.io`.
pub fn canonical_registry(key: &str) -> String {
    let key = key.trim();
    let key = key
        .strip_prefix("https://")
        .or_else(|| key.strip_prefix("http://"))
        .unwrap_or(key);
    let host = key.split('/').next().unwrap_or(key).to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" | "registry.hub.docker.com" => {
            "docker.io".to_string()
        }
        _ => host,
    }
}

/// `user:token` on the file's first line.
fn read_pair_file(registry: &str, path: &Path) -> Result<Credential, CredentialError> {
    let bad = |reason: &str| CredentialError::File {
        registry: registry.to_string(),
        path: path.display().to_string(),
        reason: reason.to_string(),
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(&e.to_string()))?;
    let line = text.lines().next().unwrap_or("").trim();
    let (user, secret) = line
        .split_once(':')
        .filter(|(u, s)| !u.is_empty() && !s.is_empty())
        .ok_or_else(|| bad("expected one line USER:TOKEN"))?;
    Ok(Credential {
        user: user.to_string(),
        secret: secret.to_string(),
        source: format!("--upstream-auth {}", path.display()),
    })
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    auths: BTreeMap<String, RawAuth>,
    #[serde(default)]
    cred_helpers: BTreeMap<String, String>,
    creds_store: Option<String>,
}

#[derive(Deserialize, Default)]
struct RawAuth {
    auth: Option<String>,
    username: Option<String>,
    password: Option<String>,
}

impl DockerConfig {
    fn read(path: &Path) -> Result<DockerConfig, CredentialError> {
        let shown = path.display().to_string();
        let bad = |reason: String| CredentialError::DockerConfig {
            path: shown.clone(),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let raw: RawConfig =
            serde_json::from_str(&text).map_err(|e| bad(format!("not Docker's JSON: {e}")))?;
        let mut auths = BTreeMap::new();
        for (key, entry) in raw.auths {
            let source = format!("{shown} (auths.{key})");
            if let Some(c) = entry
                .credential(&source)
                .map_err(|r| bad(format!("auths.{key}: {r}")))?
            {
                auths.insert(canonical_registry(&key), c);
            }
        }
        let helpers = raw
            .cred_helpers
            .into_iter()
            .map(|(k, v)| (canonical_registry(&k), v))
            .collect();
        let store = raw.creds_store.filter(|s| !s.is_empty());
        Ok(DockerConfig {
            auths,
            helpers,
            store,
        })
    }
}

impl RawAuth {
    /// The entry's user and password; None for an empty entry (the credsStore keeps it).
    fn credential(self, source: &str) -> Result<Option<Credential>, String> {
        let (user, secret) = match (self.auth.filter(|a| !a.is_empty()), self.username) {
            (Some(auth), _) => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(auth.trim())
                    .map_err(|_| "auth is not base64".to_string())?;
                let pair = String::from_utf8(decoded).map_err(|_| "auth is not UTF-8")?;
                let (u, s) = pair.split_once(':').ok_or("auth is not USER:PASSWORD")?;
                (u.to_string(), s.to_string())
            }
            (None, Some(user)) => (user, self.password.unwrap_or_default()),
            (None, None) => return Ok(None),
        };
        Ok(Some(Credential {
            user,
            secret,
            source: source.to_string(),
        }))
    }
}

#[derive(Deserialize)]
struct HelperAnswer {
    #[serde(rename = "Username")]
    username: String,
    #[serde(rename = "Secret")]
    secret: String,
}

/// `docker-credential-HELPER get` with the registry's server URL on stdin; None when the
/// helper has nothing for it.
async fn run_helper(helper: &str, registry: &str) -> Result<Option<Credential>, CredentialError> {
    let bad = |reason: String| CredentialError::Helper {
        registry: registry.to_string(),
        helper: helper.to_string(),
        reason,
    };
    let server = match registry {
        "docker.io" => "https://index.docker.io/v1/".to_string(),
        other => other.to_string(),
    };
    let program = format!("docker-credential-{helper}");
    let mut child = tokio::process::Command::new(&program)
        .arg("get")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| bad(format!("cannot run {program}: {e}")))?;
    if let Some(mut stdin) = child.stdin.take() {
        stdin
            .write_all(server.as_bytes())
            .await
            .map_err(|e| bad(format!("writing its input: {e}")))?;
    }
    let output = tokio::time::timeout(HELPER_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| bad(format!("no answer in {HELPER_TIMEOUT:?}")))?
        .map_err(|e| bad(e.to_string()))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        if stdout.contains("credentials not found") {
            return Ok(None);
        }
        let stderr = String::from_utf8_lossy(&output.stderr);
        let said = stderr.lines().next().unwrap_or("").trim();
        return Err(bad(format!("exited with {}: {said}", output.status)));
    }
    let answer: HelperAnswer = serde_json::from_str(&stdout)
        .map_err(|_| bad("did not answer {\"Username\",\"Secret\"} JSON".to_string()))?;
    if answer.username == "<token>" {
        return Err(bad(
            "answered an identity token, which stablebuild does not use; \
             give a user and access token with --upstream-auth"
                .to_string(),
        ));
    }
    Ok(Some(Credential {
        user: answer.username,
        secret: answer.secret,
        source: program,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    #[test]
    fn registry_names_fold_docker_hub_aliases() {
        assert_eq!(
            canonical_registry("https://index.docker.io/v1/"),
            "docker.io"
        );
        assert_eq!(canonical_registry("registry-1.docker.io"), "docker.io");
        assert_eq!(canonical_registry("https://GHCR.io/v2/"), "ghcr.io");
        assert_eq!(canonical_registry("127.0.0.1:5001"), "127.0.0.1:5001");
    }

    #[test]
    fn auths_entries_decode_base64_and_plain_fields() {
        let dir = tempfile::tempdir().unwrap();
        let auth = base64::engine::general_purpose::STANDARD.encode("hub:s3cret:x");
        let text = format!(
            r#"{{"auths":{{"https://index.docker.io/v1/":{{"auth":"{auth}"}},
               "ghcr.io":{{"username":"gh","password":"pw"}},"quay.io":{{}}}}}}"#
        );
        write(dir.path(), "config.json", &text);
        let creds = Credentials::load(&[], Some(dir.path())).unwrap();
        let hub = &creds.docker.as_ref().unwrap().auths["docker.io"];
        assert_eq!(
            (hub.user.as_str(), hub.secret.as_str()),
            ("hub", "s3cret:x")
        );
        let gh = &creds.docker.as_ref().unwrap().auths["ghcr.io"];
        assert_eq!((gh.user.as_str(), gh.secret.as_str()), ("gh", "pw"));
    }

    #[test]
    fn bad_docker_config_names_the_file_not_the_secret() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "config.json",
            r#"{"auths":{"x.io":{"auth":"%%%hunter2"}}}"#,
        );
        let err = Credentials::load(&[], Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("config.json") && err.contains("auths.x.io"),
            "{err}"
        );
        assert!(!err.contains("hunter2"), "{err}");
        write(dir.path(), "config.json", "{not json");
        let err = Credentials::load(&[], Some(dir.path()))
            .unwrap_err()
            .to_string();
        assert!(err.contains("DOCKER_CONFIG"), "{err}");
    }

    #[test]
    fn upstream_auth_files_hold_user_and_token() {
        let dir = tempfile::tempdir().unwrap();
        let file = write(dir.path(), "hub", "robot:dckr_pat_123\n");
        let flag = format!("index.docker.io={}", file.display());
        let creds = Credentials::load(&[flag], None).unwrap();
        let c = &creds.explicit["docker.io"];
        assert_eq!(
            (c.user.as_str(), c.secret.as_str()),
            ("robot", "dckr_pat_123")
        );
        assert!(!format!("{c:?}").contains("dckr_pat_123"));
        let empty = write(dir.path(), "empty", "robot\n");
        let err = Credentials::load(&[format!("docker.io={}", empty.display())], None);
        assert!(matches!(err, Err(CredentialError::File { .. })), "{err:?}");
        assert_eq!(
            Credentials::load(&["docker.io".into()], None).unwrap_err(),
            CredentialError::Flag("docker.io".into())
        );
    }

    #[tokio::test]
    async fn explicit_credentials_win_over_the_docker_config() {
        let dir = tempfile::tempdir().unwrap();
        write(
            dir.path(),
            "config.json",
            r#"{"auths":{"ghcr.io":{"username":"from-config","password":"a"}}}"#,
        );
        let file = write(dir.path(), "gh", "from-flag:b");
        let flag = format!("ghcr.io={}", file.display());
        let creds = Credentials::load(&[flag], Some(dir.path())).unwrap();
        let c = creds.lookup("ghcr.io").await.unwrap().unwrap();
        assert_eq!(c.user, "from-flag");
        assert_eq!(creds.lookup("quay.io").await.unwrap(), None);
    }
}
