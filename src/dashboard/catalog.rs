//! The pinned tags as the pages need them — one light row per tag, and the store's totals —
//! read from the index once per revision of it (`Store::revision`), so that a page of a
//! store with 10,000 tags does not decode 10,000 records every time.
//! A local store's journal is kept the same way, by reference, for the tag pages' history.
//! Owns: the cached rows and history. Must not touch: anything but reading the store.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use super::rows::Row;
use crate::ops::{self, HistoryEntry};
use crate::registry::{Pulls, RegistryError};
use crate::store::{Store, TagRecord};

/// What the index held at one revision.
pub struct Catalog {
    /// Without pull counts (the pages add them).
    pub rows: Vec<Row>,
    /// Distinct manifests and blobs the records reach, and their bytes.
    pub blobs: usize,
    pub size: u64,
}

impl Catalog {
    fn of(records: &[TagRecord]) -> Catalog {
        let rows = records
            .iter()
            .map(|r| Row::new(r, Pulls::default()))
            .collect();
        let mut seen = BTreeSet::new();
        let mut size = 0;
        for r in records {
            let manifests = r.manifests.iter().map(|m| (&m.digest, m.size));
            for (digest, n) in manifests.chain(r.blobs.iter().map(|b| (&b.digest, b.size))) {
                if seen.insert(digest) {
                    size += n;
                }
            }
        }
        Catalog {
            rows,
            blobs: seen.len(),
            size,
        }
    }
}

type History = HashMap<String, Vec<HistoryEntry>>;

/// One value computed from the store, with the revision it was computed at.
struct Slot<T>(Mutex<Option<(u64, Arc<T>)>>);

impl<T> Default for Slot<T> {
    fn default() -> Self {
        Slot(Mutex::new(None))
    }
}

impl<T: Send + Sync + 'static> Slot<T> {
    /// The value for `store` now: the kept one while the revision is the same, else made
    /// again by `make` (on a blocking thread) and kept if no record changed meanwhile.
    async fn get(
        &self,
        store: &Arc<Store>,
        make: fn(&Store) -> Result<T, crate::store::StoreError>,
    ) -> Result<Arc<T>, RegistryError> {
        let revision = store.revision()?;
        if let Some((at, value)) = self.0.lock().expect("catalog").as_ref()
            && *at == revision
        {
            return Ok(value.clone());
        }
        let s = store.clone();
        let made = tokio::task::spawn_blocking(move || make(&s));
        let value = Arc::new(made.await.expect("reading the store panicked")?);
        if store.revision()? == revision {
            *self.0.lock().expect("catalog") = Some((revision, value.clone()));
        }
        Ok(value)
    }
}

#[derive(Default)]
pub struct Cached {
    catalog: Slot<Catalog>,
    history: Slot<History>,
}

impl Cached {
    /// The catalog of `store` now.
    pub async fn get(&self, store: &Arc<Store>) -> Result<Arc<Catalog>, RegistryError> {
        self.catalog
            .get(store, |s| s.tags().map(|r| Catalog::of(&r)))
            .await
    }

    /// The journal entries of the tag `key` in a local store, oldest first.
    pub async fn history(
        &self,
        store: &Arc<Store>,
        key: &str,
    ) -> Result<Vec<HistoryEntry>, RegistryError> {
        let by_key = self.history.get(store, by_reference).await?;
        Ok(by_key.get(key).cloned().unwrap_or_default())
    }
}

fn by_reference(store: &Store) -> Result<History, crate::store::StoreError> {
    let mut map: History = HashMap::new();
    for e in ops::history(store, None)? {
        map.entry(e.reference.clone()).or_default().push(e);
    }
    Ok(map)
}
