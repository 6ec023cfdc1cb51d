//! `history`: every pin and evict a store has seen, oldest first, as data — from a local
//! store's hash-chained journal, or from a bucket's journal objects.
//! Must not touch: the terminal, or anything it reads (history only reads).

use serde::{Deserialize, Serialize};

use super::timestamp;
use crate::shared::{JournalEntry, Shared, SharedError};
use crate::snapshot::{Snapshotter, TierError};
use crate::store::{Entry, Logged, Origin, Store, StoreError};

/// One pin or evict.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// RFC 3339, UTC.
    pub time: String,
    /// "pin" or "evict".
    pub action: String,
    pub reference: String,
    pub digest: String,
    /// Who asked; None for entries written before origins were kept.
    pub origin: Option<Origin>,
}

fn entry(
    at: u64,
    action: &str,
    reference: &str,
    digest: String,
    origin: Option<Origin>,
) -> HistoryEntry {
    HistoryEntry {
        time: timestamp(at),
        action: action.to_string(),
        reference: reference.to_string(),
        digest,
        origin,
    }
}

/// Keep the entries whose reference contains `filter`.
fn filtered(mut all: Vec<HistoryEntry>, filter: Option<&str>) -> Vec<HistoryEntry> {
    if let Some(f) = filter {
        all.retain(|e| e.reference.contains(f));
    }
    all
}

/// A local store's journal, oldest first.
pub fn history(store: &Store, filter: Option<&str>) -> Result<Vec<HistoryEntry>, StoreError> {
    Ok(filtered(entries(store.history()?), filter))
}

/// Journal lines as history entries.
pub fn entries(lines: Vec<Logged>) -> Vec<HistoryEntry> {
    let all = lines.into_iter().map(|l| match l.entry {
        Entry::Pin { record } => entry(
            record.pinned_at,
            "pin",
            &record.key,
            record.digest.to_string(),
            record.origin,
        ),
        Entry::Evict {
            key,
            digest,
            at,
            origin,
        } => entry(at, "evict", &key, digest.to_string(), origin),
    });
    all.collect()
}

/// A bucket's journal objects, oldest first (their names sort by time).
pub async fn shared_history(
    shared: &Shared,
    filter: Option<&str>,
) -> Result<Vec<HistoryEntry>, SharedError> {
    let all = shared
        .journal_entries()
        .await?
        .into_iter()
        .map(|e| match e {
            JournalEntry::Pin {
                key,
                digest,
                at,
                origin,
            } => entry(at, "pin", &key, digest.to_string(), origin),
            JournalEntry::Evict {
                key,
                digest,
                at,
                origin,
            } => entry(at, "evict", &key, digest.to_string(), origin),
        });
    Ok(filtered(all.collect(), filter))
}

/// The history of the snapshotter's store of record (for a server's admin API).
pub async fn history_in(
    snap: &Snapshotter,
    filter: Option<&str>,
) -> Result<Vec<HistoryEntry>, TierError> {
    match snap.tier().shared() {
        Some(bucket) => Ok(shared_history(bucket, filter).await?),
        None => Ok(history(snap.store(), filter)?),
    }
}
