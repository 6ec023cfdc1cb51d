//! The pinned tags as the pages need them — one light row per tag, the store's totals, and
//! (for a local store) the history of each tag — kept in memory and brought up to date from
//! the journal lines written since (`Store::revision` is the journal offset the index has
//! applied), so that a page of a store with 10,000 tags decodes neither 10,000 records nor
//! the whole journal after each pin.
//!
//! New pins are added from their journal lines; an evict, a revision that went back (the
//! index was rebuilt) or lines the index has not applied yet make it read everything again.
//! Owns: the cached rows and history. Must not touch: anything but reading the store.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use super::rows::Row;
use crate::ops::{self, HistoryEntry};
use crate::reference::Digest;
use crate::registry::{Pulls, RegistryError};
use crate::store::{Entry, Logged, Store, StoreError, TagRecord};

/// What the index held at one revision.
#[derive(Clone, Default)]
pub struct Catalog {
    /// Without pull counts (the pages add them).
    pub rows: Vec<Row>,
    /// Bytes of the distinct manifests and blobs the records reach (`seen`).
    pub size: u64,
    seen: BTreeSet<Digest>,
}

impl Catalog {
    fn of(records: &[TagRecord]) -> Catalog {
        let mut catalog = Catalog::default();
        for r in records {
            catalog.add(r);
        }
        catalog
    }

    fn add(&mut self, r: &TagRecord) {
        self.rows.push(Row::new(r, Pulls::default()));
        let manifests = r.manifests.iter().map(|m| (&m.digest, m.size));
        for (digest, n) in manifests.chain(r.blobs.iter().map(|b| (&b.digest, b.size))) {
            if self.seen.insert(digest.clone()) {
                self.size += n;
            }
        }
    }

    /// Distinct manifests and blobs the records reach.
    pub fn blobs(&self) -> usize {
        self.seen.len()
    }
}

type History = HashMap<String, Vec<HistoryEntry>>;

/// The cached state, at `revision`.
#[derive(Clone)]
struct Kept {
    revision: u64,
    catalog: Arc<Catalog>,
    /// Made on the first tag page.
    history: Option<Arc<History>>,
}

#[derive(Default)]
pub struct Cached {
    kept: Mutex<Option<Kept>>,
}

impl Cached {
    /// The catalog of `store` now.
    pub async fn get(&self, store: &Arc<Store>) -> Result<Arc<Catalog>, RegistryError> {
        Ok(self.current(store, false).await?.catalog)
    }

    /// The journal entries of the tag `key` in a local store, oldest first.
    pub async fn history(
        &self,
        store: &Arc<Store>,
        key: &str,
    ) -> Result<Vec<HistoryEntry>, RegistryError> {
        let kept = self.current(store, true).await?;
        let history = kept.history.expect("asked for");
        Ok(history.get(key).cloned().unwrap_or_default())
    }

    /// The kept state brought to the store's revision (on a blocking thread). The state
    /// is taken out while it is brought up to date, so that the new lines are applied in
    /// place rather than to a copy (a page that asks meanwhile reads the index itself).
    async fn current(&self, store: &Arc<Store>, history: bool) -> Result<Kept, RegistryError> {
        let revision = store.revision()?;
        let old = {
            let mut kept = self.kept.lock().expect("catalog");
            match kept.as_ref() {
                Some(k) if k.revision == revision && (k.history.is_some() || !history) => {
                    return Ok(k.clone());
                }
                _ => kept.take(),
            }
        };
        let s = store.clone();
        let made = tokio::task::spawn_blocking(move || update(&s, old, revision, history));
        let kept = made.await.expect("reading the store panicked")?;
        // Kept only when no record changed while it was read.
        if store.revision()? == kept.revision {
            *self.kept.lock().expect("catalog") = Some(kept.clone());
        }
        Ok(kept)
    }
}

/// `old` brought to `revision`: from the journal lines since, or read again.
fn update(
    store: &Store,
    old: Option<Kept>,
    revision: u64,
    history: bool,
) -> Result<Kept, StoreError> {
    if let Some(old) = old.filter(|o| o.revision <= revision)
        && (old.history.is_some() || !history)
    {
        let lines = store.history_since(old.revision)?;
        if let Some(kept) = advance(old, lines, revision) {
            return Ok(kept);
        }
    }
    let catalog = Arc::new(Catalog::of(&store.tags()?));
    let history = match history {
        true => Some(Arc::new(by_reference(ops::history_entries(
            store.history()?,
        )))),
        false => None,
    };
    Ok(Kept {
        revision,
        catalog,
        history,
    })
}

/// `old` with `lines` applied, when they are pins of new tags ending exactly at `revision`.
fn advance(old: Kept, lines: Vec<Logged>, revision: u64) -> Option<Kept> {
    let applied: Vec<Logged> = lines
        .into_iter()
        .take_while(|l| l.end <= revision)
        .collect();
    if applied.last().map_or(old.revision, |l| l.end) != revision {
        return None;
    }
    let pins_of_new_tags = applied.iter().all(|l| match &l.entry {
        Entry::Pin { record } => !old.catalog.rows.iter().any(|r| r.reference == record.key),
        Entry::Evict { .. } => false,
    });
    if !pins_of_new_tags {
        return None;
    }
    let (mut catalog, mut history) = (old.catalog, old.history);
    // In place when nothing else holds them (a page still rendering makes this a copy).
    let rows = Arc::make_mut(&mut catalog);
    for l in &applied {
        if let Entry::Pin { record } = &l.entry {
            rows.add(record);
        }
    }
    if let Some(h) = history.as_mut() {
        let h = Arc::make_mut(h);
        for e in ops::history_entries(applied) {
            h.entry(e.reference.clone()).or_default().push(e);
        }
    }
    Some(Kept {
        revision,
        catalog,
        history,
    })
}

fn by_reference(entries: Vec<HistoryEntry>) -> History {
    let mut map: History = HashMap::new();
    for e in entries {
        map.entry(e.reference.clone()).or_default().push(e);
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::ManifestInfo;

    fn record(store: &Store, name: &str) -> TagRecord {
        let bytes = format!("{{\"name\":\"{name}\"}}");
        let digest = crate::manifest::sha256(bytes.as_bytes());
        let media_type = crate::manifest::OCI_MANIFEST.to_string();
        store
            .put_manifest(&digest, &media_type, bytes.as_bytes())
            .unwrap();
        let record = TagRecord {
            key: format!("docker.io/library/{name}:1"),
            digest: digest.clone(),
            media_type: media_type.clone(),
            platforms: vec![],
            manifests: vec![ManifestInfo {
                digest,
                media_type,
                size: bytes.len() as u64,
                platform: None,
            }],
            blobs: vec![],
            size: bytes.len() as u64,
            pinned_at: 1,
            origin: None,
        };
        store.record_tag(record).unwrap()
    }

    fn names(c: &Catalog) -> Vec<&str> {
        let mut names: Vec<&str> = c.rows.iter().map(|r| r.reference.as_str()).collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn pins_are_added_from_the_journal_and_an_evict_reads_everything_again() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(Store::open(dir.path()).unwrap());
        let cached = Cached::default();
        record(&store, "a");
        assert_eq!(
            names(&cached.get(&store).await.unwrap()),
            ["docker.io/library/a:1"]
        );
        let history = cached
            .history(&store, "docker.io/library/a:1")
            .await
            .unwrap();
        assert_eq!(history.len(), 1);

        let before = cached.kept.lock().unwrap().clone().unwrap();
        record(&store, "b");
        let lines = store.history_since(before.revision).unwrap();
        let now = store.revision().unwrap();
        assert!(
            advance(before.clone(), lines, now).is_some(),
            "a pin is added, not re-read"
        );
        let c = cached.get(&store).await.unwrap();
        assert_eq!(
            names(&c),
            ["docker.io/library/a:1", "docker.io/library/b:1"]
        );
        assert_eq!(
            (c.blobs(), c.size),
            (2, c.rows.iter().map(|r| r.size).sum())
        );
        let history = cached
            .history(&store, "docker.io/library/b:1")
            .await
            .unwrap();
        assert_eq!(history[0].action, "pin");

        let before = cached.kept.lock().unwrap().clone().unwrap();
        store.evict("docker.io/library/a:1", None).unwrap();
        let lines = store.history_since(before.revision).unwrap();
        let now = store.revision().unwrap();
        assert!(
            advance(before, lines, now).is_none(),
            "an evict reads everything again"
        );
        let c = cached.get(&store).await.unwrap();
        assert_eq!(names(&c), ["docker.io/library/b:1"]);
        assert_eq!(c.blobs(), 1);
        let history = cached
            .history(&store, "docker.io/library/a:1")
            .await
            .unwrap();
        let actions: Vec<&str> = history.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["pin", "evict"]);
    }
}
