//! Upstream registries: one long-lived HTTP client per registry.
//!
//! Owns: talking to registries — endpoint mapping (`--upstream REGISTRY=URL`), the full
//! manifest Accept list, anonymous bearer tokens (cached per scope until they expire),
//! retries with backoff on connection errors and 5xx, honouring `Retry-After` on 429, and
//! reading `ratelimit-remaining`. Manifests come back as exact bytes with their digest
//! checked; blobs come back as byte streams for the store to verify.
//! Must not touch: files. It never writes anything; verification of blob bytes belongs to
//! the store.
//!
//! reqwest is used directly rather than oci-client's `Client`: the mirror needs the raw
//! status codes and headers (`Retry-After`, `ratelimit-remaining`, `Docker-Content-Digest`),
//! endpoint overrides per registry name, and retries around every request, none of which
//! oci-client's client exposes. oci-client's manifest types are used in `manifest.rs`.

mod auth;
mod endpoint;
mod lookup;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use reqwest::header::{ACCEPT, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, Response, StatusCode};
use tracing::{debug, info, warn};

use crate::manifest::{self, ACCEPT as MANIFEST_TYPES, MAX_MANIFEST_BYTES};
use crate::reference::Digest;

pub use auth::Challenge;
pub use endpoint::{Endpoint, Endpoints};

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("{registry}: cannot reach {url}: {reason}")]
    Unreachable {
        registry: String,
        url: String,
        reason: String,
    },
    #[error("{registry}: {what} not found upstream")]
    NotFound {
        registry: String,
        what: String,
        object: Object,
    },
    #[error("{registry}: rate limited (429) on {what}; retry after {retry_after}s{budget}")]
    RateLimited {
        registry: String,
        what: String,
        retry_after: u64,
        budget: String,
    },
    #[error("{registry}: {what}: access denied ({status}): {reason}")]
    Denied {
        registry: String,
        what: String,
        status: u16,
        reason: String,
    },
    #[error("{registry}: {what}: upstream answered {status}: {message}")]
    Status {
        registry: String,
        what: String,
        status: u16,
        message: String,
    },
    #[error("{registry}: {what}: {reason}")]
    BadManifest {
        registry: String,
        what: String,
        reason: String,
    },
    #[error("{registry}: {what}: transfer failed: {reason}")]
    Transfer {
        registry: String,
        what: String,
        reason: String,
    },
    #[error(
        "{registry}: {url} answered a TLS handshake in plain text: this registry does not \
         speak TLS; use --insecure-registry {registry}"
    )]
    NotTls { registry: String, url: String },
    #[error("invalid --upstream {0}")]
    BadOverride(String),
    #[error("--upstream-ca {path}: {reason}")]
    BadCa { path: String, reason: String },
}

impl UpstreamError {
    /// True for failures that another attempt may not see (connections, truncations).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            UpstreamError::Unreachable { .. } | UpstreamError::Transfer { .. }
        ) || matches!(self, UpstreamError::Status { status, .. } if *status >= 500)
    }
}

/// What a request asks the upstream for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Object {
    Manifest,
    Blob,
    /// A repository's tag list.
    Tags,
}

/// How hard to try before giving up.
#[derive(Debug, Clone)]
pub struct RetryPolicy {
    /// Attempts per request, the first included.
    pub attempts: u32,
    /// Delay before the first retry; doubles each time.
    pub base_delay: Duration,
    /// Longest `Retry-After` waited out; longer ones fail at once with the wait in the message.
    pub max_retry_after: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(250),
            max_retry_after: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// For HEAD lookups (`drift`, `twins`) that must answer quickly when the upstream is
    /// down: three attempts 100 ms and 200 ms apart, and no long `Retry-After` waits.
    pub fn lookup() -> RetryPolicy {
        RetryPolicy {
            attempts: 3,
            base_delay: Duration::from_millis(100),
            max_retry_after: Duration::from_secs(5),
        }
    }

    pub fn delay(&self, attempt: u32) -> Duration {
        self.base_delay * 2u32.saturating_pow(attempt.saturating_sub(1).min(6))
    }
}

/// The last rate-limit budget an upstream reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateBudget {
    pub limit: Option<u64>,
    pub remaining: u64,
}

/// A manifest exactly as the upstream served it.
#[derive(Debug, Clone)]
pub struct FetchedManifest {
    pub bytes: Vec<u8>,
    pub media_type: String,
    pub digest: Digest,
}

/// Counts of upstream traffic, for /metrics.
#[derive(Debug, Default)]
pub struct UpstreamStats {
    /// Requests sent (retries and token requests not included).
    pub requests: AtomicU64,
    /// Requests that failed for good (after retries).
    pub failures: AtomicU64,
}

/// The per-registry clients, created on first use and kept.
pub struct Upstreams {
    http: reqwest::Client,
    /// For insecure registries: certificates are not verified.
    http_unverified: reqwest::Client,
    endpoints: Endpoints,
    retry: RetryPolicy,
    clients: Mutex<HashMap<String, Arc<Upstream>>>,
    stats: Arc<UpstreamStats>,
}

/// How the registries are reached.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// Registry names to endpoints (`docker.io` → `http://127.0.0.1:5001`).
    pub overrides: BTreeMap<String, String>,
    /// Registries reached without TLS verification, then over plain http.
    pub insecure: Vec<String>,
    /// PEM files of CA certificates trusted besides the system's roots (which honour
    /// `SSL_CERT_FILE` and `SSL_CERT_DIR`).
    pub ca_files: Vec<std::path::PathBuf>,
    pub retry: RetryPolicy,
}

impl Upstreams {
    pub fn new(options: Options) -> Result<Upstreams, UpstreamError> {
        let Options {
            overrides,
            insecure,
            ca_files,
            retry,
        } = options;
        for (name, url) in &overrides {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(UpstreamError::BadOverride(format!(
                    "{name}={url}: the URL must start with http:// or https://"
                )));
            }
        }
        let roots = extra_roots(&ca_files)?;
        let client = |verify: bool| {
            reqwest::Client::builder()
                .tls_certs_merge(roots.clone())
                .user_agent(concat!("stablebuild/", env!("CARGO_PKG_VERSION")))
                .connect_timeout(Duration::from_secs(10))
                .read_timeout(Duration::from_secs(60))
                .pool_idle_timeout(Duration::from_secs(90))
                .danger_accept_invalid_certs(!verify)
                .build()
                .map_err(|e| UpstreamError::BadOverride(format!("HTTP client: {e}")))
        };
        Ok(Upstreams {
            http: client(true)?,
            http_unverified: client(false)?,
            endpoints: Endpoints::new(overrides, &insecure),
            retry,
            clients: Mutex::new(HashMap::new()),
            stats: Arc::default(),
        })
    }

    pub fn stats(&self) -> &UpstreamStats {
        &self.stats
    }

    /// Every registry used so far with the last rate-limit budget it reported.
    pub fn budgets(&self) -> Vec<(String, RateBudget)> {
        let clients = self.clients.lock().expect("upstream map lock");
        let mut out: Vec<_> = clients
            .values()
            .filter_map(|c| c.budget().map(|b| (c.registry.clone(), b)))
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    pub fn get(&self, registry: &str) -> Arc<Upstream> {
        let mut clients = self.clients.lock().expect("upstream map lock");
        let client = clients.entry(registry.to_string()).or_insert_with(|| {
            let endpoint = self.endpoints.resolve(registry);
            let http = match endpoint.skip_verify {
                true => self.http_unverified.clone(),
                false => self.http.clone(),
            };
            Arc::new(Upstream {
                registry: registry.to_string(),
                base: Mutex::new(endpoint.primary),
                fallback: Mutex::new(endpoint.fallback),
                http,
                retry: self.retry.clone(),
                tokens: auth::TokenCache::default(),
                budget: Mutex::new(None),
                stats: self.stats.clone(),
            })
        });
        client.clone()
    }
}

/// The certificates in `files` (PEM bundles), each file with at least one.
fn extra_roots(files: &[std::path::PathBuf]) -> Result<Vec<reqwest::Certificate>, UpstreamError> {
    let mut roots = Vec::new();
    for path in files {
        let bad = |reason: String| UpstreamError::BadCa {
            path: path.display().to_string(),
            reason,
        };
        let pem = std::fs::read(path).map_err(|e| bad(e.to_string()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| bad(e.to_string()))?;
        if certs.is_empty() {
            return Err(bad(
                "no CERTIFICATE block: expected PEM CA certificates".into()
            ));
        }
        roots.extend(certs);
    }
    Ok(roots)
}

/// One registry's client.
pub struct Upstream {
    registry: String,
    /// The endpoint requests go to; an insecure registry's moves to its `fallback` (plain
    /// http) the first time https fails to connect.
    base: Mutex<String>,
    fallback: Mutex<Option<String>>,
    http: reqwest::Client,
    retry: RetryPolicy,
    tokens: auth::TokenCache,
    budget: Mutex<Option<RateBudget>>,
    stats: Arc<UpstreamStats>,
}

impl Upstream {
    pub fn registry(&self) -> &str {
        &self.registry
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.retry
    }

    /// The last rate-limit budget this registry reported.
    pub fn budget(&self) -> Option<RateBudget> {
        self.budget.lock().expect("budget lock").clone()
    }

    /// GET a manifest by tag or digest with the full Accept list; the digest is computed
    /// from the bytes and checked against the one asked for and the one the upstream named.
    pub async fn manifest(
        &self,
        repo: &str,
        reference: &str,
    ) -> Result<FetchedManifest, UpstreamError> {
        let sep = if reference.contains(':') { '@' } else { ':' };
        let what = format!("manifest {repo}{sep}{reference}");
        let path = format!("/v2/{repo}/manifests/{reference}");
        let resp = self
            .send(Method::GET, &path, repo, &what, Object::Manifest)
            .await?;
        let header_digest = header_str(resp.headers(), "docker-content-digest");
        let content_type = header_str(resp.headers(), CONTENT_TYPE.as_str());
        let bytes = self.read_limited(resp, &what).await?;
        let digest = manifest::sha256(&bytes);
        let media_type =
            manifest::media_type_of(&bytes, content_type.as_deref()).ok_or_else(|| {
                self.bad(
                    &what,
                    format!("not a known manifest type ({content_type:?})"),
                )
            })?;
        let schema1 = media_type == manifest::DOCKER_V1_SIGNED;
        if let Ok(asked) = Digest::parse(reference)
            && asked != digest
        {
            return Err(self.bad(&what, format!("content has digest {digest}; refusing it")));
        }
        if let Some(named) = header_digest.filter(|h| !schema1 && *h != digest.to_string()) {
            return Err(self.bad(
                &what,
                format!("upstream named digest {named} but the content has {digest}"),
            ));
        }
        Ok(FetchedManifest {
            bytes,
            media_type,
            digest,
        })
    }

    /// GET a blob; the caller streams and verifies the body. Returns the body stream and
    /// the Content-Length when the upstream sent one.
    pub async fn blob(
        &self,
        repo: &str,
        digest: &Digest,
    ) -> Result<
        (
            Option<u64>,
            impl Stream<Item = Result<bytes::Bytes, UpstreamError>> + use<>,
        ),
        UpstreamError,
    > {
        let what = format!("blob {digest}");
        let path = format!("/v2/{repo}/blobs/{digest}");
        let resp = self
            .send(Method::GET, &path, repo, &what, Object::Blob)
            .await?;
        let len = resp.content_length();
        let (registry, what2) = (self.registry.clone(), what.clone());
        let stream = resp.bytes_stream().map(move |r| {
            r.map_err(|e| UpstreamError::Transfer {
                registry: registry.clone(),
                what: what2.clone(),
                reason: reqwest_reason(&e),
            })
        });
        Ok((len, stream))
    }

    async fn read_limited(&self, resp: Response, what: &str) -> Result<Vec<u8>, UpstreamError> {
        if resp
            .content_length()
            .is_some_and(|l| l as usize > MAX_MANIFEST_BYTES)
        {
            return Err(self.bad(what, "larger than 4 MiB".to_string()));
        }
        let mut out = Vec::new();
        let mut stream = resp.bytes_stream();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| self.transfer(what, &e))?;
            out.extend_from_slice(&chunk);
            if out.len() > MAX_MANIFEST_BYTES {
                return Err(self.bad(what, "larger than 4 MiB".to_string()));
            }
        }
        Ok(out)
    }

    fn bad(&self, what: &str, reason: String) -> UpstreamError {
        UpstreamError::BadManifest {
            registry: self.registry.clone(),
            what: what.to_string(),
            reason,
        }
    }

    fn transfer(&self, what: &str, e: &reqwest::Error) -> UpstreamError {
        UpstreamError::Transfer {
            registry: self.registry.clone(),
            what: what.to_string(),
            reason: reqwest_reason(e),
        }
    }

    /// Send a request with auth, retries and rate-limit handling; Ok only for 2xx.
    async fn send(
        &self,
        method: Method,
        path: &str,
        repo: &str,
        what: &str,
        object: Object,
    ) -> Result<Response, UpstreamError> {
        self.send_with(method, path, repo, what, object, &self.retry)
            .await
    }

    /// `send` with another retry policy than this client's.
    async fn send_with(
        &self,
        method: Method,
        path: &str,
        repo: &str,
        what: &str,
        object: Object,
        retry: &RetryPolicy,
    ) -> Result<Response, UpstreamError> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let scope = format!("repository:{repo}:pull");
        let result = self
            .send_retrying(method, path, &scope, what, object, retry)
            .await;
        if result.is_err() {
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn send_retrying(
        &self,
        method: Method,
        path: &str,
        scope: &str,
        what: &str,
        object: Object,
        retry: &RetryPolicy,
    ) -> Result<Response, UpstreamError> {
        let (mut attempt, mut authed) = (0, false);
        loop {
            attempt += 1;
            let url = format!("{}{path}", self.base.lock().expect("base lock"));
            let url = url.as_str();
            let mut req = self.http.request(method.clone(), url);
            if object == Object::Manifest {
                req = req.header(ACCEPT, MANIFEST_TYPES.join(", "));
            }
            if let Some(token) = self.tokens.get(scope) {
                req = req.bearer_auth(token);
            }
            let started = std::time::Instant::now();
            let sent = req.send().await;
            match &sent {
                Ok(resp) => debug!(
                    "{method} {url} → {} in {:.1?}",
                    resp.status().as_u16(),
                    started.elapsed()
                ),
                Err(e) => debug!(
                    "{method} {url} failed after {:.1?}: {}",
                    started.elapsed(),
                    reqwest_reason(e)
                ),
            }
            let err = match sent {
                Err(e) if self.fall_back(url, &e) => {
                    attempt -= 1;
                    continue;
                }
                Err(e) => self.unreachable(url, &e),
                Ok(resp) => {
                    self.note_budget(resp.headers());
                    match resp.status() {
                        s if s.is_success() => return Ok(resp),
                        StatusCode::UNAUTHORIZED if !authed => {
                            authed = true;
                            self.authenticate(&resp, scope, what).await?;
                            attempt -= 1;
                            continue;
                        }
                        StatusCode::TOO_MANY_REQUESTS => self.rate_limited(&resp, what),
                        _ => self.status_error(resp, what, object).await,
                    }
                }
            };
            let wait = match &err {
                UpstreamError::RateLimited { retry_after, .. } => {
                    Some(Duration::from_secs(*retry_after)).filter(|w| *w <= retry.max_retry_after)
                }
                e if e.is_transient() => Some(retry.delay(attempt)),
                _ => None,
            };
            match wait {
                Some(wait) if attempt < retry.attempts => {
                    warn!(
                        "{err}; retrying in {wait:?} (attempt {attempt} of {})",
                        retry.attempts
                    );
                    tokio::time::sleep(wait).await;
                }
                _ => return Err(err),
            }
        }
    }

    fn unreachable(&self, url: &str, e: &reqwest::Error) -> UpstreamError {
        let reason = reqwest_reason(e);
        if url.starts_with("https://") && speaks_plain_http(&reason) {
            return UpstreamError::NotTls {
                registry: self.registry.clone(),
                url: url.to_string(),
            };
        }
        UpstreamError::Unreachable {
            registry: self.registry.clone(),
            url: url.to_string(),
            reason,
        }
    }

    /// An insecure registry whose https failed to connect: use plain http from now on.
    /// True when the request should be sent again there.
    fn fall_back(&self, url: &str, e: &reqwest::Error) -> bool {
        let reason = reqwest_reason(e);
        if !(e.is_connect() || speaks_plain_http(&reason)) {
            return false;
        }
        let Some(http) = self.fallback.lock().expect("fallback lock").take() else {
            return false;
        };
        info!(
            "{}: {url} failed over https ({reason}); using {http}",
            self.registry
        );
        *self.base.lock().expect("base lock") = http;
        true
    }

    async fn authenticate(
        &self,
        resp: &Response,
        scope: &str,
        what: &str,
    ) -> Result<(), UpstreamError> {
        let header = header_str(resp.headers(), "www-authenticate").unwrap_or_default();
        let denied = |reason: String| UpstreamError::Denied {
            registry: self.registry.clone(),
            what: what.to_string(),
            status: 401,
            reason,
        };
        let challenge = Challenge::parse(&header).ok_or_else(|| {
            denied(format!(
                "the registry wants credentials ({header:?}); stablebuild pulls anonymously"
            ))
        })?;
        let token = auth::fetch_token(&self.http, &challenge, scope)
            .await
            .map_err(denied)?;
        debug!("{}: got a token for {scope}", self.registry);
        self.tokens.put(scope, token);
        Ok(())
    }

    fn rate_limited(&self, resp: &Response, what: &str) -> UpstreamError {
        let retry_after = header_str(resp.headers(), RETRY_AFTER.as_str())
            .and_then(|v| parse_retry_after(&v))
            .unwrap_or(self.retry.base_delay.as_secs().max(1));
        let budget = match self.budget() {
            Some(b) => format!(" (remaining budget {})", b.remaining),
            None => String::new(),
        };
        UpstreamError::RateLimited {
            registry: self.registry.clone(),
            what: what.to_string(),
            retry_after,
            budget,
        }
    }

    async fn status_error(&self, resp: Response, what: &str, object: Object) -> UpstreamError {
        let status = resp.status().as_u16();
        let body = resp.text().await.unwrap_or_default();
        let message = auth::error_message(&body).unwrap_or_else(|| truncate(&body, 200));
        match status {
            404 => UpstreamError::NotFound {
                registry: self.registry.clone(),
                what: what.to_string(),
                object,
            },
            401 | 403 => UpstreamError::Denied {
                registry: self.registry.clone(),
                what: what.to_string(),
                status,
                reason: message,
            },
            _ => UpstreamError::Status {
                registry: self.registry.clone(),
                what: what.to_string(),
                status,
                message,
            },
        }
    }

    fn note_budget(&self, headers: &HeaderMap) {
        let Some(remaining) =
            header_str(headers, "ratelimit-remaining").and_then(|v| leading_int(&v))
        else {
            return;
        };
        let limit = header_str(headers, "ratelimit-limit").and_then(|v| leading_int(&v));
        info!("{}: rate-limit budget {remaining} remaining", self.registry);
        *self.budget.lock().expect("budget lock") = Some(RateBudget { limit, remaining });
    }
}

/// rustls's complaint when the peer answers a TLS handshake with something else (an HTTP
/// response): the registry listens in plain http.
fn speaks_plain_http(reason: &str) -> bool {
    reason.contains("InvalidContentType") || reason.contains("corrupt message")
}

fn header_str(headers: &HeaderMap, name: &str) -> Option<String> {
    headers.get(name)?.to_str().ok().map(str::to_string)
}

/// "76;w=21600" → 76.
fn leading_int(v: &str) -> Option<u64> {
    v.split(';').next()?.trim().parse().ok()
}

/// Retry-After as seconds or an HTTP date.
fn parse_retry_after(v: &str) -> Option<u64> {
    if let Ok(secs) = v.trim().parse() {
        return Some(secs);
    }
    let when = humantime::parse_rfc3339_weak(v.trim()).ok()?;
    Some(
        when.duration_since(std::time::SystemTime::now())
            .ok()?
            .as_secs(),
    )
}

fn truncate(s: &str, n: usize) -> String {
    let s = s.trim();
    match s.char_indices().nth(n) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// What went wrong with a request, without reqwest's "error sending request for url (…)"
/// (the messages that use this name the URL themselves).
fn reqwest_reason(e: &reqwest::Error) -> String {
    match (e.url(), std::error::Error::source(e)) {
        (Some(_), Some(cause)) => crate::causes::chain(cause),
        _ => crate::causes::chain(e),
    }
}
