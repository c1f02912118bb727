//! The process allocator: mimalloc, entered through its plain calls.
//!
//! Items are built on the dataplane cores and freed on the script cores,
//! many small allocations each, and glibc's free of them (consolidation,
//! cross-thread chunks) cost more per item than running the agent's hook
//! (`BENCHMARKS.md`, agents). So the skua binary and the benchmarks that
//! stand for it allocate with mimalloc.
//!
//! Why not the `mimalloc` crate's allocator: it passes every request to
//! `mi_malloc_aligned`, and mimalloc serves a block over 1 KiB whose size
//! is not a power of two by over-allocating and aligning by hand, even
//! when the requested alignment is 1 or 8 (about 110 instructions more per
//! allocation, on every HTTP head and body copied into an item). Plain
//! `mi_malloc` already returns blocks aligned to 16 bytes, as the system
//! allocator does, so requests that need no more go there, and only the
//! rare larger alignment takes the aligned calls.

#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};
use std::ffi::c_void;

use libmimalloc_sys as mi;

/// The alignment every `mi_malloc` block of at least that size has
/// (mimalloc's `MI_MAX_ALIGN_SIZE`).
const PLAIN_ALIGN: usize = 16;

/// mimalloc as the global allocator.
pub struct Allocator;

/// Whether a block of `size` bytes from the plain calls is aligned enough.
/// Blocks smaller than 16 bytes are aligned to their size class (a
/// multiple of 8), hence the second condition, as in std's own allocator.
#[inline]
fn plain(align: usize, size: usize) -> bool {
    align <= PLAIN_ALIGN && align <= size
}

// SAFETY: every block comes from mimalloc and goes back to it; a block is
// aligned as its layout asks (by `plain`, or by the aligned calls).
unsafe impl GlobalAlloc for Allocator {
    #[inline]
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: mimalloc's allocation calls accept any size and, for the
        // aligned ones, any power-of-two alignment (which `Layout` holds).
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_malloc(layout.size()).cast()
            } else {
                mi::mi_malloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as in `alloc`.
        unsafe {
            if plain(layout.align(), layout.size()) {
                mi::mi_zalloc(layout.size()).cast()
            } else {
                mi::mi_zalloc_aligned(layout.size(), layout.align()).cast()
            }
        }
    }

    #[inline]
    unsafe fn dealloc(&self, ptr: *mut u8, _layout: Layout) {
        // SAFETY: `ptr` came from this allocator, so from mimalloc, whose
        // free takes blocks of either kind.
        unsafe { mi::mi_free(ptr.cast::<c_void>()) }
    }

    #[inline]
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: `ptr` came from this allocator; the new block keeps the
        // layout's alignment by the same rule as `alloc`.
        unsafe {
            if plain(layout.align(), new_size) {
                mi::mi_realloc(ptr.cast::<c_void>(), new_size).cast()
            } else {
                mi::mi_realloc_aligned(ptr.cast::<c_void>(), new_size, layout.align()).cast()
            }
        }
    }
}

/// Lets the kernel back the heap with transparent huge pages, or not
/// (`dataplane.transparent_huge_pages`), for the whole process from now on:
/// `prctl(PR_SET_THP_DISABLE)`, which holds over mimalloc's own request
/// for huge pages on its arena. DPDK's hugepages (hugetlbfs) are another
/// mechanism and are not affected.
///
/// Off is skua's default. A huge-page fault zeroes 2 MiB, after the kernel
/// has found (and maybe compacted) a free 2 MiB block: on the VM of
/// BENCHMARKS.md that was 10 to 50 ms of a short run's CPU, its largest
/// variation, and 20 MB more resident memory per dataplane core, with no
/// gain in packet rate to show for it.
pub fn transparent_huge_pages(on: bool) -> std::io::Result<()> {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_SET_THP_DISABLE takes an integer and touches only this
        // process' memory-management flags.
        let r = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, libc::c_ulong::from(!on), 0, 0, 0) };
        if r != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    #[cfg(not(target_os = "linux"))]
    let _ = on;
    Ok(())
}

/// Whether the process may get transparent huge pages (see above).
pub fn transparent_huge_pages_allowed() -> bool {
    #[cfg(target_os = "linux")]
    {
        // SAFETY: PR_GET_THP_DISABLE reads this process' flag.
        unsafe { libc::prctl(libc::PR_GET_THP_DISABLE, 0, 0, 0, 0) == 0 }
    }
    #[cfg(not(target_os = "linux"))]
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transparent_huge_pages_turn_off_and_on_for_the_process() {
        transparent_huge_pages(false).unwrap();
        assert!(!transparent_huge_pages_allowed());
        transparent_huge_pages(true).unwrap();
        assert!(transparent_huge_pages_allowed());
    }

    #[test]
    fn blocks_keep_their_alignment_across_sizes_and_growth() {
        let a = Allocator;
        for align in [1, 2, 8, 16, 32, 64, 4096] {
            for size in [1, 7, 8, 15, 16, 24, 1000, 1500, 5000, 70_000] {
                let layout = Layout::from_size_align(size, align).unwrap();
                // SAFETY: a non-zero layout; each block is freed once, with
                // the layout it has at that point.
                unsafe {
                    let p = a.alloc(layout);
                    assert!(!p.is_null());
                    assert_eq!(p as usize % align, 0, "alloc {size} align {align}");
                    p.write_bytes(0xab, size);
                    let grown = size * 3 + 1;
                    let q = a.realloc(p, layout, grown);
                    assert_eq!(q as usize % align, 0, "realloc {grown} align {align}");
                    assert_eq!(*q.add(size - 1), 0xab, "realloc keeps the bytes");
                    a.dealloc(q, Layout::from_size_align(grown, align).unwrap());
                    let z = a.alloc_zeroed(layout);
                    assert_eq!(z as usize % align, 0);
                    assert!((0..size).all(|i| *z.add(i) == 0));
                    a.dealloc(z, layout);
                }
            }
        }
    }
}
