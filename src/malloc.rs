//! Process-wide settings of glibc's allocator, applied once at start.
//!
//! Owns: the `mallopt` calls. Downloads hand hyper's read buffers (up to ~400 KiB each) from
//! the network task to the writer thread and free them there, a few hundred times per
//! 100 MiB. With glibc's default, self-adjusting thresholds the freed memory goes back to
//! the kernel (trimmed or unmapped) and every new buffer faults its pages in again: ~15% of
//! the server's CPU while it pins a 256 MiB layer (bench/README.md). Fixed thresholds keep
//! up to `TRIM_THRESHOLD` of freed memory per arena for reuse instead.
//! Must not touch: anything else; other allocators (musl) are left as they are.

/// Allocations at least this large get their own mapping (above every network buffer).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 4 << 20;

/// Free memory at the top of a heap kept before it is handed back to the kernel.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const TRIM_THRESHOLD: libc::c_int = 64 << 20;

/// Apply the settings; call before other threads start.
pub fn tune() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only changes allocator parameters; it is called before any other
    // thread exists, with parameters and values that glibc documents.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
    }
}
