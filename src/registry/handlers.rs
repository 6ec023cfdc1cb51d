//! Request handlers: thin glue between the routes, the store and the snapshotter.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::connections::Peer;
use super::errors::RegistryError;
use super::listing;
use super::paths::{self, Route};
use crate::reference::{Digest, Reference};
use crate::snapshot::{BlobSource, Tee};
use crate::store::{Origin, StoreError};

/// Says whether the store already had what was served.
pub const CACHE_HEADER: &str = "x-stablebuild-cache";
const API_VERSION: (&str, &str) = ("docker-distribution-api-version", "registry/2.0");
const DIGEST_HEADER: &str = "docker-content-digest";

type Result<T> = std::result::Result<T, RegistryError>;

/// Every registry request (the request is read in place: no extractor copies its headers).
pub async fn dispatch(State(state): State<Arc<AppState>>, req: Request) -> Response {
    let peer = match req.extensions().get::<ConnectInfo<Peer>>() {
        Some(ConnectInfo(Peer(peer))) => *peer,
        None => SocketAddr::from(([0, 0, 0, 0], 0)),
    };
    let client = Client {
        peer,
        headers: req.headers(),
    };
    let mut resp = match route(&state, req.method(), req.uri(), &client).await {
        Ok(resp) => resp,
        Err(e) => e.into_response(),
    };
    let (name, value) = API_VERSION;
    resp.headers_mut().insert(
        HeaderName::from_static(name),
        HeaderValue::from_static(value),
    );
    resp
}

/// Who sent a request: for the history of what its pulls pin.
struct Client<'a> {
    peer: SocketAddr,
    headers: &'a HeaderMap,
}

impl Client<'_> {
    fn origin(&self) -> Origin {
        let agent = self.headers.get(header::USER_AGENT);
        Origin::PullThrough {
            client: self.peer.to_string(),
            user_agent: agent
                .and_then(|v| v.to_str().ok())
                .unwrap_or("-")
                .to_string(),
        }
    }
}

async fn route(
    state: &Arc<AppState>,
    method: &Method,
    uri: &Uri,
    client: &Client<'_>,
) -> Result<Response> {
    let headers = client.headers;
    let route = paths::route(uri.path())?;
    if *method != Method::GET && *method != Method::HEAD {
        return Err(RegistryError::Unsupported(format!(
            "{method} {}",
            uri.path()
        )));
    }
    let head = *method == Method::HEAD;
    let ns = query_param(uri, "ns");
    match route {
        Route::Base => Ok((StatusCode::OK, axum::Json(serde_json::json!({}))).into_response()),
        Route::Upload => Err(RegistryError::Unsupported(format!(
            "{method} {}",
            uri.path()
        ))),
        Route::Manifest { name, reference } => {
            let repo = paths::resolve(name, ns.as_deref(), &state.allowed)?;
            let r = paths::manifest_reference(&repo, reference)?;
            manifest(state, r, head, client).await
        }
        Route::Blob { name, digest } => {
            let repo = paths::resolve(name, ns.as_deref(), &state.allowed)?;
            let digest = Digest::parse(digest).map_err(paths::PathError::Digest)?;
            // Errors of a fetch by digest name the repository and the digest.
            let r = repo.with_digest(digest.clone());
            blob(state, r, digest, head, headers).await
        }
        Route::Tags { name } => {
            let repo = paths::resolve(name, ns.as_deref(), &state.allowed)?;
            listing::tags(state, uri, repo.registry(), repo.repository(), name)
        }
        Route::Catalog => listing::catalog(state, uri),
    }
}

fn query_param(uri: &Uri, key: &str) -> Option<String> {
    uri.query()?.split('&').find_map(|kv| {
        let (k, v) = kv.split_once('=')?;
        (k == key).then(|| v.to_string())
    })
}

/// A manifest by tag or digest: from the store, or on a miss pinned (the whole tag, every
/// platform) and answered once every manifest is stored, the blobs still downloading.
async fn manifest(
    state: &Arc<AppState>,
    r: Reference,
    head: bool,
    client: &Client<'_>,
) -> Result<Response> {
    let store = state.snap.store();
    let key = r.digest().is_none().then(|| r.key());
    let known = match (r.digest(), &key) {
        (Some(d), _) => Some(d.clone()),
        (None, Some(key)) => store.tag_digest(key)?,
        (None, None) => None,
    };
    // A tag record exists only once everything it reaches was stored; a blob lost since
    // (verify --repair) is fetched again by digest when a client asks for it.
    let hit = match &known {
        Some(d) => store.manifest(d)?.map(|m| (d.clone(), m)),
        None => None,
    };
    let (digest, (meta, bytes), cache) = match hit {
        Some((digest, m)) => (digest, m, "hit"),
        None => {
            let root = state.snap.pin_through(r.clone(), client.origin()).await?;
            let digest = r.digest().cloned().unwrap_or(root);
            let m = store
                .manifest(&digest)?
                .ok_or_else(|| RegistryError::ManifestUnknown(r.to_string()))?;
            (digest, m, "miss")
        }
    };
    if let Some(key) = &key {
        state.usage.pulled(key);
    }
    let mut resp = response(if head {
        Body::empty()
    } else {
        Body::from(bytes)
    });
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, value(&meta.media_type));
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(meta.size));
    identity(h, &digest, cache);
    Ok(resp)
}

/// A response with room for the headers a registry answer carries (HeaderMap grows by
/// rehashing: ~2% of a blob GET's CPU at 1,000 connections).
fn response(body: Body) -> Response {
    let mut resp = Response::new(body);
    *resp.headers_mut() = HeaderMap::with_capacity(8);
    resp
}

fn value(s: &str) -> HeaderValue {
    HeaderValue::from_str(s)
        .unwrap_or_else(|_| HeaderValue::from_static("application/octet-stream"))
}

fn identity(h: &mut HeaderMap, digest: &Digest, cache: &'static str) {
    h.insert(
        HeaderName::from_static(DIGEST_HEADER),
        value(digest.as_str()),
    );
    h.insert(header::ETAG, value(&format!("\"{digest}\"")));
    h.insert(
        HeaderName::from_static(CACHE_HEADER),
        HeaderValue::from_static(cache),
    );
}

/// A blob from the store; on a miss, fetched by digest (or joined, when a pin is already
/// fetching it) and streamed while it is written. Single ranges are served from the store.
async fn blob(
    state: &Arc<AppState>,
    r: Reference,
    digest: Digest,
    head: bool,
    headers: &HeaderMap,
) -> Result<Response> {
    let range = headers.get(header::RANGE).and_then(|v| v.to_str().ok());
    if state.redirect
        && !head
        && let Some(url) = state.snap.presigned(&digest).await?
    {
        return Ok(redirect(&url, &digest));
    }
    let hit = match state.snap.blob_source(r, digest.clone()).await? {
        BlobSource::Stored { hit } => hit,
        BlobSource::Writing(tee) => match tee.size().filter(|n| *n > 0 && range.is_none()) {
            Some(size) => return Ok(streamed(tee, &digest, size, head)),
            None if tee.finished().await => false,
            None => return Err(RegistryError::BlobUnknown(digest.to_string())),
        },
    };
    let cache = if hit { "hit" } else { "miss" };
    stored(state, &digest, cache, head, range).await
}

/// 307 to where the bucket serves the blob itself.
fn redirect(url: &str, digest: &Digest) -> Response {
    let mut resp = response(Body::empty());
    *resp.status_mut() = StatusCode::TEMPORARY_REDIRECT;
    resp.headers_mut().insert(header::LOCATION, value(url));
    identity(resp.headers_mut(), digest, "redirect");
    resp
}

/// A blob still being written: the bytes as they arrive (the last after it is verified).
fn streamed(tee: Arc<Tee>, digest: &Digest, size: u64, head: bool) -> Response {
    let body = if head {
        Body::empty()
    } else {
        Body::from_stream(tee.stream(size))
    };
    let mut resp = response(body);
    blob_headers(resp.headers_mut(), size, digest, "miss");
    resp
}

/// A stored blob, whole or one range of it (memory-mapped: no copy through user space).
async fn stored(
    state: &Arc<AppState>,
    digest: &Digest,
    cache: &'static str,
    head: bool,
    range: Option<&str>,
) -> Result<Response> {
    let bytes = match state.snap.store().blobs().map(digest) {
        Ok(bytes) => bytes,
        Err(StoreError::BlobMissing(_)) => {
            return Err(RegistryError::BlobUnknown(digest.to_string()));
        }
        Err(e) => return Err(e.into()),
    };
    let len = bytes.len() as u64;
    let range = match range {
        Some(spec) => Some(parse_range(spec, len).ok_or(RegistryError::Range)?),
        None => None,
    };
    let (start, end) = range.unwrap_or((0, len.saturating_sub(1)));
    let count = if len == 0 { 0 } else { end - start + 1 };
    let body = if head || count == 0 {
        Body::empty()
    } else {
        Body::from(bytes.slice(start as usize..=end as usize))
    };
    let mut resp = response(body);
    blob_headers(resp.headers_mut(), count, digest, cache);
    if range.is_some() {
        *resp.status_mut() = StatusCode::PARTIAL_CONTENT;
        let cr = format!("bytes {start}-{end}/{len}");
        resp.headers_mut().insert(header::CONTENT_RANGE, value(&cr));
    }
    Ok(resp)
}

fn blob_headers(h: &mut HeaderMap, len: u64, digest: &Digest, cache: &'static str) {
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    h.insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    identity(h, digest, cache);
}

/// `bytes=a-b`, `bytes=a-`, `bytes=-n` → inclusive (start, end); None if unsatisfiable or
/// not a single range.
pub fn parse_range(spec: &str, len: u64) -> Option<(u64, u64)> {
    let spec = spec.trim().strip_prefix("bytes=")?;
    if spec.contains(',') || len == 0 {
        return None;
    }
    let (a, b) = spec.split_once('-')?;
    let (start, end) = match (a.trim(), b.trim()) {
        ("", n) => (len.saturating_sub(digits(n)?), len - 1),
        (a, "") => (digits(a)?, len - 1),
        (a, b) => (digits(a)?, digits(b)?.min(len - 1)),
    };
    (start <= end && start < len).then_some((start, end))
}

/// A range bound: ASCII digits only (`u64::from_str` would also take a leading `+`).
fn digits(s: &str) -> Option<u64> {
    s.bytes()
        .all(|b| b.is_ascii_digit())
        .then(|| s.parse().ok())
        .flatten()
}

#[cfg(test)]
mod tests {
    use super::parse_range;

    #[test]
    fn ranges() {
        assert_eq!(parse_range("bytes=0-9", 100), Some((0, 9)));
        assert_eq!(parse_range("bytes=90-", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=-10", 100), Some((90, 99)));
        assert_eq!(parse_range("bytes=50-1000", 100), Some((50, 99)));
        assert_eq!(parse_range("bytes=100-", 100), None);
        assert_eq!(parse_range("bytes=5-2", 100), None);
        assert_eq!(parse_range("bytes=0-1,5-6", 100), None);
        assert_eq!(parse_range("items=0-1", 100), None);
        assert_eq!(parse_range("bytes=+5-", 100), None);
        assert_eq!(parse_range("bytes=0-+9", 100), None);
        assert_eq!(parse_range("bytes=-+10", 100), None);
        assert_eq!(parse_range("bytes=--10", 100), None);
    }
}
