#!/usr/bin/env bash
# Builds every guest crate in this workspace for wasm32-unknown-unknown and turns each core module into a
# component, with `plugin-host build`:
#   examples  -> target/plugins/<name>.wasm   (what the default configuration serves)
#   fixtures  -> target/fixtures/<name>.wasm  (what the integration tests load)
#   wasi-hello -> target/bench/wasi-hello.wasm (not a plugin: the side-by-side benchmark's guest for
#                 `wasmtime serve`; kept out of target/plugins, which the host serves by default)
#
# Two kinds of machine are handled (see docs/ARCHITECTURE.md, "Building guests"):
#   - rustup has the wasm32-unknown-unknown target: plain `cargo build --target ...`;
#   - it does not (no rustup downloads here): Debian's Rust packages, which carry the standard library's
#     source, build `std` for wasm with -Zbuild-std. They are installed on first use.
# Usage: plugins/build.sh PLUGIN_HOST_BINARY
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
host_bin=$(realpath "${1:?usage: plugins/build.sh PLUGIN_HOST_BINARY}")
target=wasm32-unknown-unknown
wasm_dir="$root/target/wasm"
out_examples="$root/target/plugins"
out_fixtures="$root/target/fixtures"
out_bench="$root/target/bench"

debian_packages=(rustc-web cargo-web rust-web-src rust-web-llvm lld-22)

have_rustup_target() {
    command -v rustup >/dev/null 2>&1 && rustup target list --installed 2>/dev/null | grep -qx "$target"
}

install_debian_toolchain() {
    if [[ -x /usr/bin/cargo && -x /usr/bin/rustc && -x /usr/bin/rust-lld && -d /usr/lib/rustlib/src/rust/library ]]; then
        return
    fi
    echo "plugins: installing Debian's Rust toolchain for wasm (${debian_packages[*]})" >&2
    local sudo=()
    [[ $(id -u) -eq 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${debian_packages[@]}" >/dev/null
}

# The build itself is `plugin-host build` (the same command plugin authors use): it picks the toolchain,
# runs cargo in plugins/ (so plugins/.cargo/config.toml, the guest stack size, applies) and makes the
# components. This script only installs a toolchain when there is none, and sorts what was built.
if ! have_rustup_target; then
    install_debian_toolchain
fi
built_components="$root/target/components"
rm -rf "$built_components"
CARGO_TARGET_DIR="$wasm_dir" "$host_bin" build "$root/plugins" --out "$built_components"

mkdir -p "$out_examples" "$out_fixtures" "$out_bench"
for component in "$built_components"/*.wasm; do
    name=$(basename "$component" .wasm)
    case $name in
        fixture-*) mv "$component" "$out_fixtures/${name#fixture-}.wasm" ;;
        wasi-hello) mv "$component" "$out_bench/$name.wasm" ;;
        *) mv "$component" "$out_examples/$name.wasm" ;;
    esac
done
rmdir "$built_components"
# The core module of an example, kept as-is: the tests check that the host refuses core modules.
cp "$wasm_dir/$target/release/hello.wasm" "$out_fixtures/core-module.wasm"
echo "plugins: components in ${out_examples#"$root"/}/, ${out_fixtures#"$root"/}/ and ${out_bench#"$root"/}/" >&2
