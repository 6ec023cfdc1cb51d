//! The one place where errors become HTTP answers: status code, the distribution spec's
//! error code, and the `{"errors":[{code,message,detail}]}` body.
//! Must not touch: anything but the response.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::paths::PathError;
use crate::snapshot::{SnapshotError, TierError};
use crate::store::StoreError;
use crate::upstream::{Object, UpstreamError};

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error(transparent)]
    Path(#[from] PathError),
    #[error("manifest unknown: {0}")]
    ManifestUnknown(String),
    #[error("blob unknown: {0}")]
    BlobUnknown(String),
    #[error("repository has no pinned tags: {0}")]
    NameUnknown(String),
    #[error("{0}: this mirror is read-only")]
    Unsupported(String),
    #[error(transparent)]
    Pin(#[from] std::sync::Arc<SnapshotError>),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Tier(#[from] TierError),
    #[error("requested range not satisfiable")]
    Range,
    #[error("the admin API needs this server's admin token (--token / STABLEBUILD_TOKEN)")]
    AdminDenied,
    #[error("{0}")]
    BadRequest(String),
    /// A pull without valid credentials (`serve --pull-auth` / `--pull-token`).
    #[error("authentication required: log in to this mirror (docker login, --creds)")]
    PullDenied,
    /// A dashboard action without a valid session and CSRF token.
    #[error("{0}")]
    Forbidden(String),
}

impl RegistryError {
    /// The HTTP status this error answers with (the dashboard's pages use it too).
    pub fn status(&self) -> StatusCode {
        self.classify().0
    }

    /// Status, spec error code, and the seconds to wait when rate limited.
    fn classify(&self) -> (StatusCode, &'static str, Option<u64>) {
        match self {
            RegistryError::Path(PathError::Unknown(_)) => {
                (StatusCode::NOT_FOUND, "UNSUPPORTED", None)
            }
            RegistryError::Path(PathError::Name(_)) => {
                (StatusCode::BAD_REQUEST, "NAME_INVALID", None)
            }
            RegistryError::Path(PathError::Tag(_)) => {
                (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", None)
            }
            RegistryError::Path(PathError::Page(_)) => {
                (StatusCode::BAD_REQUEST, "PAGINATION_NUMBER_INVALID", None)
            }
            RegistryError::Path(PathError::Digest(_)) => {
                (StatusCode::BAD_REQUEST, "DIGEST_INVALID", None)
            }
            RegistryError::Path(PathError::Denied(_)) => (StatusCode::FORBIDDEN, "DENIED", None),
            RegistryError::ManifestUnknown(_) => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", None),
            RegistryError::BlobUnknown(_) => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN", None),
            RegistryError::NameUnknown(_) => (StatusCode::NOT_FOUND, "NAME_UNKNOWN", None),
            RegistryError::Unsupported(_) => (StatusCode::METHOD_NOT_ALLOWED, "UNSUPPORTED", None),
            RegistryError::Range => (StatusCode::RANGE_NOT_SATISFIABLE, "UNSUPPORTED", None),
            RegistryError::AdminDenied | RegistryError::PullDenied => {
                (StatusCode::UNAUTHORIZED, "UNAUTHORIZED", None)
            }
            RegistryError::BadRequest(_) => (StatusCode::BAD_REQUEST, "NAME_INVALID", None),
            RegistryError::Forbidden(_) => (StatusCode::FORBIDDEN, "DENIED", None),
            RegistryError::Store(e) if e.is_read_only() => {
                (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", None)
            }
            RegistryError::Store(_) => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", None),
            RegistryError::Pin(e) => classify_pin(e),
            RegistryError::Tier(TierError::Store(e)) if e.is_read_only() => {
                (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", None)
            }
            RegistryError::Tier(TierError::Store(_)) => {
                (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", None)
            }
            RegistryError::Tier(TierError::Shared(_)) => {
                (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", None)
            }
        }
    }
}

fn classify_pin(e: &SnapshotError) -> (StatusCode, &'static str, Option<u64>) {
    match e {
        SnapshotError::Upstream { cause, .. } => match cause {
            UpstreamError::NotFound {
                object: Object::Blob,
                ..
            } => (StatusCode::NOT_FOUND, "BLOB_UNKNOWN", None),
            UpstreamError::NotFound { .. } => (StatusCode::NOT_FOUND, "MANIFEST_UNKNOWN", None),
            UpstreamError::RateLimited { retry_after, .. } => (
                StatusCode::TOO_MANY_REQUESTS,
                "TOOMANYREQUESTS",
                Some(*retry_after),
            ),
            UpstreamError::Denied { .. } | UpstreamError::Private { .. } => {
                (StatusCode::FORBIDDEN, "DENIED", None)
            }
            _ => (StatusCode::BAD_GATEWAY, "UNAVAILABLE", None),
        },
        SnapshotError::Manifest { .. } => (StatusCode::BAD_GATEWAY, "MANIFEST_INVALID", None),
        // The shared store (the bucket) failed: the mirror cannot answer, for now.
        SnapshotError::Shared { .. } => (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", None),
        SnapshotError::Store { cause, .. } if cause.is_read_only() => {
            (StatusCode::SERVICE_UNAVAILABLE, "UNAVAILABLE", None)
        }
        SnapshotError::Store { cause, .. } if cause.is_bad_content() => {
            (StatusCode::BAD_GATEWAY, "BLOB_UNKNOWN", None)
        }
        SnapshotError::Store { .. } => (StatusCode::INTERNAL_SERVER_ERROR, "UNKNOWN", None),
    }
}

impl IntoResponse for RegistryError {
    fn into_response(self) -> Response {
        let (status, code, retry_after) = self.classify();
        let body = json!({"errors": [{"code": code, "message": self.to_string(), "detail": null}]});
        let mut resp = (status, axum::Json(body)).into_response();
        if matches!(self, RegistryError::PullDenied) {
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                HeaderValue::from_static(r#"Basic realm="stablebuild""#),
            );
        }
        if let Some(secs) = retry_after {
            resp.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        resp
    }
}
