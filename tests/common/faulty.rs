//! A scripted, in-process Registry v2 upstream for the tests.
//!
//! This file owns [`Faulty`]: an axum server on `127.0.0.1:0` that serves one small image it
//! builds itself in memory (`library/faulty:1`, an OCI index over linux/amd64 and linux/arm64,
//! each with an OCI config and one ~256 KiB layer) and misbehaves on request. It exists only
//! for what a real registry cannot be made to do: Docker Hub's bearer-token flow, 429s with
//! `Retry-After`, wrong bytes, truncated and dropped transfers, 5xx answers and stalls. Tests
//! that only need a well-behaved registry use the real one in `registry.rs`.
//!
//! With an account ([`Faulty::start_with_account`]) it also serves the same image as
//! [`PRIVATE_REPOSITORY`], which only tokens fetched with the account's Basic credentials may
//! pull, as Docker Hub does for a private repository; an anonymous token request gets a token
//! without that scope, a wrong password a 401 from the token endpoint.
//!
//! Faults are scripted per request path (query ignored) and consumed in order; a path whose
//! queue is empty is served normally. With the token flow on, a request is authorized before a
//! fault is taken, so the 401 of a client's first, anonymous attempt does not use one up.

use std::collections::{HashMap, VecDeque};
use std::fmt::Write as _;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::Response;
use futures_util::StreamExt as _;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// The one repository served.
pub const REPOSITORY: &str = "library/faulty";
/// The one tag served; it names the image index.
pub const TAG: &str = "1";
/// The repository that only the account may pull (see [`Faulty::start_with_account`]).
pub const PRIVATE_REPOSITORY: &str = "acme/private";
/// The `service` of the token flow.
pub const SERVICE: &str = "faulty.test";
/// The scope a client needs to pull [`REPOSITORY`].
pub const PULL_SCOPE: &str = "repository:library/faulty:pull";

pub const INDEX_MEDIA_TYPE: &str = "application/vnd.oci.image.index.v1+json";
pub const MANIFEST_MEDIA_TYPE: &str = "application/vnd.oci.image.manifest.v1+json";
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.oci.image.config.v1+json";
pub const LAYER_MEDIA_TYPE: &str = "application/vnd.oci.image.layer.v1.tar";

const LAYER_SIZE: usize = 256 * 1024;
const RATE_LIMIT: u32 = 100;
const RATE_WINDOW: &str = "w=21600";
const TOKEN_PREFIX: &str = "faulty.";
const TOO_MANY_MESSAGE: &str = "You have reached your pull rate limit. You may increase the \
                                limit by authenticating and upgrading: \
                                https://www.docker.com/increase-rate-limit";

/// One scripted misbehaviour, used up by one request to the path it was pushed for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Answer this status with a registry error JSON body (e.g. 500, 502, 503); a 401 also
    /// carries the token challenge, as when a token expires.
    Status(u16),
    /// 429 with `Retry-After: <secs>` and the `TOOMANYREQUESTS` error JSON.
    TooMany { retry_after: u64 },
    /// 200 with the right headers but one byte flipped (the middle byte, XOR 0x01). A HEAD
    /// leaves it queued for the next GET.
    WrongBytes,
    /// Full headers, then only the first N bytes, then the connection is dropped; N should be
    /// less than the content's length. A HEAD leaves it queued for the next GET.
    Truncate(usize),
    /// Wait this long, then answer normally.
    Stall(Duration),
    /// Full headers and the first N bytes, then a wait, then the rest: a slow transfer
    /// caught in the middle. A HEAD leaves it queued for the next GET.
    Pause { after: usize, wait: Duration },
}

/// The running server; dropping it (or [`Faulty::shutdown`]) stops it.
pub struct Faulty {
    addr: SocketAddr,
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl Faulty {
    /// Starts a server without authentication.
    pub async fn start() -> Faulty {
        Faulty::launch(false, None).await
    }

    /// Starts a server that demands Docker Hub's bearer-token flow on every `/v2/` request.
    pub async fn start_with_auth() -> Faulty {
        Faulty::launch(true, None).await
    }

    /// `start_with_auth`, plus an account `user`:`password` that the token endpoint checks
    /// and that alone may pull [`PRIVATE_REPOSITORY`].
    pub async fn start_with_account(user: &str, password: &str) -> Faulty {
        let account = (user.to_owned(), password.to_owned());
        Faulty::launch(true, Some(account)).await
    }

    async fn launch(auth: bool, account: Option<(String, String)>) -> Faulty {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("faulty: bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("faulty: local address");
        let shared = Arc::new(Shared {
            image: Image::get(),
            auth,
            account,
            realm: format!("http://{addr}/token"),
            script: Mutex::new(Script::default()),
        });
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&shared));
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await
                .expect("faulty: serve");
        });
        Faulty {
            addr,
            shared,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// `http://127.0.0.1:PORT`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `127.0.0.1:PORT`
    pub fn host(&self) -> String {
        self.addr.to_string()
    }

    /// `127.0.0.1:PORT/library/faulty:1`
    pub fn reference(&self) -> String {
        format!("{}/{REPOSITORY}:{TAG}", self.host())
    }

    /// The digest of the image index that tag [`TAG`] names.
    pub fn index_digest(&self) -> String {
        self.shared.image.index.clone()
    }

    /// The platform manifests, amd64 first.
    pub fn manifest_digests(&self) -> Vec<String> {
        self.shared.image.manifests.clone()
    }

    /// The layers, amd64 first.
    pub fn layer_digests(&self) -> Vec<String> {
        self.shared.image.layers.clone()
    }

    /// The configs, amd64 first.
    pub fn config_digests(&self) -> Vec<String> {
        self.shared.image.configs.clone()
    }

    /// The right bytes of any content served (index, manifest, config or layer).
    pub fn blob(&self, digest: &str) -> Vec<u8> {
        let content = self.shared.image.content.get(digest);
        content
            .unwrap_or_else(|| panic!("faulty: no content {digest}"))
            .bytes
            .to_vec()
    }

    /// `/v2/library/faulty/manifests/<reference>`, a path for [`Faulty::push_fault`].
    pub fn manifest_path(&self, reference: &str) -> String {
        format!("/v2/{REPOSITORY}/manifests/{reference}")
    }

    /// `/v2/library/faulty/blobs/<digest>`, a path for [`Faulty::push_fault`].
    pub fn blob_path(&self, digest: &str) -> String {
        format!("/v2/{REPOSITORY}/blobs/{digest}")
    }

    /// Queues `fault` for the next request to `path` (e.g. `/v2/library/faulty/blobs/sha256:…`).
    pub fn push_fault(&self, path: &str, fault: Fault) {
        if let Fault::Status(code) = fault {
            assert!(
                StatusCode::from_u16(code).is_ok(),
                "faulty: bad status {code}"
            );
        }
        let mut script = self.shared.script();
        script
            .faults
            .entry(path.to_owned())
            .or_default()
            .push_back(fault);
    }

    /// Faults queued for `path` and not yet used up.
    pub fn pending_faults(&self, path: &str) -> usize {
        self.shared
            .script()
            .faults
            .get(path)
            .map_or(0, VecDeque::len)
    }

    /// Requests that arrived for exactly `path`, any method, refused and faulted ones included.
    pub fn requests(&self, path: &str) -> usize {
        self.shared
            .script()
            .requests
            .get(path)
            .copied()
            .unwrap_or(0)
    }

    /// Requests that arrived at the token endpoint.
    pub fn token_requests(&self) -> usize {
        self.shared.script().token_requests
    }

    /// Token requests that carried the account's right Basic credentials.
    pub fn credentialed_token_requests(&self) -> usize {
        self.shared.script().credentialed_token_requests
    }

    /// Token requests that carried a Basic header that was not the account's.
    pub fn refused_token_requests(&self) -> usize {
        self.shared.script().refused_token_requests
    }

    /// Stops the server, shortly after the call returns: no new connections, idle ones are
    /// closed, in-flight ones may finish (for at most 2 s).
    pub fn shutdown(mut self) {
        self.stop_serving();
    }

    fn stop_serving(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        // The graceful shutdown waits for in-flight requests; a stalled one must not keep the
        // task alive past the test.
        if let Some(task) = self.task.take() {
            tokio::spawn(async move {
                let abort = task.abort_handle();
                if tokio::time::timeout(Duration::from_secs(2), task)
                    .await
                    .is_err()
                {
                    abort.abort();
                }
            });
        }
    }
}

impl Drop for Faulty {
    fn drop(&mut self) {
        if tokio::runtime::Handle::try_current().is_ok() {
            self.stop_serving();
        } else if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// What the server knows: the immutable image and the mutable script.
struct Shared {
    image: &'static Image,
    auth: bool,
    /// The account (user, password) that may pull [`PRIVATE_REPOSITORY`].
    account: Option<(String, String)>,
    realm: String,
    script: Mutex<Script>,
}

#[derive(Default)]
struct Script {
    faults: HashMap<String, VecDeque<Fault>>,
    requests: HashMap<String, usize>,
    token_requests: usize,
    credentialed_token_requests: usize,
    refused_token_requests: usize,
    manifest_gets: u32,
}

impl Shared {
    fn script(&self) -> std::sync::MutexGuard<'_, Script> {
        self.script
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn record(&self, path: &str, target: &Target) {
        let mut script = self.script();
        *script.requests.entry(path.to_owned()).or_default() += 1;
        if matches!(target, Target::Token) {
            script.token_requests += 1;
        }
    }

    /// Whether `name` is a repository this server has.
    fn check_served(&self, name: &str) -> Result<(), Refused> {
        let private = self.account.is_some() && name == PRIVATE_REPOSITORY;
        if name == REPOSITORY || private {
            Ok(())
        } else {
            Err(Refused::name_unknown())
        }
    }

    /// Takes the next fault for `path`; a HEAD leaves a body fault for the GET it spoils.
    fn next_fault(&self, path: &str, head: bool) -> Option<Fault> {
        let mut script = self.script();
        let queue = script.faults.get_mut(path)?;
        let spoils_body = matches!(
            queue.front()?,
            Fault::WrongBytes | Fault::Truncate(_) | Fault::Pause { .. }
        );
        if head && spoils_body {
            return None;
        }
        queue.pop_front()
    }

    /// Whether `encoded` (a Basic header's base64) is the account's `user:password`.
    fn is_account(&self, encoded: &str) -> bool {
        use base64::Engine as _;
        let Some((user, password)) = &self.account else {
            return false;
        };
        let decoded = base64::engine::general_purpose::STANDARD.decode(encoded.trim());
        decoded.is_ok_and(|bytes| bytes == format!("{user}:{password}").as_bytes())
    }

    /// The `ratelimit-remaining` count after this request; only GETs use up the allowance.
    fn rate_remaining(&self, counts: bool) -> u32 {
        let mut script = self.script();
        if counts {
            script.manifest_gets += 1;
        }
        RATE_LIMIT.saturating_sub(script.manifest_gets)
    }
}

/// What a request path asks for.
enum Target {
    Base,
    Token,
    Manifest { name: String, reference: String },
    Blob { name: String, digest: String },
    Other,
}

impl Target {
    fn parse(path: &str) -> Target {
        if path == "/v2/" || path == "/v2" {
            return Target::Base;
        }
        if path == "/token" {
            return Target::Token;
        }
        let Some(rest) = path.strip_prefix("/v2/") else {
            return Target::Other;
        };
        if let Some((name, reference)) = rest.rsplit_once("/manifests/") {
            let (name, reference) = (name.to_owned(), reference.to_owned());
            return Target::Manifest { name, reference };
        }
        if let Some((name, digest)) = rest.rsplit_once("/blobs/") {
            return Target::Blob {
                name: name.to_owned(),
                digest: digest.to_owned(),
            };
        }
        Target::Other
    }

    /// The repository named by the path, if any.
    fn name(&self) -> Option<&str> {
        match self {
            Target::Manifest { name, .. } | Target::Blob { name, .. } => Some(name),
            _ => None,
        }
    }

    fn is_registry_api(&self) -> bool {
        !matches!(self, Target::Token)
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let path = uri.path();
    let target = Target::parse(path);
    shared.record(path, &target);
    if !authorized(&shared, &target, &headers) {
        return challenge(&shared, &target);
    }
    let head = method == Method::HEAD;
    let fault = shared.next_fault(path, head);
    match fault {
        Some(Fault::Status(401)) => return challenge(&shared, &target),
        Some(Fault::Status(code)) => return status_fault(code, &target),
        Some(Fault::TooMany { retry_after }) => return too_many(retry_after),
        Some(Fault::Stall(wait)) => tokio::time::sleep(wait).await,
        _ => {}
    }
    let payload = match serve(&shared, &target, &method, &uri, &headers) {
        Ok(payload) => payload,
        Err(refused) => return refused.into_response(),
    };
    match fault {
        Some(Fault::WrongBytes) if !head => payload.corrupted().into_response(false),
        Some(Fault::Truncate(keep)) if !head => payload.truncated(keep),
        Some(Fault::Pause { after, wait }) if !head => payload.paused(after, wait),
        _ => payload.into_response(head),
    }
}

/// The normal answer to a request: a payload, or a registry error.
fn serve(
    shared: &Shared,
    target: &Target,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Payload, Refused> {
    if *method != Method::GET && *method != Method::HEAD {
        let unsupported = "faulty only reads";
        return Err(Refused(
            StatusCode::METHOD_NOT_ALLOWED,
            "UNSUPPORTED",
            unsupported,
        ));
    }
    match target {
        Target::Base => Ok(Payload::json(&json!({}))),
        Target::Token => issue_token(shared, uri, headers),
        Target::Manifest { name, reference } => {
            shared.check_served(name)?;
            let payload = manifest(shared.image, reference)?;
            let remaining = shared.rate_remaining(*method == Method::GET);
            Ok(payload.with_rate_limit(remaining))
        }
        Target::Blob { name, digest } => {
            shared.check_served(name)?;
            blob(shared.image, digest)
        }
        Target::Other => Err(Refused::not_found("UNSUPPORTED", "no such route")),
    }
}

fn manifest(image: &Image, reference: &str) -> Result<Payload, Refused> {
    let digest = if reference == TAG {
        image.index.as_str()
    } else {
        reference
    };
    match image.content.get(digest) {
        Some(content) if content.manifest => Ok(Payload::content(digest, content)),
        _ => Err(Refused::not_found("MANIFEST_UNKNOWN", "manifest unknown")),
    }
}

fn blob(image: &Image, digest: &str) -> Result<Payload, Refused> {
    match image.content.get(digest) {
        Some(content) if !content.manifest => {
            let mut payload = Payload::content(digest, content);
            payload.set(header::CONTENT_TYPE, "application/octet-stream");
            Ok(payload)
        }
        _ => Err(Refused::not_found(
            "BLOB_UNKNOWN",
            "blob unknown to registry",
        )),
    }
}

/// A registry error before it becomes a response: status, code, message.
struct Refused(StatusCode, &'static str, &'static str);

impl Refused {
    fn not_found(code: &'static str, message: &'static str) -> Refused {
        Refused(StatusCode::NOT_FOUND, code, message)
    }

    fn name_unknown() -> Refused {
        Refused::not_found("NAME_UNKNOWN", "repository name not known to registry")
    }

    fn into_response(self) -> Response {
        error(self.0, self.1, self.2)
    }
}

/// A 200 answer before it is sent, so that a fault can still spoil its body.
struct Payload {
    headers: HeaderMap,
    bytes: Bytes,
}

impl Payload {
    fn content(digest: &str, content: &Content) -> Payload {
        let mut payload = Payload {
            headers: HeaderMap::new(),
            bytes: content.bytes.clone(),
        };
        payload.set(header::CONTENT_TYPE, content.media_type);
        payload.set("docker-content-digest", digest);
        payload
    }

    fn json(value: &Value) -> Payload {
        let bytes = Bytes::from(serde_json::to_vec(value).expect("faulty: json"));
        let mut payload = Payload {
            headers: HeaderMap::new(),
            bytes,
        };
        payload.set(header::CONTENT_TYPE, "application/json");
        payload
    }

    fn set(&mut self, name: impl header::IntoHeaderName, value: &str) {
        let value = HeaderValue::from_str(value).expect("faulty: header value");
        self.headers.insert(name, value);
    }

    fn with_rate_limit(mut self, remaining: u32) -> Payload {
        self.set("ratelimit-limit", &format!("{RATE_LIMIT};{RATE_WINDOW}"));
        self.set("ratelimit-remaining", &format!("{remaining};{RATE_WINDOW}"));
        self
    }

    fn corrupted(mut self) -> Payload {
        let mut bytes = self.bytes.to_vec();
        let middle = bytes.len() / 2;
        if let Some(middle) = bytes.get_mut(middle) {
            *middle ^= 0x01;
        }
        self.bytes = Bytes::from(bytes);
        self
    }

    fn into_response(self, head: bool) -> Response {
        let body = if head {
            Body::empty()
        } else {
            Body::from(self.bytes.clone())
        };
        self.response(body)
    }

    fn response(self, body: Body) -> Response {
        let length = self.bytes.len().to_string();
        let mut response = Response::new(body);
        *response.headers_mut() = self.headers;
        let length = HeaderValue::from_str(&length).expect("faulty: length");
        response
            .headers_mut()
            .insert(header::CONTENT_LENGTH, length);
        response
    }

    /// Headers with the full length, the first `keep` bytes, then a body error: hyper drops
    /// the connection, and the client sees a body error (or fewer bytes than announced). The
    /// pause before the error lets hyper flush what was sent; without it the client may get
    /// nothing at all, not even the headers.
    fn truncated(self, keep: usize) -> Response {
        let sent = self.bytes.slice(..keep.min(self.bytes.len()));
        let drop_connection = async {
            tokio::time::sleep(Duration::from_millis(20)).await;
            let kind = std::io::ErrorKind::ConnectionAborted;
            Err::<Bytes, _>(std::io::Error::new(kind, "faulty: truncated"))
        };
        let sent = futures_util::stream::iter([Ok(sent)]);
        let body = sent.chain(futures_util::stream::once(drop_connection));
        self.response(Body::from_stream(body))
    }

    /// The first `after` bytes, a pause of `wait`, then the rest.
    fn paused(self, after: usize, wait: Duration) -> Response {
        let cut = after.min(self.bytes.len());
        let (first, rest) = (self.bytes.slice(..cut), self.bytes.slice(cut..));
        let rest = async move {
            tokio::time::sleep(wait).await;
            Ok::<Bytes, std::io::Error>(rest)
        };
        let first = futures_util::stream::iter([Ok(first)]);
        let body = first.chain(futures_util::stream::once(rest));
        self.response(Body::from_stream(body))
    }
}

/// A registry error response: `{"errors":[{"code":…,"message":…,"detail":null}]}`.
fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = json!({ "errors": [{ "code": code, "message": message, "detail": null }] });
    let mut response = Payload::json(&body).into_response(false);
    *response.status_mut() = status;
    response
}

fn status_fault(code: u16, target: &Target) -> Response {
    let status = StatusCode::from_u16(code).expect("faulty: status checked when pushed");
    let code = match (code, target) {
        (401, _) => "UNAUTHORIZED",
        (403, _) => "DENIED",
        (404, Target::Manifest { .. }) => "MANIFEST_UNKNOWN",
        (404, Target::Blob { .. }) => "BLOB_UNKNOWN",
        (429, _) => "TOOMANYREQUESTS",
        (503, _) => "UNAVAILABLE",
        _ => "UNKNOWN",
    };
    error(
        status,
        code,
        &format!("faulty: scripted {}", status.as_u16()),
    )
}

fn too_many(retry_after: u64) -> Response {
    let mut response = error(
        StatusCode::TOO_MANY_REQUESTS,
        "TOOMANYREQUESTS",
        TOO_MANY_MESSAGE,
    );
    let value = HeaderValue::from(retry_after);
    response.headers_mut().insert(header::RETRY_AFTER, value);
    response
}

/// Whether the request may go on: with the token flow on, a registry request needs a bearer
/// token from this server, and one whose scopes let it pull the repository the path names.
fn authorized(shared: &Shared, target: &Target, headers: &HeaderMap) -> bool {
    if !shared.auth || !target.is_registry_api() {
        return true;
    }
    let scopes = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "))
        .and_then(token_scopes);
    match (scopes, target.name()) {
        (Some(scopes), Some(name)) => scopes.contains(&format!("repository:{name}:pull")),
        (Some(_), None) => true,
        (None, _) => false,
    }
}

fn challenge(shared: &Shared, target: &Target) -> Response {
    let name = target.name().unwrap_or(REPOSITORY);
    let realm = &shared.realm;
    let value =
        format!(r#"Bearer realm="{realm}",service="{SERVICE}",scope="repository:{name}:pull""#);
    let mut response = error(
        StatusCode::UNAUTHORIZED,
        "UNAUTHORIZED",
        "authentication required",
    );
    let value = HeaderValue::from_str(&value).expect("faulty: challenge");
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, value);
    response
}

/// `GET /token?service=…&scope=…`: a token that encodes the scopes granted: all those asked
/// for with the account's Basic credentials, all but [`PRIVATE_REPOSITORY`]'s without any; a
/// Basic header with other credentials is refused with 401.
fn issue_token(shared: &Shared, uri: &Uri, headers: &HeaderMap) -> Result<Payload, Refused> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Basic "));
    let account = match basic {
        Some(given) if shared.is_account(given) => {
            shared.script().credentialed_token_requests += 1;
            true
        }
        Some(_) => {
            shared.script().refused_token_requests += 1;
            let wrong = "incorrect username or password";
            return Err(Refused(StatusCode::UNAUTHORIZED, "UNAUTHORIZED", wrong));
        }
        None => false,
    };
    let private_scope = format!("repository:{PRIVATE_REPOSITORY}:pull");
    let query = Query::<Vec<(String, String)>>::try_from_uri(uri)
        .map(|q| q.0)
        .unwrap_or_default();
    let scopes: Vec<&str> = query
        .iter()
        .filter(|(k, _)| k == "scope")
        .map(|(_, v)| v.as_str())
        .filter(|scope| account || *scope != private_scope)
        .collect();
    let token = format!("{TOKEN_PREFIX}{}", hex(scopes.join(" ").as_bytes()));
    Ok(Payload::json(&json!({
        "token": token,
        "access_token": token,
        "expires_in": 300,
        "issued_at": rfc3339_now(),
    })))
}

/// The scopes a token was issued for, or `None` if this server did not issue it.
fn token_scopes(token: &str) -> Option<Vec<String>> {
    let encoded = token.strip_prefix(TOKEN_PREFIX)?;
    if encoded.len() % 2 != 0 {
        return None;
    }
    let bytes: Option<Vec<u8>> = (0..encoded.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(encoded.get(i..i + 2)?, 16).ok())
        .collect();
    let joined = String::from_utf8(bytes?).ok()?;
    Some(joined.split(' ').map(str::to_owned).collect())
}

/// The image, built once per test binary.
struct Image {
    index: String,
    manifests: Vec<String>,
    configs: Vec<String>,
    layers: Vec<String>,
    content: HashMap<String, Content>,
}

struct Content {
    media_type: &'static str,
    manifest: bool,
    bytes: Bytes,
}

impl Image {
    fn get() -> &'static Image {
        static IMAGE: OnceLock<Image> = OnceLock::new();
        IMAGE.get_or_init(Image::build)
    }

    fn build() -> Image {
        let mut image = Image {
            index: String::new(),
            manifests: Vec::new(),
            configs: Vec::new(),
            layers: Vec::new(),
            content: HashMap::new(),
        };
        let mut platforms = Vec::new();
        for (seed, arch) in [(1, "amd64"), (2, "arm64")] {
            let mut manifest = image.platform(seed, arch);
            manifest["platform"] = json!({ "architecture": arch, "os": "linux" });
            platforms.push(manifest);
        }
        let index = json!({
            "schemaVersion": 2,
            "mediaType": INDEX_MEDIA_TYPE,
            "manifests": platforms,
        });
        image.index = digest_of(&image.add(INDEX_MEDIA_TYPE, true, to_json(&index)));
        image
    }

    /// Adds one platform's layer, config and manifest; returns the manifest's descriptor.
    fn platform(&mut self, seed: u64, arch: &str) -> Value {
        let layer = self.add(LAYER_MEDIA_TYPE, false, layer_bytes(seed));
        let config = json!({
            "architecture": arch,
            "os": "linux",
            "config": { "Cmd": ["/bin/true"] },
            "rootfs": { "type": "layers", "diff_ids": [layer["digest"]] },
        });
        let config = self.add(CONFIG_MEDIA_TYPE, false, to_json(&config));
        let manifest = json!({
            "schemaVersion": 2,
            "mediaType": MANIFEST_MEDIA_TYPE,
            "config": config,
            "layers": [layer],
        });
        self.layers.push(digest_of(&layer));
        self.configs.push(digest_of(&config));
        let manifest = self.add(MANIFEST_MEDIA_TYPE, true, to_json(&manifest));
        self.manifests.push(digest_of(&manifest));
        manifest
    }

    /// Stores `bytes` under their digest; returns their OCI descriptor.
    fn add(&mut self, media_type: &'static str, manifest: bool, bytes: Vec<u8>) -> Value {
        let digest = sha256_digest(&bytes);
        let descriptor = json!({ "mediaType": media_type, "digest": digest, "size": bytes.len() });
        let content = Content {
            media_type,
            manifest,
            bytes: Bytes::from(bytes),
        };
        self.content.insert(digest, content);
        descriptor
    }
}

fn digest_of(descriptor: &Value) -> String {
    descriptor["digest"]
        .as_str()
        .expect("faulty: descriptor digest")
        .to_owned()
}

fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("faulty: json")
}

/// `LAYER_SIZE` deterministic pseudo-random bytes (xorshift64).
fn layer_bytes(seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state.to_le_bytes()
    };
    (0..LAYER_SIZE / 8).flat_map(|_| next()).collect()
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    format!("sha256:{}", hex(&Sha256::digest(bytes)))
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(out, "{byte:02x}");
    }
    out
}

/// Now as RFC 3339 UTC, e.g. `2026-04-01T12:00:00Z`, for the token's `issued_at`.
fn rfc3339_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let (days, rest) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    format!("{year:04}-{month:02}-{day:02}T{hour:02}:{minute:02}:{second:02}Z")
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let (era, doe) = (z / 146_097, z % 146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}
