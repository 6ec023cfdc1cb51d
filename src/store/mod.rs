//! The store: the only code that touches the store directory.
//!
//! Layout: `lock` (held by the one process using the store), `blobs/sha256/…` (verified
//! content, manifests included, see `blobs.rs`), `tmp/` (downloads in progress, cleared on
//! open), `journal.jsonl` (append-only tag records, see `journal.rs`) and `index/` (sled, see
//! `index.rs`, rebuildable from the journal and the blobs), `server.json` while `serve`
//! holds the store (see `handoff.rs`).
//!
//! Order of writes for a pin: blobs (verified, fsync'd, renamed) → journal line (fsync'd) →
//! index. A crash anywhere leaves either no tag record or a complete one; on open, journal
//! lines the index has not seen yet are applied.
//! Must not touch: the network, the terminal.

mod blobs;
mod handoff;
mod index;
mod journal;
mod lock;
mod maint;
pub mod mapped;
pub mod records;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use blobs::{BlobWriter, Blobs};
pub use handoff::{ServerInfo, read_server_info, remove_server_info, write_server_info};
pub use maint::{GcReport, VerifyReport};
pub use records::{BlobInfo, ManifestInfo, ManifestMeta, Pending, TagRecord};

use crate::reference::Digest;
use index::Index;
use journal::{Entry, Journal};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} is in use by another stablebuild process{}", pid_hint(.pid))]
    Locked { path: PathBuf, pid: Option<u32> },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot open the store index {path}: {reason} (run `stablebuild verify --repair`)")]
    IndexOpen { path: PathBuf, reason: String },
    #[error("store index: {0}")]
    Index(String),
    #[error("journal {path} is damaged at {reason}")]
    Journal { path: PathBuf, reason: String },
    #[error("blob {0} is not in the store")]
    BlobMissing(Digest),
    #[error("blob {digest}: expected {expected} bytes, got {got}")]
    SizeMismatch {
        digest: Digest,
        expected: u64,
        got: u64,
    },
    #[error("blob {expected}: content has digest {got}; the bytes were discarded")]
    DigestMismatch { expected: Digest, got: Digest },
}

fn pid_hint(pid: &Option<u32>) -> String {
    match pid {
        Some(pid) => format!(" (pid {pid}); stop it or point --store elsewhere"),
        None => String::new(),
    }
}

impl StoreError {
    pub fn io(path: &Path, cause: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            cause,
        }
    }

    /// True when the content itself was wrong (as opposed to the store failing).
    pub fn is_bad_content(&self) -> bool {
        matches!(
            self,
            StoreError::SizeMismatch { .. } | StoreError::DigestMismatch { .. }
        )
    }
}

pub struct Store {
    dir: PathBuf,
    blobs: Blobs,
    index: Index,
    journal: Mutex<Journal>,
    _lock: lock::Lock,
}

impl Store {
    /// Open (creating if needed) the store in `dir`, taking its lock.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        let lock = lock::Lock::acquire(dir)?;
        let blobs = Blobs::open(dir)?;
        let journal = Journal::open(dir)?;
        let index = Index::open(&dir.join("index"))?;
        let store = Store {
            dir: dir.to_path_buf(),
            blobs,
            index,
            journal: Mutex::new(journal),
            _lock: lock,
        };
        store.catch_up()?;
        Ok(store)
    }

    /// Open for `verify --repair`: an index sled cannot open is set aside (renamed to
    /// `index.broken-<unix time>`) and rebuilt from the journal.
    pub fn open_for_repair(dir: &Path) -> Result<Store, StoreError> {
        match Store::open(dir) {
            Err(StoreError::IndexOpen { path, reason }) => {
                let aside = dir.join(format!("index.broken-{}", records::now()));
                tracing::warn!(
                    "index {} does not open ({reason}); rebuilding it",
                    path.display()
                );
                std::fs::rename(&path, &aside).map_err(|e| StoreError::io(&aside, e))?;
                Store::open(dir)
            }
            other => other,
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn blobs(&self) -> &Blobs {
        &self.blobs
    }

    /// Apply journal lines the index has not seen (after a crash between the two).
    fn catch_up(&self) -> Result<(), StoreError> {
        let journal = self.journal.lock().expect("journal lock");
        let applied = self.index.applied()?;
        if applied > journal.size() {
            // The journal is the truth; an index ahead of it is from another journal.
            drop(journal);
            return self.rebuild_index().map(|_| ());
        }
        for (entry, end) in journal.read_from(applied)? {
            self.index.apply(&entry, end)?;
        }
        Ok(())
    }

    /// Rebuild the tag records from the journal alone.
    pub fn rebuild_index(&self) -> Result<usize, StoreError> {
        let journal = self.journal.lock().expect("journal lock");
        self.index.clear_tags()?;
        let entries = journal.read_from(0)?;
        for (entry, end) in &entries {
            self.index.apply(entry, *end)?;
        }
        Ok(entries.len())
    }

    pub fn tag(&self, key: &str) -> Result<Option<TagRecord>, StoreError> {
        self.index.tag(key)
    }

    pub fn tags(&self) -> Result<Vec<TagRecord>, StoreError> {
        self.index.tags()
    }

    pub fn pending(&self, key: &str) -> Result<Option<Pending>, StoreError> {
        self.index.pending(key)
    }

    pub fn pendings(&self) -> Result<Vec<Pending>, StoreError> {
        self.index.pendings()
    }

    pub fn set_pending(&self, p: &Pending) -> Result<(), StoreError> {
        self.index.set_pending(p)
    }

    pub fn clear_pending(&self, key: &str) -> Result<(), StoreError> {
        self.index.clear_pending(key)
    }

    /// Store manifest bytes (verified against `digest`) with their media type.
    pub fn put_manifest(
        &self,
        digest: &Digest,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.blobs.put(digest, bytes)?;
        let meta = ManifestMeta {
            media_type: media_type.to_string(),
            size: bytes.len() as u64,
        };
        self.index.set_manifest(digest, &meta)
    }

    /// A stored manifest: media type and exact bytes.
    pub fn manifest(&self, digest: &Digest) -> Result<Option<(ManifestMeta, Vec<u8>)>, StoreError> {
        let Some(meta) = self.index.manifest(digest)? else {
            return Ok(None);
        };
        match self.blobs.read(digest) {
            Ok(bytes) => Ok(Some((meta, bytes))),
            Err(StoreError::BlobMissing(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Write a tag record once. When the key is already pinned, nothing changes and the
    /// existing record is returned.
    pub fn record_tag(&self, record: TagRecord) -> Result<TagRecord, StoreError> {
        let mut journal = self.journal.lock().expect("journal lock");
        if let Some(existing) = self.index.tag(&record.key)? {
            return Ok(existing);
        }
        let entry = Entry::Pin { record };
        let len = journal.append(&entry)?;
        self.index.apply(&entry, len)?;
        let Entry::Pin { record } = entry else {
            unreachable!()
        };
        Ok(record)
    }

    /// Remove a tag record; the blobs stay until `gc`.
    pub fn evict(&self, key: &str) -> Result<Option<TagRecord>, StoreError> {
        let mut journal = self.journal.lock().expect("journal lock");
        let Some(existing) = self.index.tag(key)? else {
            self.index.clear_pending(key)?;
            return Ok(None);
        };
        let entry = Entry::Evict {
            key: key.to_string(),
            digest: existing.digest.clone(),
            at: records::now(),
        };
        let len = journal.append(&entry)?;
        self.index.apply(&entry, len)?;
        self.index.clear_pending(key)?;
        Ok(Some(existing))
    }

    /// Digests of blobs a record reaches that are not in the store.
    pub fn missing(&self, record: &TagRecord) -> Vec<Digest> {
        record
            .digests()
            .filter(|d| !self.blobs.contains(d))
            .cloned()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_os_error_is_printed_once_with_its_causes() {
        let denied = std::io::Error::from(std::io::ErrorKind::PermissionDenied);
        let err = anyhow::Error::from(StoreError::io(Path::new("/s/lock"), denied))
            .context("opening the store at /s");
        let shown = format!("{err:#}");
        assert_eq!(shown.matches("ermission denied").count(), 1, "{shown}");
        assert!(
            shown.starts_with("opening the store at /s: /s/lock: "),
            "{shown}"
        );
    }
}
