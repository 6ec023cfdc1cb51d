//! `docker load` / `podman load` tarball export, one platform.
//!
//! The tar holds both forms Docker 25+ writes: an OCI layout (`oci-layout`, `index.json`,
//! `blobs/sha256/…`) and the classic `manifest.json` naming the config and layers by their
//! blob paths, which older Docker and podman read. Layers stay compressed as stored (both
//! loaders decompress). The tar goes to a file (written beside the target and renamed when
//! complete; gzip-compressed for `.tar.gz`/`.tgz`, which both loaders read) or to stdout.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::write::GzEncoder;
use serde_json::json;

use super::{ExportError, image_digests, io, select_platform, temp_beside};
use crate::manifest::{DOCKER_V2, OCI_INDEX, OCI_MANIFEST};
use crate::reference::{Digest, Reference};
use crate::store::{Blobs, ManifestInfo, TagRecord};

/// Where an archive goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sink {
    /// A file, written beside its name and renamed when complete; gzip-compressed when
    /// `gzip` (`.tar.gz`, `.tgz`).
    File { path: PathBuf, gzip: bool },
    /// Standard output (`-o -`): the caller makes sure it is not a terminal.
    Stdout,
}

/// Write one platform of `record` as a docker-archive tar to `sink`; returns the platform.
pub fn write_archive(
    blobs: &Blobs,
    reference: &Reference,
    record: &TagRecord,
    platform: &str,
    sink: &Sink,
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
    let archive = Archive {
        blobs,
        reference,
        image,
        digests: &digests,
    };
    match sink {
        Sink::File { path, gzip } => to_file(&archive, path, *gzip)?,
        Sink::Stdout => {
            let what = Path::new("standard output");
            archive.write(BufWriter::new(std::io::stdout().lock()), what)?; // flushed
        }
    }
    Ok(image
        .platform
        .clone()
        .unwrap_or_else(|| platform.to_string()))
}

/// Write beside `path`, fsync, and rename: a failure leaves nothing under the name.
fn to_file(archive: &Archive, path: &Path, gzip: bool) -> Result<(), ExportError> {
    let tmp = temp_beside(path);
    let written = (|| {
        let file = BufWriter::new(File::create(&tmp).map_err(io(&tmp))?);
        let file = match gzip {
            true => {
                let gz = GzEncoder::new(file, Compression::default());
                archive.write(gz, &tmp)?.finish().map_err(io(&tmp))?
            }
            false => archive.write(file, &tmp)?,
        };
        let file = file
            .into_inner()
            .map_err(|e| e.into_error())
            .map_err(io(&tmp))?;
        file.sync_all().map_err(io(&tmp))
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    fs::rename(&tmp, path).map_err(io(path))
}

/// One image as the tar's entries.
struct Archive<'a> {
    blobs: &'a Blobs,
    reference: &'a Reference,
    image: &'a ManifestInfo,
    /// Manifest, config, layers.
    digests: &'a [Digest],
}

impl Archive<'_> {
    /// The whole tar into `w`; returns `w` (flushed) for the caller to finish. `what` names
    /// the output in errors.
    fn write<W: Write>(&self, w: W, what: &Path) -> Result<W, ExportError> {
        let mut tar = tar::Builder::new(w);
        let blob_path = |d: &Digest| format!("blobs/sha256/{}", d.hex());
        add_bytes(
            &mut tar,
            "oci-layout",
            br#"{"imageLayoutVersion":"1.0.0"}"#,
            what,
        )?;
        for d in self.digests {
            let mut f = self.blobs.open_file(d)?;
            let len = f.metadata().map_err(io(what))?.len();
            let mut header = header(len);
            tar.append_data(&mut header, blob_path(d), &mut f)
                .map_err(io(what))?;
        }
        let manifest_json = json!([{
            "Config": blob_path(&self.digests[1]),
            "RepoTags": self.repo_tags(),
            "Layers": self.digests[2..].iter().map(blob_path).collect::<Vec<_>>(),
        }]);
        let json = |v: &serde_json::Value| serde_json::to_vec(v).expect("json");
        add_bytes(&mut tar, "manifest.json", &json(&manifest_json), what)?;
        add_bytes(&mut tar, "index.json", &json(&self.index()), what)?;
        let mut out = tar.into_inner().map_err(io(what))?;
        out.flush().map_err(io(what))?;
        Ok(out)
    }

    fn repo_tags(&self) -> Vec<String> {
        match (self.reference.tag(), self.reference.digest()) {
            (Some(_), None) => vec![self.reference.to_string()],
            _ => Vec::new(),
        }
    }

    /// The OCI layout's index: the one image, named as containerd and podman read it.
    fn index(&self) -> serde_json::Value {
        let r = self.reference;
        let mut annotations = json!({"io.containerd.image.name": r.to_string()});
        if let Some(tag) = r.tag().filter(|_| r.digest().is_none()) {
            annotations["org.opencontainers.image.ref.name"] = json!(tag);
        }
        json!({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [{
            "mediaType": self.image.media_type, "digest": self.image.digest.to_string(),
            "size": self.image.size, "annotations": annotations,
        }]})
    }
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
