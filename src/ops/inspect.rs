//! `inspect`: a pinned snapshot as a tree — index → each platform's manifest → config and
//! layers — from the store only (the stored manifest bytes, parsed), never the upstream.
//! Must not touch: the network or the terminal.

use serde::{Deserialize, Serialize};

use super::timestamp;
use crate::manifest::{self, Parsed};
use crate::reference::{Digest, Reference};
use crate::store::{Store, StoreError, TagRecord};

/// One node of the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    /// `index`, `manifest`, `config`, `layer` or `foreign-layer`.
    pub kind: String,
    pub digest: String,
    pub media_type: String,
    /// None for schema 1 layers, whose manifests record no sizes (and for blobs not stored).
    pub size: Option<u64>,
    /// For manifests: `os/arch[/variant]`, `unknown/unknown` for attestations.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub platform: Option<String>,
    /// False when the blob is missing from the store (an interrupted or damaged snapshot).
    pub stored: bool,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub children: Vec<Node>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Inspection {
    pub reference: String,
    pub pinned_at: String,
    pub root: Node,
}

/// The snapshot `r` names: its own record, or (for `name@digest`) any record of that root.
/// None when nothing pinned matches.
pub fn inspect(store: &Store, r: &Reference) -> Result<Option<Inspection>, StoreError> {
    let record = match (store.tag(&r.key())?, r.digest()) {
        (Some(record), _) => record,
        (None, Some(d)) => match store.tags()?.into_iter().find(|t| t.digest == *d) {
            Some(record) => record,
            None => return Ok(None),
        },
        (None, None) => return Ok(None),
    };
    let root = manifest_node(store, &record, &record.digest, &record.media_type, 0)?;
    Ok(Some(Inspection {
        reference: record.key.clone(),
        pinned_at: timestamp(record.pinned_at),
        root,
    }))
}

/// Indexes nest at most this deep (OCI allows an index of indexes; none go deeper).
const MAX_DEPTH: usize = 4;

fn manifest_node(
    store: &Store,
    record: &TagRecord,
    digest: &Digest,
    media_type: &str,
    depth: usize,
) -> Result<Node, StoreError> {
    let info = record.manifests.iter().find(|m| m.digest == *digest);
    let mut node = Node {
        kind: if manifest::is_index(media_type) {
            "index"
        } else {
            "manifest"
        }
        .into(),
        digest: digest.to_string(),
        media_type: media_type.to_string(),
        size: info.map(|m| m.size),
        platform: info.and_then(|m| m.platform.clone()),
        stored: false,
        children: Vec::new(),
    };
    let Some((meta, bytes)) = store.manifest(digest)? else {
        return Ok(node);
    };
    node.stored = true;
    node.size = Some(meta.size);
    let Ok(parsed) = manifest::parse(digest, &meta.media_type, &bytes) else {
        return Ok(node);
    };
    node.children = match parsed {
        Parsed::Index(children) if depth < MAX_DEPTH => children
            .iter()
            .map(|c| manifest_node(store, record, &c.digest, &c.media_type, depth + 1))
            .collect::<Result<_, _>>()?,
        Parsed::Index(_) => Vec::new(),
        Parsed::Image { config, layers } => std::iter::once(("config", config))
            .chain(layers.into_iter().map(|l| ("layer", l)))
            .map(|(kind, b)| blob_node(store, record, kind, b))
            .collect(),
        Parsed::Schema1 { layers } => layers
            .into_iter()
            .map(|l| blob_node(store, record, "layer", l))
            .collect(),
    };
    Ok(node)
}

/// A config or layer; a foreign (non-distributable) layer is `foreign-layer`: it lives
/// elsewhere and is never fetched.
fn blob_node(store: &Store, record: &TagRecord, kind: &str, b: manifest::Blob) -> Node {
    let recorded = record.blobs.iter().find(|r| r.digest == b.digest);
    let kind = if b.foreign { "foreign-layer" } else { kind };
    Node {
        kind: kind.to_string(),
        digest: b.digest.to_string(),
        media_type: b.media_type,
        size: b.size.or(recorded.map(|r| r.size)),
        platform: None,
        stored: store.blobs().contains(&b.digest),
        children: Vec::new(),
    }
}
