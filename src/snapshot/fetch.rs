//! Blob downloads for a pin: bounded parallelism, retries, and a pipeline that overlaps
//! the network with hashing and writing.
//!
//! Owns: moving bytes from an upstream stream into a `BlobWriter` on a blocking thread and
//! retrying a blob whose transfer failed or whose bytes were wrong. Wrong bytes never reach
//! the store: the writer verifies before it renames.
//! Each transfer is opened as a `Tee`, so that clients can read the blob as it is written.
//! Must not touch: tag records.

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::tee::Tee;
use super::{Progress, SnapshotError, Snapshotter};
use crate::manifest::Blob;
use crate::reference::{Digest, Reference};
use crate::store::{BlobWriter, StoreError};
use crate::upstream::{Upstream, UpstreamError};

/// Chunks in flight between the network and the writer thread (chunks are up to a few
/// hundred KiB, so this bounds the memory a slow disk can make a download hold).
const PIPELINE_DEPTH: usize = 16;

/// Fetch every blob not yet in the store, `jobs` at a time.
pub(super) async fn blobs(
    s: &Snapshotter,
    r: &Reference,
    wanted: &[Blob],
    progress: &dyn Progress,
) -> Result<(), SnapshotError> {
    let upstream = s.upstreams().get(r.registry());
    let missing = wanted
        .iter()
        .filter(|b| !s.store().blobs().contains(&b.digest));
    stream::iter(missing.map(Ok))
        .try_for_each_concurrent(s.jobs(), |blob| {
            let upstream = upstream.clone();
            async move { one(s, &upstream, r, blob, progress).await }
        })
        .await
}

enum Failure {
    Upstream(UpstreamError),
    Store(StoreError),
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Upstream(e) => e.is_transient(),
            Failure::Store(e) => e.is_bad_content(),
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Upstream(e) => e.to_string(),
            Failure::Store(e) => e.to_string(),
        }
    }

    fn into_error(self, r: &Reference) -> SnapshotError {
        let reference = r.to_string();
        match self {
            Failure::Upstream(cause) => SnapshotError::Upstream { reference, cause },
            Failure::Store(cause) => SnapshotError::Store { reference, cause },
        }
    }
}

/// One blob, retried on transfer failures and wrong content.
async fn one(
    s: &Snapshotter,
    upstream: &Upstream,
    r: &Reference,
    blob: &Blob,
    progress: &dyn Progress,
) -> Result<(), SnapshotError> {
    let _one = s.digest_locks().lock(blob.digest.hex()).await;
    if s.store().blobs().contains(&blob.digest) {
        debug!("{}: stored by another transfer meanwhile", blob.digest);
        return Ok(());
    }
    let started = std::time::Instant::now();
    let policy = upstream.retry_policy().clone();
    let mut attempt = 0;
    loop {
        attempt += 1;
        progress.blob_started(&blob.digest, blob.size);
        let result = transfer(s, upstream, r, blob, progress).await;
        progress.blob_finished(&blob.digest);
        match result {
            Ok(()) => {
                debug!("{}: stored in {:.1?}", blob.digest, started.elapsed());
                return Ok(());
            }
            Err(f) if f.retryable() && attempt < policy.attempts => {
                let wait = policy.delay(attempt);
                let total = policy.attempts;
                warn!(
                    "{r}: {}; retrying in {wait:?} (attempt {attempt} of {total})",
                    f.message()
                );
                tokio::time::sleep(wait).await;
            }
            Err(f) => return Err(f.into_error(r)),
        }
    }
}

enum Chunk {
    Data(Bytes),
    End,
}

/// Stream one blob into the store: the network on this task, hashing and writing on a
/// blocking thread, a bounded channel between them.
async fn transfer(
    s: &Snapshotter,
    upstream: &Upstream,
    r: &Reference,
    blob: &Blob,
    progress: &dyn Progress,
) -> Result<(), Failure> {
    let (len, body) = upstream
        .blob(r.repository(), &blob.digest)
        .await
        .map_err(Failure::Upstream)?;
    let expected = blob.size.or(len);
    let writer = s
        .store()
        .blobs()
        .writer(&blob.digest, expected)
        .map_err(Failure::Store)?;
    let reader = writer.reader().map_err(Failure::Store)?;
    let guard = s.tees().open(&blob.digest, expected, reader);
    let tee = guard.tee();
    let (tx, rx) = mpsc::channel(PIPELINE_DEPTH);
    let worker = tokio::task::spawn_blocking(move || write_all(writer, rx, &tee));
    let sent = pump(body, &tx, &blob.digest, progress).await;
    drop(tx);
    let written = worker.await.expect("blob writer thread panicked");
    // A store error (wrong size or digest, disk) explains more than a closed channel.
    match (sent, written) {
        (_, Err(e)) => Err(Failure::Store(e)),
        (Err(e), Ok(())) => Err(Failure::Upstream(e)),
        (Ok(()), Ok(())) => Ok(()),
    }
}

async fn pump(
    body: impl Stream<Item = Result<Bytes, UpstreamError>>,
    tx: &mpsc::Sender<Chunk>,
    digest: &Digest,
    progress: &dyn Progress,
) -> Result<(), UpstreamError> {
    let mut body = std::pin::pin!(body);
    while let Some(chunk) = body.next().await {
        let chunk = chunk?;
        progress.blob_advanced(digest, chunk.len() as u64);
        if tx.send(Chunk::Data(chunk)).await.is_err() {
            return Ok(()); // the writer stopped; its error says why
        }
    }
    let _ = tx.send(Chunk::End).await;
    Ok(())
}

/// Write chunks until End, then commit; a channel closed before End aborts the blob.
/// Readers of the tee see each chunk once it is in the file.
fn write_all(
    mut writer: BlobWriter,
    mut rx: mpsc::Receiver<Chunk>,
    tee: &Tee,
) -> Result<(), StoreError> {
    while let Some(chunk) = rx.blocking_recv() {
        match chunk {
            Chunk::Data(bytes) => {
                writer.write(&bytes)?;
                tee.written(writer.written());
            }
            Chunk::End => {
                // Readers may have the last byte once the content is known good; the
                // fsync and rename that make it durable and visible follow.
                writer.verify()?;
                tee.verified();
                writer.commit()?;
                tee.commit();
                return Ok(());
            }
        }
    }
    Ok(()) // aborted: dropping the writer removes its temp file; the sender says why
}
