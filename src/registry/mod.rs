//! `serve`: the store as a read-only Registry v2 / OCI distribution endpoint that pins on a
//! miss.
//!
//! Owns: the HTTP server: routes (axum), connections and graceful shutdown
//! (`connections.rs`) on per-CPU worker threads (`workers.rs`), request logging (written in
//! batches by `request_log.rs`). Path and name parsing live in `paths.rs` (pure), the
//! handlers in `handlers.rs` (thin: they call the store and the snapshotter), and the mapping
//! of errors to status codes in `errors.rs`.
//! Must not touch: store files directly, or any upstream the allow-list does not name.

mod admin;
mod connections;
mod drift;
mod errors;
mod handlers;
mod listing;
mod metrics;
pub mod paths;
pub mod pull_auth;
pub mod request_log;
mod sendfile;
pub mod tls;
mod usage;
mod workers;

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{Method, Uri};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use crate::snapshot::Snapshotter;

pub use connections::Peer;
pub use drift::watch as watch_drift;
pub use errors::RegistryError;
pub use handlers::parse_range;
pub use metrics::Counts;
pub use usage::Pulls;
pub use workers::Workers;

/// Everything a handler needs.
pub struct AppState {
    pub snap: Arc<Snapshotter>,
    /// Registries clients may reach through the mirror.
    pub allowed: Vec<String>,
    /// Bearer token for the admin API.
    pub admin_token: String,
    pub metrics: metrics::Metrics,
    /// Pulls of each tag since this server started.
    pub usage: usage::Usage,
    /// Blob GETs answer 307 to a presigned URL of the bucket (a shared store only).
    pub redirect: bool,
    /// The last background drift run (`serve --drift-every`).
    pub drift: drift::DriftWatch,
    /// Who may pull (`serve --pull-auth`, `--pull-token`); `None`: anyone.
    pub pull_auth: Option<pull_auth::PullAuth>,
}

impl AppState {
    pub fn new(snap: Arc<Snapshotter>, allowed: Vec<String>, admin_token: String) -> AppState {
        AppState {
            snap,
            allowed,
            admin_token,
            metrics: metrics::Metrics::default(),
            usage: usage::Usage::default(),
            redirect: false,
            drift: drift::DriftWatch::default(),
            pull_auth: None,
        }
    }

    /// Let only clients with these credentials pull.
    pub fn with_pull_auth(mut self, auth: Option<pull_auth::PullAuth>) -> AppState {
        self.pull_auth = auth;
        self
    }

    /// Send blob GETs to the bucket with presigned URLs (`serve --redirect`).
    pub fn with_redirect(mut self, redirect: bool) -> AppState {
        self.redirect = redirect;
        self
    }
}

/// The registry's routes, with `pages` (another surface's routes, the dashboard's) served
/// beside them; every request passes `front` (one layer: each layer costs allocations on
/// every request).
pub fn router(state: Arc<AppState>, pages: Router) -> Router {
    use axum::routing::post;
    let api = Router::new()
        .route("/_stablebuild/v1/pin", post(admin::pin))
        .route("/_stablebuild/v1/record", post(admin::record))
        .route("/_stablebuild/v1/list", post(admin::list))
        .route("/_stablebuild/v1/history", post(admin::history))
        .route("/_stablebuild/v1/drift", post(admin::drift))
        .route("/_stablebuild/v1/inspect", post(admin::inspect))
        .route("/_stablebuild/v1/evict", post(admin::evict))
        .route("/_stablebuild/v1/gc", post(admin::gc))
        .route("/_stablebuild/v1/verify", post(admin::verify))
        .route("/metrics", axum::routing::get(render_metrics))
        .fallback(handlers::dispatch)
        .with_state(state.clone());
    api.merge(pages)
        .layer(middleware::from_fn_with_state(state, front))
}

/// What every request goes through: the host read one way whatever the HTTP version, pull
/// access control on `/v2/…`, and the request log and counts.
async fn front(State(state): State<Arc<AppState>>, mut req: Request, next: Next) -> Response {
    host_from_authority(&mut req);
    let (method, uri) = (req.method().clone(), req.uri().clone());
    let started = Instant::now();
    let resp = if pull_denied(&state, &req) {
        RegistryError::PullDenied.into_response()
    } else {
        next.run(req).await
    };
    log_request(&state, &method, &uri, &resp, started);
    resp
}

/// HTTP/2 (over TLS, or h2c on the plain listener) names the host in `:authority`, which
/// hyper puts in the URI, not in `Host`: copy it there, so that handlers read the host one
/// way whatever the version.
fn host_from_authority(req: &mut Request) {
    if !req.headers().contains_key(axum::http::header::HOST)
        && let Some(Ok(host)) = req.uri().authority().map(|a| a.as_str().parse())
    {
        req.headers_mut().insert(axum::http::header::HOST, host);
    }
}

/// Serve until `shutdown` resolves; responses in flight are finished first. With `tls`, over
/// TLS (HTTP/1.1 and HTTP/2); without, plain HTTP with blobs sent by sendfile. Connections
/// run on `workers`.
pub async fn serve(
    listener: tokio::net::TcpListener,
    tls: Option<Arc<tls::Tls>>,
    state: Arc<AppState>,
    pages: Router,
    workers: &Workers,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    connections::serve(listener, tls, router(state, pages), workers, shutdown).await
}

async fn render_metrics(State(state): State<Arc<AppState>>) -> String {
    let mut text = state.metrics.render(state.snap.upstreams());
    text.push_str(&state.drift.render());
    text
}

/// With pull access control, `/v2/…` needs valid credentials (the admin API has its own
/// token, the dashboard its own sign-in).
fn pull_denied(state: &AppState, req: &Request) -> bool {
    let path = req.uri().path();
    let guarded = path == "/v2" || path.starts_with("/v2/");
    match &state.pull_auth {
        Some(auth) => guarded && auth.check(req.headers()).is_none(),
        None => false,
    }
}

/// One log line per request: method, path, status, bytes, hit/miss, duration; and the counts.
fn log_request(state: &AppState, method: &Method, uri: &Uri, resp: &Response, started: Instant) {
    let header = |name: &str| {
        resp.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("-")
    };
    let (status, bytes, cache) = (
        resp.status().as_u16(),
        header("content-length"),
        header(handlers::CACHE_HEADER),
    );
    let served = if method == Method::HEAD {
        0
    } else {
        bytes.parse().unwrap_or(0)
    };
    let kind = metrics::Kind::of(uri.path());
    state.metrics.record(kind, status, Some(cache), served);
    // HTTP/2 requests carry the scheme and authority in the URI: log the path alone.
    let target = uri.path_and_query().map_or(uri.path(), |p| p.as_str());
    if tracing::enabled!(tracing::Level::INFO) {
        request_log::line(format_args!(
            "{method} {target} {status} {bytes} bytes cache={cache} {:.1?}",
            started.elapsed()
        ));
    }
}
