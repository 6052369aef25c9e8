//! Talking to the host outside the load: the admin API (reload), `GET /metrics`, `GET /readyz` (the
//! serving generation, without a key), which build of the soak plugin answers, and swapping that build
//! in the plugins directory (copy to a hidden name, then an atomic rename, as an operator deploys).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, anyhow, bail};
use reqwest::{Client, StatusCode};
use serde_json::Value;

const GENERATIONS_PATH: &str = "/admin/api/generations";
const RELOAD_PATH: &str = "/admin/api/reload";
const METRICS_PATH: &str = "/metrics";
const READYZ_PATH: &str = "/readyz";
/// The file name the soak plugin has in the host's plugins directory.
const PLUGIN_FILE: &str = "soak.wasm";

/// The admin side of one host.
#[derive(Clone)]
pub(crate) struct Admin {
    client: Client,
    base_url: String,
    /// An API key with the admin role (the admin API needs one).
    key: String,
}

/// An admin API key for the host with data directory `data_dir` and `config`, made with the host's own
/// CLI (`user add soak --admin`, then `key create`), as an operator would.
pub(crate) fn provision_key(bin: &Path, config: &Path, data_dir: &Path) -> Result<String> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let run = |args: &[&str], stdin: Option<&str>| -> Result<String> {
        let mut child = Command::new(bin)
            .args(args)
            .arg("--config")
            .arg(config)
            .arg("--data")
            .arg(data_dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot run {}", bin.display()))?;
        if let Some(input) = stdin {
            child
                .stdin
                .take()
                .context("stdin")?
                .write_all(input.as_bytes())?;
        }
        let out = child.wait_with_output()?;
        if !out.status.success() {
            bail!(
                "plugin-host {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
    };
    let password = format!("soak-{}-password", std::process::id());
    run(
        &["user", "add", "soak", "--admin", "--password-stdin"],
        Some(&password),
    )?;
    run(&["key", "create", "--user", "soak"], None)
}

/// What a successful reload reported about the soak plugin.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Reloaded {
    pub(crate) generation: u64,
    pub(crate) compile_ms: f64,
    pub(crate) cached: bool,
}

/// What `GET /readyz` says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Readiness {
    pub(crate) generation: u64,
    pub(crate) degraded: Option<String>,
}

/// The two builds of the soak plugin.
#[derive(Debug, Clone)]
pub(crate) struct Fixtures {
    pub(crate) a: PathBuf,
    pub(crate) b: PathBuf,
}

impl Fixtures {
    /// `DIR/soak-a.wasm` and `DIR/soak-b.wasm`; an error naming `make plugins` if one is missing.
    pub(crate) fn find(dir: &Path) -> Result<Fixtures> {
        let fixtures = Fixtures {
            a: dir.join("soak-a.wasm"),
            b: dir.join("soak-b.wasm"),
        };
        for path in [&fixtures.a, &fixtures.b] {
            if !path.is_file() {
                bail!(
                    "{} is missing: run `make plugins` (or pass --fixtures)",
                    path.display()
                );
            }
        }
        Ok(fixtures)
    }

    /// The build serving variant `b` after an odd number of reloads, `a` otherwise.
    pub(crate) fn for_variant(&self, variant: char) -> &Path {
        if variant == 'b' { &self.b } else { &self.a }
    }
}

/// Put `build` in place as the soak plugin: copy to the hidden staging name, then rename over it.
pub(crate) async fn install_plugin(plugins_dir: &Path, build: &Path) -> Result<()> {
    install_as(plugins_dir, build, PLUGIN_FILE).await
}

/// Put `build` in place as `plugins_dir/file`: copy to `.file.tmp` (hidden, so ignored by the host),
/// then rename over `file`.
pub(crate) async fn install_as(plugins_dir: &Path, build: &Path, file: &str) -> Result<()> {
    let staging = plugins_dir.join(format!(".{file}.tmp"));
    tokio::fs::copy(build, &staging)
        .await
        .with_context(|| format!("copying {} to {}", build.display(), staging.display()))?;
    tokio::fs::rename(&staging, plugins_dir.join(file))
        .await
        .with_context(|| format!("renaming {} into place", staging.display()))
}

impl Admin {
    pub(crate) fn new(client: Client, base_url: &str, key: String) -> Admin {
        Admin {
            client,
            base_url: base_url.to_owned(),
            key,
        }
    }

    /// Whether the host serves the generations endpoint at all (false on 404).
    pub(crate) async fn has_generations_endpoint(&self) -> Result<bool> {
        let response = self.get(GENERATIONS_PATH).await?;
        Ok(response.status() != StatusCode::NOT_FOUND)
    }

    /// From `GET /admin/api/generations`: the generation the last finished reload produced (a reload
    /// counts as finished once everything after the swap is done, the last good set recorded too) and
    /// how many retired generations are still alive.
    pub(crate) async fn reload_settled(&self) -> Result<(Option<u64>, usize)> {
        let body = json_ok(self.get(GENERATIONS_PATH).await?, GENERATIONS_PATH).await?;
        let last = body
            .get("last_reload")
            .and_then(|r| r.get("generation"))
            .and_then(Value::as_u64);
        let retired = body
            .get("retired")
            .and_then(Value::as_array)
            .ok_or_else(|| anyhow!("{GENERATIONS_PATH}: no \"retired\" array in {body}"))?;
        Ok((last, retired.len()))
    }

    /// `POST /admin/api/reload`; the new generation and what it did with the soak plugin.
    pub(crate) async fn reload(&self) -> Result<Reloaded> {
        let response = self
            .client
            .post(format!("{}{RELOAD_PATH}", self.base_url))
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("POST {RELOAD_PATH}"))?;
        let body = json_ok(response, RELOAD_PATH).await?;
        parse_reload(&body).with_context(|| format!("POST {RELOAD_PATH}: unexpected answer {body}"))
    }

    /// `GET /readyz` (no key, as a load balancer asks): the serving generation, and why the host is
    /// degraded if it is (a reload that failed says so there).
    pub(crate) async fn readiness(&self) -> Result<Readiness> {
        let response = self
            .client
            .get(format!("{}{READYZ_PATH}", self.base_url))
            .send()
            .await
            .with_context(|| format!("GET {READYZ_PATH}"))?;
        let body = json_ok(response, READYZ_PATH).await?;
        let generation = body
            .get("generation")
            .and_then(Value::as_u64)
            .ok_or_else(|| anyhow!("{READYZ_PATH}: no \"generation\" in {body}"))?;
        let degraded = body
            .get("degraded")
            .and_then(Value::as_str)
            .map(str::to_owned);
        Ok(Readiness {
            generation,
            degraded,
        })
    }

    /// The Prometheus text of `GET /metrics`.
    pub(crate) async fn metrics_text(&self) -> Result<String> {
        let response = self.get(METRICS_PATH).await?;
        let status = response.status();
        if !status.is_success() {
            bail!("{METRICS_PATH} answered {status}");
        }
        response
            .text()
            .await
            .with_context(|| format!("{METRICS_PATH}: reading the body"))
    }

    /// Which build answers `GET /soak` now: its `variant` field.
    pub(crate) async fn served_variant(&self) -> Result<String> {
        let body = json_ok(self.get("/soak").await?, "/soak").await?;
        body.get("variant")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .ok_or_else(|| anyhow!("GET /soak: no \"variant\" in {body}"))
    }

    async fn get(&self, path: &str) -> Result<reqwest::Response> {
        self.client
            .get(format!("{}{path}", self.base_url))
            .bearer_auth(&self.key)
            .send()
            .await
            .with_context(|| format!("GET {path}"))
    }
}

/// The JSON body of a 2xx answer; otherwise an error with the status and the host's `error` message.
async fn json_ok(response: reqwest::Response, path: &str) -> Result<Value> {
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("{path}: reading the body"))?;
    if !status.is_success() {
        let message = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("error").and_then(Value::as_str).map(str::to_owned))
            .unwrap_or(text);
        bail!("{path} answered {status}: {message}");
    }
    serde_json::from_str(&text).with_context(|| format!("{path}: the body is not JSON: {text}"))
}

/// `generation` and the soak plugin's `compile_ms` and `cached` from a reload answer.
fn parse_reload(body: &Value) -> Option<Reloaded> {
    let generation = body.get("generation")?.as_u64()?;
    let plugin = body
        .get("plugins")?
        .as_array()?
        .iter()
        .find(|p| p.get("name").and_then(Value::as_str) == Some("soak"))?;
    Some(Reloaded {
        generation,
        compile_ms: plugin
            .get("compile_ms")
            .and_then(Value::as_f64)
            .unwrap_or(0.0),
        cached: plugin
            .get("cached")
            .and_then(Value::as_bool)
            .unwrap_or(false),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reload_answer_is_read_for_the_soak_plugin() {
        let body = json!({
            "generation": 7,
            "plugins": [
                {"name": "other", "version": "1.0.0", "hash": "x", "compile_ms": 1, "cached": true},
                {"name": "soak", "version": "1.0.0", "hash": "y", "compile_ms": 42.5, "cached": false}
            ]
        });
        let reloaded = parse_reload(&body).unwrap();
        assert_eq!(reloaded.generation, 7);
        assert_eq!(reloaded.compile_ms, 42.5);
        assert!(!reloaded.cached);
        assert!(parse_reload(&json!({"generation": 7, "plugins": []})).is_none());
    }
}
