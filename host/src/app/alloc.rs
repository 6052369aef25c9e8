//! Allocator tuning for long runs with many reloads and for bursts of large responses.
//!
//! glibc's malloc gives each thread that allocates its own arena, up to 8 per CPU. Compiling a new
//! generation allocates heavily on several threads (wasmtime compiles in parallel), and the freed memory
//! stays spread over those arenas: in the soak (1,000,000 requests, a reload every 1,000) RSS crept up by
//! ~7 % with the default, and stayed flat with at most 2 arenas on the 2-CPU test machine — and flat with
//! jemalloc, at a higher baseline (docs/benchmarks.md). So the host caps arenas at the CPU count, unless
//! the operator chose otherwise through `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES`.
//!
//! glibc also raises its mmap threshold on its own each time a mapped block is freed (up to 32 MiB), so
//! after the first large response body every later one came from the arenas, and a burst of them left
//! ~18-35 MiB resident that no later quiet brought back (`malloc_trim` only recovered part of it). A fixed
//! threshold of 1 MiB gives every buffer that large its own mapping, unmapped when the response is
//! written: RSS comes back to within ~4 MiB of where it was (docs/benchmarks.md, "Hardening (issue 19)").
//! Allocations below 1 MiB — all a typical request makes — are unaffected (still no memory syscall per
//! request). An operator who sets `MALLOC_MMAP_THRESHOLD_`, or `mmap_threshold` in `GLIBC_TUNABLES`, keeps
//! their own choice.

/// Allocations at least this large get a mapping of their own, returned to the system when freed.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: i32 = 1 << 20;

/// Cap glibc's malloc arenas at the number of CPUs and fix its mmap threshold at [`MMAP_THRESHOLD`].
/// Call first thing in `main`, before other threads.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if !operator_chose("MALLOC_ARENA_MAX", "arena_max") {
            let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
            set(libc::M_ARENA_MAX, cpus.clamp(2, 64) as i32);
        }
        if !operator_chose("MALLOC_MMAP_THRESHOLD_", "mmap_threshold") {
            set(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
        }
    }
}

/// Whether the operator set this malloc parameter: through its environment variable, or as a tunable.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn operator_chose(variable: &str, tunable: &str) -> bool {
    std::env::var_os(variable).is_some()
        || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains(tunable))
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(
    unsafe_code,
    reason = "mallopt is a plain libc call with integer arguments"
)]
fn set(parameter: i32, value: i32) {
    // SAFETY: mallopt takes two integers and only changes malloc's tuning; it is called before any other
    // thread exists, and a failure (return value 0) just leaves the default in place.
    unsafe {
        libc::mallopt(parameter, value);
    }
}

/// What glibc's malloc holds, summed over its arenas (`mallinfo2`): the bytes handed out and not yet
/// freed (in arenas and in mappings of their own), and the freed bytes it keeps for reuse. In use
/// against RSS tells a leak (in use grows) from fragmentation or a cache outside malloc (RSS grows
/// alone); `/metrics` reads them at scrape time (`plugin_host_heap_in_use_bytes`,
/// `plugin_host_heap_free_bytes`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HeapStats {
    /// `uordblks + hblkhd`: allocated and not freed.
    pub in_use_bytes: u64,
    /// `fordblks`: freed, kept in the arenas' free lists (resident or not).
    pub free_bytes: u64,
}

/// The allocator's statistics now; `None` where the allocator is not glibc's. `mallinfo2` takes each
/// arena's lock in turn, so this is for scrapes, not for the request path.
pub fn heap_stats() -> Option<HeapStats> {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        #[allow(
            unsafe_code,
            reason = "mallinfo2 is a plain libc call that returns a struct by value"
        )]
        // SAFETY: mallinfo2 takes no arguments, only reads malloc's bookkeeping under its locks, and
        // returns a plain struct of integers.
        let info = unsafe { libc::mallinfo2() };
        Some(HeapStats {
            in_use_bytes: (info.uordblks + info.hblkhd) as u64,
            free_bytes: info.fordblks as u64,
        })
    }
    #[cfg(not(all(target_os = "linux", target_env = "gnu")))]
    {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    fn heap_in_use_counts_a_live_allocation() {
        // Other tests allocate and free on other threads meanwhile: only a bound that holds whatever
        // they do.
        let block = std::hint::black_box(vec![1u8; 4 << 20]);
        let stats = heap_stats().expect("glibc");
        assert!(stats.in_use_bytes >= 4 << 20, "{stats:?}");
        drop(block);
    }
}
