//! The SDK's global allocator: a bump arena inside the plugin's initial linear memory, with std's own
//! allocator behind it for what does not fit.
//!
//! Why: std's allocator on wasm32 takes its first chunk with `memory.grow`, and the host's pooling
//! allocator answers every grow with an `mprotect` (and another to shrink the slot back before its next
//! instance) — two syscalls and two TLB flushes per request for a handler that allocates anything at
//! all. The arena never grows memory, so a request that stays inside it costs the host no syscall.
//!
//! The arena is two regions, used in order:
//!   1. a zeroed static of [`ARENA_BYTES`], in the module's `.bss`: part of the initial memory, never in
//!      the memory image, so every plugin has at least this much;
//!   2. the tail of the initial memory, from the linker's `__heap_base` (the end of data and `.bss`) to
//!      the end of the last initial page: memory the instance has anyway and std's allocator never uses
//!      (it only takes pages it grows).
//!
//! The host resets every page an instance had after each request (a memset), at ~0.5–0.8 µs per
//! 64 KiB page (docs/benchmarks.md): the static is kept small so that a small plugin — 64 KiB of stack,
//! its data, the static — fits in two pages, and the tail makes the rest of the second page usable.
//!
//! The host gives each request a fresh instance, so nothing here is ever worth freeing: `dealloc` only
//! gives back the block allocated last in its region (a string built and dropped straight away), and
//! `realloc` grows that block in place. Under instance reuse the arena fills over several requests and
//! then every allocation goes to std's allocator, which frees as usual: the arena is a bounded, one-off
//! cost. Plugins that want another allocator turn off the SDK's `arena` feature.

// Installed only on wasm32 (lib.rs); elsewhere it is compiled for clippy and the unit test.
#![cfg_attr(not(target_arch = "wasm32"), allow(dead_code))]

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};

/// Bytes of the static region: what every plugin's arena has at least, more than a typical handler's
/// request, parse and answer need.
pub const ARENA_BYTES: usize = 48 << 10;

#[repr(C, align(16))]
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: wasm32-unknown-unknown guests run on one thread; the allocator below is the only user.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));

/// One bump region: `len` bytes from `base`, the first free one at offset `top`.
struct Region {
    base: AtomicUsize,
    len: AtomicUsize,
    top: AtomicUsize,
}

impl Region {
    const fn empty() -> Self {
        Self {
            base: AtomicUsize::new(0),
            len: AtomicUsize::new(0),
            top: AtomicUsize::new(0),
        }
    }

    /// The offset of `ptr` in this region, if the region holds it.
    fn offset_of(&self, ptr: *mut u8) -> Option<usize> {
        let offset = (ptr as usize).wrapping_sub(self.base.load(Relaxed));
        (offset < self.len.load(Relaxed)).then_some(offset)
    }

    /// A block of `layout`, or null when it does not fit.
    fn bump(&self, layout: Layout) -> *mut u8 {
        let (base, top) = (self.base.load(Relaxed), self.top.load(Relaxed));
        let start = (base + top).next_multiple_of(layout.align()) - base;
        match start.checked_add(layout.size()) {
            Some(end) if end <= self.len.load(Relaxed) => {
                self.top.store(end, Relaxed);
                (base + start) as *mut u8
            }
            _ => std::ptr::null_mut(),
        }
    }
}

/// The static region and the tail of the initial memory (set up on first use).
static REGIONS: [Region; 2] = [Region::empty(), Region::empty()];
static READY: AtomicBool = AtomicBool::new(false);

/// The regions, set up on first use: the static, then `__heap_base` to the end of the initial memory.
fn regions() -> &'static [Region; 2] {
    if !READY.load(Relaxed) {
        let [first, tail] = &REGIONS;
        first.base.store(ARENA.0.get() as usize, Relaxed);
        first.len.store(ARENA_BYTES, Relaxed);
        let (start, end) = initial_tail();
        tail.base.store(start, Relaxed);
        tail.len.store(end.saturating_sub(start), Relaxed);
        READY.store(true, Relaxed);
    }
    &REGIONS
}

/// Where the unused tail of the initial memory starts and ends. Called before the first allocation,
/// so memory has not grown yet.
#[cfg(target_arch = "wasm32")]
fn initial_tail() -> (usize, usize) {
    unsafe extern "C" {
        // Defined by wasm-ld: the first byte after the stack, data and `.bss`.
        static __heap_base: u8;
    }
    // SAFETY: only the symbol's address is taken, never its contents.
    let start = unsafe { std::ptr::addr_of!(__heap_base) } as usize;
    let end = core::arch::wasm32::memory_size(0) * 65536;
    (start.next_multiple_of(16), end)
}

/// Off wasm32 (the unit test) there is no initial memory: only the static region.
#[cfg(not(target_arch = "wasm32"))]
fn initial_tail() -> (usize, usize) {
    (0, 0)
}

/// The region holding `ptr` and its offset there, if the arena holds it.
fn find(ptr: *mut u8) -> Option<(&'static Region, usize)> {
    regions()
        .iter()
        .find_map(|region| region.offset_of(ptr).map(|offset| (region, offset)))
}

/// A block of `layout` from the first region it fits in, or null.
fn bump(layout: Layout) -> *mut u8 {
    regions()
        .iter()
        .map(|region| region.bump(layout))
        .find(|ptr| !ptr.is_null())
        .unwrap_or(std::ptr::null_mut())
}

/// Bytes the arena can still hand out (both regions), for the fixture that checks its layout.
pub fn free_bytes() -> usize {
    regions()
        .iter()
        .map(|region| region.len.load(Relaxed) - region.top.load(Relaxed))
        .sum()
}

/// The allocator the SDK installs (`#[global_allocator]` in lib.rs).
pub struct BumpThenSystem;

// SAFETY: blocks from a region never overlap (its top only moves back over its last block when that
// block is freed or shrunk), the regions do not overlap each other (the static lies below
// `__heap_base`), and everything else is delegated to `System` with its own pointers.
unsafe impl GlobalAlloc for BumpThenSystem {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = bump(layout);
        if ptr.is_null() {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc(layout) }
        } else {
            ptr
        }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        let ptr = bump(layout);
        if ptr.is_null() {
            // SAFETY: forwarded with the caller's guarantees.
            unsafe { System.alloc_zeroed(layout) }
        } else {
            // The arena starts zeroed, but a block given back and handed out again is not.
            // SAFETY: `ptr` is a fresh arena block of `layout.size()` bytes.
            unsafe { ptr.write_bytes(0, layout.size()) };
            ptr
        }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        match find(ptr) {
            Some((region, offset)) => {
                if offset + layout.size() == region.top.load(Relaxed) {
                    region.top.store(offset, Relaxed);
                }
            }
            // SAFETY: not an arena block, so `System` allocated it.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some((region, offset)) = find(ptr) else {
            // SAFETY: not an arena block, so `System` allocated it.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        let last = offset + layout.size() == region.top.load(Relaxed);
        if last && offset + new_size <= region.len.load(Relaxed) {
            region.top.store(offset + new_size, Relaxed);
            return ptr;
        }
        if new_size <= layout.size() {
            return ptr;
        }
        // SAFETY: `new_size` is non-zero and, rounded up to the alignment, fits in `isize` (the caller's
        // guarantees for realloc).
        let new_layout = unsafe { Layout::from_size_align_unchecked(new_size, layout.align()) };
        // SAFETY: as for `alloc`.
        let new = unsafe { self.alloc(new_layout) };
        if !new.is_null() {
            // SAFETY: both blocks are live, distinct and at least `layout.size()` bytes long.
            unsafe {
                std::ptr::copy_nonoverlapping(ptr, new, layout.size());
                self.dealloc(ptr, layout);
            }
        }
        new
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn owned(ptr: *mut u8) -> bool {
        find(ptr).is_some()
    }

    // One test: the arena is a process-wide static, so its cases must not run in parallel.
    #[test]
    fn bumps_frees_the_last_block_and_falls_back_to_system() {
        let a = BumpThenSystem;
        let l16 = Layout::from_size_align(16, 8).unwrap();
        unsafe {
            let x = a.alloc(l16);
            let y = a.alloc(l16);
            assert!(owned(x) && owned(y));
            assert_eq!(y as usize - x as usize, 16, "consecutive blocks");

            // Freeing the last block gives its space back; freeing an earlier one does nothing.
            a.dealloc(y, l16);
            assert_eq!(a.alloc(l16), y);
            a.dealloc(x, l16);
            let z = a.alloc(l16);
            assert_eq!(z as usize - y as usize, 16, "x's space stays used");

            // The last block grows in place; another block moves, keeping its bytes.
            let grown = a.realloc(z, l16, 64);
            assert_eq!(grown, z);
            y.write_bytes(7, 16);
            let moved = a.realloc(y, l16, 32);
            assert_ne!(moved, y);
            assert!(owned(moved));
            assert_eq!(std::slice::from_raw_parts(moved, 16), &[7; 16]);

            // Reused arena space comes back zeroed when asked.
            let l32 = Layout::from_size_align(32, 8).unwrap();
            a.dealloc(moved, l32);
            let zeroed = a.alloc_zeroed(l32);
            assert_eq!(zeroed, moved);
            assert_eq!(std::slice::from_raw_parts(zeroed, 32), &[0; 32]);

            // Alignment is honoured.
            let l4k = Layout::from_size_align(8, 4096).unwrap();
            let aligned = a.alloc(l4k);
            assert!(owned(aligned));
            assert_eq!(aligned as usize % 4096, 0);

            // What does not fit goes to std's allocator, and back to it when freed.
            let big = Layout::from_size_align(ARENA_BYTES + 1, 8).unwrap();
            let b = a.alloc(big);
            assert!(!b.is_null() && !owned(b));
            a.dealloc(b, big);

            // A block that outgrows the arena moves to std's allocator.
            let last = a.alloc(l16);
            last.write_bytes(9, 16);
            let out = a.realloc(last, l16, ARENA_BYTES);
            assert!(!owned(out));
            assert_eq!(std::slice::from_raw_parts(out, 16), &[9; 16]);
            a.dealloc(out, Layout::from_size_align(ARENA_BYTES, 8).unwrap());
        }
    }
}
