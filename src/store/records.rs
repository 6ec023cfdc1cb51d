//! The records the store keeps about snapshots (plain data, serialised as JSON).
//! Must not touch: anything on disk; `index.rs` and `journal.rs` persist these.

use serde::{Deserialize, Serialize};

use crate::reference::Digest;

/// One pinned reference: written once, after everything it reaches is stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TagRecord {
    /// The reference key (`docker.io/library/ubuntu:20.04` or `…@sha256:…`).
    pub key: String,
    /// The digest of the root manifest or index.
    pub digest: Digest,
    pub media_type: String,
    /// Every platform of the snapshot, attestations (`unknown/unknown`) included.
    pub platforms: Vec<String>,
    /// Every manifest reached, the root first.
    pub manifests: Vec<ManifestInfo>,
    /// Every config and layer reached, each once.
    pub blobs: Vec<BlobInfo>,
    /// Bytes of all manifests and blobs, each counted once.
    pub size: u64,
    /// Unix seconds.
    pub pinned_at: u64,
    /// Who asked for the pin (records written before origins were kept have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<Origin>,
}

/// Who asked for a pin or an evict, as the history shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "kebab-case")]
pub enum Origin {
    /// A command run on the store: the user and the host it ran as and on.
    Cli { user: String, host: String },
    /// The admin API of a server: the address the request came from.
    Admin { remote: String },
    /// A registry client's pull through a server: its address and User-Agent.
    PullThrough { client: String, user_agent: String },
}

impl std::fmt::Display for Origin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Origin::Cli { user, host } => write!(f, "cli {user}@{host}"),
            Origin::Admin { remote } => write!(f, "admin {remote}"),
            Origin::PullThrough { client, user_agent } => {
                write!(f, "pull-through {client} ({user_agent})")
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestInfo {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    pub platform: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlobInfo {
    pub digest: Digest,
    pub size: u64,
}

/// A pin that has started and not finished: its root is stored, maybe not all it reaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub key: String,
    pub digest: Digest,
    pub media_type: String,
    pub started_at: u64,
}

/// Media type and size of a stored manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManifestMeta {
    pub media_type: String,
    pub size: u64,
}

impl TagRecord {
    /// Every digest the record reaches: manifests and blobs.
    pub fn digests(&self) -> impl Iterator<Item = &Digest> {
        let manifests = self.manifests.iter().map(|m| &m.digest);
        manifests.chain(self.blobs.iter().map(|b| &b.digest))
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
