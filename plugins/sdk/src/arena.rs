//! The SDK's global allocator: a bump arena inside the plugin's initial linear memory, with std's own
//! allocator behind it for what does not fit.
//!
//! Why: std's allocator on wasm32 takes its first chunk with `memory.grow`, and the host's pooling
//! allocator answers every grow with an `mprotect` (and another to shrink the slot back before its next
//! instance) — two syscalls and two TLB flushes per request for a handler that allocates anything at
//! all. The arena is a zeroed static, so it lives in the module's `.bss`: part of the initial memory,
//! never in the memory image, and no grow is needed until a request has used it up.
//!
//! The host gives each request a fresh instance, so nothing here is ever worth freeing: `dealloc` only
//! gives back the block allocated last (a string built and dropped straight away), and `realloc` grows
//! the last block in place. Under instance reuse the arena fills over several requests and then every
//! allocation goes to std's allocator, which frees as usual: the arena is a bounded, one-off cost.
//! Plugins that want another allocator turn off the SDK's `arena` feature.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};

/// Bytes of the arena: more than a typical handler's request, parse and answer need, and small enough
/// that the host's reset of a used slot stays cheap.
pub const ARENA_BYTES: usize = 128 << 10;

#[repr(C, align(16))]
struct Arena(UnsafeCell<[u8; ARENA_BYTES]>);

// SAFETY: wasm32-unknown-unknown guests run on one thread; the allocator below is the only user.
unsafe impl Sync for Arena {}

static ARENA: Arena = Arena(UnsafeCell::new([0; ARENA_BYTES]));
/// Offset of the arena's first free byte.
static TOP: AtomicUsize = AtomicUsize::new(0);

/// The allocator the SDK installs (`#[global_allocator]` in lib.rs).
pub struct BumpThenSystem;

fn base() -> *mut u8 {
    ARENA.0.get().cast()
}

/// The arena offset of `ptr`, if the arena holds it.
fn offset_of(ptr: *mut u8) -> Option<usize> {
    let offset = (ptr as usize).wrapping_sub(base() as usize);
    (offset < ARENA_BYTES).then_some(offset)
}

/// A block of `layout` from the arena, or null when it does not fit.
fn bump(layout: Layout) -> *mut u8 {
    let top = TOP.load(Relaxed);
    let unaligned = base() as usize + top;
    let start = unaligned.next_multiple_of(layout.align()) - base() as usize;
    match start.checked_add(layout.size()) {
        Some(end) if end <= ARENA_BYTES => {
            TOP.store(end, Relaxed);
            base().wrapping_add(start)
        }
        _ => std::ptr::null_mut(),
    }
}

// SAFETY: blocks from the arena never overlap (the top only moves back over the last block when that
// block is freed or shrunk), and everything else is delegated to `System` with its own pointers.
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
        match offset_of(ptr) {
            Some(offset) => {
                if offset + layout.size() == TOP.load(Relaxed) {
                    TOP.store(offset, Relaxed);
                }
            }
            // SAFETY: not an arena block, so `System` allocated it.
            None => unsafe { System.dealloc(ptr, layout) },
        }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let Some(offset) = offset_of(ptr) else {
            // SAFETY: not an arena block, so `System` allocated it.
            return unsafe { System.realloc(ptr, layout, new_size) };
        };
        let top = TOP.load(Relaxed);
        let last = offset + layout.size() == top;
        if last && offset + new_size <= ARENA_BYTES {
            TOP.store(offset + new_size, Relaxed);
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
