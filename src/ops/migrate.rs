//! `migrate --to s3://…`: copy a local store's records and everything they reach into a
//! bucket, so that a user moves to a shared store without fetching anything from the
//! upstream again. Verified (every blob is hashed on its way into the bucket, as any
//! upload is), resumable (objects the bucket has are skipped, and a record is written last
//! and only once), and never overwriting: a tag the bucket already pins at another digest is
//! reported as a conflict and left as the bucket has it.
//! Must not touch: the local store's contents (it is only read) or the upstream.

use futures_util::{StreamExt, TryStreamExt};
use serde::{Deserialize, Serialize};

use crate::shared::{Created, JournalEntry, Shared, SharedError};
use crate::store::records::now;
use crate::store::{Store, StoreError, TagRecord};

/// What became of one record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Migrated {
    pub reference: String,
    pub digest: String,
    /// `copied`, `already there`, `conflict` or `incomplete`.
    pub state: String,
    /// Why, for a conflict or an incomplete record.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    pub uploaded_objects: usize,
    pub uploaded_bytes: u64,
}

impl Migrated {
    pub fn is_failure(&self) -> bool {
        self.state == "conflict" || self.state == "incomplete"
    }
}

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Shared(#[from] SharedError),
}

/// Copy every record of `store` (each with its manifests and blobs) into `shared`,
/// `jobs` uploads at a time.
pub async fn migrate(
    store: &Store,
    shared: &Shared,
    jobs: usize,
) -> Result<Vec<Migrated>, MigrateError> {
    let mut out = Vec::new();
    for record in store.tags()? {
        out.push(one(store, shared, &record, jobs).await?);
    }
    Ok(out)
}

async fn one(
    store: &Store,
    shared: &Shared,
    record: &TagRecord,
    jobs: usize,
) -> Result<Migrated, MigrateError> {
    let mut done = Migrated {
        reference: record.key.clone(),
        digest: record.digest.to_string(),
        state: "already there".into(),
        detail: None,
        uploaded_objects: 0,
        uploaded_bytes: 0,
    };
    if let Some(theirs) = shared.record(&record.key).await? {
        if theirs.digest != record.digest {
            done.state = "conflict".into();
            done.detail = Some(format!("the bucket pins it at {}", theirs.digest));
        }
        return Ok(done);
    }
    let missing = store.missing(record);
    if !missing.is_empty() {
        done.state = "incomplete".into();
        done.detail = Some(format!(
            "{} of its blobs are not in the local store; run `stablebuild pin` on it first",
            missing.len()
        ));
        return Ok(done);
    }
    for m in &record.manifests {
        if shared.blob_size(&m.digest).await?.is_some() {
            continue;
        }
        let Some((meta, bytes)) = store.manifest(&m.digest)? else {
            continue;
        };
        shared
            .put_manifest(&m.digest, &meta.media_type, &bytes)
            .await?;
        done.uploaded_objects += 1;
        done.uploaded_bytes += bytes.len() as u64;
    }
    let digests: Vec<_> = record.blobs.iter().map(|b| b.digest.clone()).collect();
    let sent: Vec<u64> = futures_util::stream::iter(digests)
        .map(|d| async move {
            if shared.blob_size(&d).await?.is_some() {
                return Ok::<_, MigrateError>(None);
            }
            let bytes = store.blobs().map(&d)?;
            Ok(Some(shared.upload_bytes(&d, bytes).await?))
        })
        .buffer_unordered(jobs.max(1))
        .try_filter_map(|n| async move { Ok(n) })
        .try_collect()
        .await?;
    done.uploaded_objects += sent.len();
    done.uploaded_bytes += sent.iter().sum::<u64>();
    match shared.create_record(record).await? {
        Created::Won(_) => {
            let entry = JournalEntry::Pin {
                key: record.key.clone(),
                digest: record.digest.clone(),
                at: now(),
                origin: record.origin.clone(),
            };
            shared.journal(&entry).await?;
            done.state = "copied".into();
        }
        Created::Lost(theirs) if theirs.digest != record.digest => {
            done.state = "conflict".into();
            done.detail = Some(format!("the bucket pins it at {}", theirs.digest));
        }
        Created::Lost(_) => {}
    }
    Ok(done)
}
