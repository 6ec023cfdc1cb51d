//! Pin: take the snapshot of one reference.
//!
//! Owns: resolving a tag once, fetching the root manifest or index, every manifest it
//! reaches (attestations included) and every config and layer, each digest once, blobs in
//! parallel (bounded), and recording the tag last. An interrupted pin leaves a pending
//! record and the verified blobs; the next pin of the same reference resumes from the root
//! digest it saw first. A pinned reference is never asked upstream again; its blobs, if
//! any went missing, are fetched again by digest.
//! Must not touch: the terminal (progress goes through the `Progress` trait) or store
//! files directly (the store API does that).

mod fetch;
mod inflight;
mod single;
mod tee;
mod through;
mod tier;

pub use inflight::PinView;
pub use tee::Tee;
pub use through::BlobSource;
pub use tier::{Tier, TierError};

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::Serialize;
use tokio::sync::RwLock;

use crate::manifest::{self, ManifestError, Parsed};
use crate::reference::{Digest, Reference};
use crate::store::records::now;
use crate::store::{BlobInfo, ManifestInfo, Origin, Pending, Store, StoreError, TagRecord};
use crate::upstream::{UpstreamError, Upstreams};

#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    #[error("{reference}: {cause}")]
    Upstream {
        reference: String,
        cause: UpstreamError,
    },
    #[error("{reference}: {cause}")]
    Store {
        reference: String,
        cause: StoreError,
    },
    #[error("{reference}: {cause}")]
    Manifest {
        reference: String,
        cause: ManifestError,
    },
    #[error("{reference}: {cause}")]
    Shared {
        reference: String,
        cause: crate::shared::SharedError,
    },
}

impl SnapshotError {
    fn tier(reference: &Reference, e: TierError) -> SnapshotError {
        SnapshotError::tier_digest(reference, e)
    }

    fn tier_digest(what: &impl std::fmt::Display, e: TierError) -> SnapshotError {
        let reference = what.to_string();
        match e {
            TierError::Store(cause) => SnapshotError::Store { reference, cause },
            TierError::Shared(cause) => SnapshotError::Shared { reference, cause },
        }
    }
}

/// Progress of a pin, for a terminal or a log; every method has a no-op default.
pub trait Progress: Send + Sync {
    /// The blobs this pin needs (already stored ones included), and their bytes.
    fn blobs_planned(&self, _count: usize, _bytes: u64) {}
    /// A needed blob was stored already: nothing is fetched for it.
    fn blob_skipped(&self, _digest: &Digest, _size: Option<u64>) {}
    fn blob_started(&self, _digest: &Digest, _size: Option<u64>) {}
    fn blob_advanced(&self, _digest: &Digest, _bytes: u64) {}
    fn blob_finished(&self, _digest: &Digest) {}
    /// Every manifest the root reaches is stored (blobs may still be downloading).
    fn manifests_stored(&self, _root: &Digest) {}
}

/// A `Progress` that shows nothing.
pub struct Quiet;
impl Progress for Quiet {}

/// What a pin did.
#[derive(Debug, Clone, Serialize)]
pub struct PinOutcome {
    pub reference: String,
    pub record: TagRecord,
    /// The reference was pinned before this call: nothing was asked upstream.
    pub already_pinned: bool,
    /// Blobs fetched again by digest because they had gone missing from the store.
    pub repaired: usize,
}

pub struct Snapshotter {
    store: Arc<Store>,
    /// The store of record: the local store, or a bucket the local store caches.
    tier: Tier,
    upstreams: Arc<Upstreams>,
    jobs: usize,
    /// Pins hold it shared; gc holds it exclusively, so gc never removes what a pin needs.
    in_flight: RwLock<()>,
    /// One pin per reference key, one download per blob digest, at a time.
    keys: single::KeyedLocks,
    digests: single::KeyedLocks,
    /// Blobs being written, for clients that read them meanwhile.
    tees: tee::Tees,
    /// Pull-through pins in flight, by reference key.
    pulls: through::Pulls,
    /// Every pin in flight with its progress, for the dashboard.
    in_progress: inflight::InFlight,
}

/// Recorded blobs as blobs to fetch by digest.
fn wanted<'a>(blobs: impl Iterator<Item = &'a BlobInfo>) -> Vec<manifest::Blob> {
    blobs
        .map(|b| manifest::Blob {
            digest: b.digest.clone(),
            media_type: String::new(),
            size: Some(b.size),
            foreign: false,
        })
        .collect()
}

/// A root manifest's record entry.
fn root_info(digest: Digest, media_type: String, size: usize) -> ManifestInfo {
    ManifestInfo {
        digest,
        media_type,
        size: size as u64,
        platform: None,
    }
}

/// A manifest reached by the walk, with the blobs it names.
struct Walked {
    info: ManifestInfo,
    blobs: Vec<manifest::Blob>,
}

impl Snapshotter {
    pub fn new(store: Arc<Store>, upstreams: Arc<Upstreams>, jobs: usize) -> Snapshotter {
        Snapshotter {
            store,
            tier: Tier::Local,
            upstreams,
            jobs: jobs.max(1),
            in_flight: RwLock::new(()),
            keys: single::KeyedLocks::default(),
            digests: single::KeyedLocks::default(),
            tees: tee::Tees::default(),
            pulls: through::Pulls::default(),
            in_progress: inflight::InFlight::default(),
        }
    }

    /// Make a bucket the store of record; the local store becomes its cache.
    pub fn with_tier(mut self, tier: Tier) -> Snapshotter {
        self.tier = tier;
        self
    }

    pub fn store(&self) -> &Arc<Store> {
        &self.store
    }

    pub fn tier(&self) -> &Tier {
        &self.tier
    }

    /// The pins in flight in this process, oldest first.
    pub fn in_flight(&self) -> Vec<PinView> {
        self.in_progress.views()
    }

    /// Run `f` with no pin in flight (for gc).
    pub async fn exclusive<T>(&self, f: impl FnOnce(&Store) -> T) -> T {
        let _guard = self.in_flight.write().await;
        f(&self.store)
    }

    /// Pin one reference (see the module doc).
    pub async fn pin(
        &self,
        r: &Reference,
        origin: &Origin,
        progress: &dyn Progress,
    ) -> Result<PinOutcome, SnapshotError> {
        let _guard = self.in_flight.read().await;
        let key = r.key();
        let _one = self.keys.lock(&key).await;
        let tier_err = |e| SnapshotError::tier(r, e);
        let found = self
            .tier
            .lookup(&self.store, &key)
            .await
            .map_err(tier_err)?;
        if let Some(record) = found {
            return self.top_up(r, record, progress).await;
        }
        // Nothing is asked upstream for a pin that could not be stored.
        self.store
            .writable()
            .map_err(|e| SnapshotError::tier(r, e.into()))?;
        let tracked = self.in_progress.track(r.to_string(), progress);
        let progress: &dyn Progress = &tracked;
        let root = self.root(r).await?;
        let walked = self.walk(r, &root).await?;
        progress.manifests_stored(&root.digest);
        self.fetch_blobs(r, &walked, progress).await?;
        let record = self.record(r, &root, walked, origin).await;
        let record = self
            .tier
            .publish(&self.store, record)
            .await
            .map_err(tier_err)?;
        Ok(PinOutcome {
            reference: r.to_string(),
            record,
            already_pinned: false,
            repaired: 0,
        })
    }

    /// A pinned reference: nothing upstream unless blobs went missing from the store of
    /// record (fetched by digest). Its manifests are made local (a shared store's record
    /// may come from another process).
    async fn top_up(
        &self,
        r: &Reference,
        record: TagRecord,
        progress: &dyn Progress,
    ) -> Result<PinOutcome, SnapshotError> {
        for m in &record.manifests {
            self.stored_or_fetch(r, &m.digest).await?;
        }
        progress.manifests_stored(&record.digest);
        let mut missing = Vec::new();
        for b in &record.blobs {
            let has = self.tier.has(&self.store, &b.digest).await;
            if !has.map_err(|e| SnapshotError::tier(r, e))? {
                missing.push(b);
            }
        }
        match missing.len() {
            0 => tracing::debug!("{r}: pinned at {}; nothing asked upstream", record.digest),
            n => tracing::info!(
                "{r}: pinned at {}; {n} of its blobs are missing, fetching them by digest",
                record.digest
            ),
        }
        if missing.is_empty() {
            return Ok(PinOutcome {
                reference: r.to_string(),
                repaired: 0,
                record,
                already_pinned: true,
            });
        }
        self.store
            .writable()
            .map_err(|e| SnapshotError::tier(r, e.into()))?;
        let tracked = self.in_progress.track(r.to_string(), progress);
        let blobs = wanted(missing.into_iter());
        fetch::blobs(self, r, &blobs, fetch::Want::InStore, &tracked).await?;
        Ok(PinOutcome {
            reference: r.to_string(),
            repaired: blobs.len(),
            record,
            already_pinned: true,
        })
    }

    /// A pinned reference's record and manifests, from the store of record into the local
    /// store (nothing is asked upstream); None when it is not pinned.
    pub async fn recall(&self, r: &Reference) -> Result<Option<TagRecord>, SnapshotError> {
        let found = self.tier.lookup(&self.store, &r.key()).await;
        let Some(record) = found.map_err(|e| SnapshotError::tier(r, e))? else {
            return Ok(None);
        };
        for m in &record.manifests {
            self.tier
                .manifest(&self.store, &m.digest)
                .await
                .map_err(|e| SnapshotError::tier(r, e))?;
        }
        Ok(Some(record))
    }

    /// Bring every blob of a pinned record into the local store (from the bucket, when it is
    /// the store of record), for an export that reads the local files.
    pub async fn materialize(
        &self,
        r: &Reference,
        record: &TagRecord,
        progress: &dyn Progress,
    ) -> Result<(), SnapshotError> {
        let _guard = self.in_flight.read().await;
        let blobs = wanted(record.blobs.iter());
        fetch::blobs(self, r, &blobs, fetch::Want::Local, progress).await
    }

    /// The root manifest: the one a pin that started before (here or, on a shared store, in
    /// any process) claimed, else resolved upstream now and claimed.
    async fn root(&self, r: &Reference) -> Result<ManifestInfo, SnapshotError> {
        let key = r.key();
        let tier_err = |e| SnapshotError::tier(r, e);
        if let Some(p) = self
            .tier
            .claimed(&self.store, &key)
            .await
            .map_err(tier_err)?
        {
            tracing::info!("{r}: resuming an interrupted pin of {}", p.digest);
            let (media_type, bytes) = self.stored_or_fetch(r, &p.digest).await?;
            return Ok(root_info(p.digest, media_type, bytes.len()));
        }
        let info = self.fetch_manifest(r, &r.manifest_ref()).await?;
        tracing::debug!("{r}: not pinned; upstream it is {} now", info.digest);
        let pending = Pending {
            key,
            digest: info.digest.clone(),
            media_type: info.media_type.clone(),
            started_at: now(),
        };
        let claimed = self
            .tier
            .claim(&self.store, pending)
            .await
            .map_err(tier_err)?;
        if claimed.digest == info.digest {
            return Ok(info);
        }
        tracing::info!(
            "{r}: another process claimed {} first; using it",
            claimed.digest
        );
        let (media_type, bytes) = self.stored_or_fetch(r, &claimed.digest).await?;
        Ok(root_info(claimed.digest, media_type, bytes.len()))
    }

    /// Fetch a manifest upstream (verified) and store it.
    async fn fetch_manifest(
        &self,
        r: &Reference,
        reference: &str,
    ) -> Result<ManifestInfo, SnapshotError> {
        Ok(self.fetch_manifest_bytes(r, reference).await?.0)
    }

    /// `fetch_manifest`, also handing back the bytes it stored.
    async fn fetch_manifest_bytes(
        &self,
        r: &Reference,
        reference: &str,
    ) -> Result<(ManifestInfo, Vec<u8>), SnapshotError> {
        let upstream = self.upstreams.get(r.registry());
        let fetched = upstream
            .manifest(r.repository(), reference)
            .await
            .map_err(|cause| SnapshotError::Upstream {
                reference: r.to_string(),
                cause,
            })?;
        self.tier
            .put_manifest(
                &self.store,
                &fetched.digest,
                &fetched.media_type,
                &fetched.bytes,
            )
            .await
            .map_err(|e| SnapshotError::tier(r, e))?;
        let info = root_info(fetched.digest, fetched.media_type, fetched.bytes.len());
        Ok((info, fetched.bytes))
    }

    /// A manifest from the store (local, or the bucket), or fetched by digest when not there
    /// yet.
    async fn stored_or_fetch(
        &self,
        r: &Reference,
        digest: &Digest,
    ) -> Result<(String, Vec<u8>), SnapshotError> {
        let stored = self.tier.manifest(&self.store, digest).await;
        if let Some(found) = stored.map_err(|e| SnapshotError::tier(r, e))? {
            return Ok(found);
        }
        let (info, bytes) = self.fetch_manifest_bytes(r, &digest.to_string()).await?;
        Ok((info.media_type, bytes))
    }

    /// Every manifest the root reaches (root first, then index order), each with the blobs
    /// it names. The manifests of one level are fetched concurrently.
    async fn walk(&self, r: &Reference, root: &ManifestInfo) -> Result<Vec<Walked>, SnapshotError> {
        let mut out: Vec<Walked> = Vec::new();
        let mut level = vec![root.clone()];
        while !level.is_empty() {
            let visits = level.iter().map(|info| self.visit(r, info));
            let mut next = Vec::new();
            for (walked, children) in futures_util::future::try_join_all(visits).await? {
                if out.iter().any(|w| w.info.digest == walked.info.digest) {
                    continue;
                }
                out.push(walked);
                next.extend(children);
            }
            next.retain(|c| !out.iter().any(|w| w.info.digest == c.digest));
            level = next;
        }
        Ok(out)
    }

    /// One manifest: stored (or fetched), parsed; with the manifests it lists.
    async fn visit(
        &self,
        r: &Reference,
        info: &ManifestInfo,
    ) -> Result<(Walked, Vec<ManifestInfo>), SnapshotError> {
        let (media_type, bytes) = self.stored_or_fetch(r, &info.digest).await?;
        let parsed = manifest::parse(&info.digest, &media_type, &bytes).map_err(|cause| {
            SnapshotError::Manifest {
                reference: r.to_string(),
                cause,
            }
        })?;
        let children = match &parsed {
            Parsed::Index(children) => children
                .iter()
                .map(|c| ManifestInfo {
                    digest: c.digest.clone(),
                    media_type: c.media_type.clone(),
                    size: c.size,
                    platform: c.platform.clone(),
                })
                .collect(),
            _ => Vec::new(),
        };
        let info = ManifestInfo {
            media_type,
            size: bytes.len() as u64,
            ..info.clone()
        };
        let walked = Walked {
            info,
            blobs: parsed.blobs(),
        };
        Ok((walked, children))
    }

    async fn fetch_blobs(
        &self,
        r: &Reference,
        walked: &[Walked],
        progress: &dyn Progress,
    ) -> Result<(), SnapshotError> {
        let mut unique: BTreeMap<Digest, manifest::Blob> = BTreeMap::new();
        for b in walked.iter().flat_map(|w| &w.blobs).filter(|b| !b.foreign) {
            unique.entry(b.digest.clone()).or_insert_with(|| b.clone());
        }
        let wanted: Vec<_> = unique.into_values().collect();
        fetch::blobs(self, r, &wanted, fetch::Want::InStore, progress).await
    }

    /// The tag record for a complete walk.
    async fn record(
        &self,
        r: &Reference,
        root: &ManifestInfo,
        walked: Vec<Walked>,
        origin: &Origin,
    ) -> TagRecord {
        let mut blobs: BTreeMap<Digest, u64> = BTreeMap::new();
        let mut platforms = Vec::new();
        let mut manifests = Vec::new();
        for w in walked {
            for b in w.blobs.iter().filter(|b| !b.foreign) {
                let size = b.size.or_else(|| self.store.blobs().size(&b.digest));
                blobs.insert(b.digest.clone(), size.unwrap_or(0));
            }
            let platform = match w.info.platform.clone() {
                Some(p) => Some(p),
                None => self.config_platform(&w).await,
            };
            if let Some(p) = platform.as_ref()
                && !manifest::is_index(&w.info.media_type)
                && !platforms.contains(p)
            {
                platforms.push(p.clone());
            }
            manifests.push(ManifestInfo { platform, ..w.info });
        }
        let size = manifests.iter().map(|m| m.size).sum::<u64>() + blobs.values().sum::<u64>();
        TagRecord {
            key: r.key(),
            digest: root.digest.clone(),
            media_type: manifests
                .first()
                .map(|m| m.media_type.clone())
                .unwrap_or_default(),
            platforms,
            manifests,
            blobs: blobs
                .into_iter()
                .map(|(digest, size)| BlobInfo { digest, size })
                .collect(),
            size,
            pinned_at: now(),
            origin: Some(origin.clone()),
        }
    }

    /// The platform an image manifest's config names (for manifests outside an index).
    async fn config_platform(&self, w: &Walked) -> Option<String> {
        let is_image =
            [manifest::OCI_MANIFEST, manifest::DOCKER_V2].contains(&w.info.media_type.as_str());
        let config = w.blobs.first().filter(|_| is_image)?;
        let bytes = self.tier.small_blob(&self.store, &config.digest).await?;
        manifest::config_platform(&bytes)
    }

    pub fn upstreams(&self) -> &Upstreams {
        &self.upstreams
    }

    pub(crate) fn digest_locks(&self) -> &single::KeyedLocks {
        &self.digests
    }

    pub(crate) fn tees(&self) -> &tee::Tees {
        &self.tees
    }

    pub(crate) fn jobs(&self) -> usize {
        self.jobs
    }
}
