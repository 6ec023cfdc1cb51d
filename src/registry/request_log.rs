//! The request log's output: one line per request on stderr, written in batches under load.
//!
//! Owns: the buffer of request lines and when it reaches stderr. A line goes out at once
//! when the last write was at least `BATCH` ago (a lightly loaded server writes each line as
//! its request ends); under load lines collect and go out in one write when `BATCH` has
//! passed, when the buffer holds `LIMIT` bytes, or when a connection worker has nothing left
//! to do (`flush`, called from the workers' park hook and at exit). One write(2) per request
//! was ~6% of the server's CPU at 1,000 keep-alive connections (bench/scale.sh).
//! Must not touch: other diagnostics, which tracing writes to stderr as they happen (so a
//! warning may come out before the lines of requests that ended just before it).

use std::fmt::{self, Write as _};
use std::io::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// How long a line may wait for others to share its write.
const BATCH: Duration = Duration::from_millis(1);
/// Bytes of lines that are written out whatever the time.
const LIMIT: usize = 32 << 10;

/// Lines not yet written, and when the last write was.
struct Batch {
    text: String,
    written: Option<Instant>,
}

impl Batch {
    /// Adds a line; true if the batch is due to be written out.
    fn add(&mut self, line: fmt::Arguments<'_>, now: Instant) -> bool {
        // Formatting into a String fails only if a Display impl does: the line is then cut.
        let _ = writeln!(self.text, " INFO {line}");
        let old = self.written.is_none_or(|t| now.duration_since(t) >= BATCH);
        old || self.text.len() >= LIMIT
    }

    /// The lines to write now; the batch starts again empty.
    fn take(&mut self, now: Instant) -> String {
        self.written = Some(now);
        std::mem::take(&mut self.text)
    }
}

static PENDING: Mutex<Batch> = Mutex::new(Batch {
    text: String::new(),
    written: None,
});

/// Adds a line (" INFO " and `line`, as tracing shows an info event) and writes the batch
/// out if it is due.
pub fn line(line: fmt::Arguments<'_>) {
    let mut batch = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    let now = Instant::now();
    if batch.add(line, now) {
        write_out(&mut batch, now);
    }
}

/// Writes out every line not yet written.
pub fn flush() {
    let mut batch = PENDING.lock().unwrap_or_else(|e| e.into_inner());
    if !batch.text.is_empty() {
        write_out(&mut batch, Instant::now());
    }
}

/// Writes under the lock, so that batches keep their order; the buffer is kept for reuse.
fn write_out(batch: &mut Batch, now: Instant) {
    let text = batch.take(now);
    // stderr gone (a closed pipe) loses the log, never the request.
    let _ = std::io::stderr().lock().write_all(text.as_bytes());
    batch.text = text;
    batch.text.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_go_out_at_once_when_the_last_write_is_old_and_together_under_load() {
        let mut b = Batch {
            text: String::new(),
            written: None,
        };
        let t0 = Instant::now();
        assert!(b.add(format_args!("first"), t0), "no write yet: at once");
        assert_eq!(b.take(t0), " INFO first\n");
        let soon = t0 + BATCH / 2;
        assert!(
            !b.add(format_args!("second {}", 2), soon),
            "a recent write: kept"
        );
        assert!(!b.add(format_args!("third"), soon));
        assert!(
            b.add(format_args!("fourth"), t0 + BATCH),
            "BATCH after the write: due"
        );
        assert_eq!(
            b.take(t0 + BATCH),
            " INFO second 2\n INFO third\n INFO fourth\n"
        );
        let long = "x".repeat(LIMIT);
        assert!(
            b.add(format_args!("{long}"), t0 + BATCH),
            "LIMIT bytes: due at once"
        );
    }
}
