//! What every fuzz target shares: a global allocator that aborts on any single allocation
//! above `ALLOCATION_LIMIT` (libFuzzer's own `-malloc_limit_mb` needs a sanitizer's
//! allocator hooks, which `--sanitizer none` builds lack), the input as text, the platform
//! the Dockerfile targets expand for, and the span checks several targets make.
//! Must not touch: the library's behaviour; the properties themselves live in the targets.

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::Write as _;
use std::ops::Range;

use stablebuild::platform::Platform;
use stablebuild::reference::Digest;

/// The largest single allocation a parser may ask for: 256 MiB.
pub const ALLOCATION_LIMIT: usize = 256 << 20;

/// `System`, with every allocation's size checked against `ALLOCATION_LIMIT`.
pub struct Bounded;

#[global_allocator]
static ALLOCATOR: Bounded = Bounded;

/// Aborts (a crash libFuzzer records, with the input) when `size` is over the limit. The
/// message is written without allocating.
fn check(size: usize) {
    if size > ALLOCATION_LIMIT {
        let _ = std::io::stderr().write_all(b"fuzz: one allocation above 256 MiB\n");
        std::process::abort();
    }
}

// SAFETY: every call is forwarded to `System` with the same arguments; `check` only reads
// the size and never allocates.
unsafe impl GlobalAlloc for Bounded {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        check(layout.size());
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        check(new_size);
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

/// The input as UTF-8 text, if it is (the parsers take `&str`).
pub fn text(data: &[u8]) -> Option<&str> {
    std::str::from_utf8(data).ok()
}

/// The fixed platform the Dockerfile targets expand `TARGETARCH` and friends for.
pub fn platform() -> Platform {
    Platform {
        os: "linux".to_owned(),
        arch: "arm".to_owned(),
        variant: Some("v7".to_owned()),
    }
}

/// Asserts that `span` lies inside `text` on character boundaries, and returns its text.
#[track_caller]
pub fn spanned<'a>(text: &'a str, span: &Range<usize>) -> &'a str {
    assert!(
        span.start <= span.end && span.end <= text.len(),
        "span {span:?} outside a text of {} bytes",
        text.len()
    );
    assert!(
        text.is_char_boundary(span.start) && text.is_char_boundary(span.end),
        "span {span:?} splits a character"
    );
    &text[span.clone()]
}

/// The 1-based line of byte `offset`.
pub fn line_of(text: &str, offset: usize) -> usize {
    1 + text.as_bytes()[..offset]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Asserts that `d` prints as a digest that parses back to it.
#[track_caller]
pub fn valid(d: &Digest) {
    let shown = d.to_string();
    assert_eq!(Digest::parse(&shown).as_ref(), Ok(d), "{shown:?}");
}
