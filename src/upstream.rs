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
mod credentials;
mod endpoint;
mod lookup;
mod private;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures_util::{Stream, StreamExt};
use reqwest::header::{ACCEPT, AUTHORIZATION, CONTENT_TYPE, HeaderMap, RETRY_AFTER};
use reqwest::{Method, RequestBuilder, Response, StatusCode};
use tracing::{debug, info, warn};

use crate::manifest::{self, ACCEPT as MANIFEST_TYPES, MAX_MANIFEST_BYTES};
use crate::reference::Digest;

pub use auth::Challenge;
pub use credentials::{Credential, CredentialError, Credentials, docker_config_dir};
pub use endpoint::{Endpoint, Endpoints};
pub use private::{AllowPrivate, PatternError};

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
    #[error(transparent)]
    Credentials(#[from] CredentialError),
    #[error(
        "{registry}/{repo} is not public: an anonymous pull is refused and only the \
         credentials from {from} reach it; stablebuild mirrors public images only \
         (anyone who can pull from the mirror would get it): pass --allow-private \
         {registry}/{repo} to mirror it anyway"
    )]
    Private {
        registry: String,
        repo: String,
        /// Where the credential came from.
        from: String,
    },
    #[error("{registry}/{repo}: could not check whether anonymous users may pull it: {reason}")]
    PrivacyCheck {
        registry: String,
        repo: String,
        reason: String,
    },
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
    credentials: Arc<Credentials>,
    allow_private: Arc<AllowPrivate>,
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
    /// Users and tokens for registries that want them.
    pub credentials: Credentials,
    /// Repositories that may be mirrored although anonymous users cannot pull them.
    pub allow_private: AllowPrivate,
}

impl Upstreams {
    pub fn new(options: Options) -> Result<Upstreams, UpstreamError> {
        let Options {
            overrides,
            insecure,
            ca_files,
            retry,
            credentials,
            allow_private,
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
            credentials: Arc::new(credentials),
            allow_private: Arc::new(allow_private),
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
                account: Account::new(self.credentials.clone(), self.allow_private.clone()),
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
    account: Account,
}

/// A registry's credentials as one client uses them, and the anonymous side of the
/// public-only check.
struct Account {
    credentials: Arc<Credentials>,
    /// Looked up on first need (a helper runs once per registry and process).
    credential: tokio::sync::OnceCell<Option<Credential>>,
    /// The registry answered a Basic challenge: send the credential on every request.
    basic: AtomicBool,
    /// The credential went out (as Basic, or to the token realm): what this client fetched
    /// may not be public.
    sent: AtomicBool,
    anonymous_tokens: auth::TokenCache,
    allow_private: Arc<AllowPrivate>,
    verdicts: private::Verdicts,
}

impl Account {
    fn new(credentials: Arc<Credentials>, allow_private: Arc<AllowPrivate>) -> Account {
        Account {
            credentials,
            credential: tokio::sync::OnceCell::new(),
            basic: AtomicBool::new(false),
            sent: AtomicBool::new(false),
            anonymous_tokens: auth::TokenCache::default(),
            allow_private,
            verdicts: private::Verdicts::default(),
        }
    }
}

/// Who a request goes out as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum As {
    /// With the registry's credentials when it asks for them.
    Account,
    /// Without any: the public-only check.
    Anonymous,
}

/// One request to send: what and how hard to try.
struct Ask<'a> {
    method: Method,
    path: &'a str,
    scope: String,
    what: &'a str,
    object: Object,
    retry: &'a RetryPolicy,
    who: As,
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
        self.check_public(repo, reference).await?;
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
        let ask = Ask {
            method,
            path,
            scope: format!("repository:{repo}:pull"),
            what,
            object,
            retry,
            who: As::Account,
        };
        self.send_asking(&ask).await
    }

    async fn send_asking(&self, ask: &Ask<'_>) -> Result<Response, UpstreamError> {
        self.stats.requests.fetch_add(1, Ordering::Relaxed);
        let result = self.send_retrying(ask).await;
        if result.is_err() {
            self.stats.failures.fetch_add(1, Ordering::Relaxed);
        }
        result
    }

    async fn send_retrying(&self, ask: &Ask<'_>) -> Result<Response, UpstreamError> {
        let (mut attempt, mut authed) = (0, false);
        let (method, what, retry) = (&ask.method, ask.what, ask.retry);
        loop {
            attempt += 1;
            let url = format!("{}{}", self.base.lock().expect("base lock"), ask.path);
            let url = url.as_str();
            let req = self.request(ask, url).await?;
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
                            self.authenticate(&resp, ask).await?;
                            attempt -= 1;
                            continue;
                        }
                        StatusCode::TOO_MANY_REQUESTS => self.rate_limited(&resp, what),
                        StatusCode::UNAUTHORIZED => self.still_unauthorized(resp, ask).await?,
                        _ => self.status_error(resp, what, ask.object).await,
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

    /// The request for one attempt: the Accept list for manifests, and the token or
    /// credential that this client holds for the scope.
    async fn request(&self, ask: &Ask<'_>, url: &str) -> Result<RequestBuilder, UpstreamError> {
        let mut req = self.http.request(ask.method.clone(), url);
        if ask.object == Object::Manifest {
            req = req.header(ACCEPT, MANIFEST_TYPES.join(", "));
        }
        if let Some(token) = self.tokens_for(ask.who).get(&ask.scope) {
            return Ok(req.bearer_auth(token));
        }
        if ask.who == As::Account
            && self.account.basic.load(Ordering::Relaxed)
            && let Some(credential) = self.credential().await?
        {
            self.account.sent.store(true, Ordering::Relaxed);
            req = req.header(AUTHORIZATION, credential.basic());
        }
        Ok(req)
    }

    fn tokens_for(&self, who: As) -> &auth::TokenCache {
        match who {
            As::Account => &self.tokens,
            As::Anonymous => &self.account.anonymous_tokens,
        }
    }

    /// This registry's credential, looked up (a helper run) the first time.
    async fn credential(&self) -> Result<Option<&Credential>, UpstreamError> {
        let account = &self.account;
        let found = account
            .credential
            .get_or_try_init(|| account.credentials.lookup(&self.registry))
            .await?;
        Ok(found.as_ref())
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

    /// Answer a 401's challenge: a bearer token from the realm (with the credential, when
    /// this client has one and asks as the account), or Basic with the credential.
    async fn authenticate(&self, resp: &Response, ask: &Ask<'_>) -> Result<(), UpstreamError> {
        let header = header_str(resp.headers(), "www-authenticate").unwrap_or_default();
        let denied = |reason: String| UpstreamError::Denied {
            registry: self.registry.clone(),
            what: ask.what.to_string(),
            status: 401,
            reason,
        };
        let credential = match ask.who {
            As::Account => self.credential().await?,
            As::Anonymous => None,
        };
        let Some(challenge) = Challenge::parse(&header) else {
            return match credential {
                Some(_) if is_basic(&header) && ask.who == As::Account => {
                    self.account.basic.store(true, Ordering::Relaxed);
                    Ok(())
                }
                Some(c) => Err(denied(format!(
                    "the registry refused the credentials from {} ({header:?})",
                    c.source
                ))),
                None => Err(denied(format!(
                    "the registry wants credentials ({header:?}); {}",
                    self.how_to_give_credentials()
                ))),
            };
        };
        if credential.is_some() {
            self.account.sent.store(true, Ordering::Relaxed);
        }
        let token = auth::fetch_token(&self.http, &challenge, &ask.scope, credential)
            .await
            .map_err(denied)?;
        debug!("{}: got a token for {}", self.registry, ask.scope);
        self.tokens_for(ask.who).put(&ask.scope, token);
        Ok(())
    }

    /// Refuse `repo` unless anonymous users may pull `reference` from it too, or
    /// `--allow-private` names it. Only needed when this client's credential went out: a
    /// fetch that never sent it was anonymous, which proves the repository public.
    async fn check_public(&self, repo: &str, reference: &str) -> Result<(), UpstreamError> {
        let account = &self.account;
        if !account.sent.load(Ordering::Relaxed)
            || account.verdicts.known_public(repo)
            || account.allow_private.allows(&self.registry, repo)
        {
            return Ok(());
        }
        let what = format!("anonymous check of {repo}");
        let ask = Ask {
            method: Method::HEAD,
            path: &format!("/v2/{repo}/manifests/{reference}"),
            scope: format!("repository:{repo}:pull"),
            what: &what,
            object: Object::Manifest,
            retry: &RetryPolicy::lookup(),
            who: As::Anonymous,
        };
        match self.send_asking(&ask).await {
            Ok(_) => {
                info!(
                    "{}/{repo} is public (an anonymous HEAD answered)",
                    self.registry
                );
                account.verdicts.note_public(repo);
                Ok(())
            }
            Err(UpstreamError::Denied { .. } | UpstreamError::NotFound { .. }) => {
                let source = self.credential().await?.map(|c| c.source.clone());
                Err(UpstreamError::Private {
                    registry: self.registry.clone(),
                    repo: repo.to_string(),
                    from: source.unwrap_or_default(),
                })
            }
            Err(e) => Err(UpstreamError::PrivacyCheck {
                registry: self.registry.clone(),
                repo: repo.to_string(),
                reason: e.to_string(),
            }),
        }
    }

    /// A 401 after the token flow: refused. Without a credential, say how to give one (the
    /// repository may be private; Docker Hub answers so for one that does not exist, too).
    async fn still_unauthorized(
        &self,
        resp: Response,
        ask: &Ask<'_>,
    ) -> Result<UpstreamError, UpstreamError> {
        let mut err = self.status_error(resp, ask.what, ask.object).await;
        let anonymous = match ask.who {
            As::Account => self.credential().await?.is_none(),
            As::Anonymous => false,
        };
        if anonymous && let UpstreamError::Denied { reason, .. } = &mut err {
            reason.push_str(&format!(
                " (anonymous pull refused: the repository is private or does not exist; \
                 for a private one {})",
                self.how_to_give_credentials()
            ));
        }
        Ok(err)
    }

    fn how_to_give_credentials(&self) -> String {
        format!(
            "give credentials with --upstream-auth {}=FILE or in Docker's config.json",
            self.registry
        )
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

/// A `WWW-Authenticate: Basic …` challenge (or a bare `Basic`).
fn is_basic(header: &str) -> bool {
    let scheme = header.trim().split(' ').next().unwrap_or("");
    scheme.eq_ignore_ascii_case("basic")
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
