//! The append-only journal of tag records: `journal.jsonl` in the store.
//!
//! Owns: that one file. Every pin and evict is appended as one JSON line and fsync'd before
//! the index (sled) is told, so the index can always be rebuilt from the journal. A line
//! torn by a crash (no trailing newline) is cut off when the journal is opened.
//!
//! Tamper evidence: every line written carries `prev`, the sha256 of the line before it (of
//! nothing, for the first line), so a line changed, removed or inserted by hand breaks the
//! chain at the line after it; [`Journal::check_chain`] finds the first break. Lines written
//! before the chain existed have no `prev`; the chain starts at the first line that has one.
//! Must not touch: sled or blob files.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::StoreError;
use super::records::{Origin, TagRecord};
use crate::manifest::sha256;
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
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
}

/// One line of the journal as written: the entry and the hash of the line before it.
#[derive(Serialize, Deserialize)]
struct Line {
    #[serde(flatten)]
    entry: Entry,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    prev: Option<Digest>,
}

/// An entry read back, with where its line ends and what it says about the chain.
#[derive(Debug, Clone)]
pub struct Logged {
    pub entry: Entry,
    /// Byte offset just past the line.
    pub end: u64,
    /// 1-based line number.
    pub number: usize,
    /// The sha256 of the line (without its newline).
    pub hash: Digest,
    /// The hash of the previous line it claims, if it carries one.
    pub prev: Option<Digest>,
}

/// Where the hash chain is broken: the line changed (or removed, or added) after it was
/// written, as far as the hashes tell: the line before the first one whose recorded `prev`
/// does not match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainBreak {
    /// 1-based number of the first line that no longer matches what was written.
    pub line: usize,
    pub reason: String,
}

pub struct Journal {
    path: PathBuf,
    file: File,
    len: u64,
    /// The hash of the last complete line (of nothing, when there is none).
    last: Digest,
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
        let (len, last) = complete_length(&mut file).map_err(io)?;
        if len != file.metadata().map_err(io)?.len() {
            file.set_len(len).map_err(io)?;
            file.sync_all().map_err(io)?;
        }
        Ok(Journal {
            path,
            file,
            len,
            last,
        })
    }

    /// Read the journal of a store this process may not write: complete lines only, a torn
    /// last line is left as it is (the process that owns the store cuts it).
    pub fn open_read_only(store: &Path) -> Result<Journal, StoreError> {
        let path = store.join("journal.jsonl");
        let io = |e| StoreError::io(&path, e);
        let mut file = File::open(&path).map_err(io)?;
        let (len, last) = complete_length(&mut file).map_err(io)?;
        Ok(Journal {
            path,
            file,
            len,
            last,
        })
    }

    /// Bytes of complete lines in the journal.
    pub fn size(&self) -> u64 {
        self.len
    }

    /// The hash of the last complete line (of nothing, when there is none).
    pub fn last(&self) -> &Digest {
        &self.last
    }

    /// Append one entry and fsync it; returns the journal length after it. (A journal opened
    /// read-only is never appended to: the store refuses writes before they get here.)
    pub fn append(&mut self, entry: &Entry) -> Result<u64, StoreError> {
        let line = Line {
            entry: entry.clone(),
            prev: Some(self.last.clone()),
        };
        let mut bytes = serde_json::to_vec(&line).expect("journal entries serialise");
        let hash = sha256(&bytes);
        bytes.push(b'\n');
        let io = |e| StoreError::io(&self.path, e);
        self.file.write_all(&bytes).map_err(io)?;
        self.file.sync_data().map_err(io)?;
        self.len += bytes.len() as u64;
        self.last = hash;
        Ok(self.len)
    }

    /// Every entry, with its line number, hash and recorded `prev`.
    pub fn read_all(&self) -> Result<Vec<Logged>, StoreError> {
        self.read_from(0)
    }

    /// Entries from byte offset `from` to the end, in order, each with the offset just past
    /// its line. (Line numbers count from `from`.)
    pub fn read_from(&self, from: u64) -> Result<Vec<Logged>, StoreError> {
        let io = |e| StoreError::io(&self.path, e);
        let mut file = File::open(&self.path).map_err(io)?;
        file.seek(SeekFrom::Start(from.min(self.len))).map_err(io)?;
        let (mut entries, mut offset) = (Vec::new(), from);
        let reader = BufReader::new(Read::take(file, self.len.saturating_sub(from)));
        for (i, line) in reader.split(b'\n').enumerate() {
            let line = line.map_err(io)?;
            let parsed: Line = serde_json::from_slice(&line).map_err(|e| StoreError::Journal {
                path: self.path.clone(),
                line: i + 1,
                reason: format!("offset {offset}: {e}"),
            })?;
            offset += line.len() as u64 + 1;
            entries.push(Logged {
                entry: parsed.entry,
                end: offset,
                number: i + 1,
                hash: sha256(&line),
                prev: parsed.prev,
            });
        }
        Ok(entries)
    }

    /// The first place the hash chain is broken, if it is; a line that is not an entry at
    /// all breaks it too, and so does a last line whose hash is not `head` (the hash kept
    /// when it was written, when one was).
    pub fn check_chain(&self, head: Option<&Digest>) -> Result<Option<ChainBreak>, StoreError> {
        match self.read_all() {
            Ok(lines) => Ok(first_break(&lines).or_else(|| changed_last(&lines, head?))),
            Err(StoreError::Journal { line, reason, .. }) => Ok(Some(ChainBreak {
                line,
                reason: format!("it is not a journal entry ({reason})"),
            })),
            Err(e) => Err(e),
        }
    }
}

/// The first line whose `prev` is not the hash of the line before it; lines without `prev`
/// are older than the chain and allowed only before its first line.
pub fn first_break(lines: &[Logged]) -> Option<ChainBreak> {
    let mut before = sha256(b"");
    let mut chained = false;
    for l in lines {
        match &l.prev {
            Some(prev) if *prev != before => {
                return Some(match l.number {
                    1 => ChainBreak {
                        line: 1,
                        reason: "it is not the first line that was written".to_string(),
                    },
                    n => ChainBreak {
                        line: n - 1,
                        reason: format!(
                            "it was changed, or a line was removed or added after it \
                             (line {n} records another hash of the line before it)"
                        ),
                    },
                });
            }
            Some(_) => chained = true,
            None if chained => {
                return Some(ChainBreak {
                    line: l.number,
                    reason: "it carries no hash of the line before it".to_string(),
                });
            }
            None => {}
        }
        before = l.hash.clone();
    }
    None
}

/// The last line, when its hash is not `head`.
fn changed_last(lines: &[Logged], head: &Digest) -> Option<ChainBreak> {
    let last = lines.last().filter(|l| l.hash != *head)?;
    Some(ChainBreak {
        line: last.number,
        reason: "it is not the line that was written last".to_string(),
    })
}

/// The length of the journal up to and including its last newline, and the hash of its
/// last complete line (of nothing, when there is none).
fn complete_length(file: &mut File) -> std::io::Result<(u64, Digest)> {
    file.seek(SeekFrom::Start(0))?;
    let mut reader = BufReader::new(&*file);
    let (mut len, mut buf, mut last) = (0u64, Vec::new(), Vec::new());
    loop {
        buf.clear();
        let n = reader.read_until(b'\n', &mut buf)?;
        if n == 0 || buf.last() != Some(&b'\n') {
            // Only the last complete line's hash is wanted: hashed once, here.
            return Ok((len, sha256(last.strip_suffix(b"\n").unwrap_or(&last))));
        }
        std::mem::swap(&mut last, &mut buf);
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
            origin: None,
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
        assert!(matches!(&entries[1].entry, Entry::Evict { key, .. } if key == "b"));
        assert_eq!(entries[1].end, after_one);
        assert_eq!(
            j.last(),
            &entries[1].hash,
            "the last line's hash, found on open"
        );
    }

    #[test]
    fn the_chain_names_the_line_before_the_first_mismatch() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        for key in ["a", "b", "c"] {
            j.append(&evict(key)).unwrap();
        }
        let lines = j.read_all().unwrap();
        assert_eq!(first_break(&lines), None);
        assert_eq!(lines[0].prev, Some(sha256(b"")));
        let mut changed = lines.clone();
        changed[1].hash = sha256(b"edited");
        assert_eq!(first_break(&changed).unwrap().line, 2);
        let mut first = lines.clone();
        first[0].prev = Some(sha256(b"x"));
        assert_eq!(first_break(&first).unwrap().line, 1);
        let mut unchained = lines.clone();
        unchained[2].prev = None;
        assert_eq!(first_break(&unchained).unwrap().line, 3);
        let mut legacy = lines;
        legacy[0].prev = None; // written before the chain: line 2 starts it
        legacy[1].prev = Some(legacy[0].hash.clone());
        assert_eq!(first_break(&legacy), None);
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
