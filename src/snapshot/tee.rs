//! Blobs being written, readable while they are written: a client that asks for a layer a
//! pin is still downloading is streamed the bytes already on disk and then the rest as they
//! arrive, from the same single upstream fetch.
//!
//! Owns: the table of blobs in flight (digest → `Tee`) and reading a temp file as it grows.
//! A reader never gets the last byte of a blob before the store has checked its size and
//! digest, so a client never receives a complete body that the store rejected: on a failure
//! the stream ends with an error (the connection is cut short, and the client retries). The
//! fsync that makes the blob durable is not waited for.
//! Must not touch: the store's files other than through the read handle it is given.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::watch;

use crate::reference::Digest;

/// Bytes read per chunk by a streaming reader that reads the file.
const CHUNK: u64 = 256 * 1024;
/// The most recent chunks are kept in memory, up to this many bytes, so that readers who keep
/// up with the download are served without reading the file back.
const RECENT_BYTES: u64 = 4 << 20;

/// Where a blob's write stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// This many bytes are in the temp file (not yet verified).
    Writing(u64),
    /// All bytes are written and match the digest; not yet durable or visible.
    Verified,
    /// Verified, durable and visible in the store.
    Committed,
    /// The transfer failed; the temp file is gone or going.
    Failed,
}

/// One blob being written, with a read handle on its temp file.
pub struct Tee {
    size: Option<u64>,
    file: Arc<File>,
    recent: Mutex<Recent>,
    stage: watch::Sender<Stage>,
}

/// The last chunks written, by offset, in order.
#[derive(Default)]
struct Recent {
    chunks: std::collections::VecDeque<(u64, Bytes)>,
    bytes: u64,
}

impl Recent {
    fn push(&mut self, offset: u64, chunk: Bytes) {
        self.bytes += chunk.len() as u64;
        self.chunks.push_back((offset, chunk));
        while self.bytes > RECENT_BYTES && self.chunks.len() > 1 {
            let (_, old) = self.chunks.pop_front().expect("not empty");
            self.bytes -= old.len() as u64;
        }
    }

    /// The offset of the oldest chunk kept.
    fn start(&self) -> Option<u64> {
        self.chunks.front().map(|(off, _)| *off)
    }

    /// The bytes from `pos` up to `limit` (or the end of the chunk holding `pos`).
    fn get(&self, pos: u64, limit: u64) -> Option<Bytes> {
        let i = self
            .chunks
            .partition_point(|(off, c)| off + c.len() as u64 <= pos);
        let (off, chunk) = self.chunks.get(i).filter(|(off, _)| *off <= pos)?;
        let end = (off + chunk.len() as u64).min(limit);
        Some(chunk.slice((pos - off) as usize..(end - off) as usize))
    }
}

impl Tee {
    /// The blob's size, when the manifest or the upstream said it.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// `chunk` is in the file at `offset`.
    pub(super) fn append(&self, offset: u64, chunk: Bytes) {
        let end = offset + chunk.len() as u64;
        self.recent.lock().expect("tee").push(offset, chunk);
        self.stage.send_replace(Stage::Writing(end));
    }

    pub(super) fn verified(&self) {
        self.stage.send_replace(Stage::Verified);
    }

    pub(super) fn commit(&self) {
        self.stage.send_replace(Stage::Committed);
    }

    fn fail_unless_committed(&self) {
        self.stage.send_if_modified(|s| {
            let open = matches!(s, Stage::Writing(_) | Stage::Verified);
            if open {
                *s = Stage::Failed;
            }
            open
        });
    }

    /// Wait until the write ends; true when the blob was committed.
    pub async fn finished(&self) -> bool {
        let mut rx = self.stage.subscribe();
        let stage = rx
            .wait_for(|s| matches!(s, Stage::Committed | Stage::Failed))
            .await
            .map(|s| *s);
        matches!(stage, Ok(Stage::Committed))
    }

    /// The whole blob (`total` bytes) as it is written; the last byte only once verified.
    pub fn stream(self: Arc<Self>, total: u64) -> impl Stream<Item = io::Result<Bytes>> {
        let rx = self.stage.subscribe();
        futures_util::stream::try_unfold((self, rx, 0u64), move |(tee, mut rx, pos)| async move {
            if pos >= total {
                return Ok(None);
            }
            let limit = loop {
                let limit = match *rx.borrow_and_update() {
                    Stage::Verified | Stage::Committed => total,
                    Stage::Writing(n) => n.min(total - 1),
                    Stage::Failed => return Err(io::Error::other("upstream transfer failed")),
                };
                if limit > pos {
                    break limit;
                }
                rx.changed().await.map_err(io::Error::other)?;
            };
            let (recent, start) = {
                let recent = tee.recent.lock().expect("tee");
                (recent.get(pos, limit), recent.start())
            };
            let bytes = match recent {
                Some(bytes) => bytes,
                None => {
                    // Behind the chunks in memory: the file, up to where they start.
                    let upto = start.filter(|s| *s > pos).unwrap_or(limit).min(limit);
                    tee.read_at(pos, (upto - pos).min(CHUNK)).await?
                }
            };
            let next = pos + bytes.len() as u64;
            Ok(Some((bytes, (tee, rx, next))))
        })
    }

    async fn read_at(&self, pos: u64, len: u64) -> io::Result<Bytes> {
        let file = self.file.clone();
        tokio::task::spawn_blocking(move || {
            let mut buf = vec![0u8; len as usize];
            let n = file.read_at(&mut buf, pos)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "blob shorter than written",
                ));
            }
            buf.truncate(n);
            Ok(Bytes::from(buf))
        })
        .await
        .map_err(io::Error::other)?
    }
}

/// The blobs in flight, and a counter that moves whenever one starts.
pub struct Tees {
    map: Mutex<HashMap<Digest, Arc<Tee>>>,
    opened: watch::Sender<u64>,
}

impl Default for Tees {
    fn default() -> Tees {
        Tees {
            map: Mutex::default(),
            opened: watch::channel(0).0,
        }
    }
}

impl Tees {
    /// Watch this before `get` to learn of a blob that starts after it.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.opened.subscribe()
    }

    pub fn get(&self, digest: &Digest) -> Option<Arc<Tee>> {
        self.map.lock().expect("tees").get(digest).cloned()
    }

    /// A blob starts being written to the temp file that `file` reads. The entry goes away,
    /// marked failed unless committed, when the guard is dropped.
    pub(super) fn open(&self, digest: &Digest, size: Option<u64>, file: File) -> TeeGuard<'_> {
        let tee = Arc::new(Tee {
            size,
            file: Arc::new(file),
            recent: Mutex::default(),
            stage: watch::channel(Stage::Writing(0)).0,
        });
        self.map
            .lock()
            .expect("tees")
            .insert(digest.clone(), tee.clone());
        self.opened.send_modify(|n| *n += 1);
        TeeGuard {
            tees: self,
            digest: digest.clone(),
            tee,
        }
    }
}

pub(super) struct TeeGuard<'a> {
    tees: &'a Tees,
    digest: Digest,
    tee: Arc<Tee>,
}

impl TeeGuard<'_> {
    pub fn tee(&self) -> Arc<Tee> {
        self.tee.clone()
    }
}

impl Drop for TeeGuard<'_> {
    fn drop(&mut self) {
        self.tee.fail_unless_committed();
        let mut map = self.tees.map.lock().expect("tees");
        if map
            .get(&self.digest)
            .is_some_and(|t| Arc::ptr_eq(t, &self.tee))
        {
            map.remove(&self.digest);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use std::io::Write;

    fn digest() -> Digest {
        Digest::from_sha256([7u8; 32])
    }

    fn setup() -> (tempfile::TempDir, File, Tees) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let writer = File::create(&path).unwrap();
        (dir, writer, Tees::default())
    }

    fn reader(dir: &tempfile::TempDir) -> File {
        File::open(dir.path().join("blob")).unwrap()
    }

    #[tokio::test]
    async fn a_reader_gets_bytes_as_written_and_the_last_only_once_verified() {
        let (dir, mut w, tees) = setup();
        let guard = tees.open(&digest(), Some(6), reader(&dir));
        let tee = tees.get(&digest()).unwrap();
        let mut stream = Box::pin(tee.clone().stream(6));
        w.write_all(b"abc").unwrap();
        tee.append(0, Bytes::from_static(b"abc"));
        assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"abc");
        w.write_all(b"def").unwrap();
        tee.append(3, Bytes::from_static(b"def"));
        assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"de");
        let last = tokio::time::timeout(std::time::Duration::from_millis(50), stream.next());
        assert!(last.await.is_err(), "the last byte waits for the verdict");
        tee.verified();
        assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"f");
        assert!(stream.next().await.is_none());
        tee.commit();
        drop(guard);
        assert!(tees.get(&digest()).is_none());
        assert!(tee.finished().await);
    }

    #[tokio::test]
    async fn a_failed_write_ends_the_stream_with_an_error() {
        let (dir, mut w, tees) = setup();
        let guard = tees.open(&digest(), Some(4), reader(&dir));
        let tee = guard.tee();
        let mut stream = Box::pin(tee.clone().stream(4));
        w.write_all(b"xyzw").unwrap();
        tee.append(0, Bytes::from_static(b"xyzw"));
        assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"xyz");
        drop(guard); // the writer gave up (wrong digest, dropped connection)
        assert!(stream.next().await.unwrap().is_err());
        assert!(!tee.finished().await);
    }

    #[tokio::test]
    async fn a_reader_behind_the_recent_chunks_reads_the_file() {
        let (dir, mut w, tees) = setup();
        let guard = tees.open(&digest(), Some(6), reader(&dir));
        let tee = guard.tee();
        w.write_all(b"abcdef").unwrap();
        // Only the tail is still in memory (as after more than RECENT_BYTES were written).
        tee.append(4, Bytes::from_static(b"EF"));
        tee.verified();
        let got: Vec<Bytes> = tee.clone().stream(6).map(|b| b.unwrap()).collect().await;
        assert_eq!(got, [&b"abcd"[..], &b"EF"[..]], "file, then memory");
    }

    #[test]
    fn recent_chunks_are_bounded_and_found_by_offset() {
        let mut recent = Recent::default();
        let chunk = Bytes::from(vec![1u8; 1 << 20]);
        for i in 0..6u64 {
            recent.push(i << 20, chunk.clone());
        }
        assert_eq!(recent.bytes, RECENT_BYTES);
        assert!(recent.get(0, 6 << 20).is_none(), "the oldest were dropped");
        assert_eq!(
            recent.get((2 << 20) + 5, 6 << 20).unwrap().len(),
            (1 << 20) - 5
        );
        assert_eq!(recent.get(5 << 20, (5 << 20) + 7).unwrap().len(), 7);
        assert!(recent.get(6 << 20, 7 << 20).is_none());
    }

    #[tokio::test]
    async fn subscribers_learn_of_new_blobs() {
        let (dir, _w, tees) = setup();
        let mut opened = tees.subscribe();
        assert!(tees.get(&digest()).is_none());
        let _guard = tees.open(&digest(), None, reader(&dir));
        opened.changed().await.unwrap();
        assert!(tees.get(&digest()).is_some());
    }
}
