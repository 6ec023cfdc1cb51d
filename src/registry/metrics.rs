//! `/metrics` in the Prometheus text format: requests, cache hits and misses, bytes served,
//! upstream requests and failures, bytes sent with sendfile (and read from disk first), and
//! the last rate-limit budget each upstream reported; hits and misses of manifests and of
//! blobs apart, for the dashboard's hit ratios.
//! Must not touch: anything but its counters (the request middleware feeds them).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::upstream::Upstreams;

/// What a request asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Manifest,
    Blob,
    Other,
}

impl Kind {
    /// The kind of a request path (`/v2/<name>/manifests/…`, `/v2/<name>/blobs/…`).
    pub fn of(path: &str) -> Kind {
        match path.starts_with("/v2/") {
            true if path.contains("/manifests/") => Kind::Manifest,
            true if path.contains("/blobs/") => Kind::Blob,
            _ => Kind::Other,
        }
    }
}

#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    errors: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    bytes: AtomicU64,
    manifest: HitsMisses,
    blob: HitsMisses,
}

#[derive(Debug, Default)]
struct HitsMisses {
    hits: AtomicU64,
    misses: AtomicU64,
}

/// The counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    pub requests: u64,
    pub errors: u64,
    pub bytes: u64,
    pub manifest_hits: u64,
    pub manifest_misses: u64,
    pub blob_hits: u64,
    pub blob_misses: u64,
}

impl Metrics {
    /// Count one finished request.
    pub fn record(&self, kind: Kind, status: u16, cache: Option<&str>, bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 400 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        let by_kind = match kind {
            Kind::Manifest => Some(&self.manifest),
            Kind::Blob => Some(&self.blob),
            Kind::Other => None,
        };
        let counters = match cache {
            Some("hit") => Some((&self.hits, by_kind.map(|k| &k.hits))),
            Some("miss") => Some((&self.misses, by_kind.map(|k| &k.misses))),
            _ => None,
        };
        if let Some((all, of_kind)) = counters {
            all.fetch_add(1, Ordering::Relaxed);
            if let Some(c) = of_kind {
                c.fetch_add(1, Ordering::Relaxed);
            }
        }
        if status < 400 {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    pub fn counts(&self) -> Counts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Counts {
            requests: get(&self.requests),
            errors: get(&self.errors),
            bytes: get(&self.bytes),
            manifest_hits: get(&self.manifest.hits),
            manifest_misses: get(&self.manifest.misses),
            blob_hits: get(&self.blob.hits),
            blob_misses: get(&self.blob.misses),
        }
    }

    pub fn render(&self, upstreams: &Upstreams) -> String {
        let mut out = String::new();
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        let stats = upstreams.stats();
        let counters = [
            ("requests_total", "Requests answered.", &self.requests),
            (
                "request_errors_total",
                "Requests answered with a 4xx or 5xx status.",
                &self.errors,
            ),
            (
                "cache_hits_total",
                "Manifests and blobs served from the store.",
                &self.hits,
            ),
            (
                "cache_misses_total",
                "Manifests and blobs fetched upstream first.",
                &self.misses,
            ),
            (
                "manifest_cache_hits_total",
                "Manifests served from the store.",
                &self.manifest.hits,
            ),
            (
                "manifest_cache_misses_total",
                "Manifests fetched upstream first.",
                &self.manifest.misses,
            ),
            (
                "blob_cache_hits_total",
                "Blobs served from the store.",
                &self.blob.hits,
            ),
            (
                "blob_cache_misses_total",
                "Blobs fetched upstream first.",
                &self.blob.misses,
            ),
            (
                "served_bytes_total",
                "Response bytes (as Content-Length announced).",
                &self.bytes,
            ),
            (
                "upstream_requests_total",
                "Requests sent upstream.",
                &stats.requests,
            ),
            (
                "upstream_failures_total",
                "Upstream requests that failed after retries.",
                &stats.failures,
            ),
            (
                "sendfile_bytes_total",
                "Blob bytes sent straight from the store's files with sendfile.",
                &super::sendfile::SENT,
            ),
            (
                "disk_read_bytes_total",
                "Blob bytes read from disk on a blocking thread before sendfile sent them.",
                &super::sendfile::FROM_DISK,
            ),
        ];
        for (name, help, value) in counters {
            let (name, value) = (format!("stablebuild_{name}"), get(value));
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        }
        let name = "stablebuild_upstream_ratelimit_remaining";
        let _ = writeln!(
            out,
            "# HELP {name} Last ratelimit-remaining an upstream reported.\n# TYPE {name} gauge"
        );
        for (registry, budget) in upstreams.budgets() {
            let _ = writeln!(
                out,
                "{name}{{registry=\"{registry}\"}} {}",
                budget.remaining
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hits_and_misses_are_counted_by_kind() {
        let m = Metrics::default();
        let manifest = Kind::of("/v2/library/a/manifests/1");
        let blob = Kind::of("/v2/library/a/blobs/sha256:00");
        assert_eq!((manifest, blob), (Kind::Manifest, Kind::Blob));
        assert_eq!(Kind::of("/tags/docker.io/library/a:1"), Kind::Other);
        m.record(manifest, 200, Some("hit"), 10);
        m.record(blob, 200, Some("miss"), 100);
        m.record(blob, 200, Some("hit"), 100);
        m.record(Kind::Other, 404, None, 5);
        let c = m.counts();
        assert_eq!((c.manifest_hits, c.manifest_misses), (1, 0));
        assert_eq!((c.blob_hits, c.blob_misses), (1, 1));
        assert_eq!((c.requests, c.errors, c.bytes), (4, 1, 210));
    }
}
