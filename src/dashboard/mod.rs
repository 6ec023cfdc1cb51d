//! The dashboard: `serve`'s web pages beside the registry API — the cached tags (`/`), a
//! tag (`/tags/<reference>`), the store (`/store`) — and, behind the admin token, evict,
//! pin and garbage-collect.
//!
//! Access (`serve --dashboard`): `public` (the default) shows the read-only pages to anyone,
//! as `tags/list` does; `private` asks for the admin token first on every page; `off` serves
//! no page. Signing in with the admin token makes a session (see `session.rs`); every
//! state-changing request is a POST with the session's CSRF token and, when the browser sends
//! an `Origin`, from this server's own origin; anything else is refused with 403 and changes
//! nothing. Pages are server-rendered (`views/`), work without script; the stylesheet and a
//! little script (`assets/`) are compiled in: no request goes to another origin.
//!
//! Owns: the page routes, sessions, and the pins started from the form. Must not touch: the
//! store or the upstreams except through `ops` and the snapshotter, as the admin API does.

mod actions;
mod assets;
mod catalog;
mod pages;
pub mod rows;
mod session;
pub mod views;

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use maud::Markup;

use crate::registry::{AppState, RegistryError};
use views::Viewer;

/// Who may see the pages (`serve --dashboard`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Public,
    Private,
}

pub struct Dashboard {
    app: Arc<AppState>,
    access: Access,
    /// Where the store is, as the store page shows it.
    location: String,
    /// The pinned tags as rows, read again when the index changes.
    catalog: catalog::Cached,
    sessions: session::Sessions,
    throttle: session::Throttle,
    /// Pins started from the form that have not ended (shown until the snapshotter lists
    /// them, and while they run).
    started: Mutex<Vec<String>>,
    /// Session cookies are marked `Secure` (the pages are served over TLS).
    secure: bool,
}

impl Dashboard {
    pub fn new(app: Arc<AppState>, access: Access, location: String) -> Dashboard {
        Dashboard {
            app,
            access,
            location,
            catalog: catalog::Cached::default(),
            sessions: session::Sessions::default(),
            throttle: session::Throttle::default(),
            started: Mutex::new(Vec::new()),
            secure: false,
        }
    }

    /// Mark the session cookie `Secure` (the server speaks TLS).
    pub fn secure(mut self, secure: bool) -> Dashboard {
        self.secure = secure;
        self
    }

    /// Who sent `headers`: signed in or not.
    fn viewer(&self, headers: &HeaderMap) -> Viewer {
        let id = session::from_cookies(headers);
        Viewer {
            csrf: id.as_deref().and_then(|id| self.sessions.csrf(id)),
            notice: None,
        }
    }

    /// The viewer, or (for a private dashboard and nobody signed in) the way to sign in.
    #[allow(clippy::result_large_err)]
    fn admit(&self, headers: &HeaderMap) -> Result<Viewer, Response> {
        let viewer = self.viewer(headers);
        match self.access == Access::Private && !viewer.signed_in() {
            true => Err(Redirect::to("/sign-in").into_response()),
            false => Ok(viewer),
        }
    }

    /// `admit` for a page, which also shows (and so uses up) the session's notice.
    #[allow(clippy::result_large_err)]
    fn admit_page(&self, headers: &HeaderMap) -> Result<Viewer, Response> {
        let mut viewer = self.admit(headers)?;
        if viewer.signed_in() {
            let id = session::from_cookies(headers).expect("a signed-in viewer has a cookie");
            viewer.notice = self.sessions.take_notice(&id);
        }
        Ok(viewer)
    }

    /// The session a state-changing request comes from, when its CSRF token is the
    /// session's and its origin (when the browser names one) is this server.
    fn authorize(&self, headers: &HeaderMap, csrf: &str) -> Result<String, RegistryError> {
        same_origin(headers)?;
        let stale = || {
            RegistryError::Forbidden(
                "this form is not from a live session of this dashboard: sign in again".into(),
            )
        };
        let id = session::from_cookies(headers).ok_or_else(stale)?;
        match self.sessions.check(&id, csrf) {
            true => Ok(id),
            false => Err(stale()),
        }
    }

    /// The snapshotter's pins in flight, and the pins started from the form that it does
    /// not list (yet).
    fn in_flight(&self) -> (Vec<crate::snapshot::PinView>, Vec<String>) {
        let pins = self.app.snap.in_flight();
        let started = self.started.lock().expect("started pins").clone();
        let waiting = started
            .into_iter()
            .filter(|r| !pins.iter().any(|p| &p.reference == r))
            .collect();
        (pins, waiting)
    }
}

/// The dashboard's routes.
pub fn router(dash: Arc<Dashboard>) -> Router {
    use axum::routing::{get, post};
    Router::new()
        .route("/", get(pages::tags))
        .route("/tags/{*reference}", get(pages::tag))
        .route("/store", get(pages::store))
        .route("/progress.json", get(pages::progress))
        .route("/sign-in", get(pages::sign_in).post(actions::sign_in))
        .route("/sign-out", post(actions::sign_out))
        .route("/evict", get(pages::confirm_evict).post(actions::evict))
        .route("/pin", post(actions::pin))
        .route("/gc", post(actions::gc))
        .route("/assets/style.css", get(assets::style))
        .route("/assets/app.js", get(assets::script))
        .with_state(dash)
}

/// A browser that names an `Origin` must name this server's (`http(s)://<Host>`).
fn same_origin(headers: &HeaderMap) -> Result<(), RegistryError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok());
    let ours = host.is_some_and(|h| {
        origin.strip_prefix("http://") == Some(h) || origin.strip_prefix("https://") == Some(h)
    });
    match ours {
        true => Ok(()),
        false => Err(RegistryError::Forbidden(format!(
            "a form from {origin} may not act on this dashboard"
        ))),
    }
}

/// An HTML page, with headers that keep it to this origin.
fn html(status: StatusCode, markup: Markup) -> Response {
    let mut resp = (status, markup.into_string()).into_response();
    let h = resp.headers_mut();
    let set = |h: &mut HeaderMap, name, value: &'static str| {
        h.insert(name, HeaderValue::from_static(value));
    };
    set(h, header::CONTENT_TYPE, "text/html; charset=utf-8");
    set(h, header::CACHE_CONTROL, "no-store");
    set(h, header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(h, header::REFERRER_POLICY, "same-origin");
    set(
        h,
        header::CONTENT_SECURITY_POLICY,
        "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
    );
    resp
}

/// An error as a page, with the status the registry would answer it with.
fn failure(viewer: &Viewer, e: RegistryError) -> Response {
    let status = e.status();
    let title = match status {
        StatusCode::NOT_FOUND => "Not found",
        StatusCode::FORBIDDEN => "Forbidden",
        StatusCode::SERVICE_UNAVAILABLE => "Unavailable",
        s if s.is_client_error() => "Bad request",
        _ => "Error",
    };
    html(status, views::forms::error(viewer, title, &e.to_string()))
}
