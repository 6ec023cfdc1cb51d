//! OCI image layout export: `oci-layout`, `index.json`, `blobs/sha256/…`.
//!
//! Blobs are copied first, `index.json` is written last by rename, so an interrupted export
//! never leaves an index that names missing blobs. Exporting into an existing layout adds
//! (or replaces) this image's entry and keeps the others.

use std::fs;
use std::path::Path;

use serde_json::{Value, json};

use super::{ExportError, image_digests, io, select_platform, temp_beside};
use crate::manifest::OCI_INDEX;
use crate::reference::Reference;
use crate::store::{Blobs, ManifestInfo, TagRecord};

const LAYOUT: &str = r#"{"imageLayoutVersion":"1.0.0"}"#;

/// Write `record` (or one platform of it) as an OCI layout at `dir`. Returns the number of
/// blobs copied.
pub fn write_layout(
    blobs: &Blobs,
    reference: &Reference,
    record: &TagRecord,
    platform: Option<&str>,
    dir: &Path,
) -> Result<usize, ExportError> {
    let mut index = open_layout(dir)?;
    let root = match platform {
        Some(p) => select_platform(record, p)?.clone(),
        None => record.manifests[0].clone(),
    };
    let digests = match platform {
        Some(_) => image_digests(blobs, &root)?,
        None => record.digests().cloned().collect(),
    };
    let blobs_dir = dir.join("blobs").join("sha256");
    fs::create_dir_all(&blobs_dir).map_err(io(&blobs_dir))?;
    let mut copied = 0;
    for digest in &digests {
        let dest = blobs_dir.join(digest.hex());
        if dest.exists() {
            continue;
        }
        let tmp = temp_beside(&dest);
        fs::copy(blobs.path(digest), &tmp).map_err(io(&tmp))?;
        fs::rename(&tmp, &dest).map_err(io(&dest))?;
        copied += 1;
    }
    add_entry(&mut index, descriptor(reference, &root));
    let path = dir.join("index.json");
    let tmp = temp_beside(&path);
    let text = serde_json::to_vec_pretty(&index).expect("index serialises");
    fs::write(&tmp, text).map_err(io(&tmp))?;
    fs::rename(&tmp, &path).map_err(io(&path))?;
    Ok(copied)
}

/// The existing layout's index, or a new empty layout. Refuses a non-empty non-layout dir.
fn open_layout(dir: &Path) -> Result<Value, ExportError> {
    let empty = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": []});
    if !dir.exists() {
        fs::create_dir_all(dir).map_err(io(dir))?;
    }
    let is_empty = fs::read_dir(dir).map_err(io(dir))?.next().is_none();
    let layout = dir.join("oci-layout");
    if is_empty {
        fs::write(&layout, LAYOUT).map_err(io(&layout))?;
        return Ok(empty);
    }
    let not_layout = || ExportError::NotALayout {
        path: dir.to_path_buf(),
    };
    if !layout.exists() {
        return Err(not_layout());
    }
    let text = fs::read(dir.join("index.json")).map_err(|_| not_layout())?;
    serde_json::from_slice(&text).map_err(|_| not_layout())
}

fn descriptor(reference: &Reference, m: &ManifestInfo) -> Value {
    let mut annotations = json!({"io.containerd.image.name": reference.to_string()});
    if let (Some(tag), None) = (reference.tag(), reference.digest()) {
        annotations["org.opencontainers.image.ref.name"] = json!(tag);
    }
    let mut d = json!({
        "mediaType": m.media_type,
        "digest": m.digest.to_string(),
        "size": m.size,
        "annotations": annotations,
    });
    if let Some(p) = &m.platform {
        let parts: Vec<&str> = p.split('/').collect();
        let mut platform = json!({"os": parts[0], "architecture": parts.get(1).unwrap_or(&"")});
        if let Some(v) = parts.get(2) {
            platform["variant"] = json!(v);
        }
        d["platform"] = platform;
    }
    d
}

/// Add an entry, replacing one with the same image name.
fn add_entry(index: &mut Value, entry: Value) {
    let name = entry["annotations"]["io.containerd.image.name"].clone();
    let manifests = index["manifests"].as_array_mut();
    let Some(manifests) = manifests else {
        index["manifests"] = json!([entry]);
        return;
    };
    manifests.retain(|m| m["annotations"]["io.containerd.image.name"] != name);
    manifests.push(entry);
}
