//! `plugin-host check FILE --with DIR`: would FILE load beside the plugins already in DIR? A plugin
//! can pass a check on its own and still clash with another one (the same name, or a route with the
//! same method and shape): the generation built from DIR plus FILE finds that before a reload does.
//! A file in DIR with FILE's file name is the one FILE would replace, so it is left out.

use std::path::Path;

use anyhow::{Context, Result, bail};

use super::sandbox::TempDir;
use crate::config::Config;
use crate::generation::{Generation, plugin_files};

/// Ok when `file` and the plugins in `dir` build into one generation; the error names the clash with
/// the caller's paths. Returns how many of DIR's plugins it was checked against.
pub async fn check_with(config: &Config, file: &Path, dir: &Path) -> Result<usize> {
    let others = plugin_files(dir)
        .with_context(|| format!("cannot read the plugins directory {}", dir.display()))?;
    let name = file
        .file_name()
        .with_context(|| format!("{} is not a file", file.display()))?;
    let scratch = TempDir::new("plugin-host-check")?;
    let mut beside = 0;
    for other in others.iter().filter(|o| o.file_name() != Some(name)) {
        let to = scratch.path().join(other.file_name().unwrap_or_default());
        std::fs::copy(other, &to).with_context(|| format!("cannot read {}", other.display()))?;
        beside += 1;
    }
    std::fs::copy(file, scratch.path().join(name))
        .with_context(|| format!("cannot read {}", file.display()))?;
    let mut trial = config.clone();
    trial.plugins_dir = scratch.path().to_path_buf();
    trial.compile_cache = false;
    if let Err(e) = Generation::build(0, &trial).await {
        let scratch_dir = scratch.path().display().to_string();
        let message = e
            .to_string()
            .replace(
                &format!("{scratch_dir}/{}", name.to_string_lossy()),
                &file.display().to_string(),
            )
            .replace(&scratch_dir, &dir.display().to_string());
        bail!(
            "{} does not load beside the plugins in {}: {message}",
            file.display(),
            dir.display()
        );
    }
    Ok(beside)
}
