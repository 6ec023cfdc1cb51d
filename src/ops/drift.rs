//! `drift`: every pinned tag compared with what the upstream's tag names now, with one HEAD
//! by tag each (no pull is spent), as data. A record pinned by digest is skipped: nothing can
//! move under it.
//! Must not touch: the store (drift only reads its records) or any manifest body.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

use crate::reference::{Digest, Reference};
use crate::shared::{Shared, SharedError};
use crate::snapshot::{Snapshotter, TierError};
use crate::store::{Store, StoreError, TagRecord};
use crate::upstream::{RetryPolicy, Upstreams};

/// HEAD requests in flight at once.
pub const DRIFT_CONCURRENCY: usize = 16;

/// What became of a pinned tag upstream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DriftState {
    /// The tag still names the pinned digest.
    Same,
    /// The tag names another digest now.
    Moved,
    /// The upstream answers 404 for the tag.
    Gone,
    /// The upstream could not tell (unreachable, denied, …).
    Error,
}

impl DriftState {
    pub const ALL: [DriftState; 4] = [
        DriftState::Same,
        DriftState::Moved,
        DriftState::Gone,
        DriftState::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DriftState::Same => "same",
            DriftState::Moved => "moved",
            DriftState::Gone => "gone",
            DriftState::Error => "error",
        }
    }
}

/// One pinned tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftEntry {
    pub reference: String,
    pub state: DriftState,
    /// The digest the store pinned.
    pub pinned: String,
    /// The digest the upstream names now (same and moved only).
    pub current: Option<String>,
    /// Why the upstream could not tell (error only).
    pub error: Option<String>,
}

/// Every pinned tag, sorted by reference, and how many are in each state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DriftReport {
    pub entries: Vec<DriftEntry>,
    /// "same", "moved", "gone" and "error", each present (0 when none).
    pub counts: BTreeMap<DriftState, usize>,
}

impl DriftReport {
    fn new(entries: Vec<DriftEntry>) -> DriftReport {
        let mut counts: BTreeMap<DriftState, usize> =
            DriftState::ALL.iter().map(|s| (*s, 0)).collect();
        for e in &entries {
            *counts.entry(e.state).or_default() += 1;
        }
        DriftReport { entries, counts }
    }

    pub fn count(&self, state: DriftState) -> usize {
        self.counts.get(&state).copied().unwrap_or(0)
    }

    /// Anything moved, gone, or not known (what `--exit-code` fails on).
    pub fn drifted(&self) -> bool {
        [DriftState::Moved, DriftState::Gone, DriftState::Error]
            .iter()
            .any(|s| self.count(*s) > 0)
    }
}

/// Drift of a local store's tags (those containing `filter`).
pub async fn drift(
    store: &Store,
    upstreams: &Upstreams,
    filter: Option<&str>,
) -> Result<DriftReport, StoreError> {
    Ok(check(upstreams, store.tags()?, filter).await)
}

/// Drift of a bucket's records.
pub async fn shared_drift(
    shared: &Shared,
    upstreams: &Upstreams,
    filter: Option<&str>,
) -> Result<DriftReport, SharedError> {
    Ok(check(upstreams, shared.records().await?, filter).await)
}

/// Drift of the snapshotter's store of record, asked with its upstream clients (a server's
/// admin API and `serve --drift-every`).
pub async fn drift_in(snap: &Snapshotter, filter: Option<&str>) -> Result<DriftReport, TierError> {
    match snap.tier().shared() {
        Some(bucket) => Ok(shared_drift(bucket, snap.upstreams(), filter).await?),
        None => Ok(drift(snap.store(), snap.upstreams(), filter).await?),
    }
}

/// HEAD every tag record containing `filter`, `DRIFT_CONCURRENCY` at a time.
pub async fn check(
    upstreams: &Upstreams,
    records: Vec<TagRecord>,
    filter: Option<&str>,
) -> DriftReport {
    let mut tagged: Vec<(Reference, Digest)> = records
        .into_iter()
        .filter(|r| filter.is_none_or(|f| r.key.contains(f)))
        .filter_map(|r| {
            let reference = Reference::parse(&r.key).ok()?;
            reference
                .digest()
                .is_none()
                .then_some((reference, r.digest))
        })
        .collect();
    tagged.sort_by_key(|(r, _)| r.to_string());
    let retry = RetryPolicy::lookup();
    let entries = futures_util::stream::iter(tagged)
        .map(|(reference, pinned)| check_one(upstreams, reference, pinned, &retry))
        .buffered(DRIFT_CONCURRENCY)
        .collect()
        .await;
    DriftReport::new(entries)
}

async fn check_one(
    upstreams: &Upstreams,
    reference: Reference,
    pinned: Digest,
    retry: &RetryPolicy,
) -> DriftEntry {
    let upstream = upstreams.get(reference.registry());
    let asked = upstream
        .head_manifest(reference.repository(), &reference.manifest_ref(), retry)
        .await;
    let (state, current, error) = match asked {
        Ok(Some(d)) if d == pinned => (DriftState::Same, Some(d.to_string()), None),
        Ok(Some(d)) => (DriftState::Moved, Some(d.to_string()), None),
        Ok(None) => (DriftState::Gone, None, None),
        Err(e) => (DriftState::Error, None, Some(e.to_string())),
    };
    DriftEntry {
        reference: reference.to_string(),
        state,
        pinned: pinned.to_string(),
        current,
        error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(state: DriftState) -> DriftEntry {
        DriftEntry {
            reference: "docker.io/library/x:1".into(),
            state,
            pinned: "sha256:00".into(),
            current: None,
            error: None,
        }
    }

    #[test]
    fn counts_name_every_state_and_drifted_means_not_all_same() {
        let same = DriftReport::new(vec![entry(DriftState::Same)]);
        assert!(!same.drifted());
        assert_eq!(same.count(DriftState::Gone), 0);
        let json = serde_json::to_value(&same).unwrap();
        assert_eq!(
            json["counts"],
            serde_json::json!({"same": 1, "moved": 0, "gone": 0, "error": 0})
        );
        for state in [DriftState::Moved, DriftState::Gone, DriftState::Error] {
            let report = DriftReport::new(vec![entry(DriftState::Same), entry(state)]);
            assert!(report.drifted(), "{state:?}");
            assert_eq!(report.count(state), 1);
        }
    }
}
