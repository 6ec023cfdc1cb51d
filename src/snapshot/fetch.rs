//! Blob downloads for a pin: bounded parallelism, retries, and a pipeline that overlaps
//! the network with hashing and writing.
//!
//! Owns: moving bytes from a source — the bucket when the store is shared and has the blob,
//! else the upstream (on a shared store under the blob's lease, so that one process of all
//! those on the bucket fetches it) — into a `BlobWriter` on a blocking thread, sending what the upstream
//! gave on to the bucket once it is whole and verified (from the store's file, hashed again
//! on the way), and retrying a blob whose transfer failed or whose bytes were wrong. Wrong
//! bytes never reach the store or the bucket: the writer verifies before it renames, and
//! the upload completes only when its own hash matches.
//! Each transfer is opened as a `Tee`, so that clients can read the blob as it is written.
//! Must not touch: tag records.

use bytes::Bytes;
use futures_util::{Stream, StreamExt, TryStreamExt, stream};
use tokio::sync::mpsc;
use tracing::{debug, warn};

use super::tee::Tee;
use super::{Progress, SnapshotError, Snapshotter, TierError};
use crate::manifest::Blob;
use crate::reference::{Digest, Reference};
use crate::shared::{Lease, Leased, SharedError};
use crate::store::{BlobWriter, StoreError};
use crate::upstream::{Upstream, UpstreamError};

/// Chunks in flight between the network and the writer thread (chunks are up to a few
/// hundred KiB, so this bounds the memory a slow disk can make a download hold).
const PIPELINE_DEPTH: usize = 16;

/// How long the upload of a blob the upstream sent waits for clients still streaming blobs
/// being written to finish (on a machine of few cores, the bucket's server taking the upload
/// would compete with them), and for how long none must have been streaming.
const UPLOAD_DEFERRAL: std::time::Duration = std::time::Duration::from_secs(30);
const UPLOAD_SETTLE: std::time::Duration = std::time::Duration::from_millis(500);

/// Where the blobs must end up.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Want {
    /// In the store of record (a pin): on a shared store, a blob the bucket has already is
    /// not fetched at all.
    InStore,
    /// In the local store (an export, a client reading it through the server).
    Local,
}

/// Fetch every wanted blob not there yet, `jobs` at a time.
pub(crate) async fn blobs(
    s: &Snapshotter,
    r: &Reference,
    wanted: &[Blob],
    want: Want,
    progress: &dyn Progress,
) -> Result<(), SnapshotError> {
    let upstream = s.upstreams().get(r.registry());
    let bytes = wanted.iter().filter_map(|b| b.size).sum();
    progress.blobs_planned(wanted.len(), bytes);
    stream::iter(wanted.iter().map(Ok))
        .try_for_each_concurrent(s.jobs(), |blob| {
            let upstream = upstream.clone();
            async move { one(s, &upstream, r, blob, want, progress).await }
        })
        .await
}

enum Failure {
    Upstream(UpstreamError),
    Store(StoreError),
    Shared(SharedError),
}

impl From<TierError> for Failure {
    fn from(e: TierError) -> Failure {
        match e {
            TierError::Store(e) => Failure::Store(e),
            TierError::Shared(e) => Failure::Shared(e),
        }
    }
}

impl Failure {
    fn retryable(&self) -> bool {
        match self {
            Failure::Upstream(e) => e.is_transient(),
            Failure::Store(e) => e.is_bad_content(),
            // The bucket's client has retried already.
            Failure::Shared(_) => false,
        }
    }

    fn message(&self) -> String {
        match self {
            Failure::Upstream(e) => e.to_string(),
            Failure::Store(e) => e.to_string(),
            Failure::Shared(e) => e.to_string(),
        }
    }

    fn into_error(self, r: &Reference) -> SnapshotError {
        let reference = r.to_string();
        match self {
            Failure::Upstream(cause) => SnapshotError::Upstream { reference, cause },
            Failure::Store(cause) => SnapshotError::Store { reference, cause },
            Failure::Shared(cause) => SnapshotError::Shared { reference, cause },
        }
    }
}

/// Is the blob where `want` wants it already?
async fn present(s: &Snapshotter, d: &Digest, want: Want) -> Result<bool, Failure> {
    let local = s.store().blobs().contains(d);
    match want {
        Want::Local => Ok(local),
        Want::InStore if local && !s.tier().uploads() => Ok(true),
        Want::InStore => Ok(s.tier().has(s.store(), d).await?),
    }
}

/// One blob, retried on transfer failures and wrong content.
async fn one(
    s: &Snapshotter,
    upstream: &Upstream,
    r: &Reference,
    blob: &Blob,
    want: Want,
    progress: &dyn Progress,
) -> Result<(), SnapshotError> {
    if present(s, &blob.digest, want)
        .await
        .map_err(|f| f.into_error(r))?
    {
        progress.blob_skipped(&blob.digest, blob.size);
        return Ok(());
    }
    let _one = s.digest_locks().lock(blob.digest.hex()).await;
    if present(s, &blob.digest, want)
        .await
        .map_err(|f| f.into_error(r))?
    {
        debug!("{}: stored by another transfer meanwhile", blob.digest);
        progress.blob_skipped(&blob.digest, blob.size);
        return Ok(());
    }
    if s.store().blobs().contains(&blob.digest) {
        // Local, not in the bucket (an upload that failed before): send the local copy.
        upload_local(s, &blob.digest)
            .await
            .map_err(|f| f.into_error(r))?;
        progress.blob_skipped(&blob.digest, blob.size);
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

/// Send a blob the local store has to the bucket.
async fn upload_local(s: &Snapshotter, d: &Digest) -> Result<(), Failure> {
    Ok(s.tier().upload_local(s.store(), d).await?)
}

enum Chunk {
    Data(Bytes),
    End,
}

/// The bytes of a blob and where they come from.
struct Source {
    len: Option<u64>,
    body: futures_util::stream::BoxStream<'static, Result<Bytes, Failure>>,
    /// From the upstream: the bucket of a shared store gets them too.
    upstream: bool,
    /// On a shared store, the lease under which they come from the upstream: held until
    /// the bucket has the blob.
    lease: Option<Lease>,
}

/// The bucket's copy when the store is shared and has it, else the upstream's: on a shared
/// store under the blob's lease, so that of all the processes on the bucket one fetches it
/// and the others wait to read the bucket.
async fn open(
    s: &Snapshotter,
    upstream: &Upstream,
    r: &Reference,
    d: &Digest,
) -> Result<Source, Failure> {
    if let Some(source) = from_bucket(s, d).await? {
        return Ok(source);
    }
    let lease = match s.tier().lease(s.store(), d).await? {
        Some(Leased::Held(lease)) => Some(lease),
        Some(Leased::InBucket) => match from_bucket(s, d).await? {
            Some(source) => return Ok(source),
            None => None, // gone again (a repair): fetch it anyway
        },
        None => None,
    };
    let (len, body) = upstream
        .blob(r.repository(), d)
        .await
        .map_err(Failure::Upstream)?;
    Ok(Source {
        len,
        body: body.map_err(Failure::Upstream).boxed(),
        upstream: true,
        lease,
    })
}

async fn from_bucket(s: &Snapshotter, d: &Digest) -> Result<Option<Source>, Failure> {
    Ok(s.tier().open_blob(d).await?.map(|fetched| Source {
        len: Some(fetched.size),
        body: fetched.body.map_err(Failure::Shared).boxed(),
        upstream: false,
        lease: None,
    }))
}

/// Stream one blob into the store: the network on this task, hashing and writing on a
/// blocking thread, a bounded channel between them; then, on a shared store, from the
/// store's file to the bucket (verified again on the way).
async fn transfer(
    s: &Snapshotter,
    upstream: &Upstream,
    r: &Reference,
    blob: &Blob,
    progress: &dyn Progress,
) -> Result<(), Failure> {
    let Source {
        len,
        body,
        upstream: from_upstream,
        lease,
    } = open(s, upstream, r, &blob.digest).await?;
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
    let result = match (sent, written) {
        (_, Err(e)) => Err(Failure::Store(e)),
        (Err(e), Ok(())) => Err(e),
        (Ok(()), Ok(())) => Ok(()),
    };
    drop(guard);
    // The bucket gets the verified local copy once it is whole and no client has streamed
    // blobs being written for UPLOAD_SETTLE (or after UPLOAD_DEFERRAL): clients are not slowed by
    // an upload competing with them for the machine.
    let result = match result {
        Ok(()) if from_upstream && s.tier().uploads() => {
            s.tees().quiet(UPLOAD_SETTLE, UPLOAD_DEFERRAL).await;
            upload_local(s, &blob.digest).await
        }
        done => done,
    };
    // Held until the bucket has the blob or this attempt failed; removed now, before a
    // failing pin's process exits, so that no other process waits for it to go stale.
    if let Some(lease) = lease {
        lease.release().await;
    }
    result
}

async fn pump(
    body: impl Stream<Item = Result<Bytes, Failure>>,
    tx: &mpsc::Sender<Chunk>,
    digest: &Digest,
    progress: &dyn Progress,
) -> Result<(), Failure> {
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
