//! Store maintenance: garbage collection and verification.
//!
//! Owns: deciding which blobs are reachable (from tag records and pending pins) and
//! re-hashing stored blobs. Callers must make sure no pin is in flight during `gc`
//! (the snapshot layer holds a lock for that).
//! Must not touch: the network.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::{Store, StoreError};
use crate::manifest::{self, Parsed};
use crate::reference::Digest;

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct GcReport {
    pub removed: Vec<Digest>,
    pub freed_bytes: u64,
    pub kept: usize,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct VerifyReport {
    pub checked: usize,
    pub bytes: u64,
    /// Blobs whose content does not match their digest.
    pub corrupt: Vec<Digest>,
    /// (reference key, digest) for every blob a tag reaches that is not stored.
    pub missing: Vec<(String, Digest)>,
}

impl VerifyReport {
    pub fn is_clean(&self) -> bool {
        self.corrupt.is_empty() && self.missing.is_empty()
    }
}

impl Store {
    /// Every digest a tag record or a pending pin reaches.
    pub fn reachable(&self) -> Result<BTreeSet<Digest>, StoreError> {
        let mut set = BTreeSet::new();
        for record in self.tags()? {
            set.extend(record.digests().cloned());
        }
        for pending in self.pendings()? {
            self.walk_stored(&pending.digest, &mut set)?;
        }
        Ok(set)
    }

    /// Add a manifest and whatever its stored bytes reach.
    fn walk_stored(&self, digest: &Digest, set: &mut BTreeSet<Digest>) -> Result<(), StoreError> {
        if !set.insert(digest.clone()) {
            return Ok(());
        }
        let Some((meta, bytes)) = self.manifest(digest)? else {
            return Ok(());
        };
        match manifest::parse(digest, &meta.media_type, &bytes) {
            Ok(Parsed::Index(children)) => {
                for child in children {
                    self.walk_stored(&child.digest, set)?;
                }
            }
            Ok(parsed) => set.extend(parsed.blobs().into_iter().map(|b| b.digest)),
            Err(_) => {}
        }
        Ok(())
    }

    /// Remove blobs that nothing reaches. With `dry_run`, only report them.
    pub fn gc(&self, dry_run: bool) -> Result<GcReport, StoreError> {
        let reachable = self.reachable()?;
        let mut report = GcReport::default();
        for digest in self.blobs.list()? {
            if reachable.contains(&digest) {
                report.kept += 1;
                continue;
            }
            report.freed_bytes += self.blobs.size(&digest).unwrap_or(0);
            if !dry_run {
                self.blobs.remove(&digest)?;
            }
            report.removed.push(digest);
        }
        Ok(report)
    }

    /// Re-hash every stored blob and look for blobs that tags reach but the store lacks.
    /// With `repair`, corrupt blobs are removed (a later `pin` fetches them again by digest).
    pub fn verify(&self, repair: bool) -> Result<VerifyReport, StoreError> {
        let mut report = VerifyReport::default();
        for digest in self.blobs.list()? {
            report.checked += 1;
            report.bytes += self.blobs.size(&digest).unwrap_or(0);
            if !self.blobs.check(&digest)? {
                if repair {
                    self.blobs.remove(&digest)?;
                }
                report.corrupt.push(digest);
            }
        }
        for record in self.tags()? {
            for digest in record.digests() {
                if !self.blobs.contains(digest) {
                    report.missing.push((record.key.clone(), digest.clone()));
                }
            }
        }
        Ok(report)
    }
}
