//! `docker load` / `podman load` tarball export, one platform.
//!
//! The tar holds both forms Docker 25+ writes: an OCI layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) and the classic `manifest.json` naming the config and layers by their
//! blob paths, which older Docker and podman read. Layers stay compressed as stored (both
//! loaders decompress). The tar is written beside the target and renamed when complete.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::Path;

use serde_json::json;

use super::{ExportError, image_digests, io, select_platform, temp_beside};
use crate::manifest::{DOCKER_V2, OCI_INDEX, OCI_MANIFEST};
use crate::reference::{Digest, Reference};
use crate::store::{Blobs, ManifestInfo, TagRecord};

/// Write one platform of `record` as a docker-archive tar at `path`; returns the platform.
pub fn write_archive(
    blobs: &Blobs,
    reference: &Reference,
    record: &TagRecord,
    platform: &str,
    path: &Path,
) -> Result<String, ExportError> {
    let image = select_platform(record, platform)?;
    if ![OCI_MANIFEST, DOCKER_V2].contains(&image.media_type.as_str()) {
        return Err(ExportError::Unsupported {
            reference: reference.to_string(),
            why: format!(
                "a {} manifest cannot be written as a docker archive; export an OCI layout instead",
                image.media_type
            ),
        });
    }
    let digests = image_digests(blobs, image)?; // manifest, config, layers
    let tmp = temp_beside(path);
    let result = write_tar(blobs, reference, image, &digests, &tmp);
    if let Err(e) = result {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).map_err(io(path))?;
    Ok(image
        .platform
        .clone()
        .unwrap_or_else(|| platform.to_string()))
}

fn write_tar(
    blobs: &Blobs,
    reference: &Reference,
    image: &ManifestInfo,
    digests: &[Digest],
    tmp: &Path,
) -> Result<(), ExportError> {
    let file = File::create(tmp).map_err(io(tmp))?;
    let mut tar = tar::Builder::new(BufWriter::new(file));
    let blob_path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
    add_bytes(
        &mut tar,
        "oci-layout",
        br#"{"imageLayoutVersion":"1.0.0"}"#,
        tmp,
    )?;
    for d in digests {
        let mut f = blobs.open_file(d)?;
        let len = f.metadata().map_err(io(tmp))?.len();
        let mut header = header(len);
        tar.append_data(&mut header, blob_path(d), &mut f)
            .map_err(io(tmp))?;
    }
    let repo_tags: Vec<String> = match (reference.tag(), reference.digest()) {
        (Some(_), None) => vec![reference.to_string()],
        _ => Vec::new(),
    };
    let manifest_json = json!([{
        "Config": blob_path(&digests[1]),
        "RepoTags": repo_tags,
        "Layers": digests[2..].iter().map(blob_path).collect::<Vec<_>>(),
    }]);
    let mut annotations = json!({"io.containerd.image.name": reference.to_string()});
    if let Some(tag) = reference.tag().filter(|_| reference.digest().is_none()) {
        annotations["org.opencontainers.image.ref.name"] = json!(tag);
    }
    let index = json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
        "mediaType": image.media_type, "digest": image.digest.to_string(),
        "size": image.size, "annotations": annotations,
    }]});
    add_bytes(
        &mut tar,
        "manifest.json",
        &serde_json::to_vec(&manifest_json).expect("json"),
        tmp,
    )?;
    add_bytes(
        &mut tar,
        "index.json",
        &serde_json::to_vec(&index).expect("json"),
        tmp,
    )?;
    let mut out = tar.into_inner().map_err(io(tmp))?;
    out.flush().map_err(io(tmp))?;
    out.get_ref().sync_all().map_err(io(tmp))
}

fn header(len: u64) -> tar::Header {
    let mut h = tar::Header::new_ustar();
    h.set_size(len);
    h.set_mode(0o644);
    h.set_mtime(0);
    h.set_entry_type(tar::EntryType::Regular);
    h
}

fn add_bytes<W: Write>(
    tar: &mut tar::Builder<W>,
    name: &str,
    bytes: &[u8],
    tmp: &Path,
) -> Result<(), ExportError> {
    let mut h = header(bytes.len() as u64);
    tar.append_data(&mut h, name, bytes).map_err(io(tmp))
}
