//! Settings resolved once from flags and environment (flags win; clap reads the variables)
//! into a `Config` the commands share.
//! Must not touch: the store or the network.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::cli::Global;
use crate::shared::Location;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConfigError {
    #[error("--upstream {0:?}: expected REGISTRY=URL, e.g. docker.io=http://127.0.0.1:5001")]
    Upstream(String),
    #[error("no store directory: set --store, STABLEBUILD_STORE or HOME")]
    NoStore,
    #[error("--store {0}")]
    Bucket(String),
    #[error("--cache only applies to a shared store (--store s3://BUCKET[/PREFIX])")]
    CacheWithoutBucket,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The local store directory; with a shared store, this process's cache of it.
    pub store: PathBuf,
    /// The bucket when the store is shared (`--store s3://BUCKET[/PREFIX]`).
    pub shared: Option<Location>,
    /// The bound of a shared store's cache.
    pub cache_size: CacheSize,
    pub upstreams: BTreeMap<String, String>,
    /// Registries reached without TLS verification, then over plain http.
    pub insecure: Vec<String>,
    /// CA certificates trusted for upstream registries besides the system's.
    pub upstream_ca: Vec<PathBuf>,
    /// `--upstream-auth REGISTRY=FILE` items.
    pub upstream_auth: Vec<String>,
    /// `--allow-private REGISTRY/REPO-GLOB` items.
    pub allow_private: Vec<String>,
    pub json: bool,
    /// Fail instead of waiting when another process holds the store.
    pub no_wait: bool,
    pub verbose: u8,
    /// A server to run commands through (`--server`), and its admin token.
    pub server: Option<String>,
    pub token: Option<String>,
}

impl Config {
    pub fn resolve(g: &Global) -> Result<Config, ConfigError> {
        let shared = match g.store.as_deref().and_then(Location::parse) {
            Some(parsed) => Some(parsed.map_err(ConfigError::Bucket)?),
            None => None,
        };
        let store = match (&shared, &g.store, &g.cache) {
            (Some(_), _, Some(cache)) => cache.clone(),
            (Some(bucket), _, None) => default_cache(bucket)?,
            (None, _, Some(_)) => return Err(ConfigError::CacheWithoutBucket),
            (None, Some(dir), None) => PathBuf::from(dir),
            (None, None, None) => default_store()?,
        };
        Ok(Config {
            store,
            shared,
            cache_size: g.cache_size.unwrap_or(CacheSize::Share(25)),
            upstreams: parse_upstreams(&g.upstream)?,
            insecure: g.insecure_registries.clone(),
            upstream_ca: g.upstream_ca.clone(),
            upstream_auth: g.upstream_auth.clone(),
            allow_private: g.allow_private.clone(),
            json: g.json,
            no_wait: g.no_wait,
            verbose: g.verbose,
            server: g.server.clone(),
            token: g.token.clone(),
        })
    }
}

/// How big a shared store's cache may grow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheSize {
    Bytes(u64),
    /// A percentage of the size of the filesystem holding the cache.
    Share(u8),
}

impl CacheSize {
    /// The limit in bytes for a cache in `dir` (which may not exist yet: its nearest
    /// existing ancestor's filesystem counts).
    pub fn bytes(self, dir: &std::path::Path) -> u64 {
        match self {
            CacheSize::Bytes(n) => n,
            CacheSize::Share(pct) => {
                let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(dir);
                let total = rustix::fs::statvfs(existing)
                    .map(|s| s.f_blocks.saturating_mul(s.f_frsize))
                    .unwrap_or(0);
                total / 100 * pct as u64
            }
        }
    }
}

/// `50GiB`, `800M`, `1.5T`, `123456` (bytes) or `40%`.
pub fn parse_cache_size(s: &str) -> Result<CacheSize, String> {
    let s = s.trim();
    let bad = || format!("{s:?}: expected a size such as 50GiB, 800M or 40% (of the disk)");
    if let Some(pct) = s.strip_suffix('%') {
        let pct: u8 = pct.trim().parse().map_err(|_| bad())?;
        return match pct {
            1..=100 => Ok(CacheSize::Share(pct)),
            _ => Err(bad()),
        };
    }
    let digits = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (number, unit) = s.split_at(digits);
    let number: f64 = number.parse().map_err(|_| bad())?;
    let scale: u64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    Ok(CacheSize::Bytes((number * scale as f64) as u64))
}

/// `$XDG_CACHE_HOME/stablebuild/s3/BUCKET[/PREFIX]`, else under `~/.cache`: one cache per
/// bucket and prefix.
fn default_cache(bucket: &Location) -> Result<PathBuf, ConfigError> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    let base = match var("XDG_CACHE_HOME") {
        Some(xdg) => PathBuf::from(xdg),
        None => PathBuf::from(var("HOME").ok_or(ConfigError::NoStore)?).join(".cache"),
    };
    let mut dir = base.join("stablebuild").join("s3").join(&bucket.bucket);
    for part in bucket
        .prefix
        .split('/')
        .filter(|p| !p.is_empty() && *p != "..")
    {
        dir = dir.join(part);
    }
    Ok(dir)
}

/// `$XDG_DATA_HOME/stablebuild`, else `~/.local/share/stablebuild`.
fn default_store() -> Result<PathBuf, ConfigError> {
    let var = |name| std::env::var_os(name).filter(|v| !v.is_empty());
    if let Some(xdg) = var("XDG_DATA_HOME") {
        return Ok(PathBuf::from(xdg).join("stablebuild"));
    }
    let home = var("HOME").ok_or(ConfigError::NoStore)?;
    Ok(PathBuf::from(home).join(".local/share/stablebuild"))
}

pub fn parse_upstreams(items: &[String]) -> Result<BTreeMap<String, String>, ConfigError> {
    let mut map = BTreeMap::new();
    for item in items.iter().map(|s| s.trim()).filter(|s| !s.is_empty()) {
        let (name, url) = item
            .split_once('=')
            .filter(|(n, u)| {
                !n.is_empty() && (u.starts_with("http://") || u.starts_with("https://"))
            })
            .ok_or_else(|| ConfigError::Upstream(item.to_string()))?;
        let name = match name.to_ascii_lowercase().as_str() {
            "index.docker.io" | "registry-1.docker.io" => "docker.io".to_string(),
            other => other.to_string(),
        };
        map.insert(name, url.trim_end_matches('/').to_string());
    }
    Ok(map)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstreams_parse_and_normalise() {
        let items = vec![
            "docker.io=http://127.0.0.1:5001/".to_string(),
            " ghcr.io=https://mirror.example ".to_string(),
            "registry-1.docker.io=http://x".to_string(),
        ];
        let map = parse_upstreams(&items).unwrap();
        assert_eq!(map["docker.io"], "http://x");
        assert_eq!(map["ghcr.io"], "https://mirror.example");
    }

    #[test]
    fn cache_sizes_parse() {
        assert_eq!(parse_cache_size("50GiB"), Ok(CacheSize::Bytes(50 << 30)));
        assert_eq!(parse_cache_size("800M"), Ok(CacheSize::Bytes(800 << 20)));
        assert_eq!(parse_cache_size("1.5g"), Ok(CacheSize::Bytes(3 << 29)));
        assert_eq!(parse_cache_size("4096"), Ok(CacheSize::Bytes(4096)));
        assert_eq!(parse_cache_size("40%"), Ok(CacheSize::Share(40)));
        for bad in ["", "GiB", "10 parsecs", "0%", "150%", "-1G"] {
            assert!(parse_cache_size(bad).is_err(), "{bad}");
        }
        let dir = tempfile::tempdir().unwrap();
        assert!(CacheSize::Share(25).bytes(&dir.path().join("not/yet")) > 0);
    }

    #[test]
    fn bad_upstreams_name_the_item() {
        for bad in [
            "docker.io",
            "=http://x",
            "docker.io=ftp://x",
            "docker.io=127.0.0.1:5000",
        ] {
            let err = parse_upstreams(&[bad.to_string()]).unwrap_err();
            assert_eq!(err, ConfigError::Upstream(bad.to_string()));
        }
    }
}
