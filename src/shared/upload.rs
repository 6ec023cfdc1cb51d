//! Blob objects that exist only with verified content. The bytes are hashed as they stream
//! in; a blob smaller than one part is sent in one PUT once its digest matched, a larger one
//! as a multipart upload whose parts go out as they fill and which is completed only when
//! the digest matched — and aborted otherwise, so nothing is ever visible under the digest
//! but the right bytes. While a multipart upload is open, a marker object
//! (`uploads/<hex>-<id>`) names it, so that `gc` can abort one whose process died.
//! Must not touch: anything but the blob's object, its marker, and its upload.

use std::collections::VecDeque;
use std::io;

use bytes::Bytes;
use futures_util::{Stream, StreamExt};
use object_store::multipart::{MultipartStore, PartId};
use object_store::path::Path;
use object_store::{ObjectStoreExt, PutPayload};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::task::JoinHandle;

use super::{Shared, SharedError, key_path, random_id};
use crate::reference::Digest;

/// Bytes per part (S3 wants at least 5 MiB for every part but the last).
const PART: usize = 8 << 20;

/// What a marker object says about an open multipart upload.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OpenUpload {
    pub key: String,
    pub upload_id: String,
    /// Unix seconds.
    pub started_at: u64,
}

impl Shared {
    /// Upload a blob from `body` (its bytes in order; an error aborts the upload). The
    /// object appears only when every byte arrived and the sha256 is `digest`.
    pub async fn upload_blob(
        &self,
        digest: &Digest,
        body: impl Stream<Item = io::Result<Bytes>>,
    ) -> Result<u64, SharedError> {
        let mut body = std::pin::pin!(body);
        let mut part = Part::default();
        let mut hasher = Sha256::new();
        let mut total = 0u64;
        let mut multipart: Option<Multipart> = None;
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| self.aborted(digest, &e))?;
            hasher.update(&chunk);
            total += chunk.len() as u64;
            part.push(chunk);
            if part.len >= PART {
                let full = std::mem::take(&mut part);
                let m = match multipart.as_mut() {
                    Some(m) => m,
                    None => multipart.insert(self.start_multipart(digest).await?),
                };
                if let Err(e) = m.put(self, full).await {
                    m.abort(self).await;
                    return Err(e);
                }
            }
        }
        let got = Digest::from_sha256(hasher.finalize().into());
        if got != *digest {
            if let Some(m) = multipart.as_mut() {
                m.abort(self).await;
            }
            let digest = digest.clone();
            return Err(SharedError::DigestMismatch { digest, got });
        }
        match multipart {
            None => self.put_whole(digest, part).await?,
            Some(mut m) => {
                if part.len > 0
                    && let Err(e) = m.put(self, part).await
                {
                    m.abort(self).await;
                    return Err(e);
                }
                m.complete(self).await?;
            }
        }
        Ok(total)
    }

    /// Upload a blob whose bytes are all at hand (a local file, mapped), in part-sized
    /// slices: verified, like `upload_blob`.
    pub async fn upload_bytes(&self, digest: &Digest, bytes: Bytes) -> Result<u64, SharedError> {
        let slices = (0..bytes.len())
            .step_by(PART)
            .map(move |at| Ok(bytes.slice(at..(at + PART).min(bytes.len()))));
        self.upload_blob(
            digest,
            futures_util::stream::iter(slices.collect::<Vec<_>>()),
        )
        .await
    }

    async fn put_whole(&self, digest: &Digest, part: Part) -> Result<(), SharedError> {
        let path = key_path(&self.keys.blob(digest));
        self.s3
            .put(&path, part.payload())
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    async fn start_multipart(&self, digest: &Digest) -> Result<Multipart, SharedError> {
        let path = key_path(&self.keys.blob(digest));
        let id = self
            .s3
            .create_multipart(&path)
            .await
            .map_err(|e| self.error(e))?;
        let marker = self.keys.upload(digest, &random_id());
        let open = OpenUpload {
            key: path.to_string(),
            upload_id: id.clone(),
            started_at: crate::store::records::now(),
        };
        let bytes = serde_json::to_vec(&open).expect("markers serialise");
        let written = self.s3.put(&key_path(marker.as_str()), bytes.into()).await;
        let mut m = Multipart {
            path,
            id,
            marker,
            parts: Vec::new(),
            sending: VecDeque::new(),
            next: 0,
        };
        if let Err(e) = written {
            m.abort(self).await;
            return Err(self.error(e));
        }
        Ok(m)
    }

    /// Multipart uploads whose markers are older than `older_than` (unix seconds): their
    /// process is gone or stuck. Aborts them and removes the markers; how many.
    pub async fn abort_stale_uploads(&self, older_than: u64) -> Result<usize, SharedError> {
        let mut aborted = 0;
        for (name, _) in self.list_keys(&self.keys.uploads()).await? {
            let Some(open) = self.get_json::<OpenUpload>(&name).await? else {
                continue;
            };
            if open.started_at >= older_than {
                continue;
            }
            let path = key_path(open.key.as_str());
            match self.s3.abort_multipart(&path, &open.upload_id).await {
                Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
                Err(e) => return Err(self.error(e)),
            }
            self.delete(&name).await?;
            aborted += 1;
        }
        Ok(aborted)
    }

    /// Markers of multipart uploads still open (for `verify` and tests).
    pub async fn open_uploads(&self) -> Result<Vec<OpenUpload>, SharedError> {
        let mut out = Vec::new();
        for (name, _) in self.list_keys(&self.keys.uploads()).await? {
            out.extend(self.get_json::<OpenUpload>(&name).await?);
        }
        Ok(out)
    }

    fn aborted(&self, digest: &Digest, e: &io::Error) -> SharedError {
        SharedError::Corrupt {
            bucket: self.location.bucket.clone(),
            key: self.keys.blob(digest),
            reason: format!("the upload was aborted: {e}"),
        }
    }
}

/// Chunks gathered into one part (no copy: the payload keeps the chunks).
#[derive(Default)]
struct Part {
    chunks: Vec<Bytes>,
    len: usize,
}

impl Part {
    fn push(&mut self, chunk: Bytes) {
        self.len += chunk.len();
        self.chunks.push(chunk);
    }

    fn payload(self) -> PutPayload {
        self.chunks.into_iter().collect()
    }
}

/// Parts sent at once: one part's round trip no longer stalls the stream (S3 gateways take
/// parts in parallel), and at most this many parts' bytes are held per upload.
const PARTS_IN_FLIGHT: usize = 4;

struct Multipart {
    path: Path,
    id: String,
    marker: String,
    /// Parts the store has acknowledged, in order.
    parts: Vec<PartId>,
    /// Parts being sent, oldest first (acknowledged in order).
    sending: VecDeque<JoinHandle<Result<PartId, object_store::Error>>>,
    next: usize,
}

impl Multipart {
    /// Send a part; waits only when `PARTS_IN_FLIGHT` are on their way.
    async fn put(&mut self, s: &Shared, part: Part) -> Result<(), SharedError> {
        let (store, path, id, idx) = (s.s3.clone(), self.path.clone(), self.id.clone(), self.next);
        self.next += 1;
        self.sending.push_back(tokio::spawn(async move {
            store.put_part(&path, &id, idx, part.payload()).await
        }));
        while self.sending.len() >= PARTS_IN_FLIGHT {
            self.settle_oldest(s).await?;
        }
        Ok(())
    }

    async fn settle_oldest(&mut self, s: &Shared) -> Result<(), SharedError> {
        if let Some(task) = self.sending.pop_front() {
            let id = task.await.expect("part upload task panicked");
            self.parts.push(id.map_err(|e| s.error(e))?);
        }
        Ok(())
    }

    async fn complete(&mut self, s: &Shared) -> Result<(), SharedError> {
        while !self.sending.is_empty() {
            if let Err(e) = self.settle_oldest(s).await {
                self.abort(s).await;
                return Err(e);
            }
        }
        let parts = std::mem::take(&mut self.parts);
        let done = s.s3.complete_multipart(&self.path, &self.id, parts).await;
        if let Err(e) = done {
            self.abort(s).await;
            return Err(s.error(e));
        }
        let _ = s.delete(&self.marker).await;
        Ok(())
    }

    /// Best effort: an upload that cannot be aborted now is left to `gc` by its marker.
    async fn abort(&mut self, s: &Shared) {
        for task in self.sending.drain(..) {
            task.abort();
        }
        if s.s3.abort_multipart(&self.path, &self.id).await.is_ok() {
            let _ = s.delete(&self.marker).await;
        }
    }
}
