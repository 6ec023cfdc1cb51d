//! A cache's bound: the blob files of a shared store's cache stay under a size limit, the
//! least recently used leaving first.
//!
//! Owns: the recency order and sizes of the cache's blob files (seeded from their
//! modification times when the cache opens), and choosing which to remove when a new blob
//! pushes the total over the limit (down to 90% of it, so that removals come in batches).
//! The caller unlinks the files; a file being read or sent stays readable until closed.
//! Only a cache has one: a local store never removes a blob that a tag reaches, and the
//! bucket holds everything a cache may drop.
//! Must not touch: the index or the journal.

use std::collections::{BTreeMap, HashMap};
use std::path::Path;
use std::sync::{Arc, Mutex};

use crate::reference::Digest;

pub struct Lru {
    limit: u64,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    total: u64,
    tick: u64,
    /// digest → (size, last use).
    entries: HashMap<Digest, (u64, u64)>,
    /// last use → digest, oldest first.
    order: BTreeMap<u64, Digest>,
    /// Digests an export in progress needs: never removed while held.
    held: HashMap<Digest, usize>,
}

impl State {
    fn use_now(&mut self, digest: &Digest, size: u64) {
        self.tick += 1;
        if let Some((old_size, old_tick)) = self.entries.insert(digest.clone(), (size, self.tick)) {
            self.order.remove(&old_tick);
            self.total -= old_size;
        }
        self.order.insert(self.tick, digest.clone());
        self.total += size;
    }

    fn forget(&mut self, digest: &Digest) {
        if let Some((size, tick)) = self.entries.remove(digest) {
            self.order.remove(&tick);
            self.total -= size;
        }
    }
}

impl Lru {
    /// The blobs under `root` (`blobs/sha256`), oldest-modified first.
    pub fn scan(root: &Path, limit: u64) -> Lru {
        let mut found: Vec<(std::time::SystemTime, Digest, u64)> = Vec::new();
        for shard in std::fs::read_dir(root).into_iter().flatten().flatten() {
            for entry in std::fs::read_dir(shard.path())
                .into_iter()
                .flatten()
                .flatten()
            {
                let name = entry.file_name();
                let Some(digest) = name.to_str().and_then(|n| Digest::from_hex(n).ok()) else {
                    continue;
                };
                if let Ok(meta) = entry.metadata() {
                    let modified = meta.modified().unwrap_or(std::time::UNIX_EPOCH);
                    found.push((modified, digest, meta.len()));
                }
            }
        }
        found.sort();
        let mut state = State::default();
        for (_, digest, size) in found {
            state.use_now(&digest, size);
        }
        Lru {
            limit,
            state: Mutex::new(state),
        }
    }

    /// Bytes of the blobs the cache holds.
    #[cfg(test)]
    fn total(&self) -> u64 {
        self.state.lock().expect("lru").total
    }

    /// A blob was read or sent.
    pub fn touch(&self, digest: &Digest) {
        let mut state = self.state.lock().expect("lru");
        if let Some(&(size, _)) = state.entries.get(digest) {
            state.use_now(digest, size);
        }
    }

    /// A blob was added; the blobs to remove (coldest first, never `digest` itself) to bring
    /// the total back under the limit. They are forgotten here; the caller removes the files.
    pub fn added(&self, digest: &Digest, size: u64) -> Vec<Digest> {
        let mut state = self.state.lock().expect("lru");
        state.use_now(digest, size);
        self.over(&mut state, Some(digest))
    }

    /// The blobs to remove now (after the cache opened over its limit).
    pub fn excess(&self) -> Vec<Digest> {
        let mut state = self.state.lock().expect("lru");
        self.over(&mut state, None)
    }

    fn over(&self, state: &mut State, keep: Option<&Digest>) -> Vec<Digest> {
        if state.total <= self.limit {
            return Vec::new();
        }
        let target = self.limit - self.limit / 10;
        let mut out = Vec::new();
        let coldest: Vec<Digest> = state.order.values().cloned().collect();
        for d in coldest {
            if state.total <= target {
                break;
            }
            if Some(&d) == keep || state.held.contains_key(&d) {
                continue;
            }
            state.forget(&d);
            out.push(d);
        }
        out
    }

    pub fn removed(&self, digest: &Digest) {
        self.state.lock().expect("lru").forget(digest);
    }

    /// Keep `digests` in the cache until the returned hold is dropped (an export reads
    /// them after they were fetched, and a blob fetched later must not push them out).
    pub fn hold(self: &Arc<Self>, digests: impl IntoIterator<Item = Digest>) -> Hold {
        let digests: Vec<Digest> = digests.into_iter().collect();
        let mut state = self.state.lock().expect("lru");
        for d in &digests {
            *state.held.entry(d.clone()).or_default() += 1;
        }
        Hold {
            lru: self.clone(),
            digests,
        }
    }
}

/// Blobs kept in a bounded cache while it lives.
pub struct Hold {
    lru: Arc<Lru>,
    digests: Vec<Digest>,
}

impl Drop for Hold {
    fn drop(&mut self) {
        let mut state = self.lru.state.lock().expect("lru");
        for d in &self.digests {
            if let Some(n) = state.held.get_mut(d) {
                *n -= 1;
                if *n == 0 {
                    state.held.remove(d);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: u8) -> Digest {
        crate::manifest::sha256(&[n])
    }

    #[test]
    fn the_least_recently_used_leave_first_down_to_nine_tenths() {
        let dir = tempfile::tempdir().unwrap();
        let lru = Lru::scan(dir.path(), 100);
        assert!(lru.added(&d(1), 40).is_empty());
        assert!(lru.added(&d(2), 40).is_empty());
        lru.touch(&d(1)); // 2 is now the coldest
        let out = lru.added(&d(3), 40);
        assert_eq!(out, vec![d(2)], "the coldest goes; 1 was used since");
        assert_eq!(lru.total(), 80);
        let out = lru.added(&d(4), 95);
        assert_eq!(
            out,
            vec![d(1), d(3)],
            "down to 90 bytes or less, the new one kept"
        );
        assert_eq!(lru.total(), 95, "a blob over the limit alone is kept");
    }

    #[test]
    fn held_blobs_stay_until_the_hold_ends() {
        let dir = tempfile::tempdir().unwrap();
        let lru = Arc::new(Lru::scan(dir.path(), 100));
        lru.added(&d(1), 60);
        let hold = lru.hold([d(1)]);
        assert!(
            lru.added(&d(2), 60).is_empty(),
            "1 is held, 2 is new: both stay"
        );
        drop(hold);
        assert_eq!(
            lru.added(&d(3), 10),
            vec![d(1)],
            "down to 90 bytes: 1 is free to go"
        );
    }

    #[test]
    fn a_scan_orders_existing_blobs_by_age() {
        let dir = tempfile::tempdir().unwrap();
        let write = |n: u8, age_secs: u64| {
            let digest = d(n);
            let shard = dir.path().join(&digest.hex()[..2]);
            std::fs::create_dir_all(&shard).unwrap();
            let path = shard.join(digest.hex());
            std::fs::write(&path, vec![0u8; 10]).unwrap();
            let t = std::time::SystemTime::now() - std::time::Duration::from_secs(age_secs);
            std::fs::File::options()
                .write(true)
                .open(&path)
                .unwrap()
                .set_modified(t)
                .unwrap();
        };
        write(1, 10);
        write(2, 100);
        write(3, 1);
        let lru = Lru::scan(dir.path(), 25);
        assert_eq!(lru.total(), 30);
        assert_eq!(
            lru.excess(),
            vec![d(2)],
            "the oldest first, down to 23 bytes or less"
        );
    }
}
