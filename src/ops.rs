//! The operations behind `pin`, `list`, `evict`, `gc`, `verify`, `inspect`, `history`,
//! `drift` and `twins`, as data: the commands
//! print these results, and a running server answers its admin API with the same ones, so
//! the output is the same whichever process holds the store.
//! Must not touch: the terminal.

pub mod drift;
mod history;
mod inspect;
pub mod migrate;
pub mod shared;
pub mod twins;

pub use drift::{DriftEntry, DriftReport, DriftState, drift, drift_in, shared_drift};
pub use history::{HistoryEntry, entries as history_entries, history, history_in, shared_history};
pub use inspect::{Inspection, Node, inspect};

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};

use crate::reference::{Digest, Reference};
use crate::snapshot::{PinOutcome, Progress, Snapshotter, TierError};
use crate::store::{ChainBreak, GcReport, Origin, Store, StoreError, TagRecord, VerifyReport};

/// One pinned image.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PinLine {
    pub reference: String,
    pub digest: String,
    pub media_type: String,
    pub platforms: Vec<String>,
    pub size: u64,
    pub already_pinned: bool,
    pub repaired: usize,
}

impl From<&PinOutcome> for PinLine {
    fn from(o: &PinOutcome) -> PinLine {
        PinLine {
            reference: o.reference.clone(),
            digest: o.record.digest.to_string(),
            media_type: o.record.media_type.clone(),
            platforms: o.record.platforms.clone(),
            size: o.record.size,
            already_pinned: o.already_pinned,
            repaired: o.repaired,
        }
    }
}

/// One pinned image with its whole record, for a command that reads its blobs (`pull`).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PinnedRecord {
    pub pin: PinLine,
    pub record: TagRecord,
}

/// A reference that could not be pinned, and why (the message names the image and the cause).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PinFailure {
    pub reference: String,
    pub error: String,
}

/// What became of one reference: in JSON, a pinned line or `{reference, error}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(untagged)]
pub enum PinResult {
    Pinned(PinLine),
    Failed(PinFailure),
}

/// Every reference's result, in the order asked.
#[derive(Debug, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct PinReport {
    pub results: Vec<PinResult>,
}

impl PinReport {
    pub fn pinned(&self) -> impl Iterator<Item = &PinLine> {
        self.results.iter().filter_map(|r| match r {
            PinResult::Pinned(line) => Some(line),
            PinResult::Failed(_) => None,
        })
    }

    pub fn failed(&self) -> impl Iterator<Item = &PinFailure> {
        self.results.iter().filter_map(|r| match r {
            PinResult::Failed(f) => Some(f),
            PinResult::Pinned(_) => None,
        })
    }
}

/// Pin each reference in turn; one failure does not stop the others.
pub async fn pin_all(
    snap: &Snapshotter,
    refs: &[Reference],
    origin: &Origin,
    progress: &dyn Progress,
) -> PinReport {
    let mut report = PinReport::default();
    for r in refs {
        let result = match snap.pin(r, origin, progress).await {
            Ok(outcome) => PinResult::Pinned(PinLine::from(&outcome)),
            Err(e) => PinResult::Failed(PinFailure {
                reference: r.to_string(),
                error: e.to_string(),
            }),
        };
        report.results.push(result);
    }
    report
}

/// One line of `list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ListEntry {
    pub image: String,
    pub digest: String,
    pub media_type: String,
    pub platforms: Vec<String>,
    pub size: u64,
    pub pinned_at: Option<String>,
    pub complete: bool,
    pub missing_blobs: usize,
}

/// Pinned references (and interrupted pins), sorted, those containing `filter` only. Records
/// are read one at a time, and each distinct blob is looked for once (many tags share
/// layers), so a store of 10,000 tags lists in a fraction of a second.
pub fn list(store: &Store, filter: Option<&str>) -> Result<Vec<ListEntry>, StoreError> {
    let mut present: HashMap<Digest, bool> = HashMap::new();
    let mut entries = Vec::new();
    store.each_tag(|r| {
        if filter.is_some_and(|f| !r.key.contains(f)) {
            return;
        }
        let missing = r
            .digests()
            .filter(|d| {
                !*present
                    .entry((*d).clone())
                    .or_insert_with(|| store.blobs().contains(d))
            })
            .count();
        entries.push(ListEntry::of(r, missing));
    })?;
    Ok(with_pendings(entries, store.pendings()?, filter))
}

impl ListEntry {
    /// The line of a record with `missing` of its blobs not stored.
    pub(crate) fn of(r: TagRecord, missing: usize) -> ListEntry {
        ListEntry {
            image: r.key,
            digest: r.digest.to_string(),
            media_type: r.media_type,
            platforms: r.platforms,
            size: r.size,
            pinned_at: Some(timestamp(r.pinned_at)),
            complete: missing == 0,
            missing_blobs: missing,
        }
    }
}

/// `entries` and a line for each of the `pendings` that has no record (an interrupted pin),
/// sorted, those containing `filter` only.
fn with_pendings(
    mut out: Vec<ListEntry>,
    pendings: Vec<crate::store::Pending>,
    filter: Option<&str>,
) -> Vec<ListEntry> {
    let recorded: HashSet<String> = out.iter().map(|e| e.image.clone()).collect();
    for p in pendings {
        if recorded.contains(&p.key) {
            continue;
        }
        out.push(ListEntry {
            image: p.key,
            digest: p.digest.to_string(),
            media_type: p.media_type,
            platforms: Vec::new(),
            size: 0,
            pinned_at: None,
            complete: false,
            missing_blobs: 0,
        });
    }
    out.retain(|e| filter.is_none_or(|f| e.image.contains(f)));
    out.sort_by(|a, b| a.image.cmp(&b.image));
    out
}

/// One evicted (or not pinned) reference.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Evicted {
    pub reference: String,
    /// The digest it was pinned at; None when it was not pinned.
    pub digest: Option<String>,
}

/// Evict each reference from the store of record (a shared store's bucket and this cache,
/// or the local store).
pub async fn evict(
    snap: &Snapshotter,
    refs: &[Reference],
    origin: &Origin,
) -> Result<Vec<Evicted>, TierError> {
    let mut out = Vec::new();
    for r in refs {
        let old = snap.tier().evict(snap.store(), &r.key(), origin).await?;
        out.push(Evicted {
            reference: r.key(),
            digest: old.map(|o| o.digest.to_string()),
        });
    }
    Ok(out)
}

/// `gc` with no pin in flight.
pub async fn gc(snap: &Snapshotter, dry_run: bool) -> Result<GcReport, StoreError> {
    snap.exclusive(|s| s.gc(dry_run)).await
}

#[derive(Debug, Serialize, Deserialize)]
pub struct VerifyOutcome {
    /// Journal entries replayed when repairing.
    pub rebuilt: Option<usize>,
    #[serde(flatten)]
    pub report: VerifyReport,
    /// Where the journal's hash chain is broken (a local store's journal only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub journal_break: Option<ChainBreak>,
}

impl VerifyOutcome {
    /// No corrupt or missing blob and an unbroken journal.
    pub fn is_clean(&self) -> bool {
        self.report.is_clean() && self.journal_break.is_none()
    }
}

/// `verify` on an open store (with no pin in flight when run by a server).
pub fn verify(store: &Store, repair: bool) -> Result<VerifyOutcome, StoreError> {
    let rebuilt = if repair {
        Some(store.rebuild_index()?)
    } else {
        None
    };
    Ok(VerifyOutcome {
        rebuilt,
        report: store.verify(repair)?,
        journal_break: store.journal_break()?,
    })
}

/// `list` of the snapshotter's store of record (the bucket of a shared store).
pub async fn list_in(
    snap: &Snapshotter,
    filter: Option<&str>,
) -> Result<Vec<ListEntry>, TierError> {
    match snap.tier().shared() {
        Some(bucket) => Ok(shared::list(bucket, filter).await?),
        None => Ok(list(snap.store(), filter)?),
    }
}

/// `gc` of the snapshotter's store of record (`grace_secs` applies to a bucket).
pub async fn gc_in(
    snap: &Snapshotter,
    dry_run: bool,
    grace_secs: u64,
) -> Result<GcReport, TierError> {
    match snap.tier().shared() {
        Some(bucket) => Ok(shared::gc(bucket, dry_run, grace_secs).await?),
        None => Ok(gc(snap, dry_run).await?),
    }
}

/// `verify` of the snapshotter's store of record, with no pin in flight here.
pub async fn verify_in(snap: &Snapshotter, repair: bool) -> Result<VerifyOutcome, TierError> {
    match snap.tier().shared() {
        Some(bucket) => Ok(shared::verify(bucket, repair).await?),
        None => Ok(snap.exclusive(|store| verify(store, repair)).await?),
    }
}

/// Unix seconds → "2026-11-28T00:33:34Z".
pub fn timestamp(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}
