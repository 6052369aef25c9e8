//! The last good set: what a restart serves when the plugins or templates directory no longer builds.
//!
//! After every generation built from the directories (at start and on each reload), the host records
//! the files it was built from in `<data_dir>/last-good/`: each file's bytes once under its SHA-256
//! (`blobs/`), and `set.json` naming them (plugin files by name, templates by their path below the
//! templates directory). A failed reload leaves its bad file in place; without this record the next
//! restart would refuse to start at all. With it, the restart builds the recorded set instead, serves
//! it, and reports the directory's error as degraded (`/readyz`, the log, the admin UI) until a reload
//! from the directory succeeds.
//!
//! Cluster mode does not use it: there the plugin set lives in the database and was checked before it
//! was stored.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::accounts::db::sha256_hex;
use crate::generation::Generation;

/// The record's directory below `data_dir`.
pub const DIR: &str = "last-good";

/// `set.json`: which files, by hash.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Set {
    /// When it was recorded, in milliseconds since the Unix epoch.
    pub recorded_ms: u64,
    /// The generation (of the process that recorded it) it was built as.
    pub generation: u64,
    /// Plugin files, by file name.
    pub plugins: Vec<Entry>,
    /// Template files, by path below the templates directory.
    pub templates: Vec<Entry>,
}

/// One recorded file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub name: String,
    pub sha256: String,
}

/// A recorded set written out as directories a generation can be built from.
#[derive(Debug)]
pub struct Restored {
    pub plugins_dir: PathBuf,
    pub templates_dir: PathBuf,
    pub set: Set,
}

/// What [`record`] did.
#[derive(Debug, PartialEq, Eq)]
pub enum Recorded {
    /// A new set was written.
    Written,
    /// The record already names these files.
    Unchanged,
    /// A file changed on disk since the generation read it: nothing was recorded (the next successful
    /// build records its set).
    Changed(PathBuf),
}

/// The record in `data_dir`.
pub struct LastGood {
    root: PathBuf,
}

impl LastGood {
    pub fn in_data_dir(data_dir: &Path) -> Self {
        Self {
            root: data_dir.join(DIR),
        }
    }

    fn blobs(&self) -> PathBuf {
        self.root.join("blobs")
    }

    fn set_file(&self) -> PathBuf {
        self.root.join("set.json")
    }

    /// The recorded set, if there is one.
    pub fn read(&self) -> io::Result<Option<Set>> {
        let text = match std::fs::read(self.set_file()) {
            Ok(text) => text,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(e),
        };
        serde_json::from_slice(&text)
            .map(Some)
            .map_err(|e| invalid(format!("{}: {e}", self.set_file().display())))
    }

    /// Record the files `generation` was built from (blocking file I/O). A plugin's bytes are copied
    /// and checked against the hash it was loaded with; a template's file is re-read and checked against
    /// the text that was parsed.
    pub fn record(&self, generation: &Generation) -> io::Result<Recorded> {
        let blobs = self.blobs();
        std::fs::create_dir_all(&blobs)?;
        let mut plugins = Vec::with_capacity(generation.plugins.len());
        for p in &generation.plugins {
            if let Some(changed) = self.keep(&p.file, &p.hash)? {
                return Ok(Recorded::Changed(changed));
            }
            plugins.push(Entry {
                name: file_name(&p.file)?,
                sha256: p.hash.clone(),
            });
        }
        let mut templates = Vec::new();
        for t in generation.views.disk_templates() {
            if let Some(changed) = self.keep(&t.path, &t.sha256)? {
                return Ok(Recorded::Changed(changed));
            }
            templates.push(Entry {
                name: t.name.clone(),
                sha256: t.sha256.clone(),
            });
        }
        if let Ok(Some(old)) = self.read()
            && old.plugins == plugins
            && old.templates == templates
        {
            return Ok(Recorded::Unchanged);
        }
        let set = Set {
            recorded_ms: crate::clock::unix_ms() as u64,
            generation: generation.id,
            plugins,
            templates,
        };
        let json = serde_json::to_vec_pretty(&set).map_err(|e| invalid(e.to_string()))?;
        let tmp = self.root.join(".set.json.tmp");
        write_synced(&tmp, &json)?;
        std::fs::rename(&tmp, self.set_file())?;
        self.prune(&set)?;
        Ok(Recorded::Written)
    }

    /// Make sure `blobs/<sha256>` holds the bytes of `file`; `Some(file)` when the file no longer has
    /// that hash.
    fn keep(&self, file: &Path, sha256: &str) -> io::Result<Option<PathBuf>> {
        let blob = self.blobs().join(sha256);
        if blob.is_file() {
            return Ok(None);
        }
        let bytes = std::fs::read(file)?;
        if sha256_hex(&bytes) != sha256 {
            return Ok(Some(file.to_owned()));
        }
        let tmp = self.blobs().join(format!(".{sha256}.tmp"));
        write_synced(&tmp, &bytes)?;
        std::fs::rename(&tmp, &blob)?;
        Ok(None)
    }

    /// Remove blobs the set does not name (and temporary files a crash left).
    fn prune(&self, set: &Set) -> io::Result<()> {
        let keep: BTreeSet<&str> = set
            .plugins
            .iter()
            .chain(&set.templates)
            .map(|e| e.sha256.as_str())
            .collect();
        for entry in std::fs::read_dir(self.blobs())? {
            let entry = entry?;
            let name = entry.file_name();
            if !keep.contains(name.to_string_lossy().as_ref()) {
                std::fs::remove_file(entry.path())?;
            }
        }
        Ok(())
    }

    /// Write the recorded set out as a plugins and a templates directory (under `last-good/serving/`,
    /// replacing what an earlier restore left there), each file checked against its hash. `None` when
    /// nothing was recorded.
    pub fn restore(&self) -> io::Result<Option<Restored>> {
        let Some(set) = self.read()? else {
            return Ok(None);
        };
        let serving = self.root.join("serving");
        if serving.exists() {
            std::fs::remove_dir_all(&serving)?;
        }
        let plugins_dir = serving.join("plugins");
        let templates_dir = serving.join("templates");
        std::fs::create_dir_all(&plugins_dir)?;
        std::fs::create_dir_all(&templates_dir)?;
        for (dir, entries) in [
            (&plugins_dir, &set.plugins),
            (&templates_dir, &set.templates),
        ] {
            for e in entries {
                let target = safe_join(dir, &e.name)?;
                let bytes = std::fs::read(self.blobs().join(&e.sha256))?;
                if sha256_hex(&bytes) != e.sha256 {
                    return Err(invalid(format!(
                        "the recorded copy of {} is damaged (its hash is not {})",
                        e.name, e.sha256
                    )));
                }
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent)?;
                }
                std::fs::write(&target, bytes)?;
            }
        }
        Ok(Some(Restored {
            plugins_dir,
            templates_dir,
            set,
        }))
    }
}

fn file_name(path: &Path) -> io::Result<String> {
    path.file_name()
        .and_then(|n| n.to_str())
        .map(str::to_owned)
        .ok_or_else(|| invalid(format!("{} has no UTF-8 file name", path.display())))
}

/// `dir/name` for a recorded name: relative, with no `..`, so a damaged record cannot write elsewhere.
fn safe_join(dir: &Path, name: &str) -> io::Result<PathBuf> {
    let relative = Path::new(name);
    let plain = relative
        .components()
        .all(|c| matches!(c, std::path::Component::Normal(_)));
    if plain && !name.is_empty() {
        Ok(dir.join(relative))
    } else {
        Err(invalid(format!("the record names an unsafe path {name:?}")))
    }
}

fn write_synced(path: &Path, bytes: &[u8]) -> io::Result<()> {
    use std::io::Write;
    let mut file = std::fs::File::create(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

fn invalid(message: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsafe_recorded_names_are_refused() {
        let dir = Path::new("/tmp/x");
        assert!(safe_join(dir, "hello.wasm").is_ok());
        assert!(safe_join(dir, "admin/layout.html").is_ok());
        for bad in ["", "../x.wasm", "/etc/passwd", "a/../../b"] {
            assert!(safe_join(dir, bad).is_err(), "{bad}");
        }
    }
}
