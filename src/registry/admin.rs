//! The admin API (`POST /_stablebuild/v1/{pin,record,list,history,drift,inspect,evict,gc,verify}`,
//! JSON in and out),
//! so the CLI works while this server holds the store, and CI can pre-warm a remote mirror.
//! Every call needs `Authorization: Bearer <admin token>`; mirror clients without it
//! cannot pin, evict or gc. Bodies are the same `ops` results the commands print.
//! Must not touch: anything the `ops` module does not already do.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::AppState;
use super::connections::Peer;
use super::errors::RegistryError;
use crate::events::{self, Event};
use crate::ops;
use crate::reference::Reference;
use crate::snapshot::{Progress, Quiet};
use crate::store::Origin;

#[derive(Deserialize)]
pub struct Images {
    images: Vec<String>,
    /// Answer with progress events as JSON lines (see `events.rs`), the result last.
    #[serde(default)]
    progress: bool,
}

#[derive(Deserialize)]
pub struct Image {
    image: String,
    #[serde(default)]
    progress: bool,
}

#[derive(Deserialize)]
pub struct Filter {
    filter: Option<String>,
}

#[derive(Deserialize)]
pub struct GcBody {
    #[serde(default)]
    dry_run: bool,
    /// A shared store's grace period (see `gc --grace`).
    #[serde(default = "default_grace")]
    grace_secs: u64,
}

fn default_grace() -> u64 {
    3600
}

#[derive(Deserialize)]
pub struct VerifyBody {
    #[serde(default)]
    repair: bool,
}

fn authorize(state: &AppState, headers: &HeaderMap) -> Result<(), RegistryError> {
    let sent = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    match sent {
        Some(token) if crate::secret::same(token, &state.admin_token) => Ok(()),
        _ => Err(RegistryError::AdminDenied),
    }
}

fn parse(images: &[String]) -> Result<Vec<Reference>, RegistryError> {
    images
        .iter()
        .map(|s| Reference::parse(s).map_err(|e| RegistryError::BadRequest(e.to_string())))
        .collect()
}

/// Who a request of the admin API comes from.
fn origin(peer: SocketAddr) -> Origin {
    Origin::Admin {
        remote: peer.to_string(),
    }
}

pub async fn pin(
    State(s): State<Arc<AppState>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    h: HeaderMap,
    Json(b): Json<Images>,
) -> Response {
    let refs = match authorize(&s, &h).and_then(|_| parse(&b.images)) {
        Ok(refs) => refs,
        Err(e) => return e.into_response(),
    };
    let snap = s.snap.clone();
    detached(b.progress, move |progress| async move {
        Ok(ops::pin_all(&snap, &refs, &origin(peer), progress.as_ref()).await)
    })
    .await
}

/// Pin one image (if it is not yet) and answer with its whole record, so that a local
/// `pull` can export it from the store's files.
pub async fn record(
    State(s): State<Arc<AppState>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    h: HeaderMap,
    Json(b): Json<Image>,
) -> Response {
    let r = match authorize(&s, &h).and_then(|_| parse(std::slice::from_ref(&b.image))) {
        Ok(mut refs) => refs.remove(0),
        Err(e) => return e.into_response(),
    };
    let snap = s.snap.clone();
    detached(b.progress, move |progress| async move {
        let outcome = snap
            .pin(&r, &origin(peer), progress.as_ref())
            .await
            .map_err(Arc::new)?;
        // The caller exports from this store's files: a shared store's blobs come here.
        snap.materialize(&r, &outcome.record, progress.as_ref())
            .await
            .map_err(Arc::new)?;
        Ok(ops::PinnedRecord {
            pin: ops::PinLine::from(&outcome),
            record: outcome.record,
        })
    })
    .await
}

/// Run `work` on a task of its own, so that a client that goes away does not cancel it.
/// Without `progress`: answer with its JSON result (or error) when it ends. With it: answer
/// at once with its progress events as JSON lines, the result (or error) last.
async fn detached<T, F, Fut>(progress: bool, work: F) -> Response
where
    T: Serialize + Send + 'static,
    F: FnOnce(Arc<dyn Progress>) -> Fut,
    Fut: Future<Output = Result<T, RegistryError>> + Send + 'static,
{
    if !progress {
        let task = tokio::spawn(work(Arc::new(Quiet)));
        return match task.await.expect("admin task panicked") {
            Ok(value) => Json(value).into_response(),
            Err(e) => e.into_response(),
        };
    }
    let (tx, rx) = mpsc::unbounded_channel();
    let task = work(Arc::new(events::Sink::new(tx.clone())));
    tokio::spawn(async move {
        let end = match task.await {
            Ok(value) => Event::Done {
                result: serde_json::to_value(value).expect("results serialise"),
            },
            Err(e) => Event::Failed {
                message: e.to_string(),
            },
        };
        let _ = tx.send(end);
    });
    let lines = futures_util::stream::unfold(rx, |mut rx| async move {
        let event = rx.recv().await?;
        Some((Ok::<_, std::convert::Infallible>(event.line()), rx))
    });
    let mut resp = Response::new(axum::body::Body::from_stream(lines));
    let ndjson = HeaderValue::from_static("application/x-ndjson");
    resp.headers_mut().insert(header::CONTENT_TYPE, ndjson);
    resp
}

/// The tree of a pinned image, or null when it is not pinned (nothing is asked upstream).
pub async fn inspect(
    State(s): State<Arc<AppState>>,
    h: HeaderMap,
    Json(b): Json<Image>,
) -> Response {
    let run = || {
        authorize(&s, &h)?;
        let r = parse(std::slice::from_ref(&b.image))?.remove(0);
        Ok::<_, RegistryError>(Json(ops::inspect(s.snap.store(), &r)?))
    };
    run().into_response()
}

pub async fn list(State(s): State<Arc<AppState>>, h: HeaderMap, Json(b): Json<Filter>) -> Response {
    let run = async {
        authorize(&s, &h)?;
        let listed = ops::list_in(&s.snap, b.filter.as_deref()).await?;
        Ok::<_, RegistryError>(Json(listed))
    };
    run.await.into_response()
}

pub async fn history(
    State(s): State<Arc<AppState>>,
    h: HeaderMap,
    Json(b): Json<Filter>,
) -> Response {
    let run = async {
        authorize(&s, &h)?;
        let entries = ops::history_in(&s.snap, b.filter.as_deref()).await?;
        Ok::<_, RegistryError>(Json(entries))
    };
    run.await.into_response()
}

/// Drift of the store of record; this server sends the HEAD requests.
pub async fn drift(
    State(s): State<Arc<AppState>>,
    h: HeaderMap,
    Json(b): Json<Filter>,
) -> Response {
    let run = async {
        authorize(&s, &h)?;
        let report = ops::drift_in(&s.snap, b.filter.as_deref()).await?;
        Ok::<_, RegistryError>(Json(report))
    };
    run.await.into_response()
}

pub async fn evict(
    State(s): State<Arc<AppState>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    h: HeaderMap,
    Json(b): Json<Images>,
) -> Response {
    let run = async {
        authorize(&s, &h)?;
        let refs = parse(&b.images)?;
        let evicted = ops::evict(&s.snap, &refs, &origin(peer)).await?;
        Ok::<_, RegistryError>(Json(evicted))
    };
    run.await.into_response()
}

pub async fn gc(State(s): State<Arc<AppState>>, h: HeaderMap, Json(b): Json<GcBody>) -> Response {
    let run = async {
        authorize(&s, &h)?;
        Ok::<_, RegistryError>(Json(ops::gc_in(&s.snap, b.dry_run, b.grace_secs).await?))
    };
    run.await.into_response()
}

pub async fn verify(
    State(s): State<Arc<AppState>>,
    h: HeaderMap,
    Json(b): Json<VerifyBody>,
) -> Response {
    let run = async {
        authorize(&s, &h)?;
        let repair = b.repair;
        let outcome = ops::verify_in(&s.snap, repair).await?;
        Ok::<_, RegistryError>(Json(outcome))
    };
    run.await.into_response()
}
