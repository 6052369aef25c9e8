#!/usr/bin/env bash
# Builds every guest crate in this workspace for wasm32-unknown-unknown and turns each core module into a
# component with `plugin-host componentize`:
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

# Cargo reads .cargo/config.toml from the working directory, not from --manifest-path: build from plugins/
# so its config (the guest stack size) applies.
cd "$root/plugins"
cargo_args=(build --release --target "$target" --target-dir "$wasm_dir")
if have_rustup_target; then
    echo "plugins: using rustup's $target target" >&2
    cargo "${cargo_args[@]}"
else
    install_debian_toolchain
    echo "plugins: building std for $target from source with Debian's $(/usr/bin/rustc --version)" >&2
    RUSTC=/usr/bin/rustc RUSTC_BOOTSTRAP=1 /usr/bin/cargo "${cargo_args[@]}" -Zbuild-std=std,panic_abort
fi

mkdir -p "$out_examples" "$out_fixtures" "$out_bench"
built="$wasm_dir/$target/release"
for crate_dir in "$root"/plugins/*/; do
    name=$(basename "$crate_dir")
    [[ $name == sdk || ! -f $crate_dir/Cargo.toml ]] && continue
    out="$out_examples"
    [[ $name == wasi-hello ]] && out="$out_bench"
    "$host_bin" componentize "$built/${name//-/_}.wasm" -o "$out/$name.wasm"
done
for crate_dir in "$root"/tests/fixtures/plugins/*/; do
    [[ -f $crate_dir/Cargo.toml ]] || continue
    name=$(basename "$crate_dir")
    "$host_bin" componentize "$built/fixture_${name//-/_}.wasm" -o "$out_fixtures/$name.wasm"
done
# The core module of an example, kept as-is: the tests check that the host refuses core modules.
cp "$built/hello.wasm" "$out_fixtures/core-module.wasm"
echo "plugins: components in ${out_examples#"$root"/}/, ${out_fixtures#"$root"/}/ and ${out_bench#"$root"/}/" >&2
