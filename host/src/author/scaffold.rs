//! `plugin-host new NAME`: a plugin crate written from the templates in `host/scaffold/`, which are
//! compiled into the binary. The crate builds anywhere: its wasm settings (stack size, release profile)
//! are its own, it is a workspace of its own, and it depends on the SDK by path: this repository's
//! `plugins/sdk` when created inside the repository, else the copy the binary writes out (see [`sdk`]).
//!
//! [`sdk`]: super::sdk

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail, ensure};

use super::sdk;

/// (path in the new crate, template). `@NAME@` is the plugin's name and `@SDK_DEPENDENCY@` the SDK
/// dependency line.
const FILES: &[(&str, &str)] = &[
    ("Cargo.toml", include_str!("../../scaffold/Cargo.toml")),
    (
        ".cargo/config.toml",
        include_str!("../../scaffold/cargo/config.toml"),
    ),
    (".gitignore", include_str!("../../scaffold/gitignore")),
    ("README.md", include_str!("../../scaffold/README.md")),
    ("src/lib.rs", include_str!("../../scaffold/src/lib.rs")),
    (
        "templates/greeting.html",
        include_str!("../../scaffold/templates/greeting.html"),
    ),
    ("src/tests.rs", include_str!("../../scaffold/src/tests.rs")),
    (
        "tests/cases.toml",
        include_str!("../../scaffold/tests/cases.toml"),
    ),
];

/// A plugin name as the host accepts it (see `generation/manifest.rs`), which is also a valid crate
/// name: lowercase letters, digits and `-`, starting with a letter.
pub fn check_name(name: &str) -> Result<()> {
    let valid = name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_lowercase())
        && !name.ends_with('-')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    ensure!(
        valid,
        "{name:?} cannot be a plugin name: use 1-64 lowercase letters, digits and '-', starting with a letter"
    );
    Ok(())
}

/// What `new` made.
#[derive(Debug)]
pub struct Created {
    pub dir: PathBuf,
    /// The SDK dependency as written into Cargo.toml.
    pub sdk: String,
}

/// Write the crate for plugin `name` into `parent/name`. Outside this repository the SDK is written
/// under `sdk_home` (default [`sdk::home`]).
pub fn new_crate(name: &str, parent: &Path, sdk_home: Option<&Path>) -> Result<Created> {
    check_name(name)?;
    let dir = parent.join(name);
    if dir.exists() {
        bail!(
            "{} already exists; choose another name or --dir",
            dir.display()
        );
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let dir = dir
        .canonicalize()
        .with_context(|| format!("cannot resolve {}", dir.display()))?;
    let sdk = sdk_dependency(&dir, sdk_home)?;
    for (path, template) in FILES {
        let text = template
            .replace("@SDK_DEPENDENCY@", &sdk)
            .replace("@NAME@", name);
        write(&dir.join(path), &text)?;
    }
    write(&dir.join("Cargo.lock"), sdk::LOCK)?;
    Ok(Created { dir, sdk })
}

fn write(path: &Path, text: &str) -> Result<()> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)
            .with_context(|| format!("cannot create {}", parent.display()))?;
    }
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// The Cargo.toml line for the SDK of a crate in `dir`: by relative path inside this repository, else
/// by version with the path of the SDK this binary writes out.
fn sdk_dependency(dir: &Path, sdk_home: Option<&Path>) -> Result<String> {
    if let Some(repo) = sdk::repository().and_then(|r| r.canonicalize().ok())
        && let Ok(inside) = dir.strip_prefix(&repo)
    {
        let up = "../".repeat(inside.components().count());
        return Ok(format!("plugin-sdk = {{ path = \"{up}plugins/sdk\" }}"));
    }
    let path = match sdk_home {
        Some(home) => sdk::unpack(home)?,
        None => sdk::unpack(&sdk::home()?)?,
    };
    Ok(format!(
        "plugin-sdk = {{ version = \"{}\", path = {} }}",
        sdk::VERSION,
        toml_string(&path.display().to_string())
    ))
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    toml::Value::String(text.to_owned()).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_like_manifests() {
        for good in ["greeter", "my-plugin", "a1"] {
            check_name(good).unwrap();
        }
        for bad in [
            "",
            "Greeter",
            "1st",
            "my_plugin",
            "trailing-",
            "a b",
            "../x",
        ] {
            assert!(check_name(bad).is_err(), "{bad:?} was accepted");
        }
    }

    #[test]
    fn every_placeholder_is_replaced() {
        let parent = std::env::temp_dir().join(format!("plugin-host-new-{}", std::process::id()));
        std::fs::create_dir_all(&parent).unwrap();
        let home = parent.join("home");
        let created = new_crate("greeter", &parent, Some(&home)).unwrap();
        for (path, _) in FILES {
            let text = std::fs::read_to_string(created.dir.join(path)).unwrap();
            for placeholder in ["@NAME@", "@SDK_DEPENDENCY@"] {
                assert!(!text.contains(placeholder), "{placeholder} left in {path}");
            }
        }
        // Outside the repository: by version, with the SDK written under the given home.
        let sdk_dir = home.join(sdk::VERSION);
        assert!(
            created.sdk.contains("version = \"0.1.0\""),
            "{}",
            created.sdk
        );
        assert!(
            created.sdk.contains(&sdk_dir.display().to_string()),
            "{}",
            created.sdk
        );
        assert!(sdk_dir.join("src/lib.rs").is_file());
        assert!(
            new_crate("greeter", &parent, Some(&home)).is_err(),
            "an existing directory is kept"
        );
        std::fs::remove_dir_all(parent).unwrap();
    }
}
