//! `registry::parse_range`: a satisfiable range lies inside the blob, and its canonical
//! spelling parses to the same range. The first 8 bytes are the blob's length.
#![no_main]

use libfuzzer_sys::fuzz_target;
use stablebuild::registry::parse_range;
use stablebuild_fuzz::text;

fuzz_target!(|data: &[u8]| {
    let Some((len, spec)) = data.split_first_chunk::<8>() else {
        return;
    };
    let Some(spec) = text(spec) else { return };
    let len = u64::from_le_bytes(*len);
    // A random u64 is huge; a small length hits the end-of-blob cases too.
    for len in [len, len % 1024] {
        let Some((start, end)) = parse_range(spec, len) else {
            continue;
        };
        assert!(
            start <= end && end < len,
            "{spec:?} of {len}: {start}-{end}"
        );
        let canonical = format!("bytes={start}-{end}");
        assert_eq!(
            parse_range(&canonical, len),
            Some((start, end)),
            "{canonical}"
        );
    }
});
