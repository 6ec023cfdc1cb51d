//! Manifest media types and what a manifest reaches.
//!
//! Owns: the Accept list sent upstream, recognising the media type of a manifest, and
//! extracting the descriptors a manifest or index points at (child manifests, configs,
//! layers). Parsing uses oci-client's manifest types, which fit Docker v2 and OCI alike;
//! schema 1 manifests get a small struct of their own.
//! Must not touch: the network or the store. Manifests are never re-serialised: callers keep
//! the exact bytes and use this module only to read them.

use oci_client::manifest::{ImageIndexEntry, OciDescriptor, OciImageIndex, OciImageManifest};
use serde::Deserialize;
use sha2::{Digest as _, Sha256};

use crate::reference::{Digest, ReferenceError};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_V2: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const DOCKER_V1: &str = "application/vnd.docker.distribution.manifest.v1+json";

/// Every manifest type we store, index types first: without the list types a registry
/// answers with one platform's manifest and the snapshot would be wrong.
pub const ACCEPT: [&str; 6] = [
    OCI_INDEX,
    DOCKER_LIST,
    OCI_MANIFEST,
    DOCKER_V2,
    DOCKER_V1_SIGNED,
    DOCKER_V1,
];

/// Largest manifest accepted from upstream (the distribution spec's recommended limit).
pub const MAX_MANIFEST_BYTES: usize = 4 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    #[error("manifest {digest} is not valid JSON of a known manifest type: {reason}")]
    Malformed { digest: String, reason: String },
    #[error("manifest {digest} names an invalid digest: {cause}")]
    BadDigest {
        digest: String,
        cause: ReferenceError,
    },
}

/// The sha256 digest of some bytes.
pub fn sha256(bytes: &[u8]) -> Digest {
    Digest::from_sha256(Sha256::digest(bytes).into())
}

/// True for the media types whose content is a list of manifests.
pub fn is_index(media_type: &str) -> bool {
    media_type == OCI_INDEX || media_type == DOCKER_LIST
}

/// True for every media type this module knows as a manifest or index.
pub fn is_manifest(media_type: &str) -> bool {
    ACCEPT.contains(&media_type)
}

/// A manifest a list points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Child {
    pub digest: Digest,
    pub media_type: String,
    pub size: u64,
    /// "os/arch[/variant]", e.g. "linux/arm/v7" or "unknown/unknown" for attestations.
    pub platform: Option<String>,
}

/// A config or layer a manifest points at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blob {
    pub digest: Digest,
    pub media_type: String,
    /// None for schema 1 manifests, which do not record sizes.
    pub size: Option<u64>,
    /// Foreign (non-distributable) layers live elsewhere and are not fetched.
    pub foreign: bool,
}

/// What a manifest reaches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Parsed {
    Index(Vec<Child>),
    Image { config: Blob, layers: Vec<Blob> },
    Schema1 { layers: Vec<Blob> },
}

impl Parsed {
    /// Config first, then layers; empty for an index.
    pub fn blobs(&self) -> Vec<Blob> {
        match self {
            Parsed::Index(_) => Vec::new(),
            Parsed::Image { config, layers } => std::iter::once(config.clone())
                .chain(layers.iter().cloned())
                .collect(),
            Parsed::Schema1 { layers } => layers.clone(),
        }
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Sniff {
    media_type: Option<String>,
    manifests: Option<serde_json::Value>,
    config: Option<serde_json::Value>,
    fs_layers: Option<serde_json::Value>,
    signatures: Option<serde_json::Value>,
}

/// The media type of manifest bytes: the upstream's Content-Type when it names a manifest
/// type, else the document's own `mediaType`, else its shape.
pub fn media_type_of(bytes: &[u8], content_type: Option<&str>) -> Option<String> {
    let declared = content_type
        .map(|c| c.split(';').next().unwrap_or("").trim().to_string())
        .filter(|c| is_manifest(c));
    if declared.is_some() {
        return declared;
    }
    let sniff: Sniff = serde_json::from_slice(bytes).ok()?;
    if let Some(mt) = sniff.media_type.filter(|m| is_manifest(m)) {
        return Some(mt);
    }
    let shape = if sniff.manifests.is_some() {
        OCI_INDEX
    } else if sniff.config.is_some() {
        OCI_MANIFEST
    } else if sniff.fs_layers.is_some() && sniff.signatures.is_some() {
        DOCKER_V1_SIGNED
    } else if sniff.fs_layers.is_some() {
        DOCKER_V1
    } else {
        return None;
    };
    Some(shape.to_string())
}

/// Read what a manifest of the given media type points at.
pub fn parse(digest: &Digest, media_type: &str, bytes: &[u8]) -> Result<Parsed, ManifestError> {
    let malformed = |e: serde_json::Error| ManifestError::Malformed {
        digest: digest.to_string(),
        reason: e.to_string(),
    };
    if is_index(media_type) {
        let index: OciImageIndex = serde_json::from_slice(bytes).map_err(malformed)?;
        let children = index.manifests.iter().map(|e| child(digest, e));
        return Ok(Parsed::Index(children.collect::<Result<_, _>>()?));
    }
    if media_type == DOCKER_V1_SIGNED || media_type == DOCKER_V1 {
        return parse_schema1(digest, bytes).map_err(malformed);
    }
    let image: OciImageManifest = serde_json::from_slice(bytes).map_err(malformed)?;
    let layers = image.layers.iter().map(|d| blob(digest, d));
    Ok(Parsed::Image {
        config: blob(digest, &image.config)?,
        layers: layers.collect::<Result<_, _>>()?,
    })
}

fn parse_digest(parent: &Digest, s: &str) -> Result<Digest, ManifestError> {
    Digest::parse(s).map_err(|cause| ManifestError::BadDigest {
        digest: parent.to_string(),
        cause,
    })
}

fn child(parent: &Digest, e: &ImageIndexEntry) -> Result<Child, ManifestError> {
    let platform = e.platform.as_ref().map(|p| match &p.variant {
        Some(v) if !v.is_empty() => format!("{}/{}/{}", p.os, p.architecture, v),
        _ => format!("{}/{}", p.os, p.architecture),
    });
    Ok(Child {
        digest: parse_digest(parent, &e.digest)?,
        media_type: e.media_type.clone(),
        size: e.size.max(0) as u64,
        platform,
    })
}

fn blob(parent: &Digest, d: &OciDescriptor) -> Result<Blob, ManifestError> {
    Ok(Blob {
        digest: parse_digest(parent, &d.digest)?,
        media_type: d.media_type.clone(),
        size: Some(d.size.max(0) as u64),
        foreign: d.media_type.contains("foreign") || d.media_type.contains("nondistributable"),
    })
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Schema1 {
    fs_layers: Vec<FsLayer>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct FsLayer {
    blob_sum: String,
}

fn parse_schema1(parent: &Digest, bytes: &[u8]) -> Result<Parsed, serde_json::Error> {
    let m: Schema1 = serde_json::from_slice(bytes)?;
    let mut layers: Vec<Blob> = Vec::new();
    for l in m.fs_layers {
        let digest = parse_digest(parent, &l.blob_sum)
            .map_err(|e| serde::de::Error::custom(e.to_string()))?;
        if !layers.iter().any(|b| b.digest == digest) {
            layers.push(Blob {
                digest,
                media_type: "application/vnd.docker.container.image.rootfs.diff+x-gtar".into(),
                size: None,
                foreign: false,
            });
        }
    }
    Ok(Parsed::Schema1 { layers })
}

/// The platform string of an image config ("linux/arm/v7"), if it says.
pub fn config_platform(config: &[u8]) -> Option<String> {
    #[derive(Deserialize)]
    struct Config {
        os: Option<String>,
        architecture: Option<String>,
        variant: Option<String>,
    }
    let c: Config = serde_json::from_slice(config).ok()?;
    let (os, arch) = (c.os?, c.architecture?);
    Some(match c.variant.filter(|v| !v.is_empty()) {
        Some(v) => format!("{os}/{arch}/{v}"),
        None => format!("{os}/{arch}"),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(c: char) -> String {
        format!("sha256:{}", c.to_string().repeat(64))
    }

    #[test]
    fn parses_an_index_with_variants_and_attestations() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{OCI_INDEX}","manifests":[
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":10,"platform":{{"os":"linux","architecture":"arm","variant":"v7"}}}},
            {{"mediaType":"{OCI_MANIFEST}","digest":"{}","size":11,"platform":{{"os":"unknown","architecture":"unknown"}}}}]}}"#,
            d('a'),
            d('b')
        );
        let root = sha256(json.as_bytes());
        let Parsed::Index(children) = parse(&root, OCI_INDEX, json.as_bytes()).unwrap() else {
            panic!("not an index")
        };
        assert_eq!(children.len(), 2);
        assert_eq!(children[0].platform.as_deref(), Some("linux/arm/v7"));
        assert_eq!(children[1].platform.as_deref(), Some("unknown/unknown"));
        assert_eq!(children[1].size, 11);
    }

    #[test]
    fn parses_an_image_config_first() {
        let json = format!(
            r#"{{"schemaVersion":2,"mediaType":"{DOCKER_V2}","config":{{"mediaType":"c","digest":"{}","size":1}},
            "layers":[{{"mediaType":"application/vnd.docker.image.rootfs.foreign.diff.tar.gzip","digest":"{}","size":2}}]}}"#,
            d('c'),
            d('e')
        );
        let parsed = parse(&sha256(b"x"), DOCKER_V2, json.as_bytes()).unwrap();
        let blobs = parsed.blobs();
        assert_eq!(blobs[0].digest.to_string(), d('c'));
        assert!(blobs[1].foreign);
    }

    #[test]
    fn schema1_layers_are_deduplicated() {
        let json = format!(
            r#"{{"schemaVersion":1,"fsLayers":[{{"blobSum":"{0}"}},{{"blobSum":"{0}"}},{{"blobSum":"{1}"}}],"signatures":[]}}"#,
            d('1'),
            d('2')
        );
        let mt = media_type_of(json.as_bytes(), Some("application/json")).unwrap();
        assert_eq!(mt, DOCKER_V1_SIGNED);
        let parsed = parse(&sha256(b"x"), &mt, json.as_bytes()).unwrap();
        assert_eq!(parsed.blobs().len(), 2);
    }

    #[test]
    fn bad_digests_and_bad_json_are_errors() {
        let json =
            r#"{"schemaVersion":2,"manifests":[{"mediaType":"m","digest":"sha256:zz","size":1}]}"#;
        let err = parse(&sha256(b"x"), OCI_INDEX, json.as_bytes()).unwrap_err();
        assert!(err.to_string().contains("invalid digest"), "{err}");
        let err = parse(&sha256(b"x"), OCI_MANIFEST, b"{").unwrap_err();
        assert!(err.to_string().contains("not valid JSON"), "{err}");
    }

    #[test]
    fn media_type_prefers_the_content_type_then_the_document() {
        let doc = format!(r#"{{"mediaType":"{DOCKER_LIST}","manifests":[]}}"#);
        assert_eq!(
            media_type_of(doc.as_bytes(), Some(&format!("{OCI_INDEX}; charset=utf-8"))),
            Some(OCI_INDEX.into())
        );
        assert_eq!(
            media_type_of(doc.as_bytes(), None),
            Some(DOCKER_LIST.into())
        );
        assert_eq!(media_type_of(b"[]", None), None);
    }

    #[test]
    fn config_platform_reads_the_variant() {
        let c = br#"{"os":"linux","architecture":"arm","variant":"v7"}"#;
        assert_eq!(config_platform(c).as_deref(), Some("linux/arm/v7"));
        assert_eq!(config_platform(b"{}"), None);
    }
}
