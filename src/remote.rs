//! The client side of a running server's admin API (`/_stablebuild/v1/…`): how `pin`,
//! `list`, `evict`, `gc`, `verify`, `history` and `drift` work while `serve` holds the store, or against a
//! remote mirror with `--server URL --token T`.
//! Must not touch: the store directory.

use futures_util::StreamExt;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};

use crate::events::{self, Event};
use crate::snapshot::Progress;

use crate::ops::{
    DriftReport, Evicted, HistoryEntry, Inspection, ListEntry, PinReport, PinnedRecord,
    VerifyOutcome,
};
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
    #[error("server {url}: {message}")]
    Failed { url: String, message: String },
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

    /// The server that holds this machine's store, at the loopback URL its `server.json`
    /// gives. Over TLS its certificate is not checked: it names the server's public host,
    /// not 127.0.0.1, and the token sent comes from the same file, so a check would add no
    /// trust that the file's permissions do not already give.
    pub fn local(url: &str, token: String) -> Remote {
        let http = reqwest::Client::builder()
            .danger_accept_invalid_certs(url.starts_with("https://"))
            .build()
            .unwrap_or_default();
        Remote {
            http,
            ..Remote::new(url, Some(token))
        }
    }

    pub fn url(&self) -> &str {
        &self.base
    }

    /// Pin on the server, showing its progress on `progress` as it goes.
    pub async fn pin(
        &self,
        images: &[String],
        progress: &dyn Progress,
    ) -> Result<PinReport, RemoteError> {
        let body = json!({ "images": images, "progress": true });
        self.call_with_progress("pin", body, progress).await
    }

    pub async fn record(
        &self,
        image: &str,
        progress: &dyn Progress,
    ) -> Result<PinnedRecord, RemoteError> {
        let body = json!({ "image": image, "progress": true });
        self.call_with_progress("record", body, progress).await
    }

    /// The server's tree of a pinned image; None when it is not pinned there.
    pub async fn inspect(&self, image: &str) -> Result<Option<Inspection>, RemoteError> {
        self.call("inspect", json!({ "image": image })).await
    }

    pub async fn list(&self, filter: Option<&str>) -> Result<Vec<ListEntry>, RemoteError> {
        self.call("list", json!({ "filter": filter })).await
    }

    pub async fn history(&self, filter: Option<&str>) -> Result<Vec<HistoryEntry>, RemoteError> {
        self.call("history", json!({ "filter": filter })).await
    }

    /// The server's drift of its store (the server sends the HEAD requests).
    pub async fn drift(&self, filter: Option<&str>) -> Result<DriftReport, RemoteError> {
        self.call("drift", json!({ "filter": filter })).await
    }

    pub async fn evict(&self, images: &[String]) -> Result<Vec<Evicted>, RemoteError> {
        self.call("evict", json!({ "images": images })).await
    }

    pub async fn gc(&self, dry_run: bool, grace_secs: u64) -> Result<GcReport, RemoteError> {
        let body = json!({ "dry_run": dry_run, "grace_secs": grace_secs });
        self.call("gc", body).await
    }

    pub async fn verify(&self, repair: bool) -> Result<VerifyOutcome, RemoteError> {
        self.call("verify", json!({ "repair": repair })).await
    }

    async fn call<T: DeserializeOwned>(&self, op: &str, body: Value) -> Result<T, RemoteError> {
        let resp = self.send(op, body).await?;
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        serde_json::from_slice(&bytes).map_err(|e| self.unexpected(op, e))
    }

    /// A call answered with progress events as JSON lines (`events.rs`), the result last.
    async fn call_with_progress<T: DeserializeOwned>(
        &self,
        op: &str,
        body: Value,
        progress: &dyn Progress,
    ) -> Result<T, RemoteError> {
        let mut stream = self.send(op, body).await?.bytes_stream();
        let mut buf: Vec<u8> = Vec::new();
        while let Some(chunk) = stream.next().await {
            buf.extend_from_slice(&chunk.map_err(|e| self.unreachable(e))?);
            while let Some(end) = buf.iter().position(|b| *b == b'\n') {
                let line: Vec<u8> = buf.drain(..=end).collect();
                let event: Event =
                    serde_json::from_slice(&line).map_err(|e| self.unexpected(op, e))?;
                match events::replay(event, progress) {
                    None => {}
                    Some(Ok(result)) => {
                        return serde_json::from_value(result).map_err(|e| self.unexpected(op, e));
                    }
                    Some(Err(message)) => {
                        return Err(RemoteError::Failed {
                            url: self.base.clone(),
                            message,
                        });
                    }
                }
            }
        }
        Err(RemoteError::Unreachable {
            url: self.base.clone(),
            reason: format!("the answer to {op} ended before its result"),
        })
    }

    /// POST one admin call; Err for a transport failure or an error status.
    async fn send(&self, op: &str, body: Value) -> Result<reqwest::Response, RemoteError> {
        let url = format!("{}/_stablebuild/v1/{op}", self.base);
        let mut req = self.http.post(&url).json(&body);
        if let Some(token) = &self.token {
            req = req.bearer_auth(token);
        }
        let resp = req.send().await.map_err(|e| self.unreachable(e))?;
        let status = resp.status();
        if status.is_success() {
            return Ok(resp);
        }
        let bytes = resp.bytes().await.map_err(|e| self.unreachable(e))?;
        Err(RemoteError::Status {
            url: self.base.clone(),
            status: status.as_u16(),
            message: error_message(&bytes),
        })
    }

    fn unreachable(&self, e: reqwest::Error) -> RemoteError {
        RemoteError::Unreachable {
            url: self.base.clone(),
            reason: e.to_string(),
        }
    }

    fn unexpected(&self, op: &str, e: serde_json::Error) -> RemoteError {
        RemoteError::Unreachable {
            url: self.base.clone(),
            reason: format!("unexpected answer to {op}: {e}"),
        }
    }
}

fn error_message(body: &[u8]) -> String {
    let parsed: Option<Value> = serde_json::from_slice(body).ok();
    parsed
        .as_ref()
        .and_then(|v| v["errors"][0]["message"].as_str().map(str::to_string))
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned())
}
