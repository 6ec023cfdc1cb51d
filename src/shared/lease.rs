//! Leases: one process across all that share the bucket fetches a blob from the upstream,
//! the others wait for its object and read the bucket.
//!
//! Owns: the `leases/<hex>` objects — taken create-only (`If-None-Match: *`), rewritten by
//! their holder every `RENEW` so that their ETag changes, removed when the holder is done —
//! and the wait of a process that lost the race: it polls for the blob object, and takes
//! over a lease that is gone, whose ETag has not changed for `STALE` (its holder died or
//! hangs; no clocks are compared), or that names this same holder (a previous life of this
//! process, killed while it held it).
//! A lease is an economy, never a guarantee: two holders at once only fetch a blob twice,
//! and every blob object is still verified before it appears.
//! Must not touch: blob objects (they are `upload.rs`'s), local files.

use std::sync::Arc;
use std::time::{Duration, Instant};

use object_store::ObjectStoreExt;
use serde::{Deserialize, Serialize};

use super::{Shared, SharedError, key_path};
use crate::reference::Digest;

/// How often a holder rewrites its lease.
const RENEW: Duration = Duration::from_secs(3);
/// A lease whose ETag has not changed for this long is its holder's no more (what a
/// replica's clients wait at most, on top, for a blob whose fetcher died).
const STALE: Duration = Duration::from_secs(15);
/// How often a waiter looks for the blob object and the lease.
const POLL: Duration = Duration::from_millis(250);

/// What a lease object holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Body {
    /// Who holds it: host name and cache directory, the same across restarts.
    holder: String,
}

/// What waiting for a blob's lease came to.
pub enum Leased {
    /// This process holds the lease: fetch the blob and send it to the bucket, then drop it.
    Held(Lease),
    /// The blob object is in the bucket now.
    InBucket,
}

/// A lease held: renewed on a task of its own until released (or dropped, which removes it
/// on a task of its own).
pub struct Lease {
    shared: Arc<Shared>,
    /// Empty once released.
    name: String,
    renew: tokio::task::JoinHandle<()>,
}

impl Lease {
    /// Remove the lease now: the blob is in the bucket, or this process gives up on it.
    pub async fn release(mut self) {
        self.renew.abort();
        let name = std::mem::take(&mut self.name);
        if let Err(e) = self.shared.delete(&name).await {
            tracing::debug!("removing lease {name}: {e}");
        }
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        self.renew.abort();
        if self.name.is_empty() {
            return;
        }
        let (shared, name) = (self.shared.clone(), std::mem::take(&mut self.name));
        // Best effort: a lease left behind goes stale, and `gc` removes it.
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            rt.spawn(async move {
                if let Err(e) = shared.delete(&name).await {
                    tracing::debug!("removing lease {name}: {e}");
                }
            });
        }
    }
}

/// Take the lease of `digest` for `holder`, or wait until its blob object is in the bucket
/// or the lease is free to take.
pub async fn lease(
    shared: &Arc<Shared>,
    digest: &Digest,
    holder: &str,
) -> Result<Leased, SharedError> {
    let name = shared.keys.lease(digest);
    let body = serde_json::to_vec(&Body {
        holder: holder.to_owned(),
    })
    .expect("a lease serialises");
    loop {
        if shared.create(&name, body.clone()).await? {
            let lease = held(shared, name, body);
            // Its last holder may have sent the blob and let go since the caller looked.
            if shared.blob_size(digest).await?.is_some() {
                lease.release().await;
                return Ok(Leased::InBucket);
            }
            return Ok(Leased::Held(lease));
        }
        let theirs: Option<Body> = shared.get_json(&name).await?;
        if theirs.is_some_and(|b| b.holder == holder) {
            // A previous life of this process: only one transfer of a digest runs here.
            tracing::info!("{name}: taking over the lease of a previous run");
            shared.delete(&name).await?;
            continue;
        }
        if wait(shared, &name, digest).await? {
            return Ok(Leased::InBucket);
        }
    }
}

/// Poll until the blob is in the bucket (true) or the lease is gone or stale (false, after
/// removing a stale one).
async fn wait(shared: &Shared, name: &str, digest: &Digest) -> Result<bool, SharedError> {
    let mut seen: Option<(String, Instant)> = None;
    loop {
        if shared.blob_size(digest).await?.is_some() {
            return Ok(true);
        }
        let Some(etag) = shared.etag(name).await? else {
            return Ok(false);
        };
        match &seen {
            Some((e, since)) if *e == etag && since.elapsed() >= STALE => {
                tracing::warn!("{name}: its holder has not renewed it for {STALE:?}; taking it");
                shared.delete(name).await?;
                return Ok(false);
            }
            Some((e, _)) if *e == etag => {}
            _ => seen = Some((etag, Instant::now())),
        }
        tokio::time::sleep(POLL).await;
    }
}

fn held(shared: &Arc<Shared>, name: String, body: Vec<u8>) -> Lease {
    let (s, n) = (shared.clone(), name.clone());
    let renew = tokio::spawn(async move {
        loop {
            tokio::time::sleep(RENEW).await;
            if let Err(e) = s.overwrite(&n, body.clone()).await {
                tracing::debug!("renewing lease {n}: {e}");
            }
        }
    });
    Lease {
        shared: shared.clone(),
        name,
        renew,
    }
}

impl Shared {
    async fn overwrite(&self, name: &str, bytes: Vec<u8>) -> Result<(), SharedError> {
        let put = self.s3.put(&key_path(name), bytes.into()).await;
        put.map(|_| ()).map_err(|e| self.error(e))
    }

    /// The ETag of `name`, None when it is not there.
    async fn etag(&self, name: &str) -> Result<Option<String>, SharedError> {
        match self.s3.head(&key_path(name)).await {
            Ok(meta) => Ok(Some(meta.e_tag.unwrap_or_default())),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Remove leases not renewed since `older_than` (unix seconds); how many.
    pub async fn remove_stale_leases(&self, older_than: u64) -> Result<usize, SharedError> {
        let mut removed = 0;
        for meta in self.list_objects(&self.keys.leases()).await? {
            if (meta.last_modified.timestamp().max(0) as u64) < older_than {
                self.delete(meta.location.as_ref()).await?;
                removed += 1;
            }
        }
        Ok(removed)
    }

    /// Leases held now (for tests and `verify`).
    pub async fn leases(&self) -> Result<usize, SharedError> {
        Ok(self.list_objects(&self.keys.leases()).await?.len())
    }
}
