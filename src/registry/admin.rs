//! The admin API (`POST /_stablebuild/v1/{pin,record,list,evict,gc,verify}`, JSON in and out),
//! so the CLI works while this server holds the store, and CI can pre-warm a remote mirror.
//! Every call needs `Authorization: Bearer <admin token>`; mirror clients without it
//! cannot pin, evict or gc. Bodies are the same `ops` results the commands print.
//! Must not touch: anything the `ops` module does not already do.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::AppState;
use super::errors::RegistryError;
use crate::ops;
use crate::reference::Reference;
use crate::snapshot::Quiet;

#[derive(Deserialize)]
pub struct Images {
    images: Vec<String>,
}

#[derive(Deserialize)]
pub struct Image {
    image: String,
}

#[derive(Deserialize)]
pub struct Filter {
    filter: Option<String>,
}

#[derive(Deserialize)]
pub struct GcBody {
    #[serde(default)]
    dry_run: bool,
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
        Some(token) if token == state.admin_token => Ok(()),
        _ => Err(RegistryError::AdminDenied),
    }
}

fn parse(images: &[String]) -> Result<Vec<Reference>, RegistryError> {
    images
        .iter()
        .map(|s| Reference::parse(s).map_err(|e| RegistryError::BadRequest(e.to_string())))
        .collect()
}

pub async fn pin(State(s): State<Arc<AppState>>, h: HeaderMap, Json(b): Json<Images>) -> Response {
    let run = async {
        authorize(&s, &h)?;
        let refs = parse(&b.images)?;
        let snap = s.snap.clone();
        // Detached: a client that goes away does not cancel the pins.
        let task = tokio::spawn(async move { ops::pin_all(&snap, &refs, &Quiet).await });
        Ok::<_, RegistryError>(Json(task.await.expect("pin task panicked")))
    };
    run.await.into_response()
}

/// Pin one image (if it is not yet) and answer with its whole record, so that a local
/// `pull` can export it from the store's files.
pub async fn record(
    State(s): State<Arc<AppState>>,
    h: HeaderMap,
    Json(b): Json<Image>,
) -> Response {
    let run = async {
        authorize(&s, &h)?;
        let r = parse(std::slice::from_ref(&b.image))?.remove(0);
        let snap = s.snap.clone();
        let task = tokio::spawn(async move { snap.pin(&r, &Quiet).await });
        let outcome = task.await.expect("pin task panicked").map_err(Arc::new)?;
        let pinned = ops::PinnedRecord {
            pin: ops::PinLine::from(&outcome),
            record: outcome.record,
        };
        Ok::<_, RegistryError>(Json(pinned))
    };
    run.await.into_response()
}

pub async fn list(State(s): State<Arc<AppState>>, h: HeaderMap, Json(b): Json<Filter>) -> Response {
    let run = || {
        authorize(&s, &h)?;
        Ok::<_, RegistryError>(Json(ops::list(s.snap.store(), b.filter.as_deref())?))
    };
    run().into_response()
}

pub async fn evict(
    State(s): State<Arc<AppState>>,
    h: HeaderMap,
    Json(b): Json<Images>,
) -> Response {
    let run = || {
        authorize(&s, &h)?;
        let refs = parse(&b.images)?;
        Ok::<_, RegistryError>(Json(ops::evict(s.snap.store(), &refs)?))
    };
    run().into_response()
}

pub async fn gc(State(s): State<Arc<AppState>>, h: HeaderMap, Json(b): Json<GcBody>) -> Response {
    let run = async {
        authorize(&s, &h)?;
        Ok::<_, RegistryError>(Json(ops::gc(&s.snap, b.dry_run).await?))
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
        let outcome = s.snap.exclusive(|store| ops::verify(store, repair)).await?;
        Ok::<_, RegistryError>(Json(outcome))
    };
    run.await.into_response()
}
