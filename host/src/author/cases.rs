//! `plugin-host test FILE.wasm [CASES.toml]`: request/expectation cases run in order against one
//! [`Sandbox`](super::sandbox::Sandbox) (one key-value store, so a POST is seen by the GETs after it);
//! a line per case, a summary, and an exit code for CI. The format is described in the cases file that
//! `plugin-host new` writes (`host/scaffold/tests/cases.toml`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use serde_json::Value;

use super::sandbox::{Accept, Answer, Call, Caller};

/// A cases file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Cases {
    /// The plugin's `[plugins.<name>.config]` for this run.
    #[serde(default)]
    pub config: BTreeMap<String, String>,
    #[serde(default, rename = "case")]
    pub cases: Vec<Case>,
}

/// One request and what must come back.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Case {
    pub name: Option<String>,
    #[serde(default = "get")]
    pub method: String,
    pub path: String,
    #[serde(default, rename = "as")]
    pub caller: Option<String>,
    pub accept: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<String>,
    pub json: Option<toml::Value>,
    pub expect: Expect,
}

fn get() -> String {
    "GET".into()
}

/// Expectations; each one given must hold.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    pub status: Option<u16>,
    /// A prefix of the content type (`text/html` matches `text/html; charset=utf-8`).
    pub content_type: Option<String>,
    /// A subset of the JSON body: every key given must be there with a matching value.
    pub json: Option<toml::Value>,
    /// Text the body must contain: one string or a list.
    pub contains: Option<OneOrMany>,
    /// Response headers and their exact values.
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl Cases {
    pub fn read(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read the cases file {}", path.display()))?;
        let cases: Self = toml::from_str(&text)
            .with_context(|| format!("{} is not a cases file", path.display()))?;
        if cases.cases.is_empty() {
            bail!("{} has no [[case]]", path.display());
        }
        Ok(cases)
    }
}

impl Case {
    /// What the summary line calls it.
    fn title(&self) -> String {
        self.name
            .clone()
            .unwrap_or_else(|| format!("{} {}", self.method, self.path))
    }

    fn call(&self) -> Result<Call> {
        super::call::check_target(&self.path)?;
        let method = super::call::parse_method(&self.method)?;
        let mut headers: Vec<(String, String)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        let body = match (&self.body, &self.json) {
            (Some(_), Some(_)) => bail!("give body or json, not both"),
            (Some(text), None) => text.clone().into_bytes(),
            (None, Some(value)) => {
                headers.push(("content-type".into(), "application/json".into()));
                serde_json::to_vec(value).context("cannot send json as JSON")?
            }
            (None, None) => Vec::new(),
        };
        Ok(Call {
            method,
            target: self.path.clone(),
            headers,
            body,
            caller: self
                .caller
                .as_deref()
                .map(str::parse)
                .transpose()?
                .unwrap_or(Caller::Anonymous),
            accept: self
                .accept
                .as_deref()
                .map(str::parse::<Accept>)
                .transpose()?,
        })
    }
}

impl Expect {
    /// Every way `answer` falls short, in words.
    pub fn failures(&self, answer: &Answer) -> Vec<String> {
        let mut failures = Vec::new();
        if let Some(status) = self.status
            && answer.status.as_u16() != status
        {
            failures.push(format!(
                "status {} (expected {status})",
                answer.status.as_u16()
            ));
        }
        if let Some(prefix) = &self.content_type
            && !answer.content_type().starts_with(prefix.as_str())
        {
            failures.push(format!(
                "content type {:?} (expected {prefix:?}...)",
                answer.content_type()
            ));
        }
        for (name, value) in &self.headers {
            let got = answer
                .headers
                .get(name.as_str())
                .and_then(|v| v.to_str().ok());
            if got != Some(value.as_str()) {
                failures.push(format!("header {name}: {got:?} (expected {value:?})"));
            }
        }
        let text = String::from_utf8_lossy(&answer.body);
        let wanted: Vec<&String> = match &self.contains {
            None => Vec::new(),
            Some(OneOrMany::One(one)) => vec![one],
            Some(OneOrMany::Many(many)) => many.iter().collect(),
        };
        for needle in wanted {
            if !text.contains(needle.as_str()) {
                failures.push(format!("the body does not contain {needle:?}"));
            }
        }
        if let Some(expected) = &self.json {
            match serde_json::from_slice::<Value>(&answer.body) {
                Err(e) => failures.push(format!("the body is not JSON ({e})")),
                Ok(got) => {
                    let expected = serde_json::to_value(expected).unwrap_or(Value::Null);
                    if let Some(at) = mismatch(&expected, &got, "") {
                        failures.push(at);
                    }
                }
            }
        }
        failures
    }
}

/// Where `got` does not contain `expected`: objects match key by key (extra keys are fine), arrays
/// element by element with the same length, everything else exactly (numbers by value).
pub fn mismatch(expected: &Value, got: &Value, at: &str) -> Option<String> {
    let here = if at.is_empty() { "the body" } else { at };
    match (expected, got) {
        (Value::Object(want), Value::Object(have)) => {
            want.iter().find_map(|(k, v)| match have.get(k) {
                None => Some(format!("{here} has no {k:?}")),
                Some(h) => mismatch(v, h, &format!("{at}.{k}")),
            })
        }
        (Value::Array(want), Value::Array(have)) if want.len() == have.len() => want
            .iter()
            .zip(have)
            .enumerate()
            .find_map(|(i, (w, h))| mismatch(w, h, &format!("{at}[{i}]"))),
        (Value::Number(w), Value::Number(h)) if w.as_f64() == h.as_f64() => None,
        (w, h) if w == h => None,
        (w, h) => Some(format!("{here} is {h} (expected {w})")),
    }
}

/// The default cases file for `file`: `tests/cases.toml` beside it.
pub fn default_cases(file: &Path) -> PathBuf {
    let dir = file
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    dir.join("tests/cases.toml")
}

/// Run the cases against `file`; prints a line per case and a summary.
pub async fn run(
    file: &Path,
    cases_file: &Path,
    settings: BTreeMap<String, String>,
) -> Result<ExitCode> {
    let cases = Cases::read(cases_file)?;
    let lines = super::logs::Lines::default();
    super::logs::init(super::logs::Sink::Keep(lines.clone()));
    let mut config = cases.config.clone();
    config.extend(settings);
    let mut sandbox = super::sandbox::Sandbox::open(file, &config, lines).await?;
    let (mut passed, mut failed) = (0, 0);
    for (i, case) in cases.cases.iter().enumerate() {
        let title = case.title();
        let call = case
            .call()
            .with_context(|| format!("case {} ({title}) in {}", i + 1, cases_file.display()))?;
        let answer = sandbox.send(&call).await?;
        let failures = case.expect.failures(&answer);
        let summary = format!(
            "{} {} -> {} in {:.1} ms",
            call.method,
            call.target,
            answer.status.as_u16(),
            answer.elapsed.as_secs_f64() * 1e3
        );
        if failures.is_empty() {
            passed += 1;
            println!("ok    {title} ({summary})");
        } else {
            failed += 1;
            println!("FAIL  {title} ({summary})");
            for f in failures {
                println!("      {f}");
            }
            println!("      body: {}", excerpt(&answer.body));
            for line in &answer.logs {
                println!("      log: {line}");
            }
        }
    }
    println!(
        "\n{}: {passed} passed, {failed} failed ({} against {})",
        if failed == 0 { "ok" } else { "FAILED" },
        cases_file.display(),
        file.display()
    );
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The body's first 300 characters, on one line.
fn excerpt(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body).replace('\n', " ");
    match text.char_indices().nth(300) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn json_subsets() {
        let got = json!({"a": 1, "b": {"c": [1, {"d": "x", "e": 2}]}, "f": true});
        assert_eq!(mismatch(&json!({"a": 1}), &got, ""), None);
        assert_eq!(
            mismatch(&json!({"b": {"c": [1, {"d": "x"}]}}), &got, ""),
            None
        );
        assert_eq!(
            mismatch(&json!({"a": 1.0}), &got, ""),
            None,
            "numbers by value"
        );
        assert_eq!(
            mismatch(&json!({"b": {"c": [1, {"d": "y"}]}}), &got, "").unwrap(),
            r#".b.c[1].d is "x" (expected "y")"#
        );
        assert!(
            mismatch(&json!({"b": {"c": [1]}}), &got, "").is_some(),
            "lengths differ"
        );
        assert_eq!(
            mismatch(&json!({"g": 1}), &got, "").unwrap(),
            r#"the body has no "g""#
        );
    }

    #[test]
    fn cases_parse_with_defaults() {
        let cases: Cases = toml::from_str(
            r#"
            [config]
            greeting = "ahoy"
            [[case]]
            path = "/x"
            expect = { status = 200, contains = ["a", "b"] }
            [[case]]
            name = "post"
            method = "post"
            path = "/x"
            as = "user"
            json = { text = "hi" }
            expect = { json = { ok = true } }
            "#,
        )
        .unwrap();
        assert_eq!(cases.config["greeting"], "ahoy");
        let first = cases.cases[0].call().unwrap();
        assert_eq!(
            (first.method.as_str(), first.caller),
            ("GET", Caller::Anonymous)
        );
        let second = cases.cases[1].call().unwrap();
        assert_eq!(second.method, http::Method::POST);
        assert_eq!(second.caller, Caller::User);
        assert_eq!(second.body, br#"{"text":"hi"}"#);
        assert!(
            toml::from_str::<Cases>("[[case]]\npath = \"/x\"\nexpect = { stauts = 1 }").is_err()
        );
    }
}
