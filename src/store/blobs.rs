//! Content-addressed blob files: `blobs/sha256/<2 hex>/<64 hex>`.
//!
//! Owns: every file under `blobs/` and `tmp/`. A blob file appears only by rename from a temp
//! file whose sha256 and size were checked while it was written and which was fsync'd first;
//! the directory is fsync'd after the rename. A mismatch deletes the temp file. A blob file
//! is never modified or truncated after the rename (readers map it), only unlinked.
//! Must not touch: the index or the journal (see `index.rs`, `journal.rs`).

use std::fs::{self, File};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use sha2::{Digest as _, Sha256};

use super::StoreError;
use super::hot::Hot;
use super::lru::{Hold, Lru};
use crate::reference::Digest;

static TEMP_SEQ: AtomicU64 = AtomicU64::new(0);

/// Blobs this small are read into memory, not mapped (see `Blobs::map`), and kept there.
const READ_UP_TO: u64 = 64 * 1024;

/// How many bytes of small blobs stay in memory (see `hot.rs`): thousands of manifests.
const HOT_BYTES: usize = 16 << 20;

#[derive(Clone)]
pub struct Blobs {
    root: PathBuf,
    tmp: PathBuf,
    /// Why this process may not write here, when it may not.
    read_only: Option<String>,
    /// A cache's size bound (see `lru.rs`); None for a store, which never drops blobs.
    lru: Option<Arc<Lru>>,
    /// Small blobs read before, in memory (shared by clones).
    hot: Arc<Hot>,
}

impl Blobs {
    pub(super) fn open(store: &Path) -> Result<Blobs, StoreError> {
        let blobs = Blobs {
            root: store.join("blobs").join("sha256"),
            tmp: store.join("tmp"),
            read_only: None,
            lru: None,
            hot: Arc::new(Hot::new(HOT_BYTES)),
        };
        fs::create_dir_all(&blobs.root).map_err(|e| StoreError::io(&blobs.root, e))?;
        // Nothing in tmp/ is visible to anyone: a crash may leave partial downloads there.
        let _ = fs::remove_dir_all(&blobs.tmp);
        fs::create_dir_all(&blobs.tmp).map_err(|e| StoreError::io(&blobs.tmp, e))?;
        Ok(blobs)
    }

    /// Read the blobs of a store that another process holds (the server), or that this one
    /// may not write (`reason` says why): files are only opened, never written, and temp
    /// files are left alone.
    pub fn read_only(store: &Path, reason: &str) -> Blobs {
        Blobs {
            root: store.join("blobs").join("sha256"),
            tmp: store.join("tmp"),
            read_only: Some(reason.to_string()),
            lru: None,
            hot: Arc::new(Hot::new(HOT_BYTES)),
        }
    }

    /// Keep these blobs (a cache's) under `limit` bytes, the least recently used leaving
    /// first; what is over the limit already goes now.
    pub(super) fn bounded(mut self, limit: u64) -> Blobs {
        let lru = Arc::new(Lru::scan(&self.root, limit));
        for d in lru.excess() {
            self.push_out(&d);
        }
        self.lru = Some(lru);
        self
    }

    /// A blob was committed: in a bounded cache, the coldest blobs leave to make room.
    fn make_room(&self, digest: &Digest, size: u64) {
        if let Some(lru) = &self.lru {
            for d in lru.added(digest, size) {
                self.push_out(&d);
            }
        }
    }

    /// A blob the cache's bound pushed out (the LRU has forgotten it already): its memory
    /// copy leaves with its file, else `map` would answer what `contains` denies.
    fn push_out(&self, digest: &Digest) {
        self.hot.forget(digest);
        let _ = fs::remove_file(self.path(digest));
    }

    /// Keep `digests` while the hold lives (for an export of a bounded cache); None when
    /// these blobs are not a bounded cache's.
    pub fn hold(&self, digests: impl IntoIterator<Item = Digest>) -> Option<Hold> {
        self.lru.as_ref().map(|lru| lru.hold(digests))
    }

    fn writable(&self) -> Result<(), StoreError> {
        match &self.read_only {
            None => Ok(()),
            Some(reason) => Err(StoreError::ReadOnly {
                path: self.root.clone(),
                reason: reason.clone(),
            }),
        }
    }

    pub fn path(&self, digest: &Digest) -> PathBuf {
        self.root.join(&digest.hex()[..2]).join(digest.hex())
    }

    /// The size of a stored blob, or None when it is not stored.
    pub fn size(&self, digest: &Digest) -> Option<u64> {
        fs::metadata(self.path(digest)).ok().map(|m| m.len())
    }

    /// Whether a blob is stored: a small blob `map` holds in memory is (its memory copy
    /// leaves with its file), else its file is looked for.
    pub fn contains(&self, digest: &Digest) -> bool {
        self.hot.contains(digest) || self.size(digest).is_some()
    }

    /// A stored blob's bytes, copied (see `map`).
    pub fn read(&self, digest: &Digest) -> Result<Vec<u8>, StoreError> {
        self.map(digest).map(|bytes| bytes.to_vec())
    }

    /// A small blob read before, from memory.
    fn hot(&self, digest: &Digest) -> Option<bytes::Bytes> {
        let bytes = self.hot.get(digest)?;
        if let Some(lru) = &self.lru {
            lru.touch(digest);
        }
        Some(bytes)
    }

    pub fn open_file(&self, digest: &Digest) -> Result<File, StoreError> {
        if let Some(lru) = &self.lru {
            lru.touch(digest);
        }
        let path = self.path(digest);
        File::open(&path).map_err(|e| match e.kind() {
            io::ErrorKind::NotFound => StoreError::BlobMissing(digest.clone()),
            _ => StoreError::io(&path, e),
        })
    }

    /// A stored blob's bytes, memory-mapped: serving them costs no copy into user space, and
    /// a writer can send them from the file (see `mapped.rs`). Blobs up to `READ_UP_TO` are
    /// read instead: for a config's few hundred bytes, mmap, munmap, a cork and a sendfile
    /// of their own cost more than the copy (bench/scale.sh, 1,000 connections on one core).
    pub fn map(&self, digest: &Digest) -> Result<bytes::Bytes, StoreError> {
        if let Some(bytes) = self.hot(digest) {
            return Ok(bytes);
        }
        let mut file = self.open_file(digest)?;
        let io_err = |e| StoreError::io(&self.path(digest), e);
        let len = file.metadata().map_err(io_err)?.len();
        if len <= READ_UP_TO {
            let mut bytes = Vec::with_capacity(len as usize);
            file.read_to_end(&mut bytes).map_err(io_err)?;
            let bytes = bytes::Bytes::from(bytes);
            self.hot.put(digest, bytes.clone());
            return Ok(bytes);
        }
        // Blob files are written whole under a temp name and renamed in; after that they are
        // only ever unlinked (gc, verify --repair), never modified or truncated in place.
        super::mapped::map(file).map_err(io_err)
    }

    /// Store bytes that are already in memory (manifests), verified like any other blob.
    pub fn put(&self, digest: &Digest, bytes: &[u8]) -> Result<(), StoreError> {
        if self.contains(digest) {
            return Ok(());
        }
        let mut w = self.writer(digest, Some(bytes.len() as u64))?;
        w.write(bytes)?;
        w.commit()
    }

    /// Start writing a blob; nothing is visible until `commit` succeeds.
    pub fn writer(&self, digest: &Digest, size: Option<u64>) -> Result<BlobWriter, StoreError> {
        self.writable()?;
        let seq = TEMP_SEQ.fetch_add(1, Ordering::Relaxed);
        let tmp = self
            .tmp
            .join(format!("{}.{}.{seq}", digest.hex(), std::process::id()));
        let file = File::create(&tmp).map_err(|e| StoreError::io(&tmp, e))?;
        if let Some(len) = size.filter(|n| *n > 0) {
            reserve(&file, len).map_err(|e| StoreError::io(&tmp, e))?;
        }
        Ok(BlobWriter {
            digest: digest.clone(),
            expected: size,
            written: 0,
            hasher: Sha256::new(),
            verified: false,
            file: Some(file),
            tmp,
            dest: self.path(digest),
            cache: self.lru.is_some().then(|| self.clone()),
        })
    }

    pub fn remove(&self, digest: &Digest) -> Result<(), StoreError> {
        self.writable()?;
        if let Some(lru) = &self.lru {
            lru.removed(digest);
        }
        self.hot.forget(digest);
        let path = self.path(digest);
        match fs::remove_file(&path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(StoreError::io(&path, e)),
            _ => Ok(()),
        }
    }

    /// Every stored blob's digest (files with other names are ignored).
    pub fn list(&self) -> Result<Vec<Digest>, StoreError> {
        let mut out = Vec::new();
        for shard in fs::read_dir(&self.root).map_err(|e| StoreError::io(&self.root, e))? {
            let shard = shard.map_err(|e| StoreError::io(&self.root, e))?.path();
            let entries = fs::read_dir(&shard).map_err(|e| StoreError::io(&shard, e))?;
            for entry in entries.flatten() {
                if let Some(d) = entry
                    .file_name()
                    .to_str()
                    .and_then(|n| Digest::from_hex(n).ok())
                {
                    out.push(d);
                }
            }
        }
        out.sort();
        Ok(out)
    }

    /// Re-hash a stored blob; Ok(false) when its content does not match its name.
    pub fn check(&self, digest: &Digest) -> Result<bool, StoreError> {
        let mut file = self.open_file(digest)?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 1 << 20];
        loop {
            let n = file
                .read(&mut buf)
                .map_err(|e| StoreError::io(&self.path(digest), e))?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        Ok(Digest::from_sha256(hasher.finalize().into()) == *digest)
    }
}

/// A blob being written: hashes as it goes; `commit` verifies, fsyncs and renames.
/// Dropping it without a commit removes the temp file.
pub struct BlobWriter {
    digest: Digest,
    expected: Option<u64>,
    written: u64,
    hasher: Sha256,
    verified: bool,
    file: Option<File>,
    tmp: PathBuf,
    dest: PathBuf,
    /// A bounded cache's blobs: committing may push the coldest out.
    cache: Option<Blobs>,
}

impl BlobWriter {
    pub fn write(&mut self, chunk: &[u8]) -> Result<(), StoreError> {
        assert!(!self.verified, "writer written after verify");
        self.written += chunk.len() as u64;
        if let Some(expected) = self.expected.filter(|e| self.written > *e) {
            return Err(StoreError::SizeMismatch {
                digest: self.digest.clone(),
                expected,
                got: self.written,
            });
        }
        self.hasher.update(chunk);
        let file = self.file.as_mut().expect("writer used after commit");
        file.write_all(chunk)
            .map_err(|e| StoreError::io(&self.tmp, e))
    }

    pub fn written(&self) -> u64 {
        self.written
    }

    /// A read-only handle on the bytes written so far (they are not verified until
    /// `commit`); it stays valid after the rename, on the committed blob.
    pub fn reader(&self) -> Result<File, StoreError> {
        File::open(&self.tmp).map_err(|e| StoreError::io(&self.tmp, e))
    }

    /// Check size and digest against what was written (once; `commit` does it if not done).
    pub fn verify(&mut self) -> Result<(), StoreError> {
        if self.verified {
            return Ok(());
        }
        if let Some(expected) = self.expected.filter(|e| self.written != *e) {
            return Err(StoreError::SizeMismatch {
                digest: self.digest.clone(),
                expected,
                got: self.written,
            });
        }
        let got = Digest::from_sha256(std::mem::take(&mut self.hasher).finalize().into());
        if got != self.digest {
            return Err(StoreError::DigestMismatch {
                expected: self.digest.clone(),
                got,
            });
        }
        self.verified = true;
        Ok(())
    }

    /// Verify size and digest, fsync, and make the blob visible under its digest.
    pub fn commit(mut self) -> Result<(), StoreError> {
        self.verify()?;
        let file = self.file.take().expect("writer committed twice");
        file.sync_all().map_err(|e| StoreError::io(&self.tmp, e))?;
        drop(file);
        let dir = self.dest.parent().expect("blob path has a parent");
        fs::create_dir_all(dir).map_err(|e| StoreError::io(dir, e))?;
        fs::rename(&self.tmp, &self.dest).map_err(|e| StoreError::io(&self.dest, e))?;
        sync_dir(dir)?;
        if let Some(cache) = &self.cache {
            cache.make_room(&self.digest, self.written);
        }
        Ok(())
    }
}

impl Drop for BlobWriter {
    fn drop(&mut self) {
        if self.file.is_some() || self.tmp.exists() {
            let _ = fs::remove_file(&self.tmp);
        }
    }
}

/// Reserve a blob's blocks before it is written (the size stays 0 until it is): a blob that
/// does not fit fails before the download instead of at the end, and the writes that follow
/// skip the filesystem's block allocation (~5% of a cold pull's server CPU). Filesystems
/// that cannot preallocate are written as they are.
fn reserve(file: &File, len: u64) -> io::Result<()> {
    use rustix::fs::{FallocateFlags, fallocate};
    match fallocate(file, FallocateFlags::KEEP_SIZE, 0, len) {
        Err(rustix::io::Errno::NOSPC) => Err(io::Error::from(rustix::io::Errno::NOSPC)),
        _ => Ok(()),
    }
}

/// fsync a directory so that a rename in it survives power loss.
pub(super) fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| StoreError::io(dir, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn small_blobs_are_read_and_large_ones_mapped() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        for (len, mapped) in [(794, false), (READ_UP_TO as usize + 1, true)] {
            let content = vec![3u8; len];
            let digest = Digest::from_sha256(Sha256::digest(&content).into());
            blobs.put(&digest, &content).unwrap();
            let bytes = blobs.map(&digest).unwrap();
            assert_eq!(bytes, content);
            let found = super::super::mapped::file_range(&bytes).is_some();
            assert_eq!(found, mapped, "{len} bytes mapped: {found}");
        }
    }

    #[test]
    fn a_blob_a_bounded_cache_pushes_out_leaves_memory_with_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap().bounded(1000);
        let blob = |n: usize, byte: u8| {
            let content = vec![byte; n];
            (
                Digest::from_sha256(Sha256::digest(&content).into()),
                content,
            )
        };
        let (cold, cold_bytes) = blob(300, 1);
        let (new, new_bytes) = blob(900, 2);
        blobs.put(&cold, &cold_bytes).unwrap();
        assert_eq!(blobs.read(&cold).unwrap(), cold_bytes, "now in memory too");
        blobs.put(&new, &new_bytes).unwrap();
        assert!(!blobs.contains(&cold), "pushed out by the newer blob");
        assert!(matches!(blobs.map(&cold), Err(StoreError::BlobMissing(_))));
        assert_eq!(blobs.read(&new).unwrap(), new_bytes);
    }

    #[test]
    fn a_small_blob_read_before_is_served_from_memory_until_removed() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let content = b"{\"schemaVersion\":2}".to_vec();
        let digest = Digest::from_sha256(Sha256::digest(&content).into());
        blobs.put(&digest, &content).unwrap();
        assert_eq!(blobs.read(&digest).unwrap(), content);
        // The file is gone behind the store's back: the bytes read before still answer
        // (they were verified, and a blob never changes), through a clone too.
        fs::remove_file(blobs.path(&digest)).unwrap();
        assert_eq!(blobs.clone().map(&digest).unwrap(), content);
        assert_eq!(blobs.read(&digest).unwrap(), content);
        blobs.put(&digest, &content).unwrap();
        blobs.remove(&digest).unwrap();
        assert!(matches!(
            blobs.read(&digest),
            Err(StoreError::BlobMissing(_))
        ));
        assert!(matches!(
            blobs.map(&digest),
            Err(StoreError::BlobMissing(_))
        ));
    }

    #[test]
    fn a_writer_of_known_size_reserves_its_blocks_and_commits_the_exact_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let blobs = Blobs::open(dir.path()).unwrap();
        let content = vec![7u8; 3 << 20];
        let digest = Digest::from_sha256(Sha256::digest(&content).into());
        let mut w = blobs.writer(&digest, Some(content.len() as u64)).unwrap();
        let tmp = fs::metadata(&w.tmp).unwrap();
        assert_eq!(tmp.len(), 0, "the size grows only as bytes are written");
        assert!(
            tmp.blocks() * 512 >= content.len() as u64,
            "blocks reserved up front"
        );
        w.write(&content).unwrap();
        w.commit().unwrap();
        assert_eq!(blobs.read(&digest).unwrap(), content);
    }
}
