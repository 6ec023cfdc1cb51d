//! Terminal progress for pins: one bar per blob in flight and an overall byte counter, with
//! indicatif, only when stderr is a terminal.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use crate::reference::Digest;
use crate::snapshot::{Progress, Quiet};

pub struct Bars {
    multi: MultiProgress,
    total: ProgressBar,
    blobs: Mutex<HashMap<Digest, ProgressBar>>,
}

/// Bars on a terminal, nothing otherwise.
pub fn for_stderr() -> Box<dyn Progress> {
    if !std::io::stderr().is_terminal() {
        return Box::new(Quiet);
    }
    let multi = MultiProgress::with_draw_target(ProgressDrawTarget::stderr());
    let total = multi.add(ProgressBar::new_spinner());
    total.set_style(
        ProgressStyle::with_template("{spinner} {bytes} fetched ({bytes_per_sec})")
            .expect("valid template"),
    );
    Box::new(Bars {
        multi,
        total,
        blobs: Mutex::new(HashMap::new()),
    })
}

impl Progress for Bars {
    fn blob_started(&self, digest: &Digest, size: Option<u64>) {
        let bar = self.multi.add(ProgressBar::new(size.unwrap_or(0)));
        bar.set_style(
            ProgressStyle::with_template(
                "{prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
            )
            .expect("valid template")
            .progress_chars("=> "),
        );
        bar.set_prefix(digest.short().to_string());
        let old = self
            .blobs
            .lock()
            .expect("bars lock")
            .insert(digest.clone(), bar);
        if let Some(old) = old {
            old.finish_and_clear();
        }
    }

    fn blob_advanced(&self, digest: &Digest, bytes: u64) {
        self.total.inc(bytes);
        if let Some(bar) = self.blobs.lock().expect("bars lock").get(digest) {
            bar.inc(bytes);
        }
    }

    fn blob_finished(&self, digest: &Digest) {
        if let Some(bar) = self.blobs.lock().expect("bars lock").remove(digest) {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Bars {
    fn drop(&mut self) {
        self.total.finish_and_clear();
    }
}
