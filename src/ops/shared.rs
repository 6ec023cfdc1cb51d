//! `list`, `gc` and `verify` on a shared store (a bucket), with the same results as on a
//! local one. No lock is taken: other processes may pin and serve meanwhile.
//! - `list`: the bucket's records (complete by construction: a record is written only after
//!   everything it reaches exists), and pins started and not recorded as interrupted.
//! - `gc`: mark and sweep. Marked: every digest a record reaches, and everything a pending
//!   pin's root reaches in the bucket. Swept: unmarked blob objects older than the grace
//!   period (a pin in flight in another process may have uploaded a blob it has not
//!   recorded yet), multipart uploads whose markers are older than it, and leases not
//!   renewed within it (their holder is gone).
//! - `verify`: every blob object re-hashed (streamed), every record's reach checked;
//!   `--repair` deletes corrupt objects, so that the next pin fetches them again by digest.
//!
//! Must not touch: the local store (a cache needs no gc).

use std::collections::{BTreeSet, HashMap};

use futures_util::{StreamExt, TryStreamExt};
use sha2::{Digest as _, Sha256};

use super::{ListEntry, VerifyOutcome};
use crate::manifest::{self, Parsed};
use crate::reference::Digest;
use crate::shared::{Shared, SharedError};
use crate::store::{GcReport, VerifyReport};

/// Blobs re-hashed at once by `verify`.
const HASH_CONCURRENCY: usize = 4;

pub async fn list(shared: &Shared, filter: Option<&str>) -> Result<Vec<ListEntry>, SharedError> {
    let (records, pendings) = (shared.records().await?, shared.pendings().await?);
    // A record in the bucket is complete: it is written only after what it reaches.
    let entries = records.into_iter().map(|r| ListEntry::of(r, 0)).collect();
    Ok(super::with_pendings(entries, pendings, filter))
}

/// Every digest a record or a pending pin reaches.
async fn marked(shared: &Shared) -> Result<BTreeSet<Digest>, SharedError> {
    let mut set = BTreeSet::new();
    for record in shared.records().await? {
        set.extend(record.digests().cloned());
    }
    for pending in shared.pendings().await? {
        let mut next = vec![pending.digest];
        while let Some(d) = next.pop() {
            if !set.insert(d.clone()) {
                continue;
            }
            let Some((media_type, bytes)) = shared.manifest(&d).await? else {
                continue;
            };
            match manifest::parse(&d, &media_type, &bytes) {
                Ok(Parsed::Index(children)) => next.extend(children.into_iter().map(|c| c.digest)),
                Ok(parsed) => set.extend(parsed.blobs().into_iter().map(|b| b.digest)),
                Err(_) => {}
            }
        }
    }
    Ok(set)
}

/// Remove unmarked blobs older than `grace_secs`, stale multipart uploads and stale leases.
pub async fn gc(shared: &Shared, dry_run: bool, grace_secs: u64) -> Result<GcReport, SharedError> {
    let cutoff = crate::store::records::now().saturating_sub(grace_secs);
    let marked = marked(shared).await?;
    let mut report = GcReport::default();
    for blob in shared.blobs().await? {
        if marked.contains(&blob.digest) || blob.modified >= cutoff {
            report.kept += 1;
            continue;
        }
        report.freed_bytes += blob.size;
        if !dry_run {
            shared.delete_blob(&blob.digest).await?;
        }
        report.removed.push(blob.digest);
    }
    if !dry_run {
        let aborted = shared.abort_stale_uploads(cutoff).await?;
        if aborted > 0 {
            tracing::info!("aborted {aborted} multipart uploads older than the grace period");
        }
        let leases = shared.remove_stale_leases(cutoff).await?;
        if leases > 0 {
            tracing::info!("removed {leases} leases not renewed within the grace period");
        }
    }
    Ok(report)
}

pub async fn verify(shared: &Shared, repair: bool) -> Result<VerifyOutcome, SharedError> {
    let blobs = shared.blobs().await?;
    let sizes: HashMap<Digest, u64> = blobs.iter().map(|b| (b.digest.clone(), b.size)).collect();
    let digests: Vec<Digest> = blobs.iter().map(|b| b.digest.clone()).collect();
    let results: Vec<(Digest, bool)> = futures_util::stream::iter(digests)
        .map(|d| async move {
            let ok = rehash(shared, &d).await?;
            Ok::<_, SharedError>((d, ok))
        })
        .buffer_unordered(HASH_CONCURRENCY)
        .try_collect()
        .await?;
    let mut report = VerifyReport {
        checked: blobs.len(),
        bytes: blobs.iter().map(|b| b.size).sum(),
        ..Default::default()
    };
    for (digest, ok) in results {
        if ok {
            continue;
        }
        if repair {
            shared.delete_blob(&digest).await?;
        }
        report.corrupt.push(digest);
    }
    report.corrupt.sort();
    for record in shared.records().await? {
        for d in record.digests() {
            if !sizes.contains_key(d) {
                report.missing.push((record.key.clone(), d.clone()));
            }
        }
    }
    Ok(VerifyOutcome {
        rebuilt: None,
        report,
        // The bucket's journal objects are create-only, not chained (see DESIGN notes).
        journal_break: None,
    })
}

/// Stream a blob object through sha256; false when it is not what its key says.
async fn rehash(shared: &Shared, digest: &Digest) -> Result<bool, SharedError> {
    let Some(fetched) = shared.get_blob(digest).await? else {
        return Ok(true); // removed meanwhile (gc): nothing wrong is stored
    };
    let mut hasher = Sha256::new();
    let mut body = fetched.body;
    while let Some(chunk) = body.next().await {
        hasher.update(&chunk?);
    }
    Ok(Digest::from_sha256(hasher.finalize().into()) == *digest)
}
