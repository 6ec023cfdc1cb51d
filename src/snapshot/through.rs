//! Pull-through: what the registry server asks of the snapshotter on a miss.
//!
//! Owns: starting a pin or a blob fetch on a task of its own (a client that disconnects
//! does not cancel the caching), answering as soon as what the client asked for can be
//! served — a manifest once every manifest of the tag is stored, a blob once it starts
//! being written — and one pull-through per reference, however many clients ask at once.
//! Must not touch: HTTP (the registry module turns these answers into responses).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::watch;

use super::{Progress, Quiet, SnapshotError, Snapshotter, Tee, fetch};
use crate::manifest;
use crate::reference::{Digest, Reference};
use crate::store::Origin;

/// Where a pull-through pin stands.
#[derive(Clone)]
enum PullState {
    Walking,
    /// Every manifest is stored; the root's digest.
    Ready(Digest),
    Failed(Arc<SnapshotError>),
}

/// Pull-through pins in flight, by reference key.
#[derive(Default)]
pub(super) struct Pulls {
    map: Mutex<HashMap<String, watch::Receiver<PullState>>>,
}

/// Tells the waiting clients when the manifests are stored.
struct ReadyHook(watch::Sender<PullState>);

impl Progress for ReadyHook {
    fn manifests_stored(&self, root: &Digest) {
        self.0.send_replace(PullState::Ready(root.clone()));
    }
}

/// Where a blob a client asked for can be read from.
pub enum BlobSource {
    /// In the store; `hit` when it was there before the request.
    Stored { hit: bool },
    /// Being written by a transfer in flight.
    Writing(Arc<Tee>),
}

impl Snapshotter {
    /// Pin `r` (every platform) on a task of its own; return the root manifest's digest
    /// as soon as every manifest is stored, while the blobs go on downloading.
    pub async fn pin_through(
        self: &Arc<Self>,
        r: Reference,
        origin: Origin,
    ) -> Result<Digest, Arc<SnapshotError>> {
        let mut rx = self.start_pull(r, origin);
        let state = rx
            .wait_for(|s| !matches!(s, PullState::Walking))
            .await
            .expect("pull-through task ended without a result")
            .clone();
        match state {
            PullState::Ready(root) => Ok(root),
            PullState::Failed(e) => Err(e),
            PullState::Walking => unreachable!("waited for a result"),
        }
    }

    /// Join the pull-through of `r` in flight, or start one (for `origin`).
    fn start_pull(self: &Arc<Self>, r: Reference, origin: Origin) -> watch::Receiver<PullState> {
        let key = r.key();
        let mut map = self.pulls.map.lock().expect("pulls");
        if let Some(rx) = map.get(&key) {
            return rx.clone();
        }
        let (tx, rx) = watch::channel(PullState::Walking);
        map.insert(key.clone(), rx.clone());
        let this = self.clone();
        let mine = rx.clone();
        tokio::spawn(async move {
            let hook = ReadyHook(tx);
            let result = this.pin(&r, &origin, &hook).await;
            let state = match result {
                Ok(outcome) => PullState::Ready(outcome.record.digest),
                Err(e) => {
                    tracing::warn!("pull-through of {r} failed: {e}");
                    PullState::Failed(Arc::new(e))
                }
            };
            let mut map = this.pulls.map.lock().expect("pulls");
            if map.get(&key).is_some_and(|rx| rx.same_channel(&mine)) {
                map.remove(&key);
            }
            hook.0.send_replace(state);
        });
        rx
    }

    /// A blob from the store, or being written, or fetched by digest now (on a task of its
    /// own) and returned as soon as its bytes start arriving.
    pub async fn blob_source(
        self: &Arc<Self>,
        r: Reference,
        digest: Digest,
    ) -> Result<BlobSource, Arc<SnapshotError>> {
        if self.store.blobs().contains(&digest) {
            return Ok(BlobSource::Stored { hit: true });
        }
        let mut opened = self.tees.subscribe();
        if let Some(tee) = self.tees.get(&digest) {
            return Ok(BlobSource::Writing(tee));
        }
        self.store.writable().map_err(|cause| {
            Arc::new(SnapshotError::Store {
                reference: r.to_string(),
                cause,
            })
        })?;
        let mut task = tokio::spawn(self.clone().fetch_blob(r, digest.clone()));
        loop {
            tokio::select! {
                done = &mut task => {
                    done.expect("blob task panicked").map_err(Arc::new)?;
                    return Ok(BlobSource::Stored { hit: false });
                }
                _ = opened.changed() => {
                    if let Some(tee) = self.tees.get(&digest) {
                        return Ok(BlobSource::Writing(tee));
                    }
                }
            }
        }
    }

    /// A presigned URL of the bucket's object for `digest` when the store is shared and the
    /// bucket holds the blob (valid for 15 minutes); None otherwise.
    pub async fn presigned(&self, digest: &Digest) -> Result<Option<String>, Arc<SnapshotError>> {
        let Some(shared) = self.tier.shared() else {
            return Ok(None);
        };
        let fail = |e: crate::shared::SharedError| {
            Arc::new(SnapshotError::Shared {
                reference: digest.to_string(),
                cause: e,
            })
        };
        let has = self.tier.has(&self.store, digest).await;
        if !has.map_err(|e| Arc::new(SnapshotError::tier_digest(digest, e)))? {
            return Ok(None);
        }
        let valid = std::time::Duration::from_secs(15 * 60);
        Ok(Some(
            shared
                .presigned_blob_url(digest, valid)
                .await
                .map_err(fail)?,
        ))
    }

    /// Fetch one blob by digest into the store (one transfer per digest at a time: when a
    /// pin is already fetching it, this waits for that one).
    async fn fetch_blob(
        self: Arc<Self>,
        r: Reference,
        digest: Digest,
    ) -> Result<(), SnapshotError> {
        let _guard = self.in_flight.read().await;
        let blob = manifest::Blob {
            digest,
            media_type: String::new(),
            size: None,
            foreign: false,
        };
        fetch::blobs(&self, &r, &[blob], fetch::Want::Local, &Quiet).await
    }
}
