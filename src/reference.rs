//! Container image references and digests, following Docker's rules.
//!
//! Owns: parsing, normalising and validating image references (registry host, repository
//! path, tag, digest), the store key a reference pins, and the path-safe form of a digest
//! (`Digest::hex`: exactly 64 lowercase hex characters, safe as a file name).
//! Must not touch: I/O or the network. Everything here is pure string work; resolving a
//! tag to a digest, fetching and storing belong to other modules.

use std::fmt;
use std::net::Ipv6Addr;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

const DOCKER_HUB: &str = "docker.io";
const DOCKER_HUB_ALIASES: [&str; 2] = ["index.docker.io", "registry-1.docker.io"];
const OFFICIAL_PREFIX: &str = "library/";
const DEFAULT_TAG: &str = "latest";
const NAME_MAX: usize = 255;
const TAG_MAX: usize = 128;
const SHA256: &str = "sha256";
const SHA256_HEX_LEN: usize = 64;
const SHORT_LEN: usize = 12;

/// Why a reference, name, tag or digest was rejected. Every message names the input.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
pub enum ReferenceError {
    #[error("empty image reference")]
    Empty,
    #[error("invalid image reference {input:?}: {reason}")]
    NameInvalid { input: String, reason: String },
    #[error("invalid image reference {input:?}: {reason}")]
    TagInvalid { input: String, reason: String },
    #[error("invalid digest {input:?}: {reason}")]
    DigestInvalid { input: String, reason: String },
    #[error("unsupported digest algorithm '{algorithm}' (only sha256 is supported)")]
    UnsupportedDigest { algorithm: String },
}

impl ReferenceError {
    /// True for digest problems (DIGEST_INVALID); everything else is NAME_INVALID.
    pub fn is_digest(&self) -> bool {
        matches!(
            self,
            Self::DigestInvalid { .. } | Self::UnsupportedDigest { .. }
        )
    }
}

fn name_invalid(input: &str, reason: String) -> ReferenceError {
    ReferenceError::NameInvalid {
        input: input.to_owned(),
        reason,
    }
}

fn tag_invalid(input: &str, reason: String) -> ReferenceError {
    ReferenceError::TagInvalid {
        input: input.to_owned(),
        reason,
    }
}

fn digest_invalid(input: &str, reason: String) -> ReferenceError {
    ReferenceError::DigestInvalid {
        input: input.to_owned(),
        reason,
    }
}

// ---------------------------------------------------------------------------------------
// Digest
// ---------------------------------------------------------------------------------------

/// A sha256 content digest. Always `sha256:` followed by 64 lowercase hex characters.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest {
    /// The full string form, "sha256:<hex>".
    full: String,
}

impl Digest {
    /// Parses "sha256:<64 lowercase hex>".
    pub fn parse(s: &str) -> Result<Digest, ReferenceError> {
        let Some((algorithm, hex)) = s.split_once(':') else {
            let reason = "expected \"sha256:<64 hex characters>\"".to_owned();
            return Err(digest_invalid(s, reason));
        };
        if algorithm.is_empty() {
            return Err(digest_invalid(s, "missing digest algorithm".to_owned()));
        }
        if algorithm != SHA256 {
            return Err(ReferenceError::UnsupportedDigest {
                algorithm: algorithm.to_owned(),
            });
        }
        check_hex(hex).map_err(|reason| digest_invalid(s, reason))?;
        Ok(Self::from_checked_hex(hex))
    }

    /// Builds a digest from its 64 lowercase hex characters (no "sha256:" prefix).
    pub fn from_hex(hex: &str) -> Result<Digest, ReferenceError> {
        check_hex(hex).map_err(|reason| digest_invalid(hex, reason))?;
        Ok(Self::from_checked_hex(hex))
    }

    /// Builds a digest from a raw 32-byte sha256 output.
    pub fn from_sha256(bytes: [u8; 32]) -> Digest {
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut hex = String::with_capacity(SHA256_HEX_LEN);
        for b in bytes {
            hex.push(char::from(HEX[usize::from(b >> 4)]));
            hex.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
        Self::from_checked_hex(&hex)
    }

    /// The whole digest, "sha256:<hex>" (what `Display` shows), without a copy.
    pub fn as_str(&self) -> &str {
        &self.full
    }

    /// The 64 lowercase hex characters: safe to use as a file name.
    pub fn hex(&self) -> &str {
        &self.full[SHA256.len() + 1..]
    }

    /// The first 12 hex characters, for display.
    pub fn short(&self) -> &str {
        &self.hex()[..SHORT_LEN]
    }

    fn from_checked_hex(hex: &str) -> Digest {
        let mut full = String::with_capacity(SHA256.len() + 1 + hex.len());
        full.push_str(SHA256);
        full.push(':');
        full.push_str(hex);
        Digest { full }
    }
}

/// Checks for exactly 64 lowercase hex characters; the error is the reason.
fn check_hex(hex: &str) -> Result<(), String> {
    // The common case first, byte by byte (records hold thousands of digests).
    let lower_hex = |b: &u8| matches!(b, b'0'..=b'9' | b'a'..=b'f');
    if hex.len() == SHA256_HEX_LEN && hex.as_bytes().iter().all(lower_hex) {
        return Ok(());
    }
    if hex
        .chars()
        .any(|c| c.is_ascii_hexdigit() && c.is_ascii_uppercase())
    {
        return Err("hex must be lowercase".to_owned());
    }
    if let Some(c) = hex.chars().find(|c| !c.is_ascii_hexdigit()) {
        return Err(format!("invalid hex character {c:?}"));
    }
    if hex.len() != SHA256_HEX_LEN {
        let n = hex.len();
        return Err(format!("expected {SHA256_HEX_LEN} hex characters, got {n}"));
    }
    Ok(())
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.full)
    }
}

impl FromStr for Digest {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Digest::parse(s)
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.full)
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_str(DigestVisitor)
    }
}

/// Parses a digest string in place, without copying it first.
struct DigestVisitor;

impl serde::de::Visitor<'_> for DigestVisitor {
    type Value = Digest;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a digest \"sha256:<64 hex characters>\"")
    }

    fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Digest, E> {
        Digest::parse(s).map_err(E::custom)
    }
}

// ---------------------------------------------------------------------------------------
// Reference
// ---------------------------------------------------------------------------------------

/// A normalised image reference. Invariant: at least one of tag and digest is present.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Reference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<Digest>,
}

impl Reference {
    /// Parses a reference the way `docker pull` reads it, then normalises it.
    pub fn parse(s: &str) -> Result<Reference, ReferenceError> {
        let input = s.trim();
        if input.is_empty() {
            return Err(ReferenceError::Empty);
        }
        let (rest, digest) = split_digest(input)?;
        let (name, tag) = split_tag(rest);
        let (registry, repository) = split_registry(name);
        build(&|_| input.to_owned(), registry, repository, tag, digest)
    }

    /// Builds a reference from its parts, validating and normalising each.
    pub fn new(
        registry: &str,
        repository: &str,
        tag: Option<&str>,
        digest: Option<Digest>,
    ) -> Result<Reference, ReferenceError> {
        let input = |d: Option<&Digest>| join_parts(registry, repository, tag, d);
        build(&input, registry, repository, tag, digest)
    }

    /// The registry host, e.g. "docker.io", "ghcr.io", "localhost:5000".
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository path, e.g. "library/ubuntu".
    pub fn repository(&self) -> &str {
        &self.repository
    }

    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    pub fn digest(&self) -> Option<&Digest> {
        self.digest.as_ref()
    }

    /// Registry and repository, e.g. "docker.io/library/ubuntu".
    pub fn name(&self) -> String {
        format!("{}/{}", self.registry, self.repository)
    }

    /// The store key for what this reference pins: by digest when there is one, else by tag.
    pub fn key(&self) -> String {
        let (mark, pin) = match (&self.digest, &self.tag) {
            (Some(d), _) => ('@', d.full.as_str()),
            (None, Some(t)) => (':', t.as_str()),
            (None, None) => (':', DEFAULT_TAG),
        };
        let mut key =
            String::with_capacity(name_len(&self.registry, &self.repository) + 1 + pin.len());
        key.push_str(&self.registry);
        key.push('/');
        key.push_str(&self.repository);
        key.push(mark);
        key.push_str(pin);
        key
    }

    /// The same name at tag `tag` (validated; the name already is), digest dropped.
    pub fn with_tag(&self, tag: &str) -> Result<Reference, ReferenceError> {
        validate_tag(tag)?;
        Ok(Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: Some(tag.to_owned()),
            digest: None,
        })
    }

    /// The same name pinned to `d`, tag dropped.
    pub fn with_digest(&self, d: Digest) -> Reference {
        Reference {
            registry: self.registry.clone(),
            repository: self.repository.clone(),
            tag: None,
            digest: Some(d),
        }
    }

    /// What to ask the registry's manifest endpoint for: the digest if present, else the tag.
    pub fn manifest_ref(&self) -> String {
        match (&self.digest, &self.tag) {
            (Some(d), _) => d.to_string(),
            (None, Some(t)) => t.clone(),
            (None, None) => DEFAULT_TAG.to_owned(),
        }
    }
}

impl fmt::Display for Reference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl FromStr for Reference {
    type Err = ReferenceError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Reference::parse(s)
    }
}

/// Validates, normalises and assembles; `input` makes what errors quote from the digest
/// (only on an error: the server builds references on every request).
fn build(
    input: &dyn Fn(Option<&Digest>) -> String,
    registry: &str,
    repository: &str,
    tag: Option<&str>,
    digest: Option<Digest>,
) -> Result<Reference, ReferenceError> {
    let shown = || input(digest.as_ref());
    let registry = normalise_registry(registry).map_err(|r| name_invalid(&shown(), r))?;
    check_repository(repository).map_err(|r| name_invalid(&shown(), r))?;
    if let Some(t) = tag {
        check_tag(t).map_err(|r| tag_invalid(&shown(), r))?;
    }
    let repository = normalise_repository(&registry, repository);
    check_name_length(name_len(&registry, &repository)).map_err(|r| name_invalid(&shown(), r))?;
    Ok(Reference {
        tag: default_tag(tag, digest.as_ref()),
        repository,
        registry,
        digest,
    })
}

/// The tag as given, or "latest" when neither tag nor digest is present.
fn default_tag(tag: Option<&str>, digest: Option<&Digest>) -> Option<String> {
    match (tag, digest) {
        (Some(t), _) => Some(t.to_owned()),
        (None, None) => Some(DEFAULT_TAG.to_owned()),
        (None, Some(_)) => None,
    }
}

/// How `Reference::new`'s parts are quoted in errors.
fn join_parts(
    registry: &str,
    repository: &str,
    tag: Option<&str>,
    digest: Option<&Digest>,
) -> String {
    let mut s = format!("{registry}/{repository}");
    if let Some(t) = tag {
        s.push(':');
        s.push_str(t);
    }
    if let Some(d) = digest {
        s.push('@');
        s.push_str(&d.full);
    }
    s
}

/// Splits off "@<digest>" and parses it.
fn split_digest(input: &str) -> Result<(&str, Option<Digest>), ReferenceError> {
    match input.split_once('@') {
        Some((rest, digest)) => Ok((rest, Some(Digest::parse(digest)?))),
        None => Ok((input, None)),
    }
}

/// Splits off ":<tag>": only a ':' after the last '/' separates a tag.
fn split_tag(name: &str) -> (&str, Option<&str>) {
    let last_start = name.rfind('/').map_or(0, |i| i + 1);
    match name[last_start..].find(':') {
        Some(i) => (&name[..last_start + i], Some(&name[last_start + i + 1..])),
        None => (name, None),
    }
}

/// Splits off the registry host: the first component when it looks like one.
fn split_registry(name: &str) -> (&str, &str) {
    match name.split_once('/') {
        Some((first, rest)) if looks_like_host(first) => (first, rest),
        _ => (DOCKER_HUB, name),
    }
}

fn looks_like_host(component: &str) -> bool {
    component.contains(['.', ':']) || component == "localhost"
}

/// Adds "library/" to single-component Docker Hub repositories.
fn normalise_repository(registry: &str, repository: &str) -> String {
    if registry == DOCKER_HUB && !repository.contains('/') {
        format!("{OFFICIAL_PREFIX}{repository}")
    } else {
        repository.to_owned()
    }
}

/// The length of "registry/repository", without building it.
fn name_len(registry: &str, repository: &str) -> usize {
    registry.len() + 1 + repository.len()
}

fn check_name_length(n: usize) -> Result<(), String> {
    if n > NAME_MAX {
        return Err(format!(
            "name is {n} characters long once normalised (at most {NAME_MAX} allowed)"
        ));
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Registry host
// ---------------------------------------------------------------------------------------

/// Validates a host, lowercases it and maps Docker Hub's aliases to "docker.io".
fn normalise_registry(host: &str) -> Result<String, String> {
    check_host(host)?;
    Ok(canonical_registry(host.to_ascii_lowercase()))
}

/// A lowercase registry host as references name it: Docker Hub's other names are `docker.io`.
pub fn canonical_registry(lower: String) -> String {
    match DOCKER_HUB_ALIASES.contains(&lower.as_str()) {
        true => DOCKER_HUB.to_owned(),
        false => lower,
    }
}

fn check_host(host: &str) -> Result<(), String> {
    if host.is_empty() {
        return Err("registry host is empty".to_owned());
    }
    let (addr, port) = split_port(host)?;
    if let Some(port) = port {
        check_port(host, port)?;
    }
    if addr.starts_with('[') {
        check_ipv6(host, addr)
    } else {
        check_hostname(host, addr)
    }
}

/// Splits "host:port" or "[v6]:port"; the address keeps its brackets.
fn split_port(host: &str) -> Result<(&str, Option<&str>), String> {
    if !host.starts_with('[') {
        return Ok(match host.split_once(':') {
            Some((addr, port)) => (addr, Some(port)),
            None => (host, None),
        });
    }
    let Some(end) = host.find(']') else {
        return Err(format!("registry host {host:?} has an unclosed '['"));
    };
    let (addr, rest) = host.split_at(end + 1);
    match rest {
        "" => Ok((addr, None)),
        _ => match rest.strip_prefix(':') {
            Some(port) => Ok((addr, Some(port))),
            None => Err(format!(
                "registry host {host:?}: expected ':port' after ']'"
            )),
        },
    }
}

fn check_port(host: &str, port: &str) -> Result<(), String> {
    let numeric = !port.is_empty() && port.len() <= 5 && port.bytes().all(|b| b.is_ascii_digit());
    if !numeric {
        return Err(format!(
            "registry host {host:?} has an invalid port {port:?}"
        ));
    }
    match port.parse::<u32>() {
        Ok(1..=65535) => Ok(()),
        _ => Err(format!(
            "registry host {host:?}: port {port} is out of range (1-65535)"
        )),
    }
}

fn check_ipv6(host: &str, addr: &str) -> Result<(), String> {
    let inner = addr.trim_start_matches('[').trim_end_matches(']');
    match inner.parse::<Ipv6Addr>() {
        Ok(_) => Ok(()),
        Err(_) => Err(format!(
            "registry host {host:?}: {inner:?} is not an IPv6 address"
        )),
    }
}

/// Labels of [A-Za-z0-9-], not starting or ending with '-', separated by '.'.
fn check_hostname(host: &str, name: &str) -> Result<(), String> {
    for label in name.split('.') {
        if label.is_empty() {
            return Err(format!("registry host {host:?} has an empty label"));
        }
        if let Some(c) = label
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
        {
            return Err(format!(
                "registry host {host:?} contains invalid character {c:?}"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!(
                "registry host {host:?}: label {label:?} must not start or end with '-'"
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// Repository path and tag
// ---------------------------------------------------------------------------------------

/// Validates a repository path alone, e.g. "library/ubuntu".
pub fn validate_repository(name: &str) -> Result<(), ReferenceError> {
    check_repository(name).map_err(|reason| name_invalid(name, reason))
}

/// Validates a tag: `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
pub fn validate_tag(tag: &str) -> Result<(), ReferenceError> {
    check_tag(tag).map_err(|reason| tag_invalid(tag, reason))
}

fn check_repository(repo: &str) -> Result<(), String> {
    if repo.is_empty() {
        return Err("repository name is empty".to_owned());
    }
    if repo.starts_with('/') {
        return Err("repository name must not start with '/'".to_owned());
    }
    if repo.ends_with('/') {
        return Err("repository name must not end with '/'".to_owned());
    }
    repo.split('/').try_for_each(check_component)
}

/// One path component: `[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*`.
fn check_component(c: &str) -> Result<(), String> {
    match c {
        "" => Err("repository name has an empty path component (\"//\")".to_owned()),
        "." | ".." => Err(format!("path component {c:?} is not allowed")),
        _ if c.chars().any(|ch| ch.is_ascii_uppercase()) => {
            Err("repository name must be lowercase".to_owned())
        }
        _ => check_component_grammar(c),
    }
}

fn check_component_grammar(c: &str) -> Result<(), String> {
    let allowed = |ch: char| is_lower_alnum(ch) || matches!(ch, '.' | '_' | '-');
    if let Some(ch) = c.chars().find(|ch| !allowed(*ch)) {
        return Err(format!("invalid character {ch:?} in repository name"));
    }
    if !c.starts_with(is_lower_alnum) || !c.ends_with(is_lower_alnum) {
        return Err(format!(
            "path component {c:?} must start and end with a lowercase letter or digit"
        ));
    }
    match c.split(is_lower_alnum).find(|sep| !is_separator(sep)) {
        Some(sep) => Err(format!(
            "path component {c:?} has separator {sep:?} (allowed: '.', '_', '__' or dashes)"
        )),
        None => Ok(()),
    }
}

fn is_lower_alnum(ch: char) -> bool {
    ch.is_ascii_lowercase() || ch.is_ascii_digit()
}

/// A run between alphanumerics; empty runs come from adjacent alphanumerics.
fn is_separator(sep: &str) -> bool {
    matches!(sep, "" | "." | "_" | "__") || sep.bytes().all(|b| b == b'-')
}

fn check_tag(tag: &str) -> Result<(), String> {
    let Some(first) = tag.chars().next() else {
        return Err("tag is empty".to_owned());
    };
    if tag.len() > TAG_MAX {
        let n = tag.len();
        return Err(format!(
            "tag is {n} characters long (at most {TAG_MAX} allowed)"
        ));
    }
    if !(first.is_ascii_alphanumeric() || first == '_') {
        return Err(format!(
            "tag {tag:?} must start with a letter, digit or '_'"
        ));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-');
    match tag.chars().find(|c| !allowed(*c)) {
        Some(c) => Err(format!("tag {tag:?} contains invalid character {c:?}")),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEX: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

    fn dg() -> String {
        format!("sha256:{HEX}")
    }

    /// (input, registry, repository, tag, has digest HEX)
    fn valid_cases() -> Vec<(
        String,
        &'static str,
        &'static str,
        Option<&'static str>,
        bool,
    )> {
        let d = dg();
        vec![
            (
                "ubuntu".into(),
                "docker.io",
                "library/ubuntu",
                Some("latest"),
                false,
            ),
            (
                "ubuntu:20.04".into(),
                "docker.io",
                "library/ubuntu",
                Some("20.04"),
                false,
            ),
            (
                "library/ubuntu".into(),
                "docker.io",
                "library/ubuntu",
                Some("latest"),
                false,
            ),
            (
                "docker.io/ubuntu".into(),
                "docker.io",
                "library/ubuntu",
                Some("latest"),
                false,
            ),
            (
                "index.docker.io/library/ubuntu:22.04".into(),
                "docker.io",
                "library/ubuntu",
                Some("22.04"),
                false,
            ),
            (
                "registry-1.docker.io/x/y".into(),
                "docker.io",
                "x/y",
                Some("latest"),
                false,
            ),
            (
                "Docker.IO/x/y".into(),
                "docker.io",
                "x/y",
                Some("latest"),
                false,
            ),
            (
                "ghcr.io/org/app:1.2".into(),
                "ghcr.io",
                "org/app",
                Some("1.2"),
                false,
            ),
            (
                "ghcr.io/org/sub/app".into(),
                "ghcr.io",
                "org/sub/app",
                Some("latest"),
                false,
            ),
            (
                "localhost/app".into(),
                "localhost",
                "app",
                Some("latest"),
                false,
            ),
            (
                "localhost:5000/app".into(),
                "localhost:5000",
                "app",
                Some("latest"),
                false,
            ),
            (
                "localhost:5000/app:1".into(),
                "localhost:5000",
                "app",
                Some("1"),
                false,
            ),
            (
                "127.0.0.1:5000/a/b:c".into(),
                "127.0.0.1:5000",
                "a/b",
                Some("c"),
                false,
            ),
            ("[::1]:5000/a:b".into(), "[::1]:5000", "a", Some("b"), false),
            ("[::1]/a".into(), "[::1]", "a", Some("latest"), false),
            (
                format!("ubuntu@{d}"),
                "docker.io",
                "library/ubuntu",
                None,
                true,
            ),
            (
                format!("ubuntu:22.04@{d}"),
                "docker.io",
                "library/ubuntu",
                Some("22.04"),
                true,
            ),
            (
                "quay.io/a-b/c__d.e:TAG_1.x".into(),
                "quay.io",
                "a-b/c__d.e",
                Some("TAG_1.x"),
                false,
            ),
            (
                "  ubuntu:20.04\n".into(),
                "docker.io",
                "library/ubuntu",
                Some("20.04"),
                false,
            ),
            (
                "a---b/c_d".into(),
                "docker.io",
                "a---b/c_d",
                Some("latest"),
                false,
            ),
            (
                "my-reg.example.com/a".into(),
                "my-reg.example.com",
                "a",
                Some("latest"),
                false,
            ),
            (
                "ubuntu:_x".into(),
                "docker.io",
                "library/ubuntu",
                Some("_x"),
                false,
            ),
        ]
    }

    #[test]
    fn parses_valid_references() {
        for (input, registry, repository, tag, has_digest) in valid_cases() {
            let r = Reference::parse(&input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(r.registry(), registry, "{input:?}");
            assert_eq!(r.repository(), repository, "{input:?}");
            assert_eq!(r.tag(), tag, "{input:?}");
            let digest = r.digest().map(|d| d.hex().to_owned());
            assert_eq!(digest, has_digest.then(|| HEX.to_owned()), "{input:?}");
        }
    }

    fn invalid_cases() -> Vec<(String, &'static str)> {
        let upper = format!("ubuntu@sha256:{}", HEX.to_ascii_uppercase());
        vec![
            ("".into(), "empty image reference"),
            (" \t ".into(), "empty image reference"),
            (
                "Ubuntu".into(),
                "\"Ubuntu\": repository name must be lowercase",
            ),
            ("ubuntu:".into(), "tag is empty"),
            (
                "ubuntu:-bad".into(),
                "must start with a letter, digit or '_'",
            ),
            ("ubuntu:a+b".into(), "invalid character '+'"),
            ("a//b".into(), "empty path component"),
            ("a/../b".into(), "\"..\" is not allowed"),
            ("a/./b".into(), "\".\" is not allowed"),
            ("/ubuntu".into(), "must not start with '/'"),
            ("ubuntu/".into(), "must not end with '/'"),
            ("ghcr.io/".into(), "repository name is empty"),
            ("ubu ntu".into(), "invalid character ' '"),
            ("a___b".into(), "separator \"___\""),
            (
                "a-/b".into(),
                "must start and end with a lowercase letter or digit",
            ),
            (
                "ubuntu@sha256:abc".into(),
                "expected 64 hex characters, got 3",
            ),
            (upper, "hex must be lowercase"),
            (
                format!("ubuntu@sha512:{}", "a".repeat(128)),
                "unsupported digest algorithm 'sha512' (only sha256 is supported)",
            ),
            (
                "ubuntu@md5:abc".into(),
                "unsupported digest algorithm 'md5'",
            ),
            ("ubuntu@".into(), "invalid digest \"\""),
            ("a".repeat(300), "at most 255 allowed"),
            ("ghcr.io:99999/a".into(), "port 99999 is out of range"),
            ("ghcr.io:0/a".into(), "port 0 is out of range"),
            ("ghcr.io:/a".into(), "invalid port \"\""),
            ("ho_st.io/a".into(), "contains invalid character '_'"),
            ("-host.io/a".into(), "must not start or end with '-'"),
            ("[::1/a".into(), "unclosed '['"),
            ("[zz]:5000/a".into(), "not an IPv6 address"),
            (format!("ubuntu:{}", "t".repeat(129)), "at most 128 allowed"),
        ]
    }

    #[test]
    fn rejects_invalid_references() {
        for (input, expected) in invalid_cases() {
            let err = Reference::parse(&input).expect_err(&input);
            let msg = err.to_string();
            assert!(
                msg.contains(expected),
                "{input:?}: {msg:?} lacks {expected:?}"
            );
        }
    }

    #[test]
    fn longest_name_is_accepted() {
        let repo = "a".repeat(NAME_MAX - "ghcr.io/".len());
        assert!(Reference::parse(&format!("ghcr.io/{repo}")).is_ok());
        assert!(Reference::parse(&format!("ghcr.io/{repo}a")).is_err());
        assert!(validate_tag(&"t".repeat(TAG_MAX)).is_ok());
    }

    #[test]
    fn key_pins_tag_or_digest() {
        let d = dg();
        let cases = [
            (
                "ubuntu".to_owned(),
                "docker.io/library/ubuntu:latest".to_owned(),
            ),
            (
                "ubuntu:20.04".into(),
                "docker.io/library/ubuntu:20.04".into(),
            ),
            (
                format!("ubuntu@{d}"),
                format!("docker.io/library/ubuntu@{d}"),
            ),
            (
                format!("ubuntu:22.04@{d}"),
                format!("docker.io/library/ubuntu@{d}"),
            ),
            (
                "localhost:5000/app".into(),
                "localhost:5000/app:latest".into(),
            ),
        ];
        for (input, key) in cases {
            assert_eq!(Reference::parse(&input).unwrap().key(), key, "{input:?}");
        }
    }

    #[test]
    fn display_is_full_form_and_round_trips() {
        let d = dg();
        let r = Reference::parse("ubuntu:20.04").unwrap();
        assert_eq!(r.to_string(), "docker.io/library/ubuntu:20.04");
        let r = Reference::parse(&format!("ghcr.io/o/a:1.2@{d}")).unwrap();
        assert_eq!(r.to_string(), format!("ghcr.io/o/a:1.2@{d}"));
        let r = Reference::parse(&format!("ubuntu@{d}")).unwrap();
        assert_eq!(r.to_string(), format!("docker.io/library/ubuntu@{d}"));
        for (input, ..) in valid_cases() {
            let r: Reference = input.parse().unwrap();
            assert_eq!(Reference::parse(&r.to_string()).unwrap(), r, "{input:?}");
        }
    }

    #[test]
    fn with_digest_and_manifest_ref() {
        let d = Digest::parse(&dg()).unwrap();
        let r = Reference::parse("ghcr.io/o/a:1.2").unwrap();
        assert_eq!(r.manifest_ref(), "1.2");
        let pinned = r.with_digest(d.clone());
        assert_eq!(pinned.tag(), None);
        assert_eq!(pinned.digest(), Some(&d));
        assert_eq!(pinned.name(), "ghcr.io/o/a");
        assert_eq!(pinned.manifest_ref(), dg());
        assert_eq!(pinned.key(), format!("ghcr.io/o/a@{}", dg()));
    }

    #[test]
    fn new_validates_and_normalises() {
        let r = Reference::new("index.docker.io", "ubuntu", None, None).unwrap();
        assert_eq!(r.key(), "docker.io/library/ubuntu:latest");
        let d = Digest::from_hex(HEX).unwrap();
        let r = Reference::new("GHCR.io", "o/a", None, Some(d.clone())).unwrap();
        assert_eq!(r.to_string(), format!("ghcr.io/o/a@{d}"));
        let err = Reference::new("ghcr.io", "o/a", Some("-x"), None).unwrap_err();
        assert!(matches!(err, ReferenceError::TagInvalid { .. }), "{err}");
        assert!(Reference::new("", "a", None, None).is_err());
        assert!(Reference::new("ghcr.io", "A", None, None).is_err());
    }

    #[test]
    fn standalone_validators() {
        assert!(validate_repository("library/ubuntu").is_ok());
        assert!(validate_repository("a.b_c__d-e--f/g1").is_ok());
        let err = validate_repository("library/Ubuntu").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid image reference \"library/Ubuntu\": repository name must be lowercase"
        );
        assert!(validate_repository("a..b").is_err());
        assert!(validate_tag("v1.0-rc_1").is_ok());
        assert!(validate_tag(".x").is_err());
        assert!(validate_tag("").is_err());
    }

    #[test]
    fn digest_parse_and_accessors() {
        let d = Digest::parse(&dg()).unwrap();
        assert_eq!(d.hex(), HEX);
        assert_eq!(d.short(), &HEX[..12]);
        assert_eq!(d.to_string(), dg());
        assert_eq!(dg().parse::<Digest>().unwrap(), d);
        assert_eq!(Digest::from_hex(HEX).unwrap(), d);
        assert!(Digest::from_hex(&format!("sha256:{HEX}")).is_err());
        assert!(Digest::parse(HEX).is_err());
        assert!(Digest::parse(&format!(":{HEX}")).is_err());
        assert!(Digest::parse(&format!("sha256:{HEX}0")).is_err());
        assert!(Digest::parse(&format!("sha256:{}g", &HEX[..63])).is_err());
    }

    #[test]
    fn digest_error_messages() {
        let err = Digest::parse("sha256:abc").unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid digest \"sha256:abc\": expected 64 hex characters, got 3"
        );
        let err = Digest::parse(&format!("sha512:{}", "a".repeat(128))).unwrap_err();
        assert_eq!(
            err.to_string(),
            "unsupported digest algorithm 'sha512' (only sha256 is supported)"
        );
    }

    #[test]
    fn digest_from_sha256() {
        use sha2::Digest as _;
        let d = Digest::from_sha256(sha2::Sha256::digest(b"").into());
        assert_eq!(d.hex(), HEX);
        assert_eq!(Digest::from_sha256([0; 32]).hex(), "0".repeat(64));
        assert_eq!(Digest::from_sha256([0xab; 32]).hex(), "ab".repeat(32));
    }

    #[test]
    fn digest_serde_round_trip() {
        let d = Digest::parse(&dg()).unwrap();
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(json, format!("\"{}\"", dg()));
        assert_eq!(serde_json::from_str::<Digest>(&json).unwrap(), d);
        let bad = serde_json::from_str::<Digest>("\"sha256:abc\"").unwrap_err();
        assert!(
            bad.to_string().contains("expected 64 hex characters"),
            "{bad}"
        );
        assert!(serde_json::from_str::<Digest>("\"md5:abc\"").is_err());
    }

    #[test]
    fn is_digest_classifies_errors() {
        let digest_inputs = [
            "ubuntu@sha256:abc".to_owned(),
            "ubuntu@md5:abc".into(),
            "ubuntu@".into(),
        ];
        for input in digest_inputs {
            assert!(
                Reference::parse(&input).unwrap_err().is_digest(),
                "{input:?}"
            );
        }
        for input in ["", "Ubuntu", "ubuntu:-bad", "a//b", "ghcr.io:99999/a"] {
            assert!(
                !Reference::parse(input).unwrap_err().is_digest(),
                "{input:?}"
            );
        }
        assert!(Digest::from_hex("xyz").unwrap_err().is_digest());
    }
}
