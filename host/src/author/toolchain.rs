//! `plugin-host build`: find a Rust toolchain that can build for `wasm32-unknown-unknown`, build a crate
//! (or a workspace of them) with it, and turn each core module into a plugin component. The one
//! implementation of the guest build: `plugins/build.sh` calls it for this repository's plugins.
//!
//! Two kinds of toolchain work, tried in this order for the `rustc` on PATH and then for a system
//! `/usr/bin/rustc` (Debian's, which carries the standard library's source):
//! - one with the wasm standard library installed (`rustup target add wasm32-unknown-unknown`);
//! - one with the standard library's source, which builds `std` for wasm itself (`-Zbuild-std`).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Deserialize;

/// The one wasm target plugins are built for.
pub const TARGET: &str = "wasm32-unknown-unknown";

/// How to get a toolchain, for the error when there is none.
const HOW_TO_GET_ONE: &str = "install one of:\n  \
    - rustup's wasm target: `rustup target add wasm32-unknown-unknown`\n  \
    - on Debian or Ubuntu, Rust with its library source (plugin-host then builds std for wasm \
      itself): `apt-get install rustc-web cargo-web rust-web-src rust-web-llvm lld-22`\n\
    (`make plugins` in the Plugin Host repository installs the second when neither is present)";

/// A toolchain that builds for [`TARGET`].
#[derive(Debug, Clone)]
pub struct Toolchain {
    cargo: PathBuf,
    rustc: PathBuf,
    /// Build `std` from source (`-Zbuild-std`), because no prebuilt wasm `std` is installed.
    build_std: bool,
}

impl Toolchain {
    /// The first toolchain that can build plugins, or an error saying how to get one.
    pub fn find() -> Result<Self> {
        let candidates = [
            (PathBuf::from("cargo"), PathBuf::from("rustc")),
            (
                PathBuf::from("/usr/bin/cargo"),
                PathBuf::from("/usr/bin/rustc"),
            ),
        ];
        let mut tried = Vec::new();
        for (cargo, rustc) in candidates {
            match probe(&rustc) {
                Some(build_std) => {
                    return Ok(Self {
                        cargo,
                        rustc,
                        build_std,
                    });
                }
                None => tried.push(rustc.display().to_string()),
            }
        }
        bail!(
            "no Rust toolchain here can build for {TARGET} (tried {}); {HOW_TO_GET_ONE}",
            tried.join(", ")
        )
    }

    /// A `cargo` command run by this toolchain, in `dir`.
    fn cargo(&self, dir: &Path) -> Command {
        let mut command = Command::new(&self.cargo);
        command.current_dir(dir).env("RUSTC", &self.rustc);
        if self.build_std {
            // Lets a stable toolchain accept -Zbuild-std.
            command.env("RUSTC_BOOTSTRAP", "1");
        }
        command
    }

    /// What this toolchain is, for the build's first line.
    pub fn describe(&self) -> String {
        let version = Command::new(&self.rustc)
            .arg("--version")
            .output()
            .ok()
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .unwrap_or_else(|| self.rustc.display().to_string());
        if self.build_std {
            format!("{version}, building std for {TARGET} from source")
        } else {
            format!("{version} with its {TARGET} standard library")
        }
    }
}

/// Whether `rustc` can build for the target: `Some(false)` with a prebuilt `std`, `Some(true)` with the
/// library source only, `None` not at all (or no such rustc).
fn probe(rustc: &Path) -> Option<bool> {
    let print = |what: &[&str]| -> Option<PathBuf> {
        let out = Command::new(rustc)
            .args(what)
            .stderr(Stdio::null())
            .output()
            .ok()?;
        out.status
            .success()
            .then(|| PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
    };
    let libdir = print(&["--print", "target-libdir", "--target", TARGET])?;
    let has_std = std::fs::read_dir(&libdir).is_ok_and(|entries| {
        entries
            .flatten()
            .any(|e| e.file_name().to_string_lossy().starts_with("libstd-"))
    });
    if has_std {
        return Some(false);
    }
    let sysroot = print(&["--print", "sysroot"])?;
    sysroot
        .join("lib/rustlib/src/rust/library/std/Cargo.toml")
        .is_file()
        .then_some(true)
}

/// What to build and where the components go.
#[derive(Debug, Clone)]
pub struct BuildRequest {
    /// A plugin crate, or a workspace of them.
    pub dir: PathBuf,
    /// Where components are written (default: `dir`).
    pub out: Option<PathBuf>,
}

/// One component made by [`build`].
#[derive(Debug, Clone)]
pub struct Built {
    pub package: String,
    pub component: PathBuf,
    pub bytes: u64,
}

/// The part of `cargo metadata` the build reads.
#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
    target_directory: PathBuf,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    manifest_path: PathBuf,
    targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    crate_types: Vec<String>,
}

/// Build the plugin crate (or every plugin crate of the workspace) in `request.dir` for wasm, in release,
/// with cargo's output on stderr, and write `<package>.wasm` components. `dir`'s own
/// `.cargo/config.toml` applies (cargo runs there).
pub fn build(toolchain: &Toolchain, request: &BuildRequest) -> Result<(Vec<Built>, Duration)> {
    let started = Instant::now();
    let dir = request
        .dir
        .canonicalize()
        .with_context(|| format!("cannot find the plugin crate {}", request.dir.display()))?;
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        bail!(
            "{} has no Cargo.toml: run `plugin-host build` in a plugin crate (`plugin-host new NAME` makes one)",
            dir.display()
        );
    }
    let metadata = metadata(toolchain, &dir)?;
    let plugins = plugin_packages(&metadata, &manifest);
    if plugins.is_empty() {
        bail!(
            "{} has no plugin crate: a plugin's Cargo.toml has `crate-type = [\"cdylib\"]` under [lib]",
            manifest.display()
        );
    }
    let mut cargo = toolchain.cargo(&dir);
    cargo.args(["build", "--release", "--target", TARGET, "--manifest-path"]);
    cargo.arg(&manifest);
    for (package, _) in &plugins {
        cargo.args(["-p", package]);
    }
    if toolchain.build_std {
        cargo.arg("-Zbuild-std=std,panic_abort");
    }
    let status = cargo
        .status()
        .with_context(|| format!("cannot run {}", toolchain.cargo.display()))?;
    if !status.success() {
        bail!(
            "cargo could not build {} ({status}); its errors are above",
            dir.display()
        );
    }
    let modules = metadata.target_directory.join(TARGET).join("release");
    let out = request.out.clone().unwrap_or(dir);
    std::fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut built = Vec::new();
    for (package, lib) in plugins {
        let module = modules.join(format!("{}.wasm", lib.replace('-', "_")));
        let component = out.join(format!("{package}.wasm"));
        componentize(&module, &component)?;
        let bytes = std::fs::metadata(&component).map(|m| m.len()).unwrap_or(0);
        built.push(Built {
            package,
            component,
            bytes,
        });
    }
    Ok((built, started.elapsed()))
}

fn metadata(toolchain: &Toolchain, dir: &Path) -> Result<Metadata> {
    let out = toolchain
        .cargo(dir)
        .args(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .with_context(|| format!("cannot run {}", toolchain.cargo.display()))?;
    if !out.status.success() {
        bail!(
            "cargo cannot read {} ({})",
            dir.join("Cargo.toml").display(),
            out.status
        );
    }
    serde_json::from_slice(&out.stdout).context("cannot read cargo's metadata")
}

/// (package, library target) of every plugin crate to build: the package whose manifest is `manifest`,
/// or every member when `manifest` is a workspace's.
fn plugin_packages(metadata: &Metadata, manifest: &Path) -> Vec<(String, String)> {
    let is_plugin = |p: &&Package| {
        p.targets
            .iter()
            .any(|t| t.crate_types.iter().any(|c| c == "cdylib"))
    };
    let lib = |p: &Package| {
        let target = p
            .targets
            .iter()
            .find(|t| t.crate_types.iter().any(|c| c == "cdylib"));
        (
            p.name.clone(),
            target.map(|t| t.name.clone()).unwrap_or_default(),
        )
    };
    let own: Vec<&Package> = metadata
        .packages
        .iter()
        .filter(|p| p.manifest_path == manifest)
        .collect();
    let chosen: Vec<&Package> = if own.is_empty() {
        metadata.packages.iter().collect()
    } else {
        own
    };
    chosen.into_iter().filter(is_plugin).map(lib).collect()
}

/// Encode the core module at `input` (with the type information wit-bindgen embeds) as a component at
/// `output` (written to a temporary file, then renamed into place).
pub fn componentize(input: &Path, output: &Path) -> Result<()> {
    let module =
        std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
    let component = wit_component::ComponentEncoder::default()
        .module(&module)
        .and_then(|e| e.validate(true).encode())
        .with_context(|| format!("cannot make a component from {}", input.display()))?;
    let tmp = output.with_file_name(format!(
        ".{}.tmp",
        output
            .file_name()
            .map(|n| n.to_string_lossy())
            .unwrap_or_default()
    ));
    std::fs::write(&tmp, &component).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, output)
        .with_context(|| format!("cannot move {} into place", output.display()))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_missing_rustc_is_no_toolchain() {
        assert_eq!(probe(Path::new("/nonexistent/bin/rustc")), None);
    }
}
