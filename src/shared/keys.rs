//! Where each kind of object lives in the bucket, under the store's prefix:
//!
//! | key | what | written |
//! | --- | --- | --- |
//! | `blobs/sha256/<hex>` | a blob or a manifest's exact bytes | once verified (multipart or single put) |
//! | `records/<ref>` | a tag record (JSON) | create-only, after everything it reaches |
//! | `pending/<ref>` | a pin that started: its root digest (JSON) | create-only; removed with the record |
//! | `journal/<time>-<id>` | one pin or evict (JSON) | create-only, never rewritten |
//! | `uploads/<hex>-<id>` | a multipart upload in flight (JSON) | removed when it ends; gc aborts stale ones |
//! | `leases/<hex>` | who fetches a blob from the upstream now (JSON) | create-only, rewritten by its holder; removed when done, gc removes stale ones |
//!
//! `<ref>` is the reference key escaped to one path segment (`/`, `:`, `@` and every byte
//! outside `[A-Za-z0-9._-]` as `%XX`), so that a key never nests and always decodes back.
//! Journal names sort by time: 16 hex digits of microseconds since the epoch first.
//! Pure: strings only.

use crate::reference::Digest;

/// The keys of one store (a bucket prefix).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Keys {
    /// "" or "some/prefix/" (always ending in `/` when not empty).
    prefix: String,
}

impl Keys {
    pub fn new(prefix: &str) -> Keys {
        let trimmed = prefix.trim_matches('/');
        Keys {
            prefix: match trimmed {
                "" => String::new(),
                p => format!("{p}/"),
            },
        }
    }

    pub fn blob(&self, digest: &Digest) -> String {
        format!("{}blobs/sha256/{}", self.prefix, digest.hex())
    }

    pub fn blobs(&self) -> String {
        format!("{}blobs/sha256/", self.prefix)
    }

    pub fn record(&self, reference_key: &str) -> String {
        format!("{}records/{}", self.prefix, escape(reference_key))
    }

    pub fn records(&self) -> String {
        format!("{}records/", self.prefix)
    }

    pub fn pending(&self, reference_key: &str) -> String {
        format!("{}pending/{}", self.prefix, escape(reference_key))
    }

    pub fn pendings(&self) -> String {
        format!("{}pending/", self.prefix)
    }

    /// A journal entry written at `micros` (since the epoch) by `writer` (random, per entry).
    pub fn journal(&self, micros: u64, writer: &str) -> String {
        format!("{}journal/{micros:016x}-{writer}", self.prefix)
    }

    pub fn journals(&self) -> String {
        format!("{}journal/", self.prefix)
    }

    pub fn upload(&self, digest: &Digest, id: &str) -> String {
        format!("{}uploads/{}-{id}", self.prefix, digest.hex())
    }

    pub fn uploads(&self) -> String {
        format!("{}uploads/", self.prefix)
    }

    pub fn lease(&self, digest: &Digest) -> String {
        format!("{}leases/{}", self.prefix, digest.hex())
    }

    pub fn leases(&self) -> String {
        format!("{}leases/", self.prefix)
    }

    /// The reference key a `records/` or `pending/` key names; None for anything else.
    pub fn reference_of(&self, key: &str) -> Option<String> {
        let rest = key.strip_prefix(&self.prefix)?;
        let escaped = rest
            .strip_prefix("records/")
            .or_else(|| rest.strip_prefix("pending/"))?;
        unescape(escaped)
    }

    /// The digest a `blobs/sha256/` key names; None for anything else.
    pub fn digest_of(&self, key: &str) -> Option<Digest> {
        let hex = key
            .strip_prefix(&self.prefix)?
            .strip_prefix("blobs/sha256/")?;
        Digest::from_hex(hex).ok()
    }
}

fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 8);
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'.' | b'_' | b'-' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = std::str::from_utf8(bytes.get(i + 1..i + 3)?).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_become_one_segment_and_decode_back() {
        let keys = Keys::new("/team/mirror/");
        let r = "docker.io/library/ubuntu:20.04";
        let key = keys.record(r);
        assert_eq!(
            key,
            "team/mirror/records/docker.io%2Flibrary%2Fubuntu%3A20.04"
        );
        assert_eq!(keys.reference_of(&key).as_deref(), Some(r));
        let by_digest = format!("ghcr.io/o/a@sha256:{}", "ab".repeat(32));
        let pending = keys.pending(&by_digest);
        assert!(
            !pending["team/mirror/pending/".len()..].contains('/'),
            "{pending}"
        );
        assert_eq!(keys.reference_of(&pending), Some(by_digest));
        assert_eq!(keys.reference_of("team/mirror/blobs/sha256/ab"), None);
        assert_eq!(keys.reference_of("other/records/x"), None);
    }

    #[test]
    fn blobs_journal_and_uploads() {
        let keys = Keys::new("");
        let d = crate::manifest::sha256(b"x");
        assert_eq!(keys.blob(&d), format!("blobs/sha256/{}", d.hex()));
        assert_eq!(keys.digest_of(&keys.blob(&d)), Some(d.clone()));
        assert_eq!(keys.digest_of("blobs/sha256/nothex"), None);
        let a = keys.journal(1, "aa");
        let b = keys.journal(0x10, "00");
        assert!(a < b, "journal keys sort by time: {a} {b}");
        assert_eq!(a, "journal/0000000000000001-aa");
        assert!(keys.upload(&d, "u1").starts_with(&keys.uploads()));
        assert_eq!(keys.lease(&d), format!("leases/{}", d.hex()));
        assert!(keys.lease(&d).starts_with(&keys.leases()));
    }
}
