//! The public-only rule: with credentials for a registry, the mirror could fetch repositories
//! that an anonymous user cannot, and would then serve them to anyone who pulls from it.
//!
//! Owns: `--allow-private REGISTRY/REPO-GLOB` patterns, and the verdicts of the anonymous
//! check (a repository is public when an anonymous `HEAD` of the manifest asked for succeeds,
//! with the registry's anonymous token flow), remembered per repository for
//! [`VERDICT_TTL`]. The check itself is sent by `Upstream`, which calls [`Verdicts`] here.
//! Must not touch: credentials (an anonymous check never carries any) or the network.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::credentials::canonical_registry;

/// How long a repository's verdict is reused before it is checked again.
pub const VERDICT_TTL: Duration = Duration::from_secs(600);

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "--allow-private {0:?}: expected REGISTRY/REPO-GLOB, e.g. docker.io/acme/* or ghcr.io/acme/tools"
)]
pub struct PatternError(pub String);

/// The repositories that may be mirrored although they are not public.
#[derive(Debug, Clone, Default)]
pub struct AllowPrivate {
    patterns: Vec<(String, String)>,
}

impl AllowPrivate {
    pub fn parse(items: &[String]) -> Result<AllowPrivate, PatternError> {
        let mut patterns = Vec::new();
        for item in items {
            let (registry, repo) = item
                .trim()
                .split_once('/')
                .filter(|(r, p)| !r.is_empty() && !p.is_empty())
                .ok_or_else(|| PatternError(item.clone()))?;
            patterns.push((canonical_registry(registry), repo.to_string()));
        }
        Ok(AllowPrivate { patterns })
    }

    /// Whether `registry/repo` matches a pattern (`*` matches any run of characters, `/`
    /// included; `?` one character). Docker Hub's official images match with or without
    /// their `library/` prefix.
    pub fn allows(&self, registry: &str, repo: &str) -> bool {
        let registry = canonical_registry(registry);
        let short = match registry.as_str() {
            "docker.io" => repo.strip_prefix("library/"),
            _ => None,
        };
        self.patterns.iter().any(|(r, pattern)| {
            *r == registry
                && (glob(pattern.as_bytes(), repo.as_bytes())
                    || short.is_some_and(|s| glob(pattern.as_bytes(), s.as_bytes())))
        })
    }
}

/// `*` and `?` wildcards, iteratively (no recursion, linear backtracking on the last `*`).
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                star = Some((p, t));
                p += 1;
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match star {
                Some((sp, st)) => {
                    p = sp + 1;
                    t = st + 1;
                    star = Some((sp, st + 1));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

/// Remembered answers of the anonymous check, per repository.
#[derive(Default)]
pub struct Verdicts {
    public: Mutex<HashMap<String, Instant>>,
}

impl Verdicts {
    /// True when `repo` was found public less than [`VERDICT_TTL`] ago.
    pub fn known_public(&self, repo: &str) -> bool {
        let public = self.public.lock().expect("verdicts lock");
        public
            .get(repo)
            .is_some_and(|at| at.elapsed() < VERDICT_TTL)
    }

    pub fn note_public(&self, repo: &str) {
        let mut public = self.public.lock().expect("verdicts lock");
        public.retain(|_, at| at.elapsed() < VERDICT_TTL);
        public.insert(repo.to_string(), Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_match_like_shell_words_with_slashes() {
        assert!(glob(b"acme/*", b"acme/tools/cli"));
        assert!(glob(b"acme/t?ols", b"acme/tools"));
        assert!(glob(b"*", b"anything"));
        assert!(glob(b"a*b*c", b"axxbyyc"));
        assert!(!glob(b"a*b*c", b"axxbyy"));
        assert!(!glob(b"acme/*", b"acmex/tools"));
        assert!(!glob(b"acme", b"acme/tools"));
    }

    #[test]
    fn patterns_name_a_registry_and_a_repository() {
        let allow =
            AllowPrivate::parse(&["index.docker.io/acme/*".into(), "ghcr.io/x/y".into()]).unwrap();
        assert!(allow.allows("docker.io", "acme/app"));
        assert!(allow.allows("ghcr.io", "x/y"));
        assert!(!allow.allows("ghcr.io", "acme/app"));
        assert!(!allow.allows("docker.io", "other/app"));
        let official = AllowPrivate::parse(&["docker.io/ubuntu".into()]).unwrap();
        assert!(official.allows("docker.io", "library/ubuntu"));
        for bad in ["docker.io", "/x", "docker.io/", ""] {
            assert!(AllowPrivate::parse(&[bad.into()]).is_err(), "{bad}");
        }
    }

    #[test]
    fn public_verdicts_expire() {
        let verdicts = Verdicts::default();
        assert!(!verdicts.known_public("a/b"));
        verdicts.note_public("a/b");
        assert!(verdicts.known_public("a/b"));
        verdicts
            .public
            .lock()
            .unwrap()
            .insert("a/b".into(), Instant::now() - VERDICT_TTL);
        assert!(!verdicts.known_public("a/b"));
    }
}
