//! Pin progress as JSON lines: how a server's admin API shows the progress of a pin it runs
//! for a client, so `stablebuild pin` through a server draws the same bars as a local pin.
//!
//! The server answers such a call with `application/x-ndjson`: one `Event` per line, the
//! last one `{"event":"done","result":…}`. Bytes are reported per blob at most once per
//! `STEP` (and when the blob ends), so a 1 GiB layer costs about a thousand lines.
//! Owns: the wire format, the `Progress` that writes it (`Sink`) and the one that reads it
//! back (`replay`). Must not touch: HTTP (the admin API and `remote.rs` carry the lines).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use crate::reference::Digest;
use crate::snapshot::Progress;

/// Bytes of one blob reported together.
const STEP: u64 = 1 << 20;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum Event {
    Started {
        digest: Digest,
        size: Option<u64>,
    },
    Advanced {
        digest: Digest,
        bytes: u64,
    },
    Finished {
        digest: Digest,
    },
    ManifestsStored {
        root: Digest,
    },
    /// The call's answer, as the call without progress would have returned it.
    Done {
        result: serde_json::Value,
    },
    /// The call failed (after its answer started): the message a plain call would give.
    Failed {
        message: String,
    },
}

impl Event {
    /// One line of the stream, newline included.
    pub fn line(&self) -> bytes::Bytes {
        let mut line = serde_json::to_vec(self).expect("events serialise");
        line.push(b'\n');
        line.into()
    }
}

/// A `Progress` that sends events down a channel (a client that went away is ignored).
pub struct Sink {
    tx: mpsc::UnboundedSender<Event>,
    /// Bytes advanced per blob and not yet sent.
    unsent: Mutex<HashMap<Digest, u64>>,
}

impl Sink {
    pub fn new(tx: mpsc::UnboundedSender<Event>) -> Sink {
        Sink {
            tx,
            unsent: Mutex::new(HashMap::new()),
        }
    }

    fn send(&self, e: Event) {
        let _ = self.tx.send(e);
    }

    /// Send what `digest` advanced since the last report.
    fn flush(&self, digest: &Digest) {
        let bytes = self.unsent.lock().expect("sink").remove(digest);
        if let Some(bytes) = bytes.filter(|b| *b > 0) {
            let digest = digest.clone();
            self.send(Event::Advanced { digest, bytes });
        }
    }
}

impl Progress for Sink {
    fn blob_started(&self, digest: &Digest, size: Option<u64>) {
        let digest = digest.clone();
        self.send(Event::Started { digest, size });
    }

    fn blob_advanced(&self, digest: &Digest, bytes: u64) {
        let due = {
            let mut unsent = self.unsent.lock().expect("sink");
            let n = unsent.entry(digest.clone()).or_default();
            *n += bytes;
            *n >= STEP
        };
        if due {
            self.flush(digest);
        }
    }

    fn blob_finished(&self, digest: &Digest) {
        self.flush(digest);
        let digest = digest.clone();
        self.send(Event::Finished { digest });
    }

    fn manifests_stored(&self, root: &Digest) {
        let root = root.clone();
        self.send(Event::ManifestsStored { root });
    }
}

/// Show one received event on `progress`; the end of the call (`Done` or `Failed`) is
/// handed back.
pub fn replay(event: Event, progress: &dyn Progress) -> Option<Result<serde_json::Value, String>> {
    match event {
        Event::Started { digest, size } => progress.blob_started(&digest, size),
        Event::Advanced { digest, bytes } => progress.blob_advanced(&digest, bytes),
        Event::Finished { digest } => progress.blob_finished(&digest),
        Event::ManifestsStored { root } => progress.manifests_stored(&root),
        Event::Done { result } => return Some(Ok(result)),
        Event::Failed { message } => return Some(Err(message)),
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Record(Mutex<Vec<String>>);
    impl Progress for Record {
        fn blob_started(&self, d: &Digest, size: Option<u64>) {
            self.0
                .lock()
                .unwrap()
                .push(format!("start {} {size:?}", d.short()));
        }
        fn blob_advanced(&self, _: &Digest, bytes: u64) {
            self.0.lock().unwrap().push(format!("+{bytes}"));
        }
        fn blob_finished(&self, d: &Digest) {
            self.0.lock().unwrap().push(format!("end {}", d.short()));
        }
    }

    #[test]
    fn advances_are_sent_per_mebibyte_and_replayed_in_order() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let sink = Sink::new(tx);
        let d = crate::manifest::sha256(b"layer");
        sink.blob_started(&d, Some(3 * STEP));
        for _ in 0..10 {
            sink.blob_advanced(&d, STEP / 4); // 2.5 MiB in ten steps
        }
        sink.blob_finished(&d);
        let record = Record::default();
        let mut lines = 0;
        while let Ok(event) = rx.try_recv() {
            let parsed: Event = serde_json::from_slice(&event.line()).unwrap();
            assert_eq!(parsed, event, "an event survives its line");
            assert!(replay(parsed, &record).is_none());
            lines += 1;
        }
        let short = d.short();
        let want = vec![
            format!("start {short} Some({})", 3 * STEP),
            format!("+{STEP}"),
            format!("+{STEP}"),
            format!("+{}", STEP / 2),
            format!("end {short}"),
        ];
        assert_eq!(*record.0.lock().unwrap(), want);
        assert_eq!(lines, 5);
        let done = Event::Done {
            result: serde_json::json!({"ok": 1}),
        };
        assert_eq!(
            replay(done, &record),
            Some(Ok(serde_json::json!({"ok": 1})))
        );
        let failed = Event::Failed {
            message: "no".into(),
        };
        assert_eq!(replay(failed, &record), Some(Err("no".into())));
    }
}
