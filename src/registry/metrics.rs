//! `/metrics` in the Prometheus text format: requests, cache hits and misses, bytes served,
//! upstream requests and failures, and the last rate-limit budget each upstream reported.
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
        let mut counter = |name: &str, help: &str, value: u64| {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} counter\n{name} {value}"
            );
        };
        counter(
            "stablebuild_requests_total",
            "Requests answered.",
            get(&self.requests),
        );
        counter(
            "stablebuild_request_errors_total",
            "Requests answered with a 4xx or 5xx status.",
            get(&self.errors),
        );
        counter(
            "stablebuild_cache_hits_total",
            "Manifests and blobs served from the store.",
            get(&self.hits),
        );
        counter(
            "stablebuild_cache_misses_total",
            "Manifests and blobs fetched upstream first.",
            get(&self.misses),
        );
        counter(
            "stablebuild_served_bytes_total",
            "Response bytes (as announced by Content-Length).",
            get(&self.bytes),
        );
        let stats = upstreams.stats();
        counter(
            "stablebuild_upstream_requests_total",
            "Requests sent upstream.",
            get(&stats.requests),
        );
        counter(
            "stablebuild_upstream_failures_total",
            "Upstream requests that failed after retries.",
            get(&stats.failures),
        );
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
