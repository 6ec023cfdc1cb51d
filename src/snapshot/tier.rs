//! The store of record behind a pin: the local store itself (the embedded default), or a
//! shared bucket (`--store s3://…`) for which the local store is this process's cache.
//!
//! Owns: where a pin looks a reference up, claims its root digest, publishes its record and
//! evicts it; whether a blob is already in the store of record; where a missing manifest or
//! blob comes from before the upstream is asked (the bucket); and sending what the upstream
//! gave to the bucket. With the local tier every method is the local store's own operation,
//! so a local pin works exactly as before.
//! Order on the bucket, as on disk: blobs and manifests first (each verified), the record
//! last; the local cache learns a record only after the bucket holds it.
//! Must not touch: the upstream, HTTP, the terminal.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};

use crate::reference::Digest;
use crate::shared::{Created, Fetched, JournalEntry, Leased, Shared, SharedError};
use crate::store::records::now;
use crate::store::{Origin, Pending, Store, StoreError, TagRecord};

/// Why a tier operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TierError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Shared(#[from] SharedError),
}

pub enum Tier {
    Local,
    Bucket {
        shared: Arc<Shared>,
        /// Digests the bucket is known to hold (objects are never rewritten, and only gc
        /// or `verify --repair` remove them).
        present: Mutex<HashSet<Digest>>,
        /// The ETag of each record object as last seen by `refresh`.
        seen: Mutex<HashMap<String, String>>,
    },
}

/// What a `refresh` changed in the cache.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    /// Records the bucket no longer has (evicted elsewhere), dropped from the cache.
    pub evicted: usize,
    /// Records pinned again elsewhere at another digest, replaced in the cache.
    pub replaced: usize,
    /// Records pinned elsewhere that the cache had not held, added to it.
    pub added: usize,
}

impl Tier {
    pub fn bucket(shared: Arc<Shared>) -> Tier {
        Tier::Bucket {
            shared,
            present: Mutex::new(HashSet::new()),
            seen: Mutex::new(HashMap::new()),
        }
    }

    pub fn shared(&self) -> Option<&Arc<Shared>> {
        match self {
            Tier::Local => None,
            Tier::Bucket { shared, .. } => Some(shared),
        }
    }

    /// The record of `key` in the store of record; the local index is brought in line with
    /// it (a record evicted and pinned again elsewhere replaces the cached one).
    pub async fn lookup(&self, store: &Store, key: &str) -> Result<Option<TagRecord>, TierError> {
        let Tier::Bucket { shared, .. } = self else {
            return Ok(store.tag(key)?);
        };
        let found = shared.record(key).await?;
        sync_local(store, key, found.as_ref())?;
        Ok(found)
    }

    /// Bring the cached records in line with the bucket's: one listing of the records, a
    /// read of each cached one whose object changed since the last refresh, and a read of
    /// each the cache has not seen yet. Records the bucket does not have any more are
    /// dropped; new ones are added, so that everything that reads the cache's index (the
    /// dashboard, `tags/list`) sees every record of the bucket.
    pub async fn refresh(&self, store: &Store) -> Result<Refreshed, TierError> {
        let Tier::Bucket { shared, .. } = self else {
            return Ok(Refreshed::default());
        };
        let versions: HashMap<String, String> =
            shared.record_versions().await?.into_iter().collect();
        let (mut done, cached) = self.revalidate(store, shared, &versions).await?;
        done.added = self.learn(store, shared, &versions, &cached).await?;
        Ok(done)
    }

    /// Drop the cached records the bucket lacks; replace those pinned again elsewhere. Also
    /// returns the keys the cache kept.
    async fn revalidate(
        &self,
        store: &Store,
        shared: &Shared,
        versions: &HashMap<String, String>,
    ) -> Result<(Refreshed, HashSet<String>), TierError> {
        let mut done = Refreshed::default();
        let mut kept = HashSet::new();
        for local in store.tags()? {
            let Some(etag) = versions.get(&local.key) else {
                store.evict(&local.key, None)?;
                done.evicted += 1;
                continue;
            };
            kept.insert(local.key.clone());
            if self.seen(&local.key, etag) {
                continue;
            }
            let current = shared.record(&local.key).await?;
            if current.as_ref().map(|r| &r.digest) != Some(&local.digest) {
                sync_local(store, &local.key, current.as_ref())?;
                done.replaced += 1;
            }
            self.note_seen(&local.key, etag);
        }
        Ok((done, kept))
    }

    /// Read the bucket's records the cache does not hold (`cached`); how many were added.
    async fn learn(
        &self,
        store: &Store,
        shared: &Shared,
        versions: &HashMap<String, String>,
        cached: &HashSet<String>,
    ) -> Result<usize, TierError> {
        let new = versions.keys().filter(|k| !cached.contains(*k)).cloned();
        let records = shared.records_of(new).await?;
        let mut added = 0;
        for r in &records {
            // A record whose body names another key than its object is not adopted.
            let Some(etag) = versions.get(&r.key) else {
                continue;
            };
            sync_local(store, &r.key, Some(r))?;
            self.note_seen(&r.key, etag);
            added += 1;
        }
        Ok(added)
    }

    fn seen(&self, key: &str, etag: &str) -> bool {
        match self {
            Tier::Local => false,
            Tier::Bucket { seen, .. } => {
                seen.lock().expect("seen").get(key).map(String::as_str) == Some(etag)
            }
        }
    }

    fn note_seen(&self, key: &str, etag: &str) {
        if let Tier::Bucket { seen, .. } = self {
            seen.lock()
                .expect("seen")
                .insert(key.to_string(), etag.to_string());
        }
    }

    /// Claim the root digest a new pin of `p.key` starts from; another process's earlier
    /// claim wins (its digest is the one every process uses).
    pub async fn claim(&self, store: &Store, p: Pending) -> Result<Pending, TierError> {
        let claimed = match self {
            Tier::Local => p,
            Tier::Bucket { shared, .. } => shared.claim(&p).await?.into_inner(),
        };
        store.set_pending(&claimed)?;
        Ok(claimed)
    }

    /// The root digest a pin of `key` that started before claimed, if one did.
    pub async fn claimed(&self, store: &Store, key: &str) -> Result<Option<Pending>, TierError> {
        if let Some(p) = store.pending(key)? {
            return Ok(Some(p));
        }
        match self {
            Tier::Local => Ok(None),
            Tier::Bucket { shared, .. } => Ok(shared.pending(key).await?),
        }
    }

    /// Write the record once everything it reaches is stored; the first writer wins and
    /// the record that won is returned (and cached locally).
    pub async fn publish(&self, store: &Store, record: TagRecord) -> Result<TagRecord, TierError> {
        let Tier::Bucket { shared, .. } = self else {
            return Ok(store.record_tag(record)?);
        };
        let key = record.key.clone();
        let winner = match shared.create_record(&record).await? {
            Created::Won(r) => {
                let entry = JournalEntry::Pin {
                    key: key.clone(),
                    digest: r.digest.clone(),
                    at: now(),
                    origin: r.origin.clone(),
                };
                shared.journal(&entry).await?;
                r
            }
            Created::Lost(theirs) => theirs,
        };
        shared.release(&key).await?;
        sync_local(store, &key, Some(&winner))?;
        Ok(winner)
    }

    /// Remove `key`'s record from the store of record (and the cache) for `origin`; what it
    /// was.
    pub async fn evict(
        &self,
        store: &Store,
        key: &str,
        origin: &Origin,
    ) -> Result<Option<TagRecord>, TierError> {
        let Tier::Bucket { shared, .. } = self else {
            return Ok(store.evict(key, Some(origin.clone()))?);
        };
        let old = shared.delete_record(key).await?;
        shared.release(key).await?;
        if let Some(r) = &old {
            let entry = JournalEntry::Evict {
                key: key.to_string(),
                digest: r.digest.clone(),
                at: now(),
                origin: Some(origin.clone()),
            };
            shared.journal(&entry).await?;
        }
        store.evict(key, None)?;
        Ok(old)
    }

    /// Is the blob in the store of record?
    pub async fn has(&self, store: &Store, digest: &Digest) -> Result<bool, TierError> {
        let Tier::Bucket {
            shared, present, ..
        } = self
        else {
            return Ok(store.blobs().contains(digest));
        };
        if present.lock().expect("present").contains(digest) {
            return Ok(true);
        }
        let found = shared.blob_size(digest).await?.is_some();
        if found {
            self.note_present(digest);
        }
        Ok(found)
    }

    fn note_present(&self, digest: &Digest) {
        if let Tier::Bucket { present, .. } = self {
            present.lock().expect("present").insert(digest.clone());
        }
    }

    /// A stored manifest: from the local store, or the bucket (cached locally then).
    pub async fn manifest(
        &self,
        store: &Store,
        digest: &Digest,
    ) -> Result<Option<(String, Vec<u8>)>, TierError> {
        if let Some((meta, bytes)) = store.manifest(digest)? {
            return Ok(Some((meta.media_type, bytes)));
        }
        let Tier::Bucket { shared, .. } = self else {
            return Ok(None);
        };
        let Some((media_type, bytes)) = shared.manifest(digest).await? else {
            return Ok(None);
        };
        self.note_present(digest);
        store.put_manifest(digest, &media_type, &bytes)?;
        Ok(Some((media_type, bytes)))
    }

    /// Keep a manifest the upstream served: in the bucket, then locally.
    pub async fn put_manifest(
        &self,
        store: &Store,
        digest: &Digest,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), TierError> {
        if let Tier::Bucket { shared, .. } = self {
            shared.put_manifest(digest, media_type, bytes).await?;
            self.note_present(digest);
        }
        store.put_manifest(digest, media_type, bytes)?;
        Ok(())
    }

    /// A blob's bytes from the store of record when the local store lacks them (the bucket;
    /// never with the local tier, where the upstream is the only source).
    pub async fn open_blob(&self, digest: &Digest) -> Result<Option<Fetched>, TierError> {
        match self {
            Tier::Local => Ok(None),
            Tier::Bucket { shared, .. } => Ok(shared.get_blob(digest).await?),
        }
    }

    /// Send a blob the local store holds to the bucket (verified on the way).
    pub async fn upload_local(&self, store: &Store, digest: &Digest) -> Result<(), TierError> {
        let Tier::Bucket { shared, .. } = self else {
            return Ok(());
        };
        let file = Arc::new(store.blobs().open_file(digest)?);
        shared.upload_blob(digest, read_chunks(file)).await?;
        self.note_present(digest);
        Ok(())
    }

    /// On a bucket: hold the lease of a blob to fetch from the upstream, or wait until
    /// another process that holds it has sent the blob (see `shared::lease`). None with the
    /// local tier.
    pub async fn lease(&self, store: &Store, digest: &Digest) -> Result<Option<Leased>, TierError> {
        let Tier::Bucket { shared, .. } = self else {
            return Ok(None);
        };
        let holder = format!("{}:{}", host_name(), store.dir().display());
        Ok(Some(crate::shared::lease(shared, digest, &holder).await?))
    }

    /// True when blobs the upstream sends must also go to a bucket.
    pub fn uploads(&self) -> bool {
        matches!(self, Tier::Bucket { .. })
    }

    /// A small blob's bytes (a config), verified: from the local store or the bucket.
    pub async fn small_blob(&self, store: &Store, digest: &Digest) -> Option<Vec<u8>> {
        if let Ok(bytes) = store.blobs().read(digest) {
            return Some(bytes);
        }
        let fetched = self.open_blob(digest).await.ok()??;
        if fetched.size > crate::manifest::MAX_MANIFEST_BYTES as u64 {
            return None;
        }
        use futures_util::TryStreamExt;
        let bytes: Vec<u8> = fetched
            .body
            .try_fold(Vec::new(), |mut acc, c| async move {
                acc.extend_from_slice(&c);
                Ok(acc)
            })
            .await
            .ok()?;
        (crate::manifest::sha256(&bytes) == *digest).then_some(bytes)
    }
}

/// A file's bytes in part-sized chunks read off the runtime (not through a mapping, whose
/// pages would all count in the process's resident memory once read).
fn read_chunks(
    file: Arc<std::fs::File>,
) -> impl futures_util::Stream<Item = std::io::Result<bytes::Bytes>> {
    const CHUNK: usize = 8 << 20;
    futures_util::stream::try_unfold(0u64, move |pos| {
        let file = file.clone();
        async move {
            let chunk = tokio::task::spawn_blocking(move || {
                use std::os::unix::fs::FileExt;
                let mut buf = vec![0u8; CHUNK];
                let n = file.read_at(&mut buf, pos)?;
                buf.truncate(n);
                Ok::<_, std::io::Error>(buf)
            })
            .await
            .map_err(std::io::Error::other)??;
            Ok(match chunk.len() {
                0 => None,
                n => Some((bytes::Bytes::from(chunk), pos + n as u64)),
            })
        }
    })
}

/// Make the local index say what the store of record says about `key`.
fn sync_local(store: &Store, key: &str, record: Option<&TagRecord>) -> Result<(), StoreError> {
    let local = store.tag(key)?;
    if local.as_ref().map(|r| &r.digest) == record.map(|r| &r.digest) {
        return Ok(());
    }
    if local.is_some() {
        store.evict(key, None)?;
    }
    if let Some(r) = record {
        store.record_tag(r.clone())?;
    }
    Ok(())
}

/// This machine's name, as the kernel has it ("" when it cannot be read).
fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}
