//! The global allocator of the `braid` binary: mimalloc (the system allocator when
//! built with `--no-default-features`), plus a count of live heap bytes while
//! `braid bench` measures the peak heap growth of one invoke. The count is of the
//! bytes asked for, whichever allocator serves them.
//!
//! The interpreter allocates many small, short-lived objects (values, tetraplets,
//! trace states); glibc's malloc spent up to 40 % of an invoke's instructions on them,
//! mimalloc a fraction of that. The pure core does not choose: an embedder's allocator
//! serves it, and the Wasm build brings its own.
//!
//! When not counting, each allocation costs one relaxed atomic load more than the
//! allocator underneath; the timed runs of `braid bench` happen with counting off.
// `GlobalAlloc` is an unsafe trait: this module is the host's only unsafe code.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};

#[cfg(feature = "mimalloc")]
use mimalloc::MiMalloc as Inner;
#[cfg(not(feature = "mimalloc"))]
use std::alloc::System as Inner;
use std::sync::atomic::{AtomicBool, AtomicIsize, Ordering::Relaxed};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Whether allocations are being counted.
static COUNTING: AtomicBool = AtomicBool::new(false);
/// Live bytes allocated since counting started, minus the bytes freed since (negative
/// when older memory was freed).
static LIVE: AtomicIsize = AtomicIsize::new(0);
/// The highest value of `LIVE` since counting started.
static PEAK: AtomicIsize = AtomicIsize::new(0);

/// Runs `f` with counting on and returns its result and the heap growth at its peak:
/// live heap bytes at their highest during `f` minus live heap bytes just before it
/// (0 if it never grew).
///
/// Every thread's allocations are counted: run nothing else meanwhile.
pub(crate) fn peak_heap_growth<T>(f: impl FnOnce() -> T) -> (T, usize) {
    LIVE.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
    let value = f();
    COUNTING.store(false, Relaxed);
    // Never negative: PEAK starts at 0 and only grows.
    (value, PEAK.load(Relaxed).max(0) as usize)
}

/// Counts live heap bytes from now on, for as long as the process runs (`braid node
/// --metrics`: its `braid_live_heap_bytes`). Costs one relaxed atomic add per
/// allocation and free.
pub(crate) fn count_live_heap() {
    LIVE.store(0, Relaxed);
    PEAK.store(0, Relaxed);
    COUNTING.store(true, Relaxed);
}

/// Live heap bytes allocated since [`count_live_heap`] minus those freed since
/// (memory allocated before and freed after makes it lower); `None` when not counting.
pub(crate) fn live_heap() -> Option<i64> {
    COUNTING.load(Relaxed).then(|| LIVE.load(Relaxed) as i64)
}

/// [`Inner`], counting live bytes while [`COUNTING`] is set.
struct CountingAllocator;

impl CountingAllocator {
    #[inline]
    fn grew(delta: isize) {
        if COUNTING.load(Relaxed) {
            let live = LIVE.fetch_add(delta, Relaxed) + delta;
            PEAK.fetch_max(live, Relaxed);
        }
    }

    #[inline]
    fn shrank(delta: isize) {
        if COUNTING.load(Relaxed) {
            LIVE.fetch_sub(delta, Relaxed);
        }
    }
}

// SAFETY: every call is forwarded unchanged to `Inner`; the counting only reads
// sizes and touches atomics, and never allocates.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: the caller's contract for `alloc` is passed on as is.
        let ptr = unsafe { Inner.alloc(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size() as isize);
        }
        ptr
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        // SAFETY: as for `alloc`.
        let ptr = unsafe { Inner.alloc_zeroed(layout) };
        if !ptr.is_null() {
            Self::grew(layout.size() as isize);
        }
        ptr
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` was allocated by `Inner` with `layout` (we forward every call).
        unsafe { Inner.dealloc(ptr, layout) };
        Self::shrank(layout.size() as isize);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // SAFETY: as for `dealloc`; the caller guarantees `new_size` is valid.
        let new = unsafe { Inner.realloc(ptr, layout, new_size) };
        if !new.is_null() {
            let delta = new_size as isize - layout.size() as isize;
            if delta >= 0 {
                Self::grew(delta);
            } else {
                Self::shrank(-delta);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::peak_heap_growth;

    #[test]
    fn a_freed_buffer_still_counts_at_its_peak() {
        let ((), peak) = peak_heap_growth(|| {
            let buffer = std::hint::black_box(vec![1u8; 1 << 20]);
            drop(buffer);
        });
        assert!(peak >= 1 << 20, "peak {peak}");
        // Other test threads may allocate meanwhile, but not a whole MiB.
        assert!(peak < 2 << 20, "peak {peak}");
    }
}
