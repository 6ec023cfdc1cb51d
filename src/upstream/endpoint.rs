//! Where a registry name is reached: `--upstream REGISTRY=URL` overrides, Docker Hub's real
//! endpoint, and insecure registries as Docker treats them — `localhost`, `127.0.0.0/8` and
//! `::1` always, others named with `--insecure-registry HOST[:PORT]`: https first (without
//! certificate verification), then plain http.
//! Pure: strings only; the client in `upstream.rs` makes the requests.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr};

/// How to reach one registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The URL tried first, without a trailing slash.
    pub primary: String,
    /// Plain http, for an insecure registry whose https does not answer.
    pub fallback: Option<String>,
    /// An insecure registry's certificate is not verified (as Docker does).
    pub skip_verify: bool,
}

#[derive(Debug, Clone, Default)]
pub struct Endpoints {
    overrides: BTreeMap<String, String>,
    insecure: Vec<String>,
}

impl Endpoints {
    /// `overrides` maps registry names to URLs; `insecure` holds `HOST` or `HOST:PORT`.
    pub fn new(overrides: BTreeMap<String, String>, insecure: &[String]) -> Endpoints {
        let insecure = insecure
            .iter()
            .map(|h| h.trim().trim_end_matches('/').to_ascii_lowercase())
            .filter(|h| !h.is_empty())
            .collect();
        Endpoints {
            overrides,
            insecure,
        }
    }

    pub fn resolve(&self, registry: &str) -> Endpoint {
        let insecure = self.is_insecure(registry);
        let primary = match self.overrides.get(registry) {
            Some(url) => url.trim_end_matches('/').to_string(),
            None if registry == "docker.io" => "https://registry-1.docker.io".to_string(),
            None => format!("https://{registry}"),
        };
        let fallback = primary
            .strip_prefix("https://")
            .filter(|_| insecure)
            .map(|rest| format!("http://{rest}"));
        Endpoint {
            primary,
            fallback,
            skip_verify: insecure,
        }
    }

    /// Loopback registries, and those named with `--insecure-registry` (by host, or by
    /// host and port).
    pub fn is_insecure(&self, registry: &str) -> bool {
        let registry = registry.to_ascii_lowercase();
        let host = host_of(&registry);
        is_loopback(host) || self.insecure.iter().any(|i| *i == registry || i == host)
    }
}

/// `127.0.0.1:5000` → `127.0.0.1`; `[::1]:5000` → `::1`; `localhost` → `localhost`.
fn host_of(registry: &str) -> &str {
    if let Some(rest) = registry.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match registry.rsplit_once(':') {
        Some((host, port)) if port.bytes().all(|b| b.is_ascii_digit()) => host,
        _ => registry,
    }
}

fn is_loopback(host: &str) -> bool {
    host == "localhost"
        || host.ends_with(".localhost")
        || match host.parse::<IpAddr>() {
            Ok(IpAddr::V4(v4)) => v4.is_loopback(),
            Ok(IpAddr::V6(v6)) => v6 == Ipv6Addr::LOCALHOST,
            Err(_) => false,
        }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_registries_are_insecure_like_dockers() {
        let e = Endpoints::new(BTreeMap::new(), &[]);
        for r in [
            "localhost",
            "localhost:5000",
            "127.0.0.1:5101",
            "127.9.9.9",
            "[::1]:5000",
        ] {
            assert!(e.is_insecure(r), "{r}");
        }
        for r in [
            "docker.io",
            "ghcr.io",
            "128.0.0.1:5000",
            "localhost.example.com",
            "10.0.0.1",
        ] {
            assert!(!e.is_insecure(r), "{r}");
        }
        let ep = e.resolve("127.0.0.1:5101");
        assert_eq!(ep.primary, "https://127.0.0.1:5101");
        assert_eq!(ep.fallback.as_deref(), Some("http://127.0.0.1:5101"));
        assert!(ep.skip_verify);
    }

    #[test]
    fn named_insecure_registries_match_by_host_or_host_and_port() {
        let e = Endpoints::new(
            BTreeMap::new(),
            &["reg.lan".into(), "other.lan:5000".into()],
        );
        assert!(e.is_insecure("reg.lan") && e.is_insecure("reg.lan:443"));
        assert!(e.is_insecure("other.lan:5000") && !e.is_insecure("other.lan:5001"));
        assert!(!e.is_insecure("ghcr.io"));
    }

    #[test]
    fn overrides_and_docker_hub() {
        let mut o = BTreeMap::new();
        o.insert("docker.io".to_string(), "http://127.0.0.1:9/".to_string());
        o.insert("reg.lan".to_string(), "https://10.1.1.1:5000".to_string());
        let e = Endpoints::new(o, &["reg.lan".into()]);
        assert_eq!(e.resolve("docker.io").primary, "http://127.0.0.1:9");
        assert_eq!(e.resolve("docker.io").fallback, None);
        let lan = e.resolve("reg.lan");
        assert_eq!(lan.fallback.as_deref(), Some("http://10.1.1.1:5000"));
        let hub = Endpoints::default().resolve("docker.io");
        assert_eq!(hub.primary, "https://registry-1.docker.io");
        assert!(!hub.skip_verify && hub.fallback.is_none());
    }
}
