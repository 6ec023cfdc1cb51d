//! Blobs being written, readable while they are written: a client that asks for a layer a
//! pin is still downloading is streamed the bytes already on disk and then the rest as they
//! arrive, from the same single upstream fetch.
//!
//! Owns: the table of blobs in flight (digest → `Tee`) and reading a temp file as it grows.
//! Readers are handed slices of a mapping of the temp file, which the server sends from the
//! file with sendfile (`registry/sendfile.rs`): the bytes are never copied through memory
//! again, and the writer keeps no chunks for them.
//! A reader never gets the last byte of a blob before the store has checked its size and
//! digest, so a client never receives a complete body that the store rejected: on a failure
//! the stream ends with an error (the connection is cut short, and the client retries). The
//! fsync that makes the blob durable is not waited for.
//! It also counts the clients still streaming a blob being written, so that work which
//! would compete with them for the machine (the upload of a pulled-through blob to the
//! bucket) can wait until they are done.
//! Must not touch: the store's files other than through the read handle it is given.

use std::collections::HashMap;
use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::Stream;
use tokio::sync::watch;

use crate::reference::Digest;
use crate::store::mapped;

/// Bytes read per chunk by a streaming reader when the temp file could not be mapped.
const CHUNK: u64 = 256 * 1024;

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
    /// The temp file mapped at its final size, when that is known (and not 0).
    map: Option<Bytes>,
    stage: watch::Sender<Stage>,
    readers: Readers,
}

impl Tee {
    /// The blob's size, when the manifest or the upstream said it.
    pub fn size(&self) -> Option<u64> {
        self.size
    }

    /// The first `end` bytes are in the file.
    pub(super) fn written(&self, end: u64) {
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
        let reading = self.readers.start();
        let state = (self, rx, 0u64, reading);
        futures_util::stream::try_unfold(state, move |(tee, mut rx, pos, reading)| async move {
            if pos >= total {
                return Ok(None);
            }
            let limit = loop {
                let stage = *rx.borrow_and_update();
                let limit = match stage {
                    Stage::Verified | Stage::Committed => total,
                    Stage::Writing(n) => n.min(total - 1),
                    Stage::Failed => {
                        // Pending once first: hyper flushes what it holds (the status line,
                        // bytes already handed over) only when the body is pending, and an
                        // error would otherwise drop them and leave the client with nothing.
                        tokio::task::yield_now().await;
                        return Err(io::Error::other("upstream transfer failed"));
                    }
                };
                if limit > pos {
                    break limit;
                }
                rx.changed().await.map_err(io::Error::other)?;
            };
            let bytes = match tee.map.as_ref().filter(|m| m.len() as u64 >= limit) {
                Some(map) => map.slice(pos as usize..limit as usize),
                None => tee.read_at(pos, (limit - pos).min(CHUNK)).await?,
            };
            let next = pos + bytes.len() as u64;
            Ok(Some((bytes, (tee, rx, next, reading))))
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

/// How many streams of blobs being written are open, over all blobs, and when the last one
/// ended.
#[derive(Clone, Default)]
struct Readers(Arc<watch::Sender<Streams>>);

#[derive(Clone, Copy, Default)]
struct Streams {
    open: usize,
    last_ended: Option<Instant>,
}

impl Readers {
    fn start(&self) -> Reading {
        self.0.send_modify(|s| s.open += 1);
        Reading(self.clone())
    }
}

/// One open stream; counted until it is dropped (ended, or its client went away).
struct Reading(Readers);

impl Drop for Reading {
    fn drop(&mut self) {
        self.0.0.send_modify(|s| {
            s.open -= 1;
            s.last_ended = Some(Instant::now());
        });
    }
}

/// The blobs in flight, and a counter that moves whenever one starts.
pub struct Tees {
    map: Mutex<HashMap<Digest, Arc<Tee>>>,
    opened: watch::Sender<u64>,
    readers: Readers,
}

impl Default for Tees {
    fn default() -> Tees {
        Tees {
            map: Mutex::default(),
            opened: watch::channel(0).0,
            readers: Readers::default(),
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

    /// Wait until no client has streamed a blob being written for `settle` (a client that
    /// has just read a blob is still busy with it for a moment, and often asks for another),
    /// or until `at_most` has passed.
    pub async fn quiet(&self, settle: Duration, at_most: Duration) {
        let mut rx = self.readers.0.subscribe();
        let settled = async {
            loop {
                let Ok(streams) = rx.wait_for(|s| s.open == 0).await.map(|s| *s) else {
                    return;
                };
                let idle = streams.last_ended.map_or(settle, |t| t.elapsed());
                match settle.checked_sub(idle).filter(|left| !left.is_zero()) {
                    None => return,
                    Some(left) => tokio::time::sleep(left).await,
                }
            }
        };
        let _ = tokio::time::timeout(at_most, settled).await;
    }

    /// A blob starts being written to the temp file that `file` reads. The entry goes away,
    /// marked failed unless committed, when the guard is dropped.
    pub(super) fn open(&self, digest: &Digest, size: Option<u64>, file: File) -> TeeGuard<'_> {
        let file = Arc::new(file);
        let map = size
            .filter(|n| *n > 0)
            .and_then(|n| mapped::map_growing(file.clone(), n).ok());
        let tee = Arc::new(Tee {
            size,
            file,
            map,
            stage: watch::channel(Stage::Writing(0)).0,
            readers: self.readers.clone(),
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
        tee.written(3);
        assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"abc");
        w.write_all(b"def").unwrap();
        tee.written(6);
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
        tee.written(4);
        assert_eq!(&stream.next().await.unwrap().unwrap()[..], b"xyz");
        drop(guard); // the writer gave up (wrong digest, dropped connection)
        assert!(stream.next().await.unwrap().is_err());
        assert!(!tee.finished().await);
    }

    #[tokio::test]
    async fn readers_get_slices_of_the_mapped_temp_file() {
        let (dir, mut w, tees) = setup();
        let guard = tees.open(&digest(), Some(6), reader(&dir));
        let tee = guard.tee();
        let mut stream = Box::pin(tee.clone().stream(6));
        w.write_all(b"abcdef").unwrap();
        tee.written(6);
        let first = stream.next().await.unwrap().unwrap();
        tee.verified();
        let last = stream.next().await.unwrap().unwrap();
        assert_eq!((&first[..], &last[..]), (&b"abcde"[..], &b"f"[..]));
        let range = mapped::file_range(&first).expect("a slice of the mapping");
        assert_eq!((range.offset, range.len), (0, 5));
        let range = mapped::file_range(&last).expect("a slice of the mapping");
        assert_eq!((range.offset, range.len), (5, 1));
    }

    #[tokio::test]
    async fn without_a_size_to_map_readers_read_the_file() {
        let (dir, mut w, tees) = setup();
        let guard = tees.open(&digest(), None, reader(&dir));
        let tee = guard.tee();
        w.write_all(b"abcdef").unwrap();
        tee.written(6);
        tee.verified();
        let got: Vec<Bytes> = tee.clone().stream(6).map(|b| b.unwrap()).collect().await;
        assert_eq!(got.concat(), b"abcdef");
        assert!(mapped::file_range(&got[0]).is_none());
    }

    /// Spawn `quiet(settle, an hour)`; check that it is still waiting after 100 ms.
    async fn still_waiting(tees: &Arc<Tees>, settle: Duration) -> tokio::task::JoinHandle<()> {
        let waiting = tokio::spawn({
            let tees = tees.clone();
            async move { tees.quiet(settle, Duration::from_secs(3600)).await }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!waiting.is_finished(), "quiet returned too early");
        waiting
    }

    async fn finishes(waiting: tokio::task::JoinHandle<()>) {
        tokio::time::timeout(Duration::from_secs(5), waiting)
            .await
            .expect("quiet returns")
            .unwrap();
    }

    #[tokio::test]
    async fn quiet_waits_for_every_open_stream_to_go_and_then_to_settle() {
        let (dir, _w, tees) = setup();
        let tees = Arc::new(tees);
        let hour = Duration::from_secs(3600);
        // No client ever streamed: nothing to settle.
        tokio::time::timeout(Duration::from_secs(5), tees.quiet(hour, hour))
            .await
            .expect("quiet at once");
        let guard = tees.open(&digest(), Some(6), reader(&dir));
        let stream = guard.tee().stream(6);
        drop(guard); // the write may end; the client is still reading
        let waiting = still_waiting(&tees, Duration::ZERO).await;
        drop(stream);
        finishes(waiting).await;
        // A stream that has just ended: quiet waits out the settling time after it.
        let waiting = still_waiting(&tees, Duration::from_secs(2)).await;
        finishes(waiting).await;
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
