//! `plugin-host call FILE.wasm METHOD PATH`: one request to a plugin through the real host path in a
//! [`Sandbox`](super::sandbox::Sandbox), printed like `curl -i` (status line, headers, blank line, body)
//! on stdout, with the plugin's log lines on stderr. The exit code is non-zero on a 5xx.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

use super::logs::LogLine;
use super::sandbox::{Answer, Call};

/// `name: value` from `-H`.
pub fn parse_header(text: &str) -> Result<(String, String)> {
    let Some((name, value)) = text.split_once(':') else {
        bail!("{text:?} is not a header: write it as 'name: value'");
    };
    let name = name.trim();
    if name.is_empty() {
        bail!("{text:?} has no header name");
    }
    Ok((name.to_ascii_lowercase(), value.trim().to_owned()))
}

/// `KEY=VALUE` from `--config`.
pub fn parse_setting(text: &str) -> Result<(String, String)> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => bail!("{text:?} is not a setting: write it as KEY=VALUE"),
    }
}

/// `--data`: the text itself, or `@FILE` for a file's bytes.
pub fn read_body(data: Option<&str>) -> Result<Vec<u8>> {
    match data {
        None => Ok(Vec::new()),
        Some(spec) => match spec.strip_prefix('@') {
            Some(file) => std::fs::read(file).with_context(|| format!("cannot read {file}")),
            None => Ok(spec.as_bytes().to_vec()),
        },
    }
}

/// An HTTP method by name, in any case (`get`, `POST`).
pub fn parse_method(name: &str) -> Result<http::Method> {
    http::Method::from_bytes(name.to_ascii_uppercase().as_bytes())
        .with_context(|| format!("{name:?} is not an HTTP method"))
}

/// A request path as the command line gives it: absolute.
pub fn check_target(path: &str) -> Result<()> {
    if !path.starts_with('/') {
        bail!("{path:?} is not a path: it must start with '/', e.g. /greeter/ada");
    }
    Ok(())
}

/// Run one call against `file` and print it.
pub async fn run(file: &Path, call: Call, settings: BTreeMap<String, String>) -> Result<ExitCode> {
    let lines = super::logs::Lines::default();
    super::logs::init(super::logs::Sink::Keep(lines.clone()));
    let mut sandbox = super::sandbox::Sandbox::open(file, &settings, lines).await?;
    let answer = sandbox.send(&call).await?;
    print_logs(&answer.logs);
    print_answer(&answer)?;
    Ok(if answer.status.is_server_error() {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

fn print_logs(logs: &[LogLine]) {
    let mut err = std::io::stderr().lock();
    for line in logs {
        let _ = writeln!(err, "log: {line}");
    }
}

/// Status line, headers, a blank line and the body (with a final newline if it has none).
fn print_answer(answer: &Answer) -> Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "HTTP/1.1 {} {}",
        answer.status.as_u16(),
        answer.status.canonical_reason().unwrap_or("")
    )?;
    for (name, value) in &answer.headers {
        writeln!(out, "{name}: {}", String::from_utf8_lossy(value.as_bytes()))?;
    }
    writeln!(out)?;
    out.write_all(&answer.body)?;
    if !answer.body.is_empty() && !answer.body.ends_with(b"\n") {
        writeln!(out)?;
    }
    out.flush()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn headers_and_settings_parse() {
        assert_eq!(
            parse_header("X-Thing:  a: b ").unwrap(),
            ("x-thing".into(), "a: b".into())
        );
        assert!(parse_header("no colon").is_err());
        assert!(parse_header(": empty").is_err());
        assert_eq!(
            parse_setting("greeting=ahoy=there").unwrap(),
            ("greeting".into(), "ahoy=there".into())
        );
        assert!(parse_setting("=x").is_err());
        assert!(check_target("greeter/ada").is_err());
        assert_eq!(read_body(Some("{}")).unwrap(), b"{}");
        assert!(read_body(Some("@/nonexistent/file")).is_err());
    }
}
