//! Export a pinned snapshot out of the store: an OCI image layout directory (`oci.rs`) or a
//! `docker load`-able tarball (`docker.rs`).
//!
//! Owns: choosing what to export (all platforms, or one) and writing the output so that a
//! failure leaves no half-written result under the requested name.
//! Must not touch: the store's files except by reading blobs through the store API; never
//! the network (the caller pins first).

mod docker;
mod oci;

use std::path::{Path, PathBuf};

use crate::store::{Blobs, ManifestInfo, StoreError, TagRecord};

pub use docker::{Sink, write_archive};
pub use oci::write_layout;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("{reference} has no platform {wanted}; it has {available}")]
    NoSuchPlatform {
        reference: String,
        wanted: String,
        available: String,
    },
    #[error("{path} exists and is not an OCI image layout; choose another path")]
    NotALayout { path: PathBuf },
    #[error("{reference}: {why}")]
    Unsupported { reference: String, why: String },
    #[error("{path}: {cause}")]
    Io {
        path: PathBuf,
        cause: std::io::Error,
    },
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub(crate) fn io(path: &Path) -> impl Fn(std::io::Error) -> ExportError + '_ {
    move |cause| ExportError::Io {
        path: path.to_path_buf(),
        cause,
    }
}

/// The host's platform in OCI terms (`linux/amd64`, `linux/arm64`, …).
pub fn host_platform() -> String {
    crate::platform::Platform::host().to_string()
}

/// True when `have` satisfies `want` (`linux/arm64` matches `linux/arm64/v8`).
fn platform_matches(want: &str, have: &str) -> bool {
    let want = want.trim_end_matches('/');
    have == want
        || have
            .strip_prefix(want)
            .is_some_and(|rest| rest.starts_with('/'))
}

/// The image manifest for one platform: the root itself when the snapshot has one
/// manifest, else the index entry that matches.
pub fn select_platform<'a>(
    record: &'a TagRecord,
    wanted: &str,
) -> Result<&'a ManifestInfo, ExportError> {
    let images: Vec<&ManifestInfo> = record
        .manifests
        .iter()
        .filter(|m| !crate::manifest::is_index(&m.media_type))
        .collect();
    if let [only] = images.as_slice()
        && only
            .platform
            .as_deref()
            .is_none_or(|p| platform_matches(wanted, p))
    {
        return Ok(only);
    }
    images
        .iter()
        .find(|m| {
            m.platform
                .as_deref()
                .is_some_and(|p| platform_matches(wanted, p))
        })
        .copied()
        .ok_or_else(|| ExportError::NoSuchPlatform {
            reference: record.key.clone(),
            wanted: wanted.to_string(),
            available: record.platforms.join(", "),
        })
}

/// A sibling temp path for writing `path` and renaming it into place.
fn temp_beside(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.stablebuild-{}", std::process::id()))
}

/// One image manifest and the non-foreign blobs it names (config first).
fn image_digests(
    blobs: &Blobs,
    m: &ManifestInfo,
) -> Result<Vec<crate::reference::Digest>, ExportError> {
    let bytes = blobs.read(&m.digest)?;
    let parsed = crate::manifest::parse(&m.digest, &m.media_type, &bytes).map_err(|e| {
        ExportError::Unsupported {
            reference: m.digest.to_string(),
            why: e.to_string(),
        }
    })?;
    let blobs = parsed.blobs().into_iter().filter(|b| !b.foreign);
    Ok(std::iter::once(m.digest.clone())
        .chain(blobs.map(|b| b.digest))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::platform_matches;

    #[test]
    fn platforms_match_by_prefix_of_components() {
        assert!(platform_matches("linux/arm64", "linux/arm64"));
        assert!(platform_matches("linux/arm64", "linux/arm64/v8"));
        assert!(platform_matches("linux/arm", "linux/arm/v7"));
        assert!(!platform_matches("linux/arm", "linux/arm64"));
        assert!(!platform_matches("linux/arm/v6", "linux/arm/v7"));
    }
}
