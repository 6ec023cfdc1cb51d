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
    pub upstreams: BTreeMap<String, String>,
    /// Registries reached without TLS verification, then over plain http.
    pub insecure: Vec<String>,
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
            upstreams: parse_upstreams(&g.upstream)?,
            insecure: g.insecure_registries.clone(),
            json: g.json,
            no_wait: g.no_wait,
            verbose: g.verbose,
            server: g.server.clone(),
            token: g.token.clone(),
        })
    }
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
