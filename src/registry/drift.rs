//! `serve --drift-every`: `drift` of the server's store in the background, and its last
//! result in `/metrics` — the counts (`stablebuild_drift_tags{state}`), each tag's state
//! (`stablebuild_drift_state{reference,state} 1`) and when it ran
//! (`stablebuild_drift_last_run_timestamp_seconds`).
//! Must not touch: the store (drift only reads records) or the other metrics.

use std::fmt::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tracing::{info, warn};

use super::AppState;
use crate::ops::{self, DriftReport, DriftState};

/// The last drift run, if any.
#[derive(Debug, Default)]
pub struct DriftWatch {
    last: Mutex<Option<(DriftReport, u64)>>,
}

impl DriftWatch {
    fn set(&self, report: DriftReport) {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        *self.last.lock().expect("drift lock") = Some((report, now));
    }

    /// The drift metrics; nothing before the first run.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let last = self.last.lock().expect("drift lock");
        let Some((report, at)) = last.as_ref() else {
            return out;
        };
        let name = "stablebuild_drift_tags";
        let _ = writeln!(
            out,
            "# HELP {name} Pinned tags by state upstream at the last drift run.\n# TYPE {name} gauge"
        );
        for state in DriftState::ALL {
            let n = report.count(state);
            let _ = writeln!(out, "{name}{{state=\"{}\"}} {n}", state.as_str());
        }
        let name = "stablebuild_drift_state";
        let _ = writeln!(
            out,
            "# HELP {name} Each pinned tag's state upstream at the last drift run.\n# TYPE {name} gauge"
        );
        for e in &report.entries {
            let (reference, state) = (label(&e.reference), e.state.as_str());
            let _ = writeln!(
                out,
                "{name}{{reference=\"{reference}\",state=\"{state}\"}} 1"
            );
        }
        let name = "stablebuild_drift_last_run_timestamp_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} When the last drift run ended (Unix seconds).\n# TYPE {name} gauge\n{name} {at}"
        );
        out
    }
}

/// A Prometheus label value: backslash, quote and newline escaped.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Run drift now and then every `every`, forever.
pub async fn watch(state: Arc<AppState>, every: Duration) {
    loop {
        match ops::drift_in(&state.snap, None).await {
            Ok(report) => {
                info!(
                    "drift: {} same, {} moved, {} gone, {} errors",
                    report.count(DriftState::Same),
                    report.count(DriftState::Moved),
                    report.count(DriftState::Gone),
                    report.count(DriftState::Error)
                );
                state.drift.set(report);
            }
            Err(e) => warn!("drift: {e}"),
        }
        tokio::time::sleep(every).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_rendered_before_the_first_run_and_labels_are_escaped() {
        let watch = DriftWatch::default();
        assert_eq!(watch.render(), "");
        assert_eq!(label("a\"b\\c"), "a\\\"b\\\\c");
        watch.set(DriftReport::default());
        let text = watch.render();
        assert!(
            text.contains("stablebuild_drift_tags{state=\"moved\"} 0"),
            "{text}"
        );
        assert!(
            text.contains("stablebuild_drift_last_run_timestamp_seconds "),
            "{text}"
        );
    }
}
