//! Pull access control (`serve --pull-auth htpasswd:FILE`, `--pull-token FILE`; off by
//! default): who may read `/v2/`. A client without valid credentials gets `401` with
//! `WWW-Authenticate: Basic realm="stablebuild"`, the challenge Docker, containerd, podman and
//! skopeo answer with the credentials they were given (`docker login`, `--creds`).
//!
//! Accepted: Basic with a user and password of the htpasswd file (bcrypt entries only, as
//! distribution's htpasswd auth), Basic with any user and a pull token as the password, or
//! `Authorization: Bearer TOKEN`. bcrypt is slow on purpose and clients send Basic on every
//! request, so a verified pair is remembered (by its SHA-256, never in clear) for a while.
//!
//! Owns: reading the two files and checking a request's `Authorization`.
//! Must not touch: the admin API (its own token) or the dashboard (its own sign-in).

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::http::{HeaderMap, header};
use base64::Engine;
use sha2::{Digest as _, Sha256};

/// How long a verified htpasswd pair is taken without running bcrypt again.
const REMEMBER: Duration = Duration::from_secs(300);
/// The most verified pairs remembered (then the memory starts again).
const REMEMBERED: usize = 4096;

#[derive(Debug, thiserror::Error)]
pub enum PullAuthError {
    #[error("{path}: {reason}")]
    Read { path: PathBuf, reason: String },
    #[error("{path} line {line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// The credentials that may pull.
#[derive(Default)]
pub struct PullAuth {
    /// User → bcrypt hash.
    users: HashMap<String, String>,
    /// (label, token).
    tokens: Vec<(String, String)>,
    /// SHA-256 of `user:password` pairs bcrypt accepted, and when.
    verified: Mutex<HashMap<[u8; 32], Instant>>,
}

impl PullAuth {
    /// From `--pull-auth htpasswd:FILE` and `--pull-token FILE` (either may be absent);
    /// `None` when neither is given: pulls are open.
    pub fn load(
        htpasswd: Option<&Path>,
        tokens: Option<&Path>,
    ) -> Result<Option<PullAuth>, PullAuthError> {
        if htpasswd.is_none() && tokens.is_none() {
            return Ok(None);
        }
        let mut auth = PullAuth::default();
        if let Some(path) = htpasswd {
            auth.users = parse_htpasswd(path, &read(path)?)?;
        }
        if let Some(path) = tokens {
            auth.tokens = parse_tokens(path, &read(path)?)?;
        }
        Ok(Some(auth))
    }

    /// Who the request's credentials name (a user, or `token LABEL`), or `None`.
    pub fn check(&self, headers: &HeaderMap) -> Option<String> {
        let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
        let (scheme, rest) = value.split_once(' ')?;
        match scheme.to_ascii_lowercase().as_str() {
            "bearer" => self.token(rest.trim()),
            "basic" => {
                let decoded = base64::engine::general_purpose::STANDARD
                    .decode(rest.trim())
                    .ok()?;
                let pair = String::from_utf8(decoded).ok()?;
                let (user, password) = pair.split_once(':')?;
                self.user(user, password).or_else(|| self.token(password))
            }
            _ => None,
        }
    }

    fn token(&self, given: &str) -> Option<String> {
        let mut found = None;
        // Every token is compared, so the time taken does not say which one matched.
        for (label, token) in &self.tokens {
            if crate::secret::same(given, token) {
                found = Some(format!("token {label}"));
            }
        }
        found
    }

    fn user(&self, user: &str, password: &str) -> Option<String> {
        let hash = self.users.get(user)?;
        let key: [u8; 32] = Sha256::digest(format!("{user}:{password}")).into();
        let now = Instant::now();
        {
            let verified = self.verified.lock().expect("pull auth lock");
            if verified.get(&key).is_some_and(|at| now - *at < REMEMBER) {
                return Some(user.to_string());
            }
        }
        if !bcrypt::verify(password, hash).unwrap_or(false) {
            return None;
        }
        let mut verified = self.verified.lock().expect("pull auth lock");
        if verified.len() >= REMEMBERED {
            verified.clear();
        }
        verified.insert(key, now);
        Some(user.to_string())
    }
}

fn read(path: &Path) -> Result<String, PullAuthError> {
    std::fs::read_to_string(path).map_err(|e| PullAuthError::Read {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

/// `user:$2y$…` lines (`htpasswd -B`); blank lines and `#` comments are skipped.
fn parse_htpasswd(path: &Path, text: &str) -> Result<HashMap<String, String>, PullAuthError> {
    let mut users = HashMap::new();
    for (n, line) in lines(text) {
        let bad = |reason: &str| PullAuthError::Line {
            path: path.to_path_buf(),
            line: n,
            reason: reason.to_string(),
        };
        let (user, hash) = line
            .split_once(':')
            .filter(|(u, _)| !u.is_empty())
            .ok_or_else(|| bad("expected USER:HASH"))?;
        if !["$2a$", "$2b$", "$2y$", "$2x$"]
            .iter()
            .any(|p| hash.starts_with(p))
        {
            return Err(bad(
                "not a bcrypt entry: only bcrypt is accepted (make entries with htpasswd -B)",
            ));
        }
        users.insert(user.to_string(), hash.to_string());
    }
    Ok(users)
}

/// `LABEL TOKEN` lines; blank lines and `#` comments are skipped.
fn parse_tokens(path: &Path, text: &str) -> Result<Vec<(String, String)>, PullAuthError> {
    let mut tokens = Vec::new();
    for (n, line) in lines(text) {
        let bad = |reason: &str| PullAuthError::Line {
            path: path.to_path_buf(),
            line: n,
            reason: reason.to_string(),
        };
        let mut words = line.split_whitespace();
        let (Some(label), Some(token), None) = (words.next(), words.next(), words.next()) else {
            return Err(bad("expected LABEL TOKEN (two words)"));
        };
        if token.len() < 16 {
            return Err(bad("the token is shorter than 16 characters"));
        }
        tokens.push((label.to_string(), token.to_string()));
    }
    Ok(tokens)
}

/// Numbered lines (from 1), trimmed, without blanks and comments.
fn lines(text: &str) -> impl Iterator<Item = (usize, &str)> {
    text.lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l.trim()))
        .filter(|(_, l)| !l.is_empty() && !l.starts_with('#'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn basic(user: &str, password: &str) -> HeaderMap {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        let mut h = HeaderMap::new();
        h.insert(
            header::AUTHORIZATION,
            format!("Basic {encoded}").parse().unwrap(),
        );
        h
    }

    fn auth() -> PullAuth {
        let hash = bcrypt::hash("s3cret", 4).unwrap();
        let p = Path::new("f");
        PullAuth {
            users: parse_htpasswd(p, &format!("# users\nci:{hash}\n")).unwrap(),
            tokens: parse_tokens(p, "farm 0123456789abcdef0123\n").unwrap(),
            verified: Mutex::default(),
        }
    }

    #[test]
    fn users_tokens_and_bearer_are_accepted_and_nothing_else() {
        let a = auth();
        assert_eq!(a.check(&basic("ci", "s3cret")).as_deref(), Some("ci"));
        // Remembered: the second check does not need bcrypt, and still says who.
        assert_eq!(a.check(&basic("ci", "s3cret")).as_deref(), Some("ci"));
        assert_eq!(a.check(&basic("ci", "wrong")), None);
        assert_eq!(a.check(&basic("nobody", "s3cret")), None);
        let token = "0123456789abcdef0123";
        assert_eq!(a.check(&basic("x", token)).as_deref(), Some("token farm"));
        let mut bearer = HeaderMap::new();
        bearer.insert(
            header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        assert_eq!(a.check(&bearer).as_deref(), Some("token farm"));
        assert_eq!(a.check(&HeaderMap::new()), None);
        let mut junk = HeaderMap::new();
        junk.insert(header::AUTHORIZATION, "Basic !!!".parse().unwrap());
        assert_eq!(a.check(&junk), None);
    }

    #[test]
    fn bad_files_name_the_line() {
        let p = Path::new("/etc/htpasswd");
        let e = parse_htpasswd(p, "ok:$2y$05$abc\nold:$apr1$xyz\n").unwrap_err();
        assert_eq!(
            e.to_string().split(':').next(),
            Some("/etc/htpasswd line 2")
        );
        assert!(e.to_string().contains("htpasswd -B"), "{e}");
        assert!(parse_htpasswd(p, "nocolon\n").is_err());
        let t = Path::new("tokens");
        assert!(
            parse_tokens(t, "label\n")
                .unwrap_err()
                .to_string()
                .contains("line 1")
        );
        assert!(parse_tokens(t, "label short\n").is_err());
        assert!(parse_tokens(t, "a 0123456789abcdef0 extra\n").is_err());
    }
}
