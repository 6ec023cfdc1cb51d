//! Memory-mapped blob files (stored ones, and temp files still being written) that can be
//! found again from their bytes' address, so that a writer handed a slice of one can send it
//! from the file with `sendfile(2)` instead of copying the mapped pages (see
//! `registry/sendfile.rs`).
//!
//! Owns: the process-wide table from each live mapping's address range to its open file. A
//! mapping is in the table from `map` until the last `Bytes` that shares it is dropped.
//! Must not touch: the store directory (it is given an open file), the network.

use std::fs::File;
use std::io;
use std::sync::{Arc, Mutex};

use bytes::Bytes;

/// Live mappings: (first address, length, the file mapped).
static MAPPED: Mutex<Vec<(usize, usize, Arc<File>)>> = Mutex::new(Vec::new());

/// Where a slice of mapped bytes lives in its file.
pub struct FileRange {
    pub file: Arc<File>,
    pub offset: u64,
    pub len: usize,
}

/// The whole of `file`, mapped read-only (no bytes for an empty file, which cannot be
/// mapped).
///
/// The caller promises the file is never modified or truncated while mapped (blob files are
/// only ever renamed in whole and unlinked).
pub fn map(file: File) -> io::Result<Bytes> {
    match file.metadata()?.len() {
        0 => Ok(Bytes::new()),
        len => map_growing(Arc::new(file), len),
    }
}

/// `len` bytes (not 0) of a file that is still being appended to, mapped read-only.
///
/// The caller promises to read through the mapping only bytes already written (the rest
/// of the mapping is past the end of the file), and that the file is only ever appended to,
/// never truncated, while mapped (temp files of the store are renamed in or unlinked).
pub fn map_growing(file: Arc<File>, len: u64) -> io::Result<Bytes> {
    let len = usize::try_from(len).map_err(io::Error::other)?;
    // SAFETY: the callers' promises above: bytes read through the mapping are in the file,
    // never change, and stay there for as long as the mapping lives.
    let map = unsafe { memmap2::MmapOptions::new().len(len).map(&*file) }?;
    let _ = map.advise(memmap2::Advice::Sequential);
    let start = map.as_ptr() as usize;
    MAPPED
        .lock()
        .expect("mapped")
        .push((start, map.len(), file));
    Ok(Bytes::from_owner(Mapping { map, start }))
}

/// The file range holding `bytes`, when they are (a slice of) a live mapping.
pub fn file_range(bytes: &[u8]) -> Option<FileRange> {
    let addr = bytes.as_ptr() as usize;
    let table = MAPPED.lock().expect("mapped");
    let (start, len, file) = table
        .iter()
        .find(|(start, len, _)| *start <= addr && addr < start + len)?;
    Some(FileRange {
        file: file.clone(),
        offset: (addr - start) as u64,
        len: bytes.len().min(start + len - addr),
    })
}

/// Whether every page under `bytes` (a slice of a live mapping) is in the page cache, so that
/// reading or sending it does not wait for the disk. An error counts as not resident, and so
/// does everything when the kernel hides the page cache of files this process neither owns
/// nor may write (Linux 5.0+; the server owns its store's files).
pub fn resident(bytes: &[u8]) -> bool {
    if bytes.is_empty() {
        return true;
    }
    let page = page_size();
    let start = bytes.as_ptr() as usize;
    let first = start & !(page - 1);
    let len = start + bytes.len() - first;
    let mut pages = vec![0u8; len.div_ceil(page)];
    // SAFETY: mappings start on a page boundary, so [first, first + len) lies within the
    // mapping `bytes` borrows; mincore only reads page tables and writes one byte per page
    // into `pages`, which holds exactly that many.
    let rc = unsafe { libc::mincore(first as *mut libc::c_void, len, pages.as_mut_ptr()) };
    rc == 0 && pages.iter().all(|p| p & 1 == 1)
}

fn page_size() -> usize {
    static PAGE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    // SAFETY: sysconf has no preconditions.
    *PAGE.get_or_init(|| match unsafe { libc::sysconf(libc::_SC_PAGESIZE) } {
        n if n > 0 => n as usize,
        _ => 4096,
    })
}

/// Owner of one mapping; leaves the table before it is unmapped.
struct Mapping {
    map: memmap2::Mmap,
    start: usize,
}

impl AsRef<[u8]> for Mapping {
    fn as_ref(&self) -> &[u8] {
        &self.map
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        let mut table = MAPPED.lock().expect("mapped");
        table.retain(|(start, _, _)| *start != self.start);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn mapped(content: &[u8]) -> (tempfile::TempDir, Bytes) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        File::create(&path).unwrap().write_all(content).unwrap();
        let bytes = map(File::open(&path).unwrap()).unwrap();
        (dir, bytes)
    }

    #[test]
    fn a_slice_of_a_mapping_is_found_at_its_offset_in_the_file() {
        let (_dir, bytes) = mapped(b"0123456789");
        assert_eq!(&bytes[..], b"0123456789");
        let range = file_range(&bytes.slice(3..7)).unwrap();
        assert_eq!((range.offset, range.len), (3, 4));
        assert_eq!(range.file.metadata().unwrap().len(), 10);
    }

    #[test]
    fn bytes_elsewhere_and_dropped_mappings_are_not_found() {
        assert!(file_range(b"not mapped").is_none());
        let (_dir, bytes) = mapped(b"abc");
        let addr = bytes.as_ptr();
        let copy = bytes.to_vec();
        assert!(file_range(&copy).is_none());
        drop(bytes);
        // SAFETY: only the address is used, to look it up; nothing is read through it.
        let gone = unsafe { std::slice::from_raw_parts(addr, 0) };
        assert!(
            file_range(gone).is_none(),
            "the dropped mapping left the table"
        );
    }

    #[test]
    fn a_growing_file_is_mapped_at_its_final_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("blob");
        let mut w = File::create(&path).unwrap();
        w.write_all(b"abc").unwrap();
        let bytes = map_growing(Arc::new(File::open(&path).unwrap()), 6).unwrap();
        assert_eq!(&bytes[..3], b"abc");
        w.write_all(b"def").unwrap();
        assert_eq!(
            &bytes[..],
            b"abcdef",
            "later writes are seen through the mapping"
        );
        assert_eq!(file_range(&bytes[4..]).unwrap().offset, 4);
    }

    #[test]
    fn pages_dropped_from_the_page_cache_are_not_resident_until_read() {
        let (_dir, bytes) = mapped(&vec![5u8; 1 << 20]);
        let range = file_range(&bytes).unwrap();
        range.file.sync_all().unwrap(); // only clean pages can be dropped
        rustix::fs::fadvise(&*range.file, 0, None, rustix::fs::Advice::DontNeed).unwrap();
        assert!(
            !resident(&bytes[4096..8192]),
            "dropped pages are not resident"
        );
        let mut sink = vec![0u8; 1 << 20];
        std::os::unix::fs::FileExt::read_exact_at(&*range.file, &mut sink, 0).unwrap();
        assert!(
            resident(&bytes[1..]),
            "read pages are resident, unaligned start too"
        );
        assert!(resident(&bytes[..0]));
    }

    #[test]
    fn an_empty_file_maps_to_no_bytes() {
        let (_dir, bytes) = mapped(b"");
        assert!(bytes.is_empty());
    }
}
