//! Deterministic fixture images, built from `fixtures/images.json` and pushed to a registry.
//!
//! This file owns the fixture images (see `fixtures/README.md`): building their layers (real tar
//! archives, gzip with a fixed level and header), configs, manifests and indexes byte for byte
//! the same on every run, and pushing them with the Registry v2 push API (blob uploads, then
//! manifests by digest, then the tag). Pushing sends only POST, PATCH and PUT requests, so every
//! GET or HEAD in the registry's access log comes from whoever pulls.
//!
//! The big image is never held in memory: its layer is generated from a seed in chunks on a
//! blocking thread and streamed to the registry in one PATCH. Its digest is pinned in
//! images.json for the usual sizes (the registry verifies it; a stale pin falls back to hashing
//! with a warning); for other sizes it is computed on the way, before the closing PUT.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::OnceLock;
use std::time::Duration;

use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};

pub const OCI_INDEX: &str = "application/vnd.oci.image.index.v1+json";
pub const OCI_MANIFEST: &str = "application/vnd.oci.image.manifest.v1+json";
pub const OCI_CONFIG: &str = "application/vnd.oci.image.config.v1+json";
pub const OCI_LAYER_GZIP: &str = "application/vnd.oci.image.layer.v1.tar+gzip";
pub const OCI_LAYER_TAR: &str = "application/vnd.oci.image.layer.v1.tar";
pub const DOCKER_LIST: &str = "application/vnd.docker.distribution.manifest.list.v2+json";
pub const DOCKER_MANIFEST: &str = "application/vnd.docker.distribution.manifest.v2+json";
pub const DOCKER_CONFIG: &str = "application/vnd.docker.container.image.v1+json";
pub const DOCKER_LAYER_GZIP: &str = "application/vnd.docker.image.rootfs.diff.tar.gzip";
pub const DOCKER_LAYER_TAR: &str = "application/vnd.docker.image.rootfs.diff.tar";
pub const DOCKER_V1_SIGNED: &str = "application/vnd.docker.distribution.manifest.v1+prettyjws";
pub const IN_TOTO: &str = "application/vnd.in-toto+json";

/// Every manifest media type, as a client pulling by tag would accept them.
pub const MANIFEST_ACCEPT: [&str; 5] = [
    OCI_INDEX,
    OCI_MANIFEST,
    DOCKER_LIST,
    DOCKER_MANIFEST,
    DOCKER_V1_SIGNED,
];

/// Size of the random file in `library/big:1` that `push_all` uses.
pub const DEFAULT_BIG_SIZE: u64 = 64 << 20;
/// Chunk size of the big layer's generator (the upload streams the chunks in one PATCH).
const BIG_CHUNK: usize = 8 << 20;
/// Timestamp in every config (the images are reproducible, not dated).
const EPOCH: &str = "1970-01-01T00:00:00Z";
const PATH_ENV: &str = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
const PROVENANCE: &str = "https://slsa.dev/provenance/v0.2";

/// What a push put on the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pushed {
    pub repo: String,
    pub tag: String,
    /// Digest of the tag's manifest or index, `sha256:…`.
    pub digest: String,
    /// Media type of the tag's manifest or index.
    pub media_type: String,
    /// Child manifest digests in index order (empty for a single manifest).
    pub manifests: Vec<String>,
    /// Every config and layer digest reachable from the tag, deduplicated, in push order.
    pub blobs: Vec<String>,
    /// Bytes of the root manifest + child manifests + unique blobs.
    pub total_size: u64,
}

// ---------------------------------------------------------------------------------------------
// Public API
// ---------------------------------------------------------------------------------------------

/// `library/multi:1`: OCI index, 3 platforms + an attestation manifest. Generation 1 is the
/// same structure with other contents (all but the shared base layer change).
pub async fn push_multi(registry_url: &str, generation: u32) -> Pushed {
    push_image(registry_url, image("multi"), generation).await
}

/// `library/dockerlist:1`: Docker manifest list, linux/amd64 and linux/arm64.
pub async fn push_dockerlist(registry_url: &str) -> Pushed {
    push_image(registry_url, image("dockerlist"), 0).await
}

/// `library/single:1`: one OCI manifest, one layer.
pub async fn push_single(registry_url: &str) -> Pushed {
    push_image(registry_url, image("single"), 0).await
}

/// `library/many:1`: one OCI manifest, 40 small layers.
pub async fn push_many(registry_url: &str) -> Pushed {
    push_image(registry_url, image("many"), 0).await
}

/// `library/big:1`: one OCI manifest with one uncompressed tar layer holding a file of `size`
/// pseudo-random bytes. Generated and uploaded streaming.
pub async fn push_big(registry_url: &str, size: u64) -> Pushed {
    push_big_image(registry_url, image("big"), size).await
}

/// multi (generation 0), dockerlist, single, many, big (`DEFAULT_BIG_SIZE`), in that order.
pub async fn push_all(registry_url: &str) -> Vec<Pushed> {
    push_all_sized(registry_url, DEFAULT_BIG_SIZE).await
}

/// `push_all` with the big image's file size given.
pub async fn push_all_sized(registry_url: &str, big_size: u64) -> Vec<Pushed> {
    let (multi, dockerlist, single, many, big) = tokio::join!(
        push_multi(registry_url, 0),
        push_dockerlist(registry_url),
        push_single(registry_url),
        push_many(registry_url),
        push_big(registry_url, big_size),
    );
    vec![multi, dockerlist, single, many, big]
}

/// GETs a manifest with the full Accept list (OCI index and manifest, Docker list, v2 and v1
/// signed, comma-joined); panics unless 200. Returns (body, Content-Type).
pub async fn fetch_manifest_bytes(
    registry_url: &str,
    repo: &str,
    reference: &str,
) -> (Vec<u8>, String) {
    let url = format!("{registry_url}/v2/{repo}/manifests/{reference}");
    let response = client()
        .get(&url)
        .header("Accept", MANIFEST_ACCEPT.join(", "))
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let content_type = header(&response, "content-type");
    let status = response.status();
    let body = response.bytes().await.expect("manifest body").to_vec();
    assert_eq!(
        status.as_u16(),
        200,
        "GET {url}: {}",
        String::from_utf8_lossy(&body)
    );
    (body, content_type)
}

/// Tags what `repo:reference` names as `repo:new_tag` too (the manifest bytes PUT again under
/// the new tag, so both share one digest); returns that digest.
pub async fn retag(registry_url: &str, repo: &str, reference: &str, new_tag: &str) -> String {
    let (bytes, media_type) = fetch_manifest_bytes(registry_url, repo, reference).await;
    let url = format!("{registry_url}/v2/{repo}/manifests/{new_tag}");
    let response = client()
        .put(&url)
        .header("Content-Type", media_type)
        .body(bytes.clone())
        .send()
        .await
        .unwrap_or_else(|e| panic!("PUT {url}: {e}"));
    assert_eq!(response.status().as_u16(), 201, "PUT {url}");
    sha256_digest(&bytes)
}

/// GETs a blob; panics unless 200.
pub async fn fetch_blob(registry_url: &str, repo: &str, digest: &str) -> Vec<u8> {
    let url = format!("{registry_url}/v2/{repo}/blobs/{digest}");
    let response = client()
        .get(&url)
        .send()
        .await
        .unwrap_or_else(|e| panic!("GET {url}: {e}"));
    let status = response.status();
    let body = response.bytes().await.expect("blob body").to_vec();
    assert_eq!(status.as_u16(), 200, "GET {url}");
    body
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256_digest(bytes: &[u8]) -> String {
    hex_digest(Sha256::digest(bytes).iter())
}

// ---------------------------------------------------------------------------------------------
// The description: fixtures/images.json
// ---------------------------------------------------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Spec {
    gzip_level: u32,
    images: Vec<ImageSpec>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ImageSpec {
    name: String,
    repo: String,
    tag: String,
    format: Format,
    index: bool,
    platforms: Vec<String>,
    layers_per_platform: usize,
    files_per_layer: usize,
    compression: Compression,
    shared_layer: bool,
    attestation: bool,
    #[serde(default)]
    random_file: Option<RandomFile>,
    cmd: Vec<String>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Format {
    Oci,
    Docker,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
enum Compression {
    Gzip,
    None,
}

#[derive(Deserialize, Clone)]
#[serde(deny_unknown_fields)]
struct RandomFile {
    path: String,
    seed: u64,
    /// Layer digests already known for some file sizes: pushing those sizes skips hashing (the
    /// registry still verifies the digest, and a stale entry falls back to hashing).
    #[serde(default)]
    known_digests: BTreeMap<u64, String>,
}

impl Format {
    fn index(self) -> &'static str {
        match self {
            Format::Oci => OCI_INDEX,
            Format::Docker => DOCKER_LIST,
        }
    }

    fn manifest(self) -> &'static str {
        match self {
            Format::Oci => OCI_MANIFEST,
            Format::Docker => DOCKER_MANIFEST,
        }
    }

    fn config(self) -> &'static str {
        match self {
            Format::Oci => OCI_CONFIG,
            Format::Docker => DOCKER_CONFIG,
        }
    }

    fn layer(self, compression: Compression) -> &'static str {
        match (self, compression) {
            (Format::Oci, Compression::Gzip) => OCI_LAYER_GZIP,
            (Format::Oci, Compression::None) => OCI_LAYER_TAR,
            (Format::Docker, Compression::Gzip) => DOCKER_LAYER_GZIP,
            (Format::Docker, Compression::None) => DOCKER_LAYER_TAR,
        }
    }
}

fn spec() -> &'static Spec {
    static SPEC: OnceLock<Spec> = OnceLock::new();
    SPEC.get_or_init(|| {
        serde_json::from_str(include_str!("../../fixtures/images.json"))
            .expect("fixtures/images.json does not parse")
    })
}

fn image(name: &str) -> &'static ImageSpec {
    spec()
        .images
        .iter()
        .find(|i| i.name == name)
        .unwrap_or_else(|| panic!("no image {name:?} in fixtures/images.json"))
}

/// `os/architecture[/variant]`, as written in images.json.
struct Platform {
    os: String,
    architecture: String,
    variant: Option<String>,
}

impl Platform {
    fn parse(text: &str) -> Platform {
        let parts: Vec<&str> = text.split('/').collect();
        assert!(matches!(parts.len(), 2 | 3), "bad platform {text:?}");
        Platform {
            os: parts[0].to_string(),
            architecture: parts[1].to_string(),
            variant: parts.get(2).map(|v| v.to_string()),
        }
    }

    fn unknown() -> Platform {
        Platform::parse("unknown/unknown")
    }

    /// The `platform` object of an index entry.
    fn json(&self) -> Value {
        let mut value = json!({"architecture": self.architecture, "os": self.os});
        if let Some(variant) = &self.variant {
            value["variant"] = json!(variant);
        }
        value
    }

    fn label(&self) -> String {
        match &self.variant {
            Some(v) => format!("{}/{}/{v}", self.os, self.architecture),
            None => format!("{}/{}", self.os, self.architecture),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Building: blobs, layers, configs, manifests
// ---------------------------------------------------------------------------------------------

/// A blob held in memory, with the descriptor fields a manifest needs.
struct Blob {
    media_type: &'static str,
    digest: String,
    bytes: Vec<u8>,
    annotations: Option<Value>,
}

impl Blob {
    fn new(media_type: &'static str, bytes: Vec<u8>) -> Blob {
        Blob {
            media_type,
            digest: sha256_digest(&bytes),
            bytes,
            annotations: None,
        }
    }

    fn descriptor(&self) -> Value {
        descriptor(
            self.media_type,
            &self.digest,
            self.bytes.len() as u64,
            &self.annotations,
        )
    }
}

/// A manifest's exact bytes plus the blobs it references (config first). For the big image the
/// streamed layer is not among `blobs`.
struct Manifest {
    blob: Blob,
    blobs: Vec<Blob>,
    platform: Platform,
}

/// A tag's content: the root (an index, or the only manifest) and, for an index, its children.
struct Built {
    root: Blob,
    children: Vec<Manifest>,
    single: Option<Manifest>,
}

fn descriptor(media_type: &str, digest: &str, size: u64, annotations: &Option<Value>) -> Value {
    let mut value = json!({"mediaType": media_type, "digest": digest, "size": size});
    if let Some(annotations) = annotations {
        value["annotations"] = annotations.clone();
    }
    value
}

fn hex_digest<'a>(bytes: impl Iterator<Item = &'a u8>) -> String {
    let mut text = String::from("sha256:");
    for b in bytes {
        write!(text, "{b:02x}").expect("write to string");
    }
    text
}

/// A tar archive of `entries` (path, None for a directory), sorted by path, with the metadata
/// fixed: mtime 0, uid/gid 0, mode 0755 for directories and 0644 for files.
fn tar_archive(mut entries: Vec<(String, Option<Vec<u8>>)>) -> Vec<u8> {
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    let mut builder = tar::Builder::new(Vec::new());
    for (path, content) in entries {
        let data = content.unwrap_or_default();
        let mut header = tar_header(&path, data.len() as u64);
        builder
            .append_data(&mut header, &path, data.as_slice())
            .expect("append tar entry");
    }
    builder.into_inner().expect("finish tar archive")
}

/// A ustar header; a path ending in `/` makes a directory.
fn tar_header(path: &str, size: u64) -> tar::Header {
    let mut header = tar::Header::new_ustar();
    if path.ends_with('/') {
        header.set_entry_type(tar::EntryType::Directory);
        header.set_mode(0o755);
    } else {
        header.set_entry_type(tar::EntryType::Regular);
        header.set_mode(0o644);
    }
    header.set_size(size);
    header.set_mtime(0);
    header.set_uid(0);
    header.set_gid(0);
    header
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let level = flate2::Compression::new(spec().gzip_level);
    let mut encoder = flate2::GzBuilder::new().mtime(0).write(Vec::new(), level);
    encoder.write_all(data).expect("gzip");
    encoder.finish().expect("gzip finish")
}

/// A layer blob (compressed as the image says) and its diff_id.
fn layer(img: &ImageSpec, entries: Vec<(String, Option<Vec<u8>>)>) -> (Blob, String) {
    let tar = tar_archive(entries);
    let diff_id = sha256_digest(&tar);
    let bytes = match img.compression {
        Compression::Gzip => gzip(&tar),
        Compression::None => tar,
    };
    (Blob::new(img.format.layer(img.compression), bytes), diff_id)
}

/// Layer `i` of one platform: `fixture/layer-i/file-j.txt`, text unique to image, generation,
/// platform and layer.
fn platform_layer(
    img: &ImageSpec,
    generation: u32,
    platform: &Platform,
    i: usize,
) -> (Blob, String) {
    let dir = format!("fixture/layer-{i}/");
    let mut entries = vec![("fixture/".to_string(), None), (dir.clone(), None)];
    for j in 0..img.files_per_layer {
        let text = format!(
            "{}:{} generation {generation} platform {} layer {i} file {j}\n",
            img.repo,
            img.tag,
            platform.label()
        );
        entries.push((format!("{dir}file-{j}.txt"), Some(text.into_bytes())));
    }
    layer(img, entries)
}

/// The base layer every platform (and every generation) of an image shares.
fn shared_layer(img: &ImageSpec) -> (Blob, String) {
    let mut entries = vec![("shared/".to_string(), None)];
    for j in 0..img.files_per_layer {
        let text = format!("{} shared base layer file {j}\n", img.repo);
        entries.push((format!("shared/file-{j}.txt"), Some(text.into_bytes())));
    }
    layer(img, entries)
}

/// An image config: platform, Cmd, a label naming the fixture, rootfs diff_ids, history.
fn config(img: &ImageSpec, generation: u32, platform: &Platform, diff_ids: &[String]) -> Blob {
    let history: Vec<Value> = (0..diff_ids.len())
        .map(|i| json!({"created": EPOCH, "created_by": format!("stablebuild fixture layer {i}")}))
        .collect();
    let label = format!(
        "{}:{} generation {generation} {}",
        img.repo,
        img.tag,
        platform.label()
    );
    let mut value = json!({
        "architecture": platform.architecture,
        "os": platform.os,
        "created": EPOCH,
        "config": {
            "Cmd": img.cmd,
            "Env": [PATH_ENV],
            "Labels": {"org.stablebuild.fixture": label},
        },
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": history,
    });
    if let Some(variant) = &platform.variant {
        value["variant"] = json!(variant);
    }
    Blob::new(img.format.config(), to_json(&value))
}

fn to_json(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).expect("serialize json")
}

/// An image manifest over `config` and `layers` (descriptors only: `layers` may be streamed).
fn image_manifest(format: Format, config: &Blob, layers: &[Value]) -> Blob {
    let value = json!({
        "schemaVersion": 2,
        "mediaType": format.manifest(),
        "config": config.descriptor(),
        "layers": layers,
    });
    Blob::new(format.manifest(), to_json(&value))
}

/// One platform's manifest: shared base layer (if any) first, then the platform's own layers.
fn platform_manifest(img: &ImageSpec, generation: u32, platform: Platform) -> Manifest {
    let mut layers = Vec::new();
    if img.shared_layer {
        layers.push(shared_layer(img));
    }
    layers.extend(
        (0..img.layers_per_platform).map(|i| platform_layer(img, generation, &platform, i)),
    );
    let diff_ids: Vec<String> = layers.iter().map(|(_, d)| d.clone()).collect();
    let config = config(img, generation, &platform, &diff_ids);
    let descriptors: Vec<Value> = layers.iter().map(|(b, _)| b.descriptor()).collect();
    let blob = image_manifest(img.format, &config, &descriptors);
    let mut blobs = vec![config];
    blobs.extend(layers.into_iter().map(|(b, _)| b));
    Manifest {
        blob,
        blobs,
        platform,
    }
}

/// A Docker-Hub-style (buildx) provenance attestation for `subject`: an OCI manifest whose one
/// layer is an in-toto statement, listed as platform unknown/unknown.
fn attestation(img: &ImageSpec, generation: u32, subject: &Manifest) -> Manifest {
    let statement = json!({
        "_type": "https://in-toto.io/Statement/v0.1",
        "predicateType": PROVENANCE,
        "subject": [{
            "name": format!("pkg:docker/{}@{}?platform={}", img.repo, img.tag,
                            subject.platform.label().replace('/', "%2F")),
            "digest": {"sha256": subject.blob.digest.trim_start_matches("sha256:")},
        }],
        "predicate": {
            "builder": {"id": "stablebuild-fixtures"},
            "buildType": "https://mobyproject.org/buildkit@v1",
            "metadata": {"buildInvocationID": format!("{} generation {generation}", img.name)},
        },
    });
    let mut statement = Blob::new(IN_TOTO, to_json(&statement));
    statement.annotations = Some(json!({"in-toto.io/predicate-type": PROVENANCE}));
    let config = json!({
        "architecture": "unknown",
        "os": "unknown",
        "config": {},
        "rootfs": {"type": "layers", "diff_ids": [statement.digest]},
    });
    let config = Blob::new(OCI_CONFIG, to_json(&config));
    let blob = image_manifest(Format::Oci, &config, &[statement.descriptor()]);
    Manifest {
        blob,
        blobs: vec![config, statement],
        platform: Platform::unknown(),
    }
}

/// The index entry of a child manifest; an attestation also names what it attests.
fn index_entry(child: &Manifest, attests: Option<&str>) -> Value {
    let annotations = attests.map(|digest| {
        json!({
            "vnd.docker.reference.digest": digest,
            "vnd.docker.reference.type": "attestation-manifest",
        })
    });
    let mut entry = child.blob.descriptor();
    if let Some(annotations) = annotations {
        entry["annotations"] = annotations;
    }
    entry["platform"] = child.platform.json();
    entry
}

/// Builds a whole tag in memory (every image but big).
fn build_image(img: &ImageSpec, generation: u32) -> Built {
    let mut children: Vec<Manifest> = img
        .platforms
        .iter()
        .map(|p| platform_manifest(img, generation, Platform::parse(p)))
        .collect();
    if !img.index {
        assert_eq!(
            children.len(),
            1,
            "{}: a single manifest has one platform",
            img.name
        );
        let single = children.pop().expect("one platform");
        let root = Blob::new(single.blob.media_type, single.blob.bytes.clone());
        return Built {
            root,
            children,
            single: Some(single),
        };
    }
    let mut entries: Vec<Value> = children.iter().map(|c| index_entry(c, None)).collect();
    if img.attestation {
        let attestation = attestation(img, generation, &children[0]);
        entries.push(index_entry(&attestation, Some(&children[0].blob.digest)));
        children.push(attestation);
    }
    let value = json!({"schemaVersion": 2, "mediaType": img.format.index(), "manifests": entries});
    Built {
        root: Blob::new(img.format.index(), to_json(&value)),
        children,
        single: None,
    }
}

// ---------------------------------------------------------------------------------------------
// The big image: a streamed, seeded layer
// ---------------------------------------------------------------------------------------------

/// The big layer as a byte sequence: tar headers, `size` random bytes, padding and trailer.
#[derive(Clone)]
struct BigLayer {
    prefix: Vec<u8>,
    size: u64,
    suffix: Vec<u8>,
    seed: u64,
}

impl BigLayer {
    fn new(file: &RandomFile, size: u64) -> BigLayer {
        let dir = file.path.rsplit_once('/').map(|(d, _)| format!("{d}/"));
        let mut prefix = Vec::new();
        for (path, len) in dir
            .iter()
            .map(|d| (d.as_str(), 0))
            .chain([(file.path.as_str(), size)])
        {
            let mut header = tar_header(path, len);
            header.set_path(path).expect("tar path");
            header.set_cksum();
            prefix.extend_from_slice(header.as_bytes());
        }
        let padding = ((512 - size % 512) % 512) as usize;
        BigLayer {
            prefix,
            size,
            suffix: vec![0; padding + 1024],
            seed: file.seed,
        }
    }

    fn len(&self) -> u64 {
        self.prefix.len() as u64 + self.size + self.suffix.len() as u64
    }

    fn reader(&self) -> BigReader {
        BigReader {
            layer: self.clone(),
            pos: 0,
            rng: SplitMix64(self.seed),
            pending: [0; 8],
            pending_len: 0,
        }
    }
}

/// Generates the big layer in `BIG_CHUNK`s on a blocking thread, hashing it too if `hash`; the
/// channel holds at most two chunks, so memory stays small whatever the size.
fn spawn_big_producer(
    layer: BigLayer,
    hash: bool,
) -> (
    tokio::sync::mpsc::Receiver<Vec<u8>>,
    tokio::task::JoinHandle<Option<String>>,
) {
    let (tx, rx) = tokio::sync::mpsc::channel(2);
    let producer = tokio::task::spawn_blocking(move || {
        let mut hasher = hash.then(Sha256::new);
        let mut reader = layer.reader();
        loop {
            let mut chunk = vec![0; BIG_CHUNK];
            let n = reader.fill(&mut chunk);
            if n == 0 {
                break;
            }
            chunk.truncate(n);
            if let Some(hasher) = hasher.as_mut() {
                hasher.update(&chunk);
            }
            if tx.blocking_send(chunk).is_err() {
                break;
            }
        }
        hasher.map(|h| hex_digest(h.finalize().iter()))
    });
    (rx, producer)
}

/// splitmix64: fast, seedable, and its output does not compress.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

/// Reads a `BigLayer` front to back; the bytes do not depend on the buffer sizes used.
struct BigReader {
    layer: BigLayer,
    pos: u64,
    rng: SplitMix64,
    pending: [u8; 8],
    pending_len: usize,
}

impl BigReader {
    /// Fills `buf` as far as the layer goes; returns the count (0 at the end).
    fn fill(&mut self, buf: &mut [u8]) -> usize {
        let prefix = self.layer.prefix.len() as u64;
        let data_end = prefix + self.layer.size;
        let mut written = 0;
        while written < buf.len() && self.pos < self.layer.len() {
            let out = &mut buf[written..];
            let n = if self.pos < prefix {
                copy_part(&self.layer.prefix[self.pos as usize..], out)
            } else if self.pos < data_end {
                let n = out.len().min((data_end - self.pos) as usize);
                self.random(&mut out[..n]);
                n
            } else {
                copy_part(&self.layer.suffix[(self.pos - data_end) as usize..], out)
            };
            written += n;
            self.pos += n as u64;
        }
        written
    }

    fn random(&mut self, out: &mut [u8]) {
        let from_pending = out.len().min(self.pending_len);
        let start = 8 - self.pending_len;
        out[..from_pending].copy_from_slice(&self.pending[start..start + from_pending]);
        self.pending_len -= from_pending;
        let mut words = out[from_pending..].chunks_exact_mut(8);
        for word in &mut words {
            word.copy_from_slice(&self.rng.next().to_le_bytes());
        }
        let rest = words.into_remainder();
        if !rest.is_empty() {
            self.pending = self.rng.next().to_le_bytes();
            rest.copy_from_slice(&self.pending[..rest.len()]);
            self.pending_len = 8 - rest.len();
        }
    }
}

fn copy_part(from: &[u8], to: &mut [u8]) -> usize {
    let n = from.len().min(to.len());
    to[..n].copy_from_slice(&from[..n]);
    n
}

// ---------------------------------------------------------------------------------------------
// Pushing
// ---------------------------------------------------------------------------------------------

/// No proxy; no total timeout (a big upload takes as long as it takes), but no stall either.
fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .connect_timeout(Duration::from_secs(10))
        .read_timeout(Duration::from_secs(120))
        .build()
        .expect("build http client")
}

fn header(response: &reqwest::Response, name: &str) -> String {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Pushes to one repository; remembers which blobs it already sent.
struct Pusher {
    http: reqwest::Client,
    base: String,
    repo: String,
    sent: HashSet<String>,
}

impl Pusher {
    fn new(registry_url: &str, repo: &str) -> Pusher {
        Pusher {
            http: client(),
            base: registry_url.trim_end_matches('/').to_string(),
            repo: repo.to_string(),
            sent: HashSet::new(),
        }
    }

    /// `POST /v2/<repo>/blobs/uploads/`; returns the absolute upload URL.
    async fn start_upload(&self) -> String {
        let url = format!("{}/v2/{}/blobs/uploads/", self.base, self.repo);
        let response = self.http.post(&url).send().await.expect("POST upload");
        assert_eq!(response.status().as_u16(), 202, "POST {url}");
        self.absolute(&header(&response, "location"))
    }

    fn absolute(&self, location: &str) -> String {
        assert!(!location.is_empty(), "upload response without Location");
        if location.starts_with("http://") || location.starts_with("https://") {
            location.to_string()
        } else {
            format!("{}{location}", self.base)
        }
    }

    /// `PUT <upload>?digest=` with `body` (the whole blob, or nothing after PATCHes); panics
    /// unless the registry stored it under `digest`.
    async fn finish_upload(&self, location: &str, digest: &str, body: Vec<u8>) {
        if let Err(message) = self.try_finish_upload(location, digest, body).await {
            panic!("{message}");
        }
    }

    async fn try_finish_upload(
        &self,
        location: &str,
        digest: &str,
        body: Vec<u8>,
    ) -> Result<(), String> {
        let sep = if location.contains('?') { '&' } else { '?' };
        let url = format!("{location}{sep}digest={digest}");
        let response = self
            .http
            .put(&url)
            .header("Content-Type", "application/octet-stream")
            .body(body)
            .send()
            .await
            .expect("PUT upload");
        let status = response.status().as_u16();
        let served = header(&response, "docker-content-digest");
        let text = response.text().await.unwrap_or_default();
        if status != 201 {
            return Err(format!(
                "PUT blob {digest} to {}: {status} {text}",
                self.repo
            ));
        }
        assert_eq!(served, digest, "registry computed another blob digest");
        Ok(())
    }

    /// Monolithic upload of the blobs not sent yet, concurrently.
    async fn push_blobs(&mut self, blobs: &[Blob]) {
        let fresh: Vec<&Blob> = blobs
            .iter()
            .filter(|b| self.sent.insert(b.digest.clone()))
            .collect();
        let this = &*self;
        futures_util::future::join_all(fresh.into_iter().map(|blob| async move {
            let location = this.start_upload().await;
            this.finish_upload(&location, &blob.digest, blob.bytes.clone())
                .await;
        }))
        .await;
    }

    /// `PUT /v2/<repo>/manifests/<reference>`; asserts the registry's digest is ours.
    async fn push_manifest(&self, reference: &str, manifest: &Blob) {
        let url = format!("{}/v2/{}/manifests/{reference}", self.base, self.repo);
        let response = self
            .http
            .put(&url)
            .header("Content-Type", manifest.media_type)
            .body(manifest.bytes.clone())
            .send()
            .await
            .expect("PUT manifest");
        let status = response.status().as_u16();
        let served = header(&response, "docker-content-digest");
        let text = response.text().await.unwrap_or_default();
        assert_eq!(status, 201, "PUT {url}: {text}");
        assert_eq!(
            served, manifest.digest,
            "registry computed another manifest digest"
        );
    }

    /// Uploads the big layer in one streamed PATCH while it is generated, then closes the
    /// upload with `known` or, without it, the digest computed on the way. Returns the digest,
    /// or the registry's complaint when `known` was wrong.
    async fn push_big_layer(
        &self,
        layer: &BigLayer,
        known: Option<&str>,
    ) -> Result<String, String> {
        let (chunks, producer) = spawn_big_producer(layer.clone(), known.is_none());
        let body = futures_util::stream::unfold(chunks, |mut chunks| async move {
            let chunk = chunks.recv().await?;
            Some((Ok::<_, std::io::Error>(chunk), chunks))
        });
        let location = self.start_upload().await;
        let response = self
            .http
            .patch(&location)
            .header("Content-Type", "application/octet-stream")
            .header("Content-Length", layer.len())
            .header("Content-Range", format!("0-{}", layer.len() - 1))
            .body(reqwest::Body::wrap_stream(body))
            .send()
            .await
            .expect("PATCH upload");
        assert_eq!(response.status().as_u16(), 202, "PATCH {location}");
        let location = self.absolute(&header(&response, "location"));
        let computed = producer.await.expect("big layer generator");
        let digest = computed.or(known.map(str::to_string)).expect("a digest");
        self.try_finish_upload(&location, &digest, Vec::new())
            .await?;
        Ok(digest)
    }
}

async fn push_image(registry_url: &str, img: &ImageSpec, generation: u32) -> Pushed {
    let built = build_image(img, generation);
    let mut pusher = Pusher::new(registry_url, &img.repo);
    for child in &built.children {
        pusher.push_blobs(&child.blobs).await;
        pusher.push_manifest(&child.blob.digest, &child.blob).await;
    }
    if let Some(single) = &built.single {
        pusher.push_blobs(&single.blobs).await;
    }
    pusher.push_manifest(&img.tag, &built.root).await;
    let blobs = built
        .children
        .iter()
        .chain(&built.single)
        .flat_map(|m| &m.blobs)
        .map(|b| (b.digest.clone(), b.bytes.len() as u64));
    let children = built.children.iter().map(|c| &c.blob);
    summarize(img, &built.root, children, blobs)
}

async fn push_big_image(registry_url: &str, img: &ImageSpec, size: u64) -> Pushed {
    let file = img
        .random_file
        .as_ref()
        .expect("big image needs random_file");
    let layer = BigLayer::new(file, size);
    let pusher = Pusher::new(registry_url, &img.repo);
    let known = file.known_digests.get(&size).map(String::as_str);
    let digest = match pusher.push_big_layer(&layer, known).await {
        Ok(digest) => digest,
        Err(message) if known.is_some() => {
            let digest = pusher.push_big_layer(&layer, None).await;
            let digest = digest.unwrap_or_else(|e| panic!("{e}"));
            eprintln!(
                "warning: fixtures/images.json: known_digests[{size}] is stale, the layer is \
                 {digest} (registry said: {})",
                message.trim()
            );
            digest
        }
        Err(message) => panic!("{message}"),
    };
    push_big_manifest(pusher, img, &digest, layer.len()).await
}

/// Config and manifest of the big image around its uploaded layer.
async fn push_big_manifest(mut pusher: Pusher, img: &ImageSpec, digest: &str, size: u64) -> Pushed {
    let platform = Platform::parse(&img.platforms[0]);
    let config = config(img, 0, &platform, &[digest.to_string()]);
    let layer = descriptor(img.format.layer(img.compression), digest, size, &None);
    let manifest = image_manifest(img.format, &config, &[layer]);
    pusher.push_blobs(std::slice::from_ref(&config)).await;
    pusher.push_manifest(&img.tag, &manifest).await;
    let blobs = [
        (config.digest.clone(), config.bytes.len() as u64),
        (digest.to_string(), size),
    ];
    summarize(img, &manifest, std::iter::empty(), blobs.into_iter())
}

fn summarize<'a>(
    img: &ImageSpec,
    root: &Blob,
    children: impl Iterator<Item = &'a Blob>,
    blobs: impl Iterator<Item = (String, u64)>,
) -> Pushed {
    let mut total_size = root.bytes.len() as u64;
    let mut manifests = Vec::new();
    for child in children {
        manifests.push(child.digest.clone());
        total_size += child.bytes.len() as u64;
    }
    let mut seen = HashSet::new();
    let mut unique = Vec::new();
    for (digest, size) in blobs {
        if seen.insert(digest.clone()) {
            total_size += size;
            unique.push(digest);
        }
    }
    Pushed {
        repo: img.repo.clone(),
        tag: img.tag.clone(),
        digest: root.digest.clone(),
        media_type: root.media_type.to_string(),
        manifests,
        blobs: unique,
        total_size,
    }
}
