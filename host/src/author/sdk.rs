//! The plugin SDK as it ships inside the `plugin-host` binary: its sources, its manifest and the WIT
//! contract, written out to a directory of the user's (once per SDK version, refreshed when this binary
//! carries different sources) so that crates made by `plugin-host new` outside this repository can
//! depend on it by path. Inside the repository they depend on `plugins/sdk` itself.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

/// The SDK's version (its Cargo.toml), which is also the directory it is written to.
pub const VERSION: &str = "0.1.0";

/// (path inside the SDK directory, contents). A unit test checks this against `plugins/sdk`, so a file
/// added to the SDK cannot be forgotten here.
pub const FILES: &[(&str, &str)] = &[
    (
        "Cargo.toml",
        include_str!("../../../plugins/sdk/Cargo.toml"),
    ),
    (
        "src/lib.rs",
        include_str!("../../../plugins/sdk/src/lib.rs"),
    ),
    (
        "src/arena.rs",
        include_str!("../../../plugins/sdk/src/arena.rs"),
    ),
    (
        "src/builder.rs",
        include_str!("../../../plugins/sdk/src/builder.rs"),
    ),
    (
        "src/call.rs",
        include_str!("../../../plugins/sdk/src/call.rs"),
    ),
    (
        "src/fake.rs",
        include_str!("../../../plugins/sdk/src/fake.rs"),
    ),
    (
        "src/http.rs",
        include_str!("../../../plugins/sdk/src/http.rs"),
    ),
    (
        "src/plugin.rs",
        include_str!("../../../plugins/sdk/src/plugin.rs"),
    ),
    (
        "src/request.rs",
        include_str!("../../../plugins/sdk/src/request.rs"),
    ),
    (
        "src/response.rs",
        include_str!("../../../plugins/sdk/src/response.rs"),
    ),
    (
        "src/testing.rs",
        include_str!("../../../plugins/sdk/src/testing.rs"),
    ),
    (
        "src/tests.rs",
        include_str!("../../../plugins/sdk/src/tests.rs"),
    ),
    ("wit/plugin.wit", include_str!("../../../wit/plugin.wit")),
];

/// The lock file of this repository's plugins: the dependency versions the SDK is tested with. A new
/// crate starts from it, so its first build uses those versions rather than whatever is newest.
pub const LOCK: &str = include_str!("../../../plugins/Cargo.lock");

/// This repository's root as it was when the binary was built (absent when the binary runs elsewhere).
pub fn repository() -> Option<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).parent()?;
    root.join("plugins/sdk/Cargo.toml")
        .is_file()
        .then(|| root.to_path_buf())
}

/// Where SDKs are written: `$PLUGIN_HOST_HOME/sdk`, else `$XDG_DATA_HOME/plugin-host/sdk`, else
/// `~/.local/share/plugin-host/sdk`.
pub fn home() -> Result<PathBuf> {
    let var = |name| {
        std::env::var_os(name)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
    };
    if let Some(home) = var("PLUGIN_HOST_HOME") {
        return Ok(home.join("sdk"));
    }
    if let Some(data) = var("XDG_DATA_HOME") {
        return Ok(data.join("plugin-host/sdk"));
    }
    let home = var("HOME").context(
        "cannot tell where to put the plugin SDK: set PLUGIN_HOST_HOME (or HOME or XDG_DATA_HOME)",
    )?;
    Ok(home.join(".local/share/plugin-host/sdk"))
}

/// Write this binary's SDK under `home` unless it is there already, byte for byte; its directory.
pub fn unpack(home: &Path) -> Result<PathBuf> {
    let dir = home.join(VERSION);
    for (name, contents) in FILES {
        let path = dir.join(name);
        if std::fs::read(&path).is_ok_and(|old| old == contents.as_bytes()) {
            continue;
        }
        let parent = path.parent().expect("SDK files live in a directory");
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
        std::fs::write(&path, contents)
            .with_context(|| format!("cannot write the SDK file {}", path.display()))?;
    }
    Ok(dir)
}

/// Before building the crate in `dir`: if it depends on this binary's SDK copy (made by `new` outside
/// the repository), write the copy again where it differs or is missing, so the crate builds against
/// the SDK of the binary that builds it.
pub fn refresh_for(dir: &Path) -> Result<()> {
    let Ok(manifest) = std::fs::read_to_string(dir.join("Cargo.toml")) else {
        return Ok(());
    };
    let home = home()?;
    if manifest.contains(&home.join(VERSION).display().to_string()) {
        unpack(&home)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every file of plugins/sdk is embedded.
    #[test]
    fn the_embedded_sdk_is_the_whole_sdk() {
        let root = repository().expect("tests run inside the repository");
        let sdk = root.join("plugins/sdk");
        let mut on_disk = Vec::new();
        for dir in ["", "src"] {
            for entry in std::fs::read_dir(sdk.join(dir)).unwrap() {
                let entry = entry.unwrap();
                if entry.file_type().unwrap().is_file() {
                    let name = entry.file_name().to_string_lossy().into_owned();
                    on_disk.push(if dir.is_empty() {
                        name
                    } else {
                        format!("{dir}/{name}")
                    });
                }
            }
        }
        on_disk.sort();
        let mut embedded: Vec<String> = FILES
            .iter()
            .map(|(name, _)| name.to_string())
            .filter(|name| !name.starts_with("wit/"))
            .collect();
        embedded.sort();
        assert_eq!(
            embedded, on_disk,
            "host/src/author/sdk.rs FILES must list every SDK file"
        );
    }

    #[test]
    fn unpacking_twice_leaves_the_same_files() {
        let home =
            std::env::temp_dir().join(format!("plugin-host-sdk-test-{}", std::process::id()));
        let dir = unpack(&home).unwrap();
        let again = unpack(&home).unwrap();
        assert_eq!(dir, again);
        for (name, contents) in FILES {
            assert_eq!(std::fs::read_to_string(dir.join(name)).unwrap(), *contents);
        }
        std::fs::remove_dir_all(home).unwrap();
    }
}
