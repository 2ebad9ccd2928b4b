//! The global allocator of the `braid` binary: mimalloc (the system allocator when
//! built with `--no-default-features`), plus two counts of live heap bytes: one while
//! `braid bench` measures the peak heap growth of one invoke, and one of the whole
//! process's heap for `braid node --metrics` (`braid_live_heap_bytes`), from the start
//! of `main`. The counts are of the bytes asked for, whichever allocator serves them.
//!
//! The interpreter allocates many small, short-lived objects (values, tetraplets,
//! trace states); glibc's malloc spent up to 40 % of an invoke's instructions on them,
//! mimalloc a fraction of that. The pure core does not choose: an embedder's allocator
//! serves it, and the Wasm build brings its own.
//!
//! When not counting, each allocation costs one relaxed atomic load more than the
//! allocator underneath; the timed runs of `braid bench` happen with counting off (and
//! the whole heap is counted only for a node with `/metrics`).
// `GlobalAlloc` is an unsafe trait: this module is the host's only unsafe code.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout};

#[cfg(feature = "mimalloc")]
use mimalloc::MiMalloc as Inner;
#[cfg(not(feature = "mimalloc"))]
use std::alloc::System as Inner;
use std::sync::atomic::{AtomicIsize, AtomicU8, Ordering::Relaxed};

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Which counts run: [`BENCH`] and [`WHOLE`] bits (one load tells both).
static COUNTING: AtomicU8 = AtomicU8::new(0);
/// `braid bench`'s count ([`LIVE`], [`PEAK`]).
const BENCH: u8 = 1;
/// The whole heap's count ([`HEAP`]).
const WHOLE: u8 = 2;
/// Live bytes allocated since the whole heap's count started (the start of `main`)
/// minus the bytes freed since.
static HEAP: AtomicIsize = AtomicIsize::new(0);
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
    COUNTING.fetch_or(BENCH, Relaxed);
    let value = f();
    COUNTING.fetch_and(!BENCH, Relaxed);
    // Never negative: PEAK starts at 0 and only grows.
    (value, PEAK.load(Relaxed).max(0) as usize)
}

/// Called first thing in `main`: when the command line runs a node with `/metrics`
/// (`node` and `--metrics` among the arguments), counts the whole live heap from now
/// on, for as long as the process runs: its `braid_live_heap_bytes`. Costs one relaxed
/// atomic add per allocation and free. What the runtime allocated before `main` (a
/// few hundred bytes: the arguments, the main thread's name) is not counted.
pub(crate) fn count_whole_heap_for_node_metrics() {
    let wanted = {
        let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
        args.iter().any(|a| a == "node")
            && args.iter().any(|a| {
                a.to_str()
                    .is_some_and(|a| a == "--metrics" || a.starts_with("--metrics="))
            })
    };
    // The arguments' copy is freed above, before the count starts.
    if wanted {
        COUNTING.fetch_or(WHOLE, Relaxed);
    }
}

/// The process's live heap bytes, counted from the start of `main`
/// ([`count_whole_heap_for_node_metrics`]); `None` when not counted.
pub(crate) fn live_heap() -> Option<i64> {
    (COUNTING.load(Relaxed) & WHOLE != 0).then(|| HEAP.load(Relaxed) as i64)
}

/// [`Inner`], counting live bytes while [`COUNTING`] is set.
struct CountingAllocator;

impl CountingAllocator {
    #[inline]
    fn grew(delta: isize) {
        let counting = COUNTING.load(Relaxed);
        if counting != 0 {
            if counting & WHOLE != 0 {
                HEAP.fetch_add(delta, Relaxed);
            }
            if counting & BENCH != 0 {
                let live = LIVE.fetch_add(delta, Relaxed) + delta;
                PEAK.fetch_max(live, Relaxed);
            }
        }
    }

    #[inline]
    fn shrank(delta: isize) {
        let counting = COUNTING.load(Relaxed);
        if counting != 0 {
            if counting & WHOLE != 0 {
                HEAP.fetch_sub(delta, Relaxed);
            }
            if counting & BENCH != 0 {
                LIVE.fetch_sub(delta, Relaxed);
            }
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
