//! Pins in flight: which references this process is pinning now and how far each has got
//! (bytes and blobs done of the total its manifests name), for the dashboard's live view.
//!
//! Owns: the table and the `Progress` wrapper (`Tracked`) that keeps one entry up to date
//! while forwarding every event to the caller's own progress. An entry leaves the table
//! when its `Tracked` is dropped, however the pin ended.
//! Must not touch: the store or the network.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;

use super::Progress;
use crate::reference::Digest;

/// One pin in flight, as shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PinView {
    pub reference: String,
    /// Unix seconds.
    pub started_at: u64,
    pub bytes_done: u64,
    /// Zero until the manifests are walked and the blobs to fetch are known.
    pub bytes_total: u64,
    pub blobs_done: usize,
    pub blobs_total: usize,
}

struct Entry {
    view: PinView,
    /// Bytes of each blob received in its latest attempt (a retry starts it again), and
    /// whether that attempt ended.
    blobs: HashMap<Digest, (u64, bool)>,
    /// Bytes of the blobs found stored already.
    skipped: (u64, usize),
}

impl Entry {
    fn refresh(&mut self) {
        let received: u64 = self.blobs.values().map(|(n, _)| n).sum();
        let ended = self.blobs.values().filter(|(_, ended)| *ended).count();
        self.view.bytes_done = self.skipped.0 + received;
        self.view.blobs_done = self.skipped.1 + ended;
    }
}

/// The table of pins in flight.
#[derive(Default)]
pub struct InFlight {
    next: AtomicU64,
    pins: Mutex<BTreeMap<u64, Entry>>,
}

impl InFlight {
    /// Add `reference` to the table until the returned wrapper is dropped.
    pub fn track<'a>(&'a self, reference: String, inner: &'a dyn Progress) -> Tracked<'a> {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let view = PinView {
            reference,
            started_at: crate::store::records::now(),
            bytes_done: 0,
            bytes_total: 0,
            blobs_done: 0,
            blobs_total: 0,
        };
        let entry = Entry {
            view,
            blobs: HashMap::new(),
            skipped: (0, 0),
        };
        self.pins.lock().expect("in flight").insert(id, entry);
        Tracked {
            table: self,
            id,
            inner,
        }
    }

    /// Every pin in flight, oldest first.
    pub fn views(&self) -> Vec<PinView> {
        let pins = self.pins.lock().expect("in flight");
        pins.values().map(|e| e.view.clone()).collect()
    }

    fn update(&self, id: u64, f: impl FnOnce(&mut Entry)) {
        if let Some(entry) = self.pins.lock().expect("in flight").get_mut(&id) {
            f(entry);
            entry.refresh();
        }
    }
}

/// A pin's progress, counted in the table and passed on.
pub struct Tracked<'a> {
    table: &'a InFlight,
    id: u64,
    inner: &'a dyn Progress,
}

impl Drop for Tracked<'_> {
    fn drop(&mut self) {
        self.table.pins.lock().expect("in flight").remove(&self.id);
    }
}

impl Progress for Tracked<'_> {
    fn blobs_planned(&self, count: usize, bytes: u64) {
        self.table.update(self.id, |e| {
            e.view.blobs_total = count;
            e.view.bytes_total = bytes;
        });
        self.inner.blobs_planned(count, bytes);
    }

    fn blob_skipped(&self, digest: &Digest, size: Option<u64>) {
        self.table.update(self.id, |e| {
            e.skipped.0 += size.unwrap_or(0);
            e.skipped.1 += 1;
        });
        self.inner.blob_skipped(digest, size);
    }

    fn blob_started(&self, digest: &Digest, size: Option<u64>) {
        self.table.update(self.id, |e| {
            e.blobs.insert(digest.clone(), (0, false));
        });
        self.inner.blob_started(digest, size);
    }

    fn blob_advanced(&self, digest: &Digest, bytes: u64) {
        self.table.update(self.id, |e| {
            e.blobs.entry(digest.clone()).or_default().0 += bytes;
        });
        self.inner.blob_advanced(digest, bytes);
    }

    fn blob_finished(&self, digest: &Digest) {
        // A failed attempt also ends here; its retry starts the blob again at zero.
        self.table.update(self.id, |e| {
            e.blobs.entry(digest.clone()).or_default().1 = true;
        });
        self.inner.blob_finished(digest);
    }

    fn manifests_stored(&self, root: &Digest) {
        self.inner.manifests_stored(root);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::snapshot::Quiet;

    fn digest(n: u8) -> Digest {
        Digest::parse(&format!("sha256:{}", format!("{n:02x}").repeat(32))).unwrap()
    }

    #[test]
    fn a_pin_is_listed_with_its_progress_until_dropped() {
        let table = InFlight::default();
        let tracked = table.track("docker.io/library/a:1".into(), &Quiet);
        tracked.blobs_planned(2, 300);
        tracked.blob_skipped(&digest(1), Some(100));
        tracked.blob_started(&digest(2), Some(200));
        tracked.blob_advanced(&digest(2), 50);
        let view = &table.views()[0];
        assert_eq!((view.bytes_done, view.bytes_total), (150, 300));
        assert_eq!((view.blobs_done, view.blobs_total), (1, 2));
        tracked.blob_finished(&digest(2));
        assert_eq!(table.views()[0].blobs_done, 2);
        drop(tracked);
        assert!(table.views().is_empty());
    }

    #[test]
    fn a_retried_blob_counts_its_bytes_once() {
        let table = InFlight::default();
        let tracked = table.track("r".into(), &Quiet);
        tracked.blob_started(&digest(1), Some(100));
        tracked.blob_advanced(&digest(1), 60);
        tracked.blob_finished(&digest(1));
        tracked.blob_started(&digest(1), Some(100));
        tracked.blob_advanced(&digest(1), 100);
        tracked.blob_finished(&digest(1));
        assert_eq!(table.views()[0].bytes_done, 100);
        assert_eq!(table.views()[0].blobs_done, 1);
    }
}
