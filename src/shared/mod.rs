//! The shared store: a bucket on S3-compatible object storage (`--store s3://BUCKET[/PREFIX]`)
//! that any number of processes on any number of machines use at once, with no lock.
//!
//! Owns: talking to the bucket through `object_store` — connecting from the standard AWS
//! variables, the key layout (`keys.rs`), create-only tag records and pending pins (the first
//! writer wins, `If-None-Match: *`), leases on blobs being fetched (`lease.rs`), append-only
//! journal objects, blob objects that appear only with verified content (`upload.rs`),
//! listings, and presigned URLs. Errors name the endpoint, the bucket and the S3 error code.
//! Must not touch: local files (the replica's cache is the `store` module's), the upstream.

mod connect;
mod keys;
mod lease;
mod upload;

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream::{BoxStream, StreamExt, TryStreamExt};
use object_store::aws::AmazonS3;
use object_store::path::Path;
use object_store::{
    Attribute, Attributes, GetOptions, ObjectMeta, ObjectStore, ObjectStoreExt, PutMode,
    PutOptions, PutPayload,
};
use serde::{Deserialize, Serialize};

pub use connect::Location;
pub use keys::Keys;
pub use lease::{Lease, Leased, lease};

use crate::reference::Digest;
use crate::store::{Origin, Pending, TagRecord};

/// Records read from the bucket at once.
const READ_CONCURRENCY: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum SharedError {
    #[error("{endpoint}: bucket {bucket}: {code}{}", message_part(.message))]
    S3 {
        endpoint: String,
        bucket: String,
        /// The S3 error code (`NoSuchBucket`, `SignatureDoesNotMatch`, …) or HTTP status.
        code: String,
        message: String,
    },
    #[error("{endpoint}: cannot reach the S3 endpoint: {reason}")]
    Unreachable { endpoint: String, reason: String },
    #[error("{0}")]
    Config(String),
    #[error("{key} in bucket {bucket} is not what stablebuild wrote: {reason}")]
    Corrupt {
        bucket: String,
        key: String,
        reason: String,
    },
    #[error("blob {digest}: the bytes have digest {got}; the upload was aborted")]
    DigestMismatch { digest: Digest, got: Digest },
}

fn message_part(message: &str) -> String {
    match message.is_empty() {
        true => String::new(),
        false => format!(" ({message})"),
    }
}

impl SharedError {
    /// True when the bucket could not be reached at all (as opposed to answering no).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, SharedError::Unreachable { .. })
    }
}

/// What a create-only write found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Created<T> {
    /// This process wrote it.
    Won(T),
    /// Another one was first: what it wrote.
    Lost(T),
}

impl<T> Created<T> {
    pub fn into_inner(self) -> T {
        match self {
            Created::Won(t) | Created::Lost(t) => t,
        }
    }
}

/// One entry of the bucket's journal: a pin or an evict, as it happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum JournalEntry {
    Pin {
        key: String,
        digest: Digest,
        at: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
    Evict {
        key: String,
        digest: Digest,
        at: u64,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        origin: Option<Origin>,
    },
}

/// A blob object as the bucket lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlobObject {
    pub digest: Digest,
    pub size: u64,
    /// Unix seconds.
    pub modified: u64,
}

/// A bucket (and prefix) holding a store.
pub struct Shared {
    s3: Arc<AmazonS3>,
    keys: Keys,
    location: Location,
    endpoint: String,
}

impl Shared {
    pub fn location(&self) -> &Location {
        &self.location
    }

    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Check that the bucket answers with these credentials (one LIST of at most a page).
    pub async fn check(&self) -> Result<(), SharedError> {
        let prefix = key_path(&self.keys.records());
        let first = self.s3.list(Some(&prefix)).next().await;
        match first {
            Some(Err(e)) => Err(self.error(e)),
            _ => Ok(()),
        }
    }

    // ---- tag records -----------------------------------------------------------------------

    pub async fn record(&self, key: &str) -> Result<Option<TagRecord>, SharedError> {
        self.get_json(&self.keys.record(key)).await
    }

    /// Write a record once: the first writer wins, and the loser gets the winner's record.
    pub async fn create_record(
        &self,
        record: &TagRecord,
    ) -> Result<Created<TagRecord>, SharedError> {
        self.create_json(&self.keys.record(&record.key), record)
            .await
    }

    /// Remove a record (evict); the record it was, if there was one.
    pub async fn delete_record(&self, key: &str) -> Result<Option<TagRecord>, SharedError> {
        let old = self.record(key).await?;
        if old.is_some() {
            self.delete(&self.keys.record(key)).await?;
        }
        Ok(old)
    }

    /// Every record: the keys listed, then read `READ_CONCURRENCY` at a time.
    pub async fn records(&self) -> Result<Vec<TagRecord>, SharedError> {
        let names = self.list_keys(&self.keys.records()).await?;
        self.read_records(names.into_iter().map(|(name, _)| name))
            .await
    }

    /// The records of `references` that exist, `READ_CONCURRENCY` at a time, sorted by key.
    pub async fn records_of(
        &self,
        references: impl IntoIterator<Item = String>,
    ) -> Result<Vec<TagRecord>, SharedError> {
        let names: Vec<String> = references
            .into_iter()
            .map(|r| self.keys.record(&r))
            .collect();
        self.read_records(names).await
    }

    async fn read_records(
        &self,
        names: impl IntoIterator<Item = String>,
    ) -> Result<Vec<TagRecord>, SharedError> {
        let reads = names
            .into_iter()
            .map(|name| async move { self.get_json::<TagRecord>(&name).await });
        let found: Vec<Option<TagRecord>> = futures_util::stream::iter(reads)
            .buffer_unordered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        let mut records: Vec<TagRecord> = found.into_iter().flatten().collect();
        records.sort_by(|a, b| a.key.cmp(&b.key));
        Ok(records)
    }

    /// The reference keys that have records, each with its object's ETag (which changes when
    /// a record is evicted and pinned again).
    pub async fn record_versions(&self) -> Result<Vec<(String, String)>, SharedError> {
        let names = self.list_keys(&self.keys.records()).await?;
        Ok(names
            .into_iter()
            .filter_map(|(name, etag)| Some((self.keys.reference_of(&name)?, etag)))
            .collect())
    }

    // ---- pending pins ----------------------------------------------------------------------

    /// Claim the root digest of a pin that starts: the first claim wins, so every process
    /// that pins this reference until it is recorded uses the same root.
    pub async fn claim(&self, pending: &Pending) -> Result<Created<Pending>, SharedError> {
        self.create_json(&self.keys.pending(&pending.key), pending)
            .await
    }

    pub async fn pending(&self, key: &str) -> Result<Option<Pending>, SharedError> {
        self.get_json(&self.keys.pending(key)).await
    }

    pub async fn pendings(&self) -> Result<Vec<Pending>, SharedError> {
        let names = self.list_keys(&self.keys.pendings()).await?;
        let mut out = Vec::new();
        for (name, _) in names {
            out.extend(self.get_json::<Pending>(&name).await?);
        }
        Ok(out)
    }

    pub async fn release(&self, key: &str) -> Result<(), SharedError> {
        self.delete(&self.keys.pending(key)).await
    }

    // ---- journal ---------------------------------------------------------------------------

    pub async fn journal(&self, entry: &JournalEntry) -> Result<(), SharedError> {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        let name = self.keys.journal(now.as_micros() as u64, &random_id());
        match self.create_json(&name, entry).await? {
            Created::Won(_) => Ok(()),
            Created::Lost(_) => Err(self.corrupt(&name, "a journal entry name was taken twice")),
        }
    }

    /// Every journal entry, oldest first (their names start with the time they were written).
    pub async fn journal_entries(&self) -> Result<Vec<JournalEntry>, SharedError> {
        let mut names = self.list_keys(&self.keys.journals()).await?;
        names.sort();
        let reads = names
            .into_iter()
            .map(|(name, _)| async move { self.get_json::<JournalEntry>(&name).await });
        let found: Vec<Option<JournalEntry>> = futures_util::stream::iter(reads)
            .buffered(READ_CONCURRENCY)
            .try_collect()
            .await?;
        Ok(found.into_iter().flatten().collect())
    }

    // ---- blobs -----------------------------------------------------------------------------

    /// The size of a blob object, or None when the bucket does not have it.
    pub async fn blob_size(&self, digest: &Digest) -> Result<Option<u64>, SharedError> {
        match self.s3.head(&key_path(&self.keys.blob(digest))).await {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.error(e)),
        }
    }

    /// A blob's bytes as a stream (not verified here: the caller's writer verifies), with its
    /// size and stored content type; None when the bucket does not have it.
    pub async fn get_blob(&self, digest: &Digest) -> Result<Option<Fetched>, SharedError> {
        let path = key_path(&self.keys.blob(digest));
        let got = match self.s3.get_opts(&path, GetOptions::default()).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        let content_type = got
            .attributes
            .get(&Attribute::ContentType)
            .map(|v| v.to_string());
        let size = got.meta.size;
        let this = self.error_mapper();
        let body = got.into_stream().map_err(move |e| this.map(e)).boxed();
        Ok(Some(Fetched {
            size,
            content_type,
            body,
        }))
    }

    /// A manifest's exact bytes and media type, verified against its digest; None when the
    /// bucket does not have it.
    pub async fn manifest(
        &self,
        digest: &Digest,
    ) -> Result<Option<(String, Vec<u8>)>, SharedError> {
        let Some(fetched) = self.get_blob(digest).await? else {
            return Ok(None);
        };
        let key = self.keys.blob(digest);
        let content_type = fetched.content_type.clone();
        let bytes: Vec<u8> = fetched
            .body
            .try_fold(Vec::new(), |mut acc, chunk| async move {
                acc.extend_from_slice(&chunk);
                Ok(acc)
            })
            .await?;
        let got = crate::manifest::sha256(&bytes);
        if got != *digest {
            return Err(self.corrupt(&key, &format!("its bytes have digest {got}")));
        }
        let media_type = crate::manifest::media_type_of(&bytes, content_type.as_deref())
            .ok_or_else(|| self.corrupt(&key, "not a known manifest type"))?;
        Ok(Some((media_type, bytes)))
    }

    /// Store small verified bytes (a manifest, with its media type) in one PUT.
    pub async fn put_manifest(
        &self,
        digest: &Digest,
        media_type: &str,
        bytes: &[u8],
    ) -> Result<(), SharedError> {
        if crate::manifest::sha256(bytes) != *digest {
            let got = crate::manifest::sha256(bytes);
            return Err(SharedError::DigestMismatch {
                digest: digest.clone(),
                got,
            });
        }
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, media_type.to_string().into());
        let opts = PutOptions {
            attributes,
            ..Default::default()
        };
        let path = key_path(&self.keys.blob(digest));
        let payload = PutPayload::from(Bytes::copy_from_slice(bytes));
        self.s3
            .put_opts(&path, payload, opts)
            .await
            .map_err(|e| self.error(e))?;
        Ok(())
    }

    /// Every blob object, with its size and age.
    pub async fn blobs(&self) -> Result<Vec<BlobObject>, SharedError> {
        Ok(self
            .list_objects(&self.keys.blobs())
            .await?
            .into_iter()
            .filter_map(|m| {
                Some(BlobObject {
                    digest: self.keys.digest_of(m.location.as_ref())?,
                    size: m.size,
                    modified: m.last_modified.timestamp().max(0) as u64,
                })
            })
            .collect())
    }

    pub async fn delete_blob(&self, digest: &Digest) -> Result<(), SharedError> {
        self.delete(&self.keys.blob(digest)).await
    }

    /// A URL a client may GET the blob from for `valid` (S3 SigV4 query signing).
    pub async fn presigned_blob_url(
        &self,
        digest: &Digest,
        valid: Duration,
    ) -> Result<String, SharedError> {
        use object_store::signer::Signer;
        let path = key_path(&self.keys.blob(digest));
        let url = self
            .s3
            .signed_url(reqwest::Method::GET, &path, valid)
            .await
            .map_err(|e| self.error(e))?;
        Ok(url.to_string())
    }

    // ---- plumbing --------------------------------------------------------------------------

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        name: &str,
    ) -> Result<Option<T>, SharedError> {
        let got = match self.s3.get(&key_path(name)).await {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(self.error(e)),
        };
        let bytes = got.bytes().await.map_err(|e| self.error(e))?;
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| self.corrupt(name, &e.to_string()))
    }

    /// Create `name` with `value` unless it exists; what is there afterwards either way.
    async fn create_json<T>(&self, name: &str, value: &T) -> Result<Created<T>, SharedError>
    where
        T: Serialize + serde::de::DeserializeOwned + Clone,
    {
        let bytes = serde_json::to_vec(value).expect("records serialise");
        if self.create(name, bytes).await? {
            return Ok(Created::Won(value.clone()));
        }
        let theirs = self
            .get_json(name)
            .await?
            .ok_or_else(|| self.corrupt(name, "it exists for a create and is gone for a read"))?;
        Ok(Created::Lost(theirs))
    }

    /// Create `name` unless it exists (`If-None-Match: *`): true when this call created it.
    async fn create(&self, name: &str, bytes: Vec<u8>) -> Result<bool, SharedError> {
        let opts = PutOptions {
            mode: PutMode::Create,
            ..Default::default()
        };
        match self.s3.put_opts(&key_path(name), bytes.into(), opts).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::AlreadyExists { .. })
            | Err(object_store::Error::Precondition { .. }) => Ok(false),
            Err(e) => Err(self.error(e)),
        }
    }

    async fn delete(&self, name: &str) -> Result<(), SharedError> {
        match self.s3.delete(&key_path(name)).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.error(e)),
        }
    }

    /// Every key under a prefix, with its ETag.
    /// Every object under `prefix` (a key prefix as [`keys`] spells it).
    async fn list_objects(&self, prefix: &str) -> Result<Vec<ObjectMeta>, SharedError> {
        self.s3
            .list(Some(&key_path(prefix)))
            .try_collect()
            .await
            .map_err(|e| self.error(e))
    }

    async fn list_keys(&self, prefix: &str) -> Result<Vec<(String, String)>, SharedError> {
        Ok(self
            .list_objects(prefix)
            .await?
            .into_iter()
            .map(|m| (m.location.to_string(), m.e_tag.unwrap_or_default()))
            .collect())
    }

    fn corrupt(&self, key: &str, reason: &str) -> SharedError {
        SharedError::Corrupt {
            bucket: self.location.bucket.clone(),
            key: key.to_string(),
            reason: reason.to_string(),
        }
    }

    fn error(&self, e: object_store::Error) -> SharedError {
        self.error_mapper().map(e)
    }

    fn error_mapper(&self) -> connect::ErrorMapper {
        connect::ErrorMapper {
            endpoint: self.endpoint.clone(),
            bucket: self.location.bucket.clone(),
        }
    }
}

/// A blob's bytes on their way out of the bucket.
pub struct Fetched {
    pub size: u64,
    pub content_type: Option<String>,
    pub body: BoxStream<'static, Result<Bytes, SharedError>>,
}

/// The object path of one of our keys, taken as it is: the keys are already escaped to
/// `[A-Za-z0-9._%/-]` (`Path::from` would escape their `%` again).
fn key_path(key: &str) -> Path {
    Path::parse(key).unwrap_or_else(|_| Path::from(key))
}

/// 64 random bits, hex: unique names for journal entries and uploads.
fn random_id() -> String {
    use std::io::Read;
    let mut bytes = [0u8; 8];
    let filled = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if filled.is_err() {
        // Time and pid are unique enough for names that are also prefixed with the time.
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default();
        bytes = (now.subsec_nanos() as u64 ^ (std::process::id() as u64) << 32).to_be_bytes();
    }
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
