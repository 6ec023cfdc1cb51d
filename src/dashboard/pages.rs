//! The dashboard's GET handlers: gather plain data from the store, the snapshotter and the
//! server's counters, hand it to a view. Thin; nothing here changes anything.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::{Deserialize, Serialize};

use super::views::{self, tag::CopyLines};
use super::{Dashboard, failure, html, rows};
use crate::ops::{self, Node};
use crate::reference::{Digest, Reference};
use crate::registry::RegistryError;
use crate::store::{Store, TagRecord};

pub async fn tags(
    State(d): State<Arc<Dashboard>>,
    headers: HeaderMap,
    query: Result<Query<rows::Query>, axum::extract::rejection::QueryRejection>,
) -> Response {
    let viewer = match d.admit_page(&headers) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let query = query.map(|Query(q)| q).unwrap_or_default();
    let snap = &d.app.snap;
    let catalog = match d.catalog.get(snap.store()).await {
        Ok(c) => c,
        Err(e) => return failure(&viewer, e),
    };
    let page = rows::select(&catalog.rows, &d.app.usage.all(), &query);
    let missing = missing_blobs(&d, &page.rows);
    let (pins, waiting) = d.in_flight();
    let refresh = query
        .pinning
        .as_ref()
        .is_some_and(|r| waiting.contains(r) || pins.iter().any(|p| &p.reference == r));
    let view = views::tags::TagsPage {
        page: &page,
        query: &query,
        missing: &missing,
        pins: &pins,
        waiting: &waiting,
        refresh,
    };
    html(StatusCode::OK, views::tags::render(&viewer, &view))
}

/// Blobs missing from the store for each row (only the page's rows are looked at). A
/// shared store's records are complete by construction.
fn missing_blobs(d: &Dashboard, page: &[rows::Row]) -> Vec<usize> {
    let store = d.app.snap.store();
    page.iter()
        .map(|row| match d.app.snap.tier().shared() {
            Some(_) => 0,
            None => match store.tag(&row.reference) {
                Ok(Some(record)) => store.missing(&record).len(),
                _ => 0,
            },
        })
        .collect()
}

pub async fn tag(
    State(d): State<Arc<Dashboard>>,
    Path(reference): Path<String>,
    headers: HeaderMap,
) -> Response {
    let viewer = match d.admit_page(&headers) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    match tag_page(&d, &viewer, &reference, &headers).await {
        Ok(resp) => resp,
        Err(e) => failure(&viewer, e),
    }
}

async fn tag_page(
    d: &Dashboard,
    viewer: &views::Viewer,
    reference: &str,
    headers: &HeaderMap,
) -> Result<Response, RegistryError> {
    let r = Reference::parse(reference).map_err(|e| RegistryError::BadRequest(e.to_string()))?;
    let store = d.app.snap.store();
    let unknown = || RegistryError::ManifestUnknown(format!("{r} is not pinned here"));
    let record = store.tag(&r.key())?.ok_or_else(unknown)?;
    let inspection = ops::inspect(store, &r)?.ok_or_else(unknown)?;
    let annotations = annotations(store, &inspection.root);
    let history = match d.app.snap.tier().shared() {
        Some(_) => {
            let mut all = ops::history_in(&d.app.snap, Some(&record.key)).await?;
            all.retain(|e| e.reference == record.key);
            all
        }
        None => d.catalog.history(store, &record.key).await?,
    };
    let lines = copy_lines(&record, headers, d.secure);
    let page = views::tag::TagPage {
        inspection: &inspection,
        platforms: &record.platforms,
        size: record.size,
        annotations: &annotations,
        lines: &lines,
        history: &history,
        pulls: d.app.usage.get(&record.key),
    };
    Ok(html(StatusCode::OK, views::tag::render(viewer, &page)))
}

/// The annotations of every stored manifest in the tree, by digest.
fn annotations(store: &Store, root: &Node) -> BTreeMap<String, Vec<(String, String)>> {
    let mut out = BTreeMap::new();
    let mut next = vec![root];
    while let Some(node) = next.pop() {
        if !matches!(node.kind.as_str(), "index" | "manifest") {
            continue;
        }
        next.extend(node.children.iter());
        let Ok(digest) = Digest::parse(&node.digest) else {
            continue;
        };
        let Ok(Some((_, bytes))) = store.manifest(&digest) else {
            continue;
        };
        let parsed: serde_json::Value = serde_json::from_slice(&bytes).unwrap_or_default();
        if let Some(map) = parsed.get("annotations").and_then(|a| a.as_object()) {
            let pairs = map.iter().map(|(k, v)| (k.clone(), text(v))).collect();
            out.insert(node.digest.clone(), pairs);
        }
    }
    out
}

fn text(v: &serde_json::Value) -> String {
    v.as_str()
        .map(str::to_string)
        .unwrap_or_else(|| v.to_string())
}

/// The lines to copy, naming this mirror as the browser reached it (over TLS when `tls`).
fn copy_lines(record: &TagRecord, headers: &HeaderMap, tls: bool) -> CopyLines {
    let host = headers
        .get(header::HOST)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("localhost:5000");
    let from = crate::lock::locked_form(&record.key, &record.digest, Some(host))
        .unwrap_or_else(|_| format!("{}@{}", record.key, record.digest));
    let pull = from.split_once('@').map_or(from.as_str(), |(n, _)| n);
    let hub = record.key.starts_with("docker.io/");
    CopyLines {
        pull: format!("docker pull {pull}"),
        from: format!("FROM {from}"),
        mirrors: hub.then(|| {
            let scheme = if tls { "https" } else { "http" };
            format!(r#"{{"registry-mirrors": ["{scheme}://{host}"]}}"#)
        }),
    }
}

pub async fn store(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let viewer = match d.admit_page(&headers) {
        Ok(v) => v,
        Err(resp) => return resp,
    };
    let snap = &d.app.snap;
    let catalog = match d.catalog.get(snap.store()).await {
        Ok(c) => c,
        Err(e) => return failure(&viewer, e),
    };
    let stats = snap.upstreams().stats();
    let budgets = snap.upstreams().budgets();
    let (pins, waiting) = d.in_flight();
    let page = views::store::StorePage {
        location: d.location.clone(),
        tags: catalog.rows.len(),
        blobs: catalog.blobs(),
        size: catalog.size,
        counts: d.app.metrics.counts(),
        upstream_requests: stats.requests.load(std::sync::atomic::Ordering::Relaxed),
        upstream_failures: stats.failures.load(std::sync::atomic::Ordering::Relaxed),
        budgets: &budgets,
        pins: &pins,
        waiting: &waiting,
    };
    html(StatusCode::OK, views::store::render(&viewer, &page))
}

#[derive(Serialize)]
struct Progress {
    pins: Vec<PinProgress>,
    /// Pins started from the form that the snapshotter does not list (yet).
    waiting: Vec<String>,
}

#[derive(Serialize)]
struct PinProgress {
    reference: String,
    bytes_done: u64,
    bytes_total: u64,
    text: String,
}

/// The pins in flight, for the pages' live view.
pub async fn progress(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    if let Err(resp) = d.admit(&headers) {
        return resp;
    }
    let (pins, waiting) = d.in_flight();
    let pins = pins
        .iter()
        .map(|p| PinProgress {
            reference: p.reference.clone(),
            bytes_done: p.bytes_done,
            bytes_total: p.bytes_total,
            text: views::progress_text(p),
        })
        .collect();
    let mut resp = Json(Progress { pins, waiting }).into_response();
    let no_store = axum::http::HeaderValue::from_static("no-store");
    resp.headers_mut().insert(header::CACHE_CONTROL, no_store);
    resp
}

pub async fn sign_in(State(d): State<Arc<Dashboard>>, headers: HeaderMap) -> Response {
    let viewer = d.viewer(&headers);
    match viewer.signed_in() {
        true => Redirect::to("/").into_response(),
        false => html(StatusCode::OK, views::forms::sign_in(&viewer, false)),
    }
}

#[derive(Deserialize)]
pub struct EvictQuery {
    #[serde(rename = "ref", default)]
    reference: String,
}

/// The confirmation step before an evict (signed-in viewers only).
pub async fn confirm_evict(
    State(d): State<Arc<Dashboard>>,
    headers: HeaderMap,
    Query(q): Query<EvictQuery>,
) -> Response {
    let viewer = d.viewer(&headers);
    match &viewer.csrf {
        Some(csrf) => {
            let page = views::tag::confirm_evict(&viewer, &q.reference, csrf);
            html(StatusCode::OK, page)
        }
        None => Redirect::to("/sign-in").into_response(),
    }
}
