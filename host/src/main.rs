//! The `plugin-host` binary: parses the command line and hands over to the library.

fn main() -> std::process::ExitCode {
    plugin_host::app::alloc::tune_malloc();
    plugin_host::cli::main()
}
