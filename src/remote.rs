//! The client side of a running server's admin API (`/_stablebuild/v1/…`): how `pin`,
//! `list`, `evict`, `gc` and `verify` work while `serve` holds the store, or against a
//! remote mirror with `--server URL --token T`.
//! Must not touch: the store directory.

use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::ops::{Evicted, ListEntry, PinReport, PinnedRecord, VerifyOutcome};
use crate::store::GcReport;

#[derive(Debug, thiserror::Error)]
pub enum RemoteError {
    #[error("server {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("server {url} answered {status}: {message}")]
    Status {
        url: String,
        status: u16,
        message: String,
    },
}

pub struct Remote {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl Remote {
    pub fn new(base: &str, token: Option<String>) -> Remote {
        Remote {
            base: base.trim_end_matches('/').to_string(),
            token,
            http: reqwest::Client::new(),
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    pub async fn pin(&self, images: &[String]) -> Result<PinReport, RemoteError> {
        self.call("pin", json!({ "images": images })).await
    }

    pub async fn record(&self, image: &str) -> Result<PinnedRecord, RemoteError> {
        self.call("record", json!({ "image": image })).await
    }

    pub async fn list(&self, filter: Option<&str>) -> Result<Vec<ListEntry>, RemoteError> {
        self.call("list", json!({ "filter": filter })).await
    }

    pub async fn evict(&self, images: &[String]) -> Result<Vec<Evicted>, RemoteError> {
        self.call("evict", json!({ "images": images })).await
    }

    pub async fn gc(&self, dry_run: bool) -> Result<GcReport, RemoteError> {
        self.call("gc", json!({ "dry_run": dry_run })).await
    }

    pub async fn verify(&self, repair: bool) -> Result<VerifyOutcome, RemoteError> {
        self.call("verify", json!({ "repair": repair })).await
    }

    async fn call<T: DeserializeOwned>(&self, op: &str, body: Value) -> Result<T, RemoteError> {
        let url = format!("{}/_stablebuild/v1/{op}", self.base);
        let mut req = self.http.post(&url).json(&body);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let unreachable = |e: reqwest::Error| RemoteError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        };
        let resp = req.send().await.map_err(unreachable)?;
        let status = resp.status();
        let bytes = resp.bytes().await.map_err(unreachable)?;
        if !status.is_success() {
            return Err(RemoteError::Status {
                url: self.base.clone(),
                status: status.as_u16(),
                message: error_message(&bytes),
            });
        }
        serde_json::from_slice(&bytes).map_err(|e| RemoteError::Unreachable {
            url: self.base.clone(),
            reason: format!("unexpected answer to {op}: {e}"),
        })
    }
}

fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    parsed
        .as_ref()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}
