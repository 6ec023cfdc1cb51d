//! The dashboard's POST handlers: sign in and out, evict, pin, garbage-collect. Each action
//! checks the session and its CSRF token first (`Dashboard::authorize`), runs the same `ops`
//! call as the admin API, and answers with a redirect to a page that tells what happened.

use std::sync::Arc;

use axum::extract::rejection::FormRejection;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use axum::{Form, http::HeaderValue};
use serde::Deserialize;

use super::views::{self, Viewer, bytes, encode};
use super::{Dashboard, failure, html, session};
use crate::ops;
use crate::reference::Reference;
use crate::registry::{Peer, RegistryError};
use crate::snapshot::Quiet;
use crate::store::Origin;

/// Any form's fields; missing ones are empty (so a form without its CSRF token is refused
/// with 403, not rejected as malformed).
#[derive(Debug, Default, Deserialize)]
pub struct Fields {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    token: String,
    #[serde(default, alias = "ref")]
    reference: String,
}

fn fields(form: Result<Form<Fields>, FormRejection>) -> Fields {
    form.map(|Form(f)| f).unwrap_or_default()
}

fn origin(peer: std::net::SocketAddr) -> Origin {
    Origin::Admin {
        remote: format!("{peer} (dashboard)"),
    }
}

/// 303 to `to`, optionally setting a cookie.
fn see_other(to: &str, cookie: Option<HeaderValue>) -> Response {
    let mut resp = Redirect::to(to).into_response();
    if let Some(c) = cookie {
        resp.headers_mut().insert(header::SET_COOKIE, c);
    }
    resp
}

pub async fn sign_in(
    State(d): State<Arc<Dashboard>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let f = fields(form);
    let viewer = Viewer::default();
    if let Err(e) = super::same_origin(&headers) {
        return failure(&viewer, e);
    }
    tokio::time::sleep(d.throttle.delay(peer.ip())).await;
    if !crate::secret::same(&f.token, &d.app.admin_token) {
        d.throttle.failed(peer.ip());
        tracing::warn!("dashboard: a sign-in from {peer} was refused");
        return html(StatusCode::FORBIDDEN, views::forms::sign_in(&viewer, true));
    }
    d.throttle.succeeded(peer.ip());
    match d.sessions.create() {
        Ok(id) => see_other("/", Some(session::cookie(&id, session::LIFETIME, d.secure))),
        Err(e) => failure(
            &viewer,
            RegistryError::Forbidden(format!("no session: {e}")),
        ),
    }
}

pub async fn sign_out(
    State(d): State<Arc<Dashboard>>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let f = fields(form);
    match d.authorize(&headers, &f.csrf) {
        Ok(id) => {
            d.sessions.end(&id);
            let gone = session::cookie("", std::time::Duration::ZERO, d.secure);
            see_other("/", Some(gone))
        }
        Err(e) => failure(&d.viewer(&headers), e),
    }
}

fn reference(f: &Fields) -> Result<Reference, RegistryError> {
    let text = f.reference.trim();
    Reference::parse(text).map_err(|e| RegistryError::BadRequest(format!("{text:?}: {e}")))
}

pub async fn evict(
    State(d): State<Arc<Dashboard>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let f = fields(form);
    let run = async {
        let id = d.authorize(&headers, &f.csrf)?;
        let r = reference(&f)?;
        let evicted = ops::evict(&d.app.snap, &[r], &origin(peer)).await?;
        let notice = match evicted.first() {
            Some(ops::Evicted {
                reference,
                digest: Some(digest),
            }) => format!("Evicted {reference} (it was {digest}); the next pull fetches it again."),
            Some(e) => format!("{} was not pinned.", e.reference),
            None => "Nothing was evicted.".into(),
        };
        d.sessions.notify(&id, notice);
        Ok::<_, RegistryError>(see_other("/", None))
    };
    match run.await {
        Ok(resp) => resp,
        Err(e) => failure(&d.viewer(&headers), e),
    }
}

/// Start pinning on a task of its own, and show its progress on the cached-tags page; the
/// result is the session's next notice.
pub async fn pin(
    State(d): State<Arc<Dashboard>>,
    ConnectInfo(Peer(peer)): ConnectInfo<Peer>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let f = fields(form);
    let (id, r) = match d
        .authorize(&headers, &f.csrf)
        .and_then(|id| Ok((id, reference(&f)?)))
    {
        Ok(v) => v,
        Err(e) => return failure(&d.viewer(&headers), e),
    };
    let name = r.to_string();
    let target = format!("/?pinning={}", encode(&name));
    d.started.lock().expect("started pins").push(name.clone());
    let dash = d.clone();
    tokio::spawn(async move {
        let report = ops::pin_all(&dash.app.snap, &[r], &origin(peer), &Quiet).await;
        let notice = match (report.pinned().next(), report.failed().next()) {
            (Some(p), _) => format!(
                "Pinned {} at {} ({}).",
                p.reference,
                p.digest,
                bytes(p.size)
            ),
            (None, Some(f)) => format!("Could not pin: {}", f.error),
            (None, None) => "Nothing was pinned.".into(),
        };
        // The notice first: a page that sees the pin end shows it.
        dash.sessions.notify(&id, notice);
        let mut started = dash.started.lock().expect("started pins");
        if let Some(i) = started.iter().position(|s| *s == name) {
            started.remove(i);
        }
    });
    see_other(&target, None)
}

pub async fn gc(
    State(d): State<Arc<Dashboard>>,
    headers: HeaderMap,
    form: Result<Form<Fields>, FormRejection>,
) -> Response {
    let f = fields(form);
    let run = async {
        let id = d.authorize(&headers, &f.csrf)?;
        let report = ops::gc_in(&d.app.snap, false, 3600).await?;
        let notice = format!(
            "Garbage collection removed {} blobs ({}); {} kept.",
            report.removed.len(),
            bytes(report.freed_bytes),
            report.kept
        );
        d.sessions.notify(&id, notice);
        Ok::<_, RegistryError>(see_other("/store", None))
    };
    match run.await {
        Ok(resp) => resp,
        Err(e) => failure(&d.viewer(&headers), e),
    }
}
