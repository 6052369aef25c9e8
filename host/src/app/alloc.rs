//! Allocator tuning for long runs with many reloads.
//!
//! glibc's malloc gives each thread that allocates its own arena, up to 8 per CPU. Compiling a new
//! generation allocates heavily on several threads (wasmtime compiles in parallel), and the freed memory
//! stays spread over those arenas: in the soak (1,000,000 requests, a reload every 1,000) RSS crept up by
//! ~7 % with the default, and stayed flat with at most 2 arenas on the 2-CPU test machine — and flat with
//! jemalloc, at a higher baseline (docs/benchmarks.md). So the host caps arenas at the CPU count, unless
//! the operator chose otherwise through `MALLOC_ARENA_MAX` or `GLIBC_TUNABLES`.

/// Cap glibc's malloc arenas at the number of CPUs. Call first thing in `main`, before other threads.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        let operator_chose = std::env::var_os("MALLOC_ARENA_MAX").is_some()
            || std::env::var("GLIBC_TUNABLES").is_ok_and(|t| t.contains("arena_max"));
        if !operator_chose {
            let cpus = std::thread::available_parallelism().map_or(2, |n| n.get());
            set_arena_max(cpus.clamp(2, 64) as i32);
        }
    }
}

#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[allow(
    unsafe_code,
    reason = "mallopt is a plain libc call with integer arguments"
)]
fn set_arena_max(arenas: i32) {
    // SAFETY: mallopt takes two integers and only changes malloc's tuning; it is called before any other
    // thread exists, and a failure (return value 0) just leaves the default in place.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}
