//! The `plugin-host` binary: parses the command line and hands over to the library.

/// mimalloc for the host's own allocations: 6-8 % less CPU per plugin request than glibc's malloc on
/// the side-by-side hello, with no memory syscalls per request (docs/benchmarks.md). SQLite still uses
/// libc's malloc, which `tune_malloc` tunes.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    plugin_host::app::alloc::tune_malloc();
    plugin_host::cli::main()
}
