//! The append-only journal of tag records: `journal.jsonl` in the store.
//!
//! Owns: that one file. Every pin and evict is appended as one JSON line and fsync'd before
//! the index (sled) is told, so the index can always be rebuilt from the journal. A line
//! torn by a crash (no trailing newline) is cut off when the journal is opened.
//! Must not touch: sled or blob files.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::records::TagRecord;
use crate::reference::Digest;

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Entry {
    Pin {
        record: TagRecord,
    },
    Evict {
        key: String,
        digest: Digest,
        at: u64,
    },
}

pub struct Journal {
    path: PathBuf,
    file: File,
    len: u64,
}

impl Journal {
    pub fn open(store: &Path) -> Result<Journal, StoreError> {
        let path = store.join("journal.jsonl");
        let io = |e| StoreError::io(&path, e);
        let mut file = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&path)
            .map_err(io)?;
        let len = complete_length(&mut file).map_err(io)?;
        if len != file.metadata().map_err(io)?.len() {
            file.set_len(len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok(Journal { path, file, len })
    }

    /// Read the journal of a store this process may not write: complete lines only, a torn
    /// last line is left as it is (the process that owns the store cuts it).
    pub fn open_read_only(store: &Path) -> Result<Journal, StoreError> {
        let path = store.join("journal.jsonl");
        let io = |e| StoreError::io(&path, e);
        let mut file = File::open(&path).map_err(io)?;
        let len = complete_length(&mut file).map_err(io)?;
        Ok(Journal { path, file, len })
    }

    /// Bytes of complete lines in the journal.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// Append one entry and fsync it; returns the journal length after it. (A journal opened
    /// read-only is never appended to: the store refuses writes before they get here.)
    pub fn append(&mut self, entry: &Entry) -> Result<u64, StoreError> {
        let mut line = serde_json::to_vec(entry).expect("journal entries serialise");
        line.push(b'\n');
        let io = |e| StoreError::io(&self.path, e);
        self.file.write_all(&line).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.len += line.len() as u64;
        Ok(self.len)
    }

    /// Entries from byte offset `from` to the end, in order, each with the offset just
    /// past its line.
    pub fn read_from(&self, from: u64) -> Result<Vec<(Entry, u64)>, StoreError> {
        let io = |e| StoreError::io(&self.path, e);
        let mut file = File::open(&self.path).map_err(io)?;
        file.seek(SeekFrom::Start(from.min(self.len))).map_err(io)?;
        let (mut entries, mut offset) = (Vec::new(), from);
        let reader = BufReader::new(Read::take(file, self.len.saturating_sub(from)));
        for line in reader.split(b'\n') {
            let line = line.map_err(io)?;
            let entry = serde_json::from_slice(&line).map_err(|e| StoreError::Journal {
                path: self.path.clone(),
                reason: format!("offset {offset}: {e}"),
            })?;
            offset += line.len() as u64 + 1;
            entries.push((entry, offset));
        }
        Ok(entries)
    }
}

/// The length of the journal up to and including its last newline.
fn complete_length(file: &mut File) -> std::io::Result<u64> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&*file);
    let (mut len, mut buf) = (0u64, Vec::new());
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            return Ok(len);
        }
        len += n as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn evict(key: &str) -> Entry {
        Entry::Evict {
            key: key.into(),
            digest: crate::manifest::sha256(key.as_bytes()),
            at: 1,
        }
    }

    #[test]
    fn appends_survive_reopen_and_torn_lines_are_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        j.append(&evict("a")).unwrap();
        let after_one = j.append(&evict("b")).unwrap();
        drop(j);
        let path = dir.path().join("journal.jsonl");
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"op\":\"evi").unwrap();
        drop(f);
        let j = Journal::open(dir.path()).unwrap();
        assert_eq!(j.size(), after_one);
        assert_eq!(std::fs::metadata(&path).unwrap().len(), after_one);
        let entries = j.read_from(0).unwrap();
        assert_eq!(entries.len(), 2);
        assert!(matches!(&entries[1].0, Entry::Evict { key, .. } if key == "b"));
        assert_eq!(entries[1].1, after_one);
    }

    #[test]
    fn a_garbled_line_is_reported_not_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("journal.jsonl"), b"not json\n").unwrap();
        let j = Journal::open(dir.path()).unwrap();
        let err = j.read_from(0).unwrap_err().to_string();
        assert!(err.contains("journal.jsonl"), "{err}");
    }
}
