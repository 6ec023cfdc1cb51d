//! The store: the only code that touches the store directory.
//!
//! Layout: `lock` (held by the one process using the store), `blobs/sha256/…` (verified
//! content, manifests included, see `blobs.rs`), `tmp/` (downloads in progress, cleared on
//! open), `journal.jsonl` (append-only tag records, see `journal.rs`) and `index/` (sled, see
//! `index.rs`, rebuildable from the journal and the blobs), `server.json` while `serve`
//! holds the store (see `handoff.rs`).
//!
//! Opened read-only (`Mode::ReadOnly`, or `Mode::Auto` on a store this process may not
//! write: another user's, or on a read-only mount), nothing is written, not even the lock:
//! tag records are read from the journal into a throw-away index, and every write fails
//! with `StoreError::ReadOnly`.
//!
//! Order of writes for a pin: blobs (verified, fsync'd, renamed) → journal line (fsync'd) →
//! index. A crash anywhere leaves either no tag record or a complete one; on open, journal
//! lines the index has not seen yet are applied.
//! Must not touch: the network, the terminal.

mod blobs;
mod handoff;
mod hot;
mod index;
mod journal;
mod lock;
mod lru;
mod maint;
pub mod mapped;
pub mod records;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use blobs::{BlobWriter, Blobs};
pub use handoff::{ServerInfo, read_server_info, remove_server_info, write_server_info};
pub use journal::{ChainBreak, Entry, Logged};
pub use lock::{Contended, Holder};
pub use lru::Hold;
pub use maint::{GcReport, VerifyReport};
pub use records::{BlobInfo, ManifestInfo, ManifestMeta, Origin, Pending, TagRecord};

use crate::reference::Digest;
use index::Index;
use journal::Journal;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store {path} is in use by {}", holder_hint(.holder))]
    Locked {
        path: PathBuf,
        holder: Option<Holder>,
    },
    #[error("no store at {path} (pin or serve creates one; check --store and STABLEBUILD_STORE)")]
    NoStore { path: PathBuf },
    #[error(
        "store {path} is read-only ({reason}): commands that only read work on it, and \
         `serve --read-only` serves what it holds"
    )]
    ReadOnly { path: PathBuf, reason: String },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error("cannot open the store index {path}: {reason} (run `stablebuild verify --repair`)")]
    IndexOpen { path: PathBuf, reason: String },
    #[error("store index: {0}")]
    Index(String),
    #[error("journal {path} is damaged at line {line}: {reason}")]
    Journal {
        path: PathBuf,
        line: usize,
        reason: String,
    },
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

fn holder_hint(holder: &Option<Holder>) -> String {
    let who = match holder {
        Some(h) => h.to_string(),
        None => "another stablebuild process".to_string(),
    };
    format!("{who}; without --no-wait, stablebuild waits for it")
}

/// The OS says this process may not write here (another user's store, a read-only mount).
fn is_not_writable(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
    )
}

impl StoreError {
    pub fn io(path: &Path, cause: std::io::Error) -> StoreError {
        StoreError::Io {
            path: path.to_path_buf(),
            cause,
        }
    }

    pub fn is_read_only(&self) -> bool {
        matches!(self, StoreError::ReadOnly { .. })
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
    /// None when the store is open read-only (no lock: nothing is written).
    _lock: Option<lock::Lock>,
    read_only: Option<String>,
    created: bool,
}

/// Whether a process wants to change the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    ReadWrite,
    /// Never write, even when the store could be written (`serve --read-only`).
    ReadOnly,
    /// Read-write when this process may write the store, else read-only.
    Auto,
}

/// How to open a store.
pub struct Opening<'a> {
    pub mode: Mode,
    /// Make `dir` a store when it is not one yet (else: `StoreError::NoStore`).
    pub create: bool,
    pub contended: Contended<'a>,
    /// A shared store's cache: its blobs are kept under this many bytes (least recently
    /// used leave first). None for a store, whose blobs only gc removes.
    pub cache_limit: Option<u64>,
}

/// A directory is a store once it has a journal (every store opened read-write has one).
pub fn exists(dir: &Path) -> bool {
    dir.join("journal.jsonl").is_file()
}

impl Store {
    /// Open (creating if needed) the store in `dir` read-write, failing at once when another
    /// process holds it.
    pub fn open(dir: &Path) -> Result<Store, StoreError> {
        let opening = Opening {
            mode: Mode::ReadWrite,
            create: true,
            contended: Contended::Fail,
            cache_limit: None,
        };
        Store::open_with(dir, opening)
    }

    pub fn open_with(dir: &Path, opening: Opening) -> Result<Store, StoreError> {
        let created = !exists(dir);
        if created && (!opening.create || opening.mode == Mode::ReadOnly) {
            return Err(StoreError::NoStore {
                path: dir.to_path_buf(),
            });
        }
        if opening.mode == Mode::ReadOnly {
            return Store::open_read_only(dir, "opened with --read-only".into());
        }
        if created {
            std::fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        }
        let file = match lock::Lock::open(dir) {
            Ok(file) => file,
            Err(e) if opening.mode == Mode::Auto && !created && is_not_writable(&e) => {
                return Store::open_read_only(dir, e.to_string());
            }
            Err(e) if is_not_writable(&e) => {
                return Err(StoreError::ReadOnly {
                    path: dir.to_path_buf(),
                    reason: e.to_string(),
                });
            }
            Err(e) => return Err(StoreError::io(&dir.join("lock"), e)),
        };
        let lock = lock::Lock::acquire(dir, file, opening.contended)?;
        let blobs = match opening.cache_limit {
            Some(limit) => Blobs::open(dir)?.bounded(limit),
            None => Blobs::open(dir)?,
        };
        let store = Store {
            dir: dir.to_path_buf(),
            blobs,
            journal: Mutex::new(Journal::open(dir)?),
            index: Index::open(&dir.join("index"))?,
            _lock: Some(lock),
            read_only: None,
            created,
        };
        store.catch_up()?;
        Ok(store)
    }

    /// A store this process reads only: no lock, no writes; the tag records come from the
    /// journal's complete lines into a throw-away index (interrupted pins are not listed).
    fn open_read_only(dir: &Path, reason: String) -> Result<Store, StoreError> {
        let store = Store {
            dir: dir.to_path_buf(),
            blobs: Blobs::read_only(dir, &reason),
            journal: Mutex::new(Journal::open_read_only(dir)?),
            index: Index::temporary(dir)?,
            _lock: None,
            read_only: Some(reason),
            created: false,
        };
        store.catch_up()?;
        Ok(store)
    }

    /// Open for `verify --repair`: an index sled cannot open is set aside (renamed to
    /// `index.broken-<unix time>`) and rebuilt from the journal.
    pub fn open_for_repair(dir: &Path, contended: Contended) -> Result<Store, StoreError> {
        let opening = |contended| Opening {
            mode: Mode::ReadWrite,
            create: false,
            contended,
            cache_limit: None,
        };
        match Store::open_with(dir, opening(contended)) {
            Err(StoreError::IndexOpen { path, reason }) => {
                let aside = dir.join(format!("index.broken-{}", records::now()));
                tracing::warn!(
                    "index {} does not open ({reason}); rebuilding it",
                    path.display()
                );
                std::fs::rename(&path, &aside).map_err(|e| StoreError::io(&aside, e))?;
                Store::open_with(dir, opening(Contended::Fail))
            }
            other => other,
        }
    }

    /// Why this process may not change the store, when it may not.
    pub fn read_only(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// True when this open made the directory a store.
    pub fn created(&self) -> bool {
        self.created
    }

    /// Ok when this process may change the store; else `StoreError::ReadOnly` saying why.
    pub fn writable(&self) -> Result<(), StoreError> {
        match &self.read_only {
            None => Ok(()),
            Some(reason) => Err(StoreError::ReadOnly {
                path: self.dir.clone(),
                reason: reason.clone(),
            }),
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
        for l in journal.read_from(applied)? {
            self.index.apply(&l.entry, l.end, &l.hash)?;
        }
        Ok(())
    }

    /// Rebuild the tag records from the journal alone.
    pub fn rebuild_index(&self) -> Result<usize, StoreError> {
        self.writable()?;
        let journal = self.journal.lock().expect("journal lock");
        self.index.clear_tags()?;
        let entries = journal.read_from(0)?;
        for l in &entries {
            self.index.apply(&l.entry, l.end, &l.hash)?;
        }
        Ok(entries.len())
    }

    pub fn tag(&self, key: &str) -> Result<Option<TagRecord>, StoreError> {
        self.index.tag(key)
    }

    /// The root digest a tag is pinned at.
    pub fn tag_digest(&self, key: &str) -> Result<Option<Digest>, StoreError> {
        self.index.tag_digest(key)
    }

    /// The pinned keys that start with `prefix` ("" for all), sorted.
    pub fn tag_keys(&self, prefix: &str) -> Result<Vec<String>, StoreError> {
        self.index.tag_keys(prefix)
    }

    pub fn tags(&self) -> Result<Vec<TagRecord>, StoreError> {
        self.index.tags()
    }

    /// Every tag record, in key order, one at a time.
    pub fn each_tag(&self, f: impl FnMut(TagRecord)) -> Result<(), StoreError> {
        self.index.each_tag(f)
    }

    /// Changes whenever a tag record does (it is the journal offset the index has applied;
    /// 0 while the index is rebuilt). Records read between two equal revisions are current.
    pub fn revision(&self) -> Result<u64, StoreError> {
        self.index.applied()
    }

    pub fn pending(&self, key: &str) -> Result<Option<Pending>, StoreError> {
        self.index.pending(key)
    }

    pub fn pendings(&self) -> Result<Vec<Pending>, StoreError> {
        self.index.pendings()
    }

    pub fn set_pending(&self, p: &Pending) -> Result<(), StoreError> {
        self.writable()?;
        self.index.set_pending(p)
    }

    pub fn clear_pending(&self, key: &str) -> Result<(), StoreError> {
        self.writable()?;
        self.index.clear_pending(key)
    }

    /// Store manifest bytes (verified against `digest`) with their media type.
    pub fn put_manifest(
        &self,
        digest: &Digest,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), StoreError> {
        self.writable()?;
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
        self.writable()?;
        let mut journal = self.journal.lock().expect("journal lock");
        if let Some(existing) = self.index.tag(&record.key)? {
            return Ok(existing);
        }
        let entry = Entry::Pin { record };
        let len = journal.append(&entry)?;
        self.index.apply(&entry, len, journal.last())?;
        let Entry::Pin { record } = entry else {
            unreachable!()
        };
        Ok(record)
    }

    /// Remove a tag record; the blobs stay until `gc`. `origin` is who asked (None for a
    /// cache following its store of record).
    pub fn evict(
        &self,
        key: &str,
        origin: Option<Origin>,
    ) -> Result<Option<TagRecord>, StoreError> {
        self.writable()?;
        let mut journal = self.journal.lock().expect("journal lock");
        let Some(existing) = self.index.tag(key)? else {
            self.index.clear_pending(key)?;
            return Ok(None);
        };
        let entry = Entry::Evict {
            key: key.to_string(),
            digest: existing.digest.clone(),
            at: records::now(),
            origin,
        };
        let len = journal.append(&entry)?;
        self.index.apply(&entry, len, journal.last())?;
        self.index.clear_pending(key)?;
        Ok(Some(existing))
    }

    /// Every pin and evict the journal holds, oldest first.
    pub fn history(&self) -> Result<Vec<Logged>, StoreError> {
        self.journal.lock().expect("journal lock").read_all()
    }

    /// The journal's lines after byte `offset` (a `revision` seen before), oldest first.
    pub fn history_since(&self, offset: u64) -> Result<Vec<Logged>, StoreError> {
        self.journal.lock().expect("journal lock").read_from(offset)
    }

    /// The first place the journal's hash chain is broken (see `journal.rs`), if it is; the
    /// last line is checked against the hash the index kept when it was applied.
    pub fn journal_break(&self) -> Result<Option<ChainBreak>, StoreError> {
        let journal = self.journal.lock().expect("journal lock");
        journal.check_chain(self.index.journal_head()?.as_ref())
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

    fn opening(mode: Mode, create: bool) -> Opening<'static> {
        Opening {
            mode,
            create,
            contended: Contended::Fail,
            cache_limit: None,
        }
    }

    #[test]
    fn a_directory_that_is_not_a_store_is_created_only_when_asked() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("s");
        let err = Store::open_with(&path, opening(Mode::Auto, false))
            .err()
            .unwrap();
        assert!(matches!(err, StoreError::NoStore { .. }), "{err}");
        assert!(!path.exists(), "nothing was created");
        let store = Store::open_with(&path, opening(Mode::ReadWrite, true)).unwrap();
        assert!(store.created());
        drop(store);
        let store = Store::open_with(&path, opening(Mode::Auto, false)).unwrap();
        assert!(!store.created() && store.read_only().is_none());
    }

    fn record_at(key: &str, bytes: &[u8]) -> TagRecord {
        let digest = crate::manifest::sha256(bytes);
        TagRecord {
            key: key.into(),
            digest: digest.clone(),
            media_type: crate::manifest::OCI_MANIFEST.into(),
            platforms: vec![],
            manifests: vec![],
            blobs: vec![],
            size: bytes.len() as u64,
            pinned_at: 1,
            origin: None,
        }
    }

    #[test]
    fn a_tags_root_digest_follows_an_evict_and_a_new_pin() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let key = "docker.io/library/x:1";
        let (one, two) = (record_at(key, b"1"), record_at(key, b"2"));
        assert_eq!(store.tag_digest(key).unwrap(), None);
        store.record_tag(one.clone()).unwrap();
        assert_eq!(store.tag_digest(key).unwrap(), Some(one.digest.clone()));
        assert_eq!(store.tag_digest(key).unwrap(), Some(one.digest.clone()));
        store.evict(key, None).unwrap();
        assert_eq!(store.tag_digest(key).unwrap(), None);
        store.record_tag(two.clone()).unwrap();
        assert_eq!(store.tag_digest(key).unwrap(), Some(two.digest.clone()));
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.tag_digest(key).unwrap(), Some(two.digest));
    }

    #[test]
    fn a_read_only_open_sees_the_journal_and_refuses_every_write() {
        let dir = tempfile::tempdir().unwrap();
        let bytes = b"{}";
        let digest = crate::manifest::sha256(bytes);
        let record = TagRecord {
            key: "docker.io/library/x:1".into(),
            digest: digest.clone(),
            media_type: crate::manifest::OCI_MANIFEST.into(),
            platforms: vec![],
            manifests: vec![ManifestInfo {
                digest: digest.clone(),
                media_type: crate::manifest::OCI_MANIFEST.into(),
                size: 2,
                platform: None,
            }],
            blobs: vec![],
            size: 2,
            pinned_at: 1,
            origin: None,
        };
        let rw = Store::open(dir.path()).unwrap();
        rw.put_manifest(&digest, crate::manifest::OCI_MANIFEST, bytes)
            .unwrap();
        rw.record_tag(record.clone()).unwrap();
        // A read-only open works while a writer holds the lock: it takes none.
        let ro = Store::open_with(dir.path(), opening(Mode::ReadOnly, false)).unwrap();
        assert_eq!(ro.tag(&record.key).unwrap(), Some(record.clone()));
        assert_eq!(ro.manifest(&digest).unwrap().unwrap().1, bytes);
        assert!(ro.evict(&record.key, None).unwrap_err().is_read_only());
        assert!(ro.record_tag(record.clone()).unwrap_err().is_read_only());
        assert!(ro.blobs().remove(&digest).unwrap_err().is_read_only());
        assert!(
            ro.blobs()
                .writer(&digest, None)
                .err()
                .unwrap()
                .is_read_only()
        );
        assert!(rw.tag(&record.key).unwrap().is_some(), "nothing changed");
    }

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
