//! The sled index: tag records, pending pins, manifest media types.
//!
//! Owns: the `index/` directory (a sled database). Everything here can be rebuilt: tag
//! records from the journal, manifest media types from the records and the manifest bytes.
//! Must not touch: blob files or the journal file.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Mutex;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::StoreError;
use super::journal::Entry;
use super::records::{ManifestMeta, Pending, TagRecord};
use crate::reference::Digest;

const APPLIED: &[u8] = b"journal-applied";
/// The hash of the journal line applied last (see `journal.rs`).
const HEAD: &[u8] = b"journal-head";

pub struct Index {
    db: sled::Db,
    tags: sled::Tree,
    pending: sled::Tree,
    manifests: sled::Tree,
    meta: sled::Tree,
    /// The root digest of each record `tag_digest` decoded, until the record changes (every
    /// change goes through `apply` or `clear_tags`): a manifest by tag on every pull.
    roots: Mutex<HashMap<String, Digest>>,
}

fn db_err(e: sled::Error) -> StoreError {
    StoreError::Index(e.to_string())
}

fn decode<T: DeserializeOwned>(what: &str, bytes: &[u8]) -> Result<T, StoreError> {
    serde_json::from_slice(bytes).map_err(|e| StoreError::Index(format!("{what}: {e}")))
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("records serialise")
}

impl Index {
    pub fn open(dir: &Path) -> Result<Index, StoreError> {
        // Every change below is flushed by the call that makes it; sled's own flusher
        // would fsync the log twice a second for as long as the store is open, even when
        // nothing changed (an idle `serve` flushed its disk ~170,000 times a day).
        let config = sled::Config::new().path(dir).flush_every_ms(None);
        Index::with(config, dir)
    }

    /// A throw-away index (in /dev/shm or the temp dir, removed when dropped), for a store
    /// this process may not write: the caller fills it from the journal.
    pub fn temporary(store: &Path) -> Result<Index, StoreError> {
        let config = sled::Config::new().temporary(true).flush_every_ms(None);
        Index::with(config, store)
    }

    fn with(config: sled::Config, dir: &Path) -> Result<Index, StoreError> {
        let db =
            config
                .cache_capacity(8 * 1024 * 1024)
                .open()
                .map_err(|e| StoreError::IndexOpen {
                    path: dir.to_path_buf(),
                    reason: e.to_string(),
                })?;
        let tree = |name: &str| db.open_tree(name).map_err(db_err);
        Ok(Index {
            tags: tree("tags")?,
            pending: tree("pending")?,
            manifests: tree("manifests")?,
            meta: tree("meta")?,
            roots: Mutex::default(),
            db,
        })
    }

    pub fn tag(&self, key: &str) -> Result<Option<TagRecord>, StoreError> {
        let raw = self.tags.get(key).map_err(db_err)?;
        raw.map(|v| decode(key, &v)).transpose()
    }

    /// Only the root digest of a tag's record: the rest is skipped, not built (a manifest
    /// GET by tag needs no more, and it is the registry's hottest path).
    pub fn tag_digest(&self, key: &str) -> Result<Option<Digest>, StoreError> {
        #[derive(Deserialize)]
        struct Root {
            digest: Digest,
        }
        // Held while the record is read: a change lands in the tree before it forgets
        // the key here, so what is kept was read after any change that forgot it.
        let mut roots = self.roots.lock().expect("roots");
        if let Some(d) = roots.get(key) {
            return Ok(Some(d.clone()));
        }
        let raw = self.tags.get(key).map_err(db_err)?;
        let Some(root) = raw.map(|v| decode::<Root>(key, &v)).transpose()? else {
            return Ok(None);
        };
        roots.insert(key.to_string(), root.digest.clone());
        Ok(Some(root.digest))
    }

    /// A record changed in the tree: its root digest is read again when next asked for.
    fn forget_root(&self, key: &str) {
        self.roots.lock().expect("roots").remove(key);
    }

    /// The keys of the tag records that start with `prefix` ("" for all), in order; no
    /// record is decoded.
    pub fn tag_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        let keys = self.tags.scan_prefix(prefix).keys();
        keys.map(|k| k.map(|k| lossy(&k)).map_err(db_err)).collect()
    }

    pub fn tags(&self) -> Result<Vec<TagRecord>, StoreError> {
        self.tags
            .iter()
            .map(|kv| kv.map_err(db_err).and_then(|(k, v)| decode(&lossy(&k), &v)))
            .collect()
    }

    /// Every tag record, decoded one at a time (a large store is never all in memory).
    pub fn each_tag(&self, mut f: impl FnMut(TagRecord)) -> Result<(), StoreError> {
        for kv in self.tags.iter() {
            let (k, v) = kv.map_err(db_err)?;
            f(decode(&lossy(&k), &v)?);
        }
        Ok(())
    }

    pub fn pending(&self, key: &str) -> Result<Option<Pending>, StoreError> {
        let raw = self.pending.get(key).map_err(db_err)?;
        raw.map(|v| decode(key, &v)).transpose()
    }

    pub fn pendings(&self) -> Result<Vec<Pending>, StoreError> {
        self.pending
            .iter()
            .map(|kv| kv.map_err(db_err).and_then(|(k, v)| decode(&lossy(&k), &v)))
            .collect()
    }

    pub fn set_pending(&self, p: &Pending) -> Result<(), StoreError> {
        self.pending.insert(&p.key, encode(p)).map_err(db_err)?;
        self.flush()
    }

    pub fn clear_pending(&self, key: &str) -> Result<(), StoreError> {
        self.pending.remove(key).map_err(db_err)?;
        self.flush()
    }

    pub fn manifest(&self, digest: &Digest) -> Result<Option<ManifestMeta>, StoreError> {
        let key = digest.to_string();
        let raw = self.manifests.get(&key).map_err(db_err)?;
        raw.map(|v| decode(&key, &v)).transpose()
    }

    pub fn set_manifest(&self, digest: &Digest, meta: &ManifestMeta) -> Result<(), StoreError> {
        let key = digest.to_string();
        self.manifests.insert(key, encode(meta)).map_err(db_err)?;
        Ok(())
    }

    /// Bytes of the journal already applied to this index.
    pub fn applied(&self) -> Result<u64, StoreError> {
        let raw = self.meta.get(APPLIED).map_err(db_err)?;
        Ok(raw
            .and_then(|v| <[u8; 8]>::try_from(v.as_ref()).ok())
            .map(u64::from_be_bytes)
            .unwrap_or(0))
    }

    /// Apply one journal entry (idempotent) that ends at `journal_offset` in the journal and
    /// whose line hashes to `line_hash` (kept as the journal's head, see `journal.rs`).
    pub fn apply(
        &self,
        entry: &Entry,
        journal_offset: u64,
        line_hash: &Digest,
    ) -> Result<(), StoreError> {
        match entry {
            Entry::Pin { record } => {
                for m in &record.manifests {
                    let meta = ManifestMeta {
                        media_type: m.media_type.clone(),
                        size: m.size,
                    };
                    self.set_manifest(&m.digest, &meta)?;
                }
                self.tags
                    .insert(&record.key, encode(record))
                    .map_err(db_err)?;
                self.forget_root(&record.key);
                self.pending.remove(&record.key).map_err(db_err)?;
            }
            Entry::Evict { key, .. } => {
                self.tags.remove(key).map_err(db_err)?;
                self.forget_root(key);
            }
        }
        let offset = journal_offset.to_be_bytes();
        self.meta.insert(APPLIED, &offset).map_err(db_err)?;
        let head = line_hash.to_string();
        self.meta.insert(HEAD, head.as_bytes()).map_err(db_err)?;
        self.flush()
    }

    /// The hash of the journal line applied last, when it was kept.
    pub fn journal_head(&self) -> Result<Option<Digest>, StoreError> {
        let raw = self.meta.get(HEAD).map_err(db_err)?;
        Ok(raw.and_then(|v| Digest::parse(&String::from_utf8_lossy(&v)).ok()))
    }

    /// Forget every tag record (before a replay of the whole journal).
    pub fn clear_tags(&self) -> Result<(), StoreError> {
        // The applied offset goes first: a reader comparing it before and after reading the
        // records sees the change (see `Store::revision`).
        self.meta.remove(APPLIED).map_err(db_err)?;
        self.tags.clear().map_err(db_err)?;
        self.roots.lock().expect("roots").clear();
        self.flush()
    }

    pub fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(db_err).map(|_| ())
    }
}

fn lossy(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}
