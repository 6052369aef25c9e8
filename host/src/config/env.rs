//! The environment layer of the configuration: `PLUGIN_HOST_...` variables, laid over the file and
//! under the command-line flags. Which variables exist, and the type of each, come from the
//! configuration reference (`reference.rs`), so every documented key has one and no other does.

use anyhow::{Context, Result, bail};

use super::reference::{Reference, env_name};

/// Variables with the prefix that are not configuration keys.
const NOT_KEYS: &[&str] = &["PLUGIN_HOST_HOME", "PLUGIN_HOST_BOOTSTRAP_SECRET"];

const PREFIX: &str = "PLUGIN_HOST_";

/// The TOML table that the `PLUGIN_HOST_` variables among `vars` set; an unknown variable or a value
/// of the wrong type is an error naming the variable.
pub(super) fn layer(
    vars: impl IntoIterator<Item = (String, String)>,
) -> Result<Option<toml::Table>> {
    let mut vars: Vec<_> = vars
        .into_iter()
        .filter(|(name, _)| name.starts_with(PREFIX) && !NOT_KEYS.contains(&name.as_str()))
        .collect();
    if vars.is_empty() {
        return Ok(None);
    }
    // Deterministic errors when several are wrong.
    vars.sort();
    let reference = Reference::embedded();
    let mut table = toml::Table::new();
    for (name, raw) in vars {
        let (path, example) = locate(&reference, &name)?;
        let value = convert(&raw, &example)
            .with_context(|| format!("environment variable {name}={raw:?}"))?;
        insert(&mut table, &path, value);
    }
    Ok(Some(table))
}

/// The table path (`["limits", "request_timeout_ms"]`) variable `name` sets, and the documented
/// default or example whose type its value must have.
fn locate(reference: &Reference, name: &str) -> Result<(Vec<String>, String)> {
    let rest = &name[PREFIX.len()..];
    if let Some(plugin) = rest.strip_prefix("PLUGINS__") {
        let parts: Vec<&str> = plugin.split("__").collect();
        let found = match parts.as_slice() {
            [plugin, key] if !plugin.is_empty() => {
                let key = key.to_ascii_lowercase();
                reference
                    .find("plugins.NAME", &key)
                    .filter(|e| e.key != "KEY")
                    .map(|e| {
                        (
                            vec!["plugins".into(), (*plugin).into(), key.clone()],
                            e.value.clone(),
                        )
                    })
            }
            [plugin, config, key]
                if !plugin.is_empty()
                    && !key.is_empty()
                    && config.eq_ignore_ascii_case("config") =>
            {
                reference.find("plugins.NAME.config", key).map(|e| {
                    (
                        vec![
                            "plugins".into(),
                            (*plugin).into(),
                            "config".into(),
                            (*key).into(),
                        ],
                        e.value.clone(),
                    )
                })
            }
            _ => None,
        };
        return found.with_context(|| {
            format!(
                "environment variable {name} is not a configuration key: a plugin's settings are \
                 PLUGIN_HOST_PLUGINS__<name>__<KEY> or PLUGIN_HOST_PLUGINS__<name>__CONFIG__<key> \
                 (docs/configuration.md)"
            )
        });
    }
    for entry in &reference.entries {
        if entry.section.starts_with("plugins.") {
            continue;
        }
        if env_name(&entry.section, &entry.key) == name {
            let mut path: Vec<String> = Vec::new();
            if !entry.section.is_empty() {
                path.push(entry.section.clone());
            }
            path.push(entry.key.clone());
            return Ok((path, entry.value.clone()));
        }
    }
    bail!(
        "environment variable {name} is not a configuration key (docs/configuration.md lists them)"
    )
}

/// `raw` as a TOML value of the same type as `example` (a TOML value's text).
fn convert(raw: &str, example: &str) -> Result<toml::Value> {
    let example: toml::Table =
        toml::from_str(&format!("v = {example}")).context("the documented example")?;
    Ok(match &example["v"] {
        toml::Value::String(_) => toml::Value::String(raw.to_owned()),
        toml::Value::Integer(_) => toml::Value::Integer(
            raw.trim()
                .parse()
                .map_err(|_| anyhow::anyhow!("expected a whole number"))?,
        ),
        toml::Value::Boolean(_) => match raw.trim() {
            "true" => toml::Value::Boolean(true),
            "false" => toml::Value::Boolean(false),
            _ => bail!("expected true or false"),
        },
        toml::Value::Array(_) => {
            let raw = raw.trim();
            if raw.starts_with('[') {
                let t: toml::Table = toml::from_str(&format!("v = {raw}"))
                    .map_err(|e| anyhow::anyhow!("not a TOML array: {}", e.message()))?;
                t["v"].clone()
            } else {
                toml::Value::Array(
                    raw.split(',')
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(|s| toml::Value::String(s.to_owned()))
                        .collect(),
                )
            }
        }
        other => bail!("no environment form for a {} value", other.type_str()),
    })
}

fn insert(table: &mut toml::Table, path: &[String], value: toml::Value) {
    let (last, parents) = path.split_last().expect("a path has a key");
    let mut at = table;
    for p in parents {
        at = at
            .entry(p.clone())
            .or_insert_with(|| toml::Value::Table(toml::Table::new()))
            .as_table_mut()
            .expect("only tables on the way");
    }
    at.insert(last.clone(), value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Config, Overrides};

    fn vars(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn load(list: &[(&str, &str)]) -> Result<Config> {
        Config::load_with_env(None, &Overrides::default(), vars(list))
    }

    #[test]
    fn every_documented_key_is_settable_by_its_variable() {
        // Each key set to its documented default or example through its variable loads, and reads back.
        let reference = Reference::embedded();
        for entry in &reference.entries {
            let (section, key) = (
                entry.section.replace("NAME", "hello-x"),
                entry.key.replace("KEY", "Greeting"),
            );
            let name = env_name(&section, &key);
            let raw = match entry.value.trim_matches('"') {
                v if entry.value.starts_with('"') => v.to_owned(),
                v => v.to_owned(),
            };
            let table = layer(vars(&[(&name, &raw)]))
                .unwrap_or_else(|e| panic!("{name}: {e:#}"))
                .unwrap();
            let mut at = &toml::Value::Table(table);
            for part in section.split('.').filter(|p| !p.is_empty()) {
                at = &at[part];
            }
            let expected: toml::Table = toml::from_str(&format!("v = {}", entry.value)).unwrap();
            assert_eq!(at[key.as_str()], expected["v"], "{name}");
            load(&[(&name, &raw)]).unwrap_or_else(|e| panic!("{name}={raw}: {e:#}"));
        }
    }

    #[test]
    fn values_are_typed_and_reach_the_configuration() {
        let c = load(&[
            ("PLUGIN_HOST_LISTEN", "0.0.0.0:9000"),
            ("PLUGIN_HOST_LIMITS_REQUEST_TIMEOUT_MS", "1234"),
            ("PLUGIN_HOST_AUTH_SECURE_COOKIES", "true"),
            ("PLUGIN_HOST_TRUSTED_PROXIES", "10.0.0.0/8, 192.168.1.1"),
            ("PLUGIN_HOST_CLUSTER_NODE_ID", "n1"),
            ("PLUGIN_HOST_PLUGINS__hello__MAX_INSTANCES", "3"),
            (
                "PLUGIN_HOST_PLUGINS__hello__ALLOW_HTTP",
                r#"["https://a.example"]"#,
            ),
            ("PLUGIN_HOST_PLUGINS__hello__CONFIG__greeting", "hi there"),
            ("PLUGIN_HOST_HOME", "/ignored"),
        ])
        .unwrap();
        assert_eq!(c.listen.to_string(), "0.0.0.0:9000");
        assert_eq!(c.limits.request_timeout_ms, 1234);
        assert!(c.auth.secure_cookies);
        assert_eq!(c.trusted_proxies, ["10.0.0.0/8", "192.168.1.1"]);
        assert_eq!(c.cluster.node_id, "n1");
        let hello = &c.plugins["hello"];
        assert_eq!(hello.max_instances, Some(3));
        assert_eq!(hello.allow_http, ["https://a.example"]);
        assert_eq!(hello.config["greeting"], "hi there");
        // Untouched keys keep their defaults.
        assert_eq!(
            c.limits.max_instances,
            Config::defaults().limits.max_instances
        );
    }

    #[test]
    fn unknown_variables_and_bad_values_are_errors_naming_the_variable() {
        for (list, says) in [
            (
                &[("PLUGIN_HOST_LISTN", "x")][..],
                "PLUGIN_HOST_LISTN is not a configuration key",
            ),
            (
                &[("PLUGIN_HOST_LIMITS_REQUEST_TIMEOUT_MS", "soon")][..],
                "whole number",
            ),
            (&[("PLUGIN_HOST_WATCH", "yes")][..], "true or false"),
            (
                &[("PLUGIN_HOST_PLUGINS__hello__NOPE", "1")][..],
                "PLUGINS__<name>__<KEY>",
            ),
            (
                &[("PLUGIN_HOST_PLUGINS__hello", "1")][..],
                "not a configuration key",
            ),
            (
                &[("PLUGIN_HOST_LISTEN", "not an address")][..],
                "environment",
            ),
        ] {
            let e = format!("{:#}", load(list).unwrap_err());
            assert!(e.contains(says), "{list:?}: {e}");
        }
    }

    #[test]
    fn the_file_is_under_the_environment_and_flags_are_over_it() {
        let file =
            std::env::temp_dir().join(format!("plugin-host-env-{}.toml", std::process::id()));
        std::fs::write(
            &file,
            "listen = \"127.0.0.1:1\"\ndata_dir = \"from-file\"\n[limits]\nmax_instances = 7\n",
        )
        .unwrap();
        let overrides = Overrides {
            listen: Some("127.0.0.1:3".parse().unwrap()),
            ..Overrides::default()
        };
        let c = Config::load_with_env(
            Some(&file),
            &overrides,
            vars(&[
                ("PLUGIN_HOST_LISTEN", "127.0.0.1:2"),
                ("PLUGIN_HOST_DATA_DIR", "from-env"),
            ]),
        )
        .unwrap();
        std::fs::remove_file(&file).ok();
        assert_eq!(c.listen.to_string(), "127.0.0.1:3");
        assert_eq!(c.data_dir, std::path::Path::new("from-env"));
        assert_eq!(c.limits.max_instances, 7);
    }
}
