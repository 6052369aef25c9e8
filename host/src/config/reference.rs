//! The configuration reference, read from the comments of `host/default-config.toml`: every key with
//! its section, default, environment variable and meaning. `docs/configuration.md` is rendered from it
//! (`plugin-host config --reference`, checked by a test), and the environment layer (`env.rs`) takes
//! its keys and value types from it, so the file, the docs and the variables cannot drift apart.
//!
//! The file's conventions: a block of comment lines documents the key or keys right below it; a block
//! that ends in a commented `# key = value` line documents a key that is unset by default (the value is
//! an example); a `[section]` line, or a commented `# [section]`, starts a section, and the comment
//! lines above it describe the section. The first block is the file's own header.

use std::fmt::Write;

/// One documented key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `""` for top-level keys, else the table: `limits`, `plugins.NAME`, `plugins.NAME.config`.
    pub section: String,
    /// The key as written; `KEY` stands for any name (under `plugins.NAME.config`).
    pub key: String,
    /// The default as TOML text, or for a key unset by default, the example.
    pub value: String,
    /// Set in the defaults, or only shown as an example.
    pub set_by_default: bool,
    /// The comment above it, joined into one paragraph.
    pub doc: String,
}

/// One section's description.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    pub name: String,
    pub doc: String,
}

/// Everything documented in one configuration file.
#[derive(Debug, Clone, Default)]
pub struct Reference {
    pub sections: Vec<Section>,
    pub entries: Vec<Entry>,
}

enum Line<'a> {
    Comment(&'a str),
    Key {
        key: &'a str,
        value: &'a str,
        commented: bool,
    },
    Section(&'a str),
}

fn classify(line: &str) -> Line<'_> {
    let (commented, body) = match line.strip_prefix('#') {
        Some(rest) => (true, rest.strip_prefix(' ').unwrap_or(rest)),
        None => (false, line),
    };
    if let Some(name) = body.strip_prefix('[').and_then(|b| b.strip_suffix(']'))
        && !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
    {
        return Line::Section(name);
    }
    if let Some((key, value)) = body.split_once(" = ")
        && !key.is_empty()
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
    {
        return Line::Key {
            key,
            value: value.trim(),
            commented,
        };
    }
    Line::Comment(body.trim_end())
}

impl Reference {
    /// The reference of the embedded defaults.
    pub fn embedded() -> Self {
        Self::parse(super::DEFAULT_CONFIG)
    }

    /// Reads the documented keys of a configuration file written by the conventions above.
    pub fn parse(text: &str) -> Self {
        let mut reference = Reference::default();
        let mut section = String::new();
        let blocks = text.split("\n\n").map(str::trim).filter(|b| !b.is_empty());
        // The first block is the file's header, which describes the file rather than a key.
        for block in blocks.skip(1) {
            let lines: Vec<&str> = block.lines().map(str::trim).collect();
            let mut doc: Vec<&str> = Vec::new();
            // Keys right below one another share the comment above the first.
            let mut after_key = false;
            for (i, line) in lines.iter().enumerate() {
                match classify(line) {
                    Line::Comment(text) => {
                        if after_key {
                            doc.clear();
                            after_key = false;
                        }
                        doc.push(text);
                    }
                    Line::Section(name) => {
                        section = name.to_owned();
                        if !doc.is_empty() {
                            reference.sections.push(Section {
                                name: section.clone(),
                                doc: doc.join(" "),
                            });
                        }
                        doc.clear();
                        after_key = false;
                    }
                    Line::Key {
                        key,
                        value,
                        commented,
                    } => {
                        // A commented key counts only as the block's last line(s); elsewhere it is an
                        // example inside the prose.
                        let trailing = lines[i..].iter().all(|l| {
                            matches!(
                                classify(l),
                                Line::Key {
                                    commented: true,
                                    ..
                                }
                            )
                        });
                        if commented && !trailing {
                            doc.push(line.trim_start_matches('#').trim());
                            continue;
                        }
                        reference.entries.push(Entry {
                            section: section.clone(),
                            key: key.to_owned(),
                            value: value.to_owned(),
                            set_by_default: !commented,
                            doc: doc.join(" "),
                        });
                        after_key = true;
                    }
                }
            }
        }
        reference
    }

    /// The key `key` of section `section` (`NAME` in a section name matches any plugin name, and key
    /// `KEY` matches any key).
    pub fn find(&self, section: &str, key: &str) -> Option<&Entry> {
        self.entries
            .iter()
            .find(|e| e.section == section && e.key == key)
            .or_else(|| {
                self.entries
                    .iter()
                    .find(|e| e.section == section && e.key == "KEY")
            })
    }

    /// The reference as Markdown: `docs/configuration.md`.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        out.push_str(
            "<!-- Generated from host/default-config.toml by `plugin-host config --reference`; a test \
             checks it. Edit the comments there, not this file. -->\n\n\
             # Configuration reference\n\n\
             `plugin-host serve` starts from the embedded defaults (`host/default-config.toml`). Over \
             them, in this order, each later one winning key by key:\n\n\
             1. the file given with `--config FILE` (TOML; unknown keys are errors);\n\
             2. environment variables: `PLUGIN_HOST_<KEY>` for a top-level key, \
             `PLUGIN_HOST_<SECTION>_<KEY>` for a key of `[auth]`, `[limits]` or `[cluster]`, and \
             `PLUGIN_HOST_PLUGINS__<name>__<KEY>` or `PLUGIN_HOST_PLUGINS__<name>__CONFIG__<key>` for a \
             plugin's settings (the plugin's name and a config key as written, since they may hold \
             lowercase letters and hyphens). Numbers and `true`/`false` are parsed as such; a list is a \
             TOML array (`[\"a\", \"b\"]`) or comma-separated. An unknown `PLUGIN_HOST_` variable is an \
             error, as an unknown key is; `PLUGIN_HOST_HOME` (the plugin kit's SDK copy) and \
             `PLUGIN_HOST_BOOTSTRAP_SECRET` (the first admin) are not configuration keys;\n\
             3. command-line flags (`--listen`, `--admin-listen`, `--plugins`, `--templates`, `--data`, \
             `--watch`, `--database`).\n\n\
             The configuration is read once, at start: restart to apply a change. \
             `plugin-host config` prints the configuration the same layers give, as TOML.\n",
        );
        let mut current: Option<&str> = None;
        for entry in &self.entries {
            if current != Some(entry.section.as_str()) {
                current = Some(entry.section.as_str());
                let title = if entry.section.is_empty() {
                    "Top level".to_owned()
                } else {
                    format!("`[{}]`", entry.section)
                };
                let _ = write!(out, "\n## {title}\n\n");
                if let Some(s) = self.sections.iter().find(|s| s.name == entry.section) {
                    let _ = write!(out, "{}\n\n", s.doc);
                }
                out.push_str("| key | default | environment variable | meaning |\n");
                out.push_str("|---|---|---|---|\n");
            }
            let default = if entry.set_by_default {
                format!("`{}`", entry.value)
            } else {
                format!("unset (e.g. `{}`)", entry.value)
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | `{}` | {} |",
                entry.key,
                default.replace('|', "\\|"),
                env_name(&entry.section, &entry.key),
                escape(&entry.doc)
            );
        }
        out
    }
}

/// Prose for a Markdown table cell: `|`, `<` and `*` escaped outside code spans.
fn escape(text: &str) -> String {
    text.split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                return part.to_owned();
            }
            part.replace('|', "\\|")
                .replace('<', "&lt;")
                .replace('*', "\\*")
        })
        .collect::<Vec<_>>()
        .join("`")
}

/// The environment variable that sets `key` of `section`.
pub fn env_name(section: &str, key: &str) -> String {
    match section.split('.').collect::<Vec<_>>().as_slice() {
        [""] => format!("PLUGIN_HOST_{}", key.to_ascii_uppercase()),
        ["plugins", name] => format!("PLUGIN_HOST_PLUGINS__{name}__{}", key.to_ascii_uppercase()),
        ["plugins", name, "config"] => format!("PLUGIN_HOST_PLUGINS__{name}__CONFIG__{key}"),
        _ => format!(
            "PLUGIN_HOST_{}_{}",
            section.to_ascii_uppercase(),
            key.to_ascii_uppercase()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_keys_shared_comments_commented_keys_and_sections() {
        let text = "# header\n\n\
                    # The address.\nlisten = \"x\"\n# Two at once.\na_ms = 1\nb_ms = 2\n\n\
                    # Unset by default. Not an example: x = 1 inside prose.\n# opt = \"y\"\n\n\
                    [limits]\n# Time.\nt = 3\n\n\
                    # Per plugin.\n# [plugins.NAME]\n\n# Timeout.\n# t = 4\n";
        let r = Reference::parse(text);
        let keys: Vec<_> = r
            .entries
            .iter()
            .map(|e| {
                (
                    e.section.as_str(),
                    e.key.as_str(),
                    e.set_by_default,
                    e.doc.as_str(),
                )
            })
            .collect();
        assert_eq!(
            keys,
            [
                ("", "listen", true, "The address."),
                ("", "a_ms", true, "Two at once."),
                ("", "b_ms", true, "Two at once."),
                (
                    "",
                    "opt",
                    false,
                    "Unset by default. Not an example: x = 1 inside prose."
                ),
                ("limits", "t", true, "Time."),
                ("plugins.NAME", "t", false, "Timeout."),
            ]
        );
        assert_eq!(
            r.sections,
            [Section {
                name: "plugins.NAME".into(),
                doc: "Per plugin.".into()
            }]
        );
    }

    #[test]
    fn every_key_of_the_defaults_is_documented() {
        let r = Reference::embedded();
        let table: toml::Table = toml::from_str(super::super::DEFAULT_CONFIG).unwrap();
        for (key, value) in &table {
            match value {
                toml::Value::Table(section) => {
                    for (inner, _) in section {
                        let e = r
                            .find(key, inner)
                            .unwrap_or_else(|| panic!("{key}.{inner}"));
                        assert!(e.set_by_default && !e.doc.is_empty(), "{key}.{inner}");
                    }
                }
                _ => {
                    let e = r.find("", key).unwrap_or_else(|| panic!("{key}"));
                    assert!(e.set_by_default && !e.doc.is_empty(), "{key}");
                }
            }
        }
        for e in &r.entries {
            assert!(!e.doc.is_empty(), "{}.{} has no comment", e.section, e.key);
        }
        // The optional keys appear as examples.
        assert!(!r.find("", "admin_listen").unwrap().set_by_default);
        assert!(r.find("plugins.NAME", "allow_http").is_some());
        assert!(r.find("plugins.NAME.config", "greeting").is_some());
    }

    #[test]
    fn environment_variable_names_are_unique() {
        let r = Reference::embedded();
        let mut names: Vec<String> = r
            .entries
            .iter()
            .map(|e| env_name(&e.section, &e.key))
            .collect();
        let n = names.len();
        names.sort();
        names.dedup();
        assert_eq!(names.len(), n, "{names:?}");
        assert_eq!(
            env_name("limits", "request_timeout_ms"),
            "PLUGIN_HOST_LIMITS_REQUEST_TIMEOUT_MS"
        );
        assert_eq!(
            env_name("plugins.hello-x", "max_instances"),
            "PLUGIN_HOST_PLUGINS__hello-x__MAX_INSTANCES"
        );
    }

    #[test]
    fn docs_configuration_md_is_the_rendered_reference() {
        let committed = include_str!("../../../docs/configuration.md");
        let rendered = Reference::embedded().markdown();
        assert!(
            committed == rendered,
            "docs/configuration.md is out of date with host/default-config.toml: run \
             `target/release/plugin-host config --reference > docs/configuration.md`"
        );
    }
}
