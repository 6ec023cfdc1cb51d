//! `/metrics` in the Prometheus text format: requests, cache hits and misses, bytes served,
//! upstream requests and failures, bytes sent with sendfile (and read from disk first), and
//! the last rate-limit budget each upstream reported.
//! Must not touch: anything but its counters (the request middleware feeds them).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::upstream::Upstreams;

#[derive(Debug, Default)]
pub struct Metrics {
    requests: AtomicU64,
    errors: AtomicU64,
    hits: AtomicU64,
    misses: AtomicU64,
    bytes: AtomicU64,
}

impl Metrics {
    /// Count one finished request.
    pub fn record(&self, status: u16, cache: Option<&str>, bytes: u64) {
        self.requests.fetch_add(1, Ordering::Relaxed);
        if status >= 400 {
            self.errors.fetch_add(1, Ordering::Relaxed);
        }
        match cache {
            Some("hit") => self.hits.fetch_add(1, Ordering::Relaxed),
            Some("miss") => self.misses.fetch_add(1, Ordering::Relaxed),
            _ => 0,
        };
        if status < 400 {
            self.bytes.fetch_add(bytes, Ordering::Relaxed);
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
