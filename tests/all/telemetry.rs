//! OpenTelemetry traces (issue 20) from the outside: the real host process configured by the standard
//! `OTEL_*` variables, exporting to a loopback OTLP/HTTP receiver the test runs (support/otlp.rs), with
//! the `echo` example (which logs a line per request) and the `outbound` fixture calling a real
//! upstream (support/upstream.rs, whose `/echo` answers with the headers it received).
//!
//! Exporting: the request span continues the caller's trace (`traceparent`), the plugin call is its
//! child and an outbound call the plugin call's, and the upstream gets that call's `traceparent`; the
//! host's and the plugin's log lines carry the trace id, in text and JSON. Not exporting (no variables,
//! or switched off, or asking for what this build lacks): nothing is sent, and an incoming trace is
//! still logged and passed on unchanged.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use plugin_host_tests::otlp::{self, Receiver};
use plugin_host_tests::upstream::Upstream;
use plugin_host_tests::{HostProcess, cli_root_admin_key, example, fixture, plugins_dir_with};
use serde_json::{Value, json};

/// How long spans, log lines and answers may take before the test calls it a hang.
const LIMIT: Duration = Duration::from_secs(20);

/// A caller's trace: its id and the caller's span, as a `traceparent` carries them.
struct Caller {
    trace_id: &'static str,
    span_id: &'static str,
}

impl Caller {
    fn traceparent(&self) -> String {
        format!("00-{}-{}-01", self.trace_id, self.span_id)
    }
}

/// The trace `POST /echo` comes in with.
const ECHO_CALLER: Caller = Caller {
    trace_id: "4bf92f3577b34da6a3ce929d0e0e4736",
    span_id: "00f067aa0ba902b7",
};
/// The trace `POST /outbound/send` comes in with, and its vendor state.
const OUTBOUND_CALLER: Caller = Caller {
    trace_id: "0af7651916cd43dd8448eb211c80319c",
    span_id: "b7ad6b7169203331",
};
const TRACESTATE: &str = "caller=kept";
/// What the plugin tries to put on its call; the host sends its own trace context instead.
const FORGED: &str = "00-ffffffffffffffffffffffffffffffff-ffffffffffffffff-01";

/// Plugins, data directory, configuration and an API key, shared by the hosts a test starts in turn.
struct Setup {
    plugins: tempfile::TempDir,
    data: tempfile::TempDir,
    config: PathBuf,
    key: String,
    upstream: Upstream,
    client: reqwest::Client,
}

impl Setup {
    /// `echo` and `outbound` (allowed to call the upstream), logging in `log_format`.
    async fn new(log_format: &str) -> Self {
        let upstream = Upstream::start().await;
        let plugins = plugins_dir_with(&[&example("echo"), &fixture("outbound.wasm")]);
        let data = tempfile::tempdir().unwrap();
        let config = data.path().join("host.toml");
        std::fs::write(
            &config,
            format!(
                "log_format = \"{log_format}\"\n[plugins.outbound]\nallow_http = [\"{}\"]\n",
                upstream.base()
            ),
        )
        .unwrap();
        let d = data.path().to_str().unwrap();
        let key = cli_root_admin_key(d);
        Self {
            plugins,
            data,
            config,
            key,
            upstream,
            client: reqwest::Client::new(),
        }
    }

    /// `plugin-host serve` with `env` (and no other `OTEL_*` variable).
    fn serve(&self, env: &[(&str, &str)]) -> HostProcess {
        HostProcess::serve_env(
            &[
                "--config",
                self.config.to_str().unwrap(),
                "--plugins",
                self.plugins.path().to_str().unwrap(),
                "--data",
                self.data.path().to_str().unwrap(),
            ],
            env,
        )
    }

    /// `POST /echo`, with `caller`'s trace if given; the request id.
    async fn echo(&self, host: &HostProcess, caller: Option<&Caller>) -> String {
        let mut request = self.client.post(host.url("/echo")).body("ping");
        if let Some(caller) = caller {
            request = request.header("traceparent", caller.traceparent());
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), reqwest::StatusCode::OK);
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["body"]["data"], "ping", "{body}");
        id
    }

    /// `POST /outbound/send` to the upstream's `/echo`, the plugin adding a forged `traceparent` and
    /// `tracestate`, with `caller`'s trace (and [`TRACESTATE`]) if given: the headers the upstream got.
    async fn call_out(&self, host: &HostProcess, caller: Option<&Caller>) -> Vec<(String, String)> {
        let ask = json!({
            "url": format!("{}/echo", self.upstream.base()),
            "headers": [["traceparent", FORGED], ["tracestate", "forged=1"]],
        });
        let mut request = self
            .client
            .post(host.url("/outbound/send"))
            .bearer_auth(&self.key)
            .json(&ask);
        if let Some(caller) = caller {
            request = request
                .header("traceparent", caller.traceparent())
                .header("tracestate", TRACESTATE);
        }
        let answer: Value = request.send().await.unwrap().json().await.unwrap();
        let result = &answer["results"][0];
        assert_eq!(result["status"], 200, "{answer}");
        let echoed: Value = serde_json::from_str(result["body"].as_str().unwrap()).unwrap();
        echoed["headers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|h| {
                (
                    h[0].as_str().unwrap().to_owned(),
                    h[1].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }
}

/// The value of header `name` among `headers`.
fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The first line of the host's log holding all of `needles`, waiting (bounded) for it to be written.
async fn log_line(host: &HostProcess, needles: &[&str]) -> String {
    let started = Instant::now();
    loop {
        let log = host.stderr();
        if let Some(line) = log.lines().find(|l| needles.iter().all(|n| l.contains(n))) {
            return line.to_owned();
        }
        assert!(
            started.elapsed() < LIMIT,
            "no log line with {needles:?} in:\n{log}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The plugin's line and the host's `request completed` line for request `id`, which must both carry
/// `trace_id`: as `trace_id=` in text, as the event's field (plugin) or the request span's (host) in JSON.
async fn assert_logged_with_trace(host: &HostProcess, id: &str, trace_id: &str, json: bool) {
    let plugin = log_line(host, &["echoing 4 body bytes", id]).await;
    let completed = log_line(host, &["request completed", id]).await;
    if json {
        let plugin: Value = serde_json::from_str(&plugin).unwrap();
        assert_eq!(plugin["fields"]["trace_id"], trace_id, "{plugin}");
        let completed: Value = serde_json::from_str(&completed).unwrap();
        assert_eq!(completed["span"]["trace_id"], trace_id, "{completed}");
    } else {
        let field = format!("trace_id={trace_id}");
        assert!(plugin.contains(&field), "{plugin}");
        assert!(completed.contains(&field), "{completed}");
    }
}

/// SIGTERM, and the host must exit cleanly (after flushing its spans, when it exports).
fn stop(host: HostProcess) -> String {
    host.terminate();
    let (status, stderr) = host.wait(LIMIT);
    assert!(status.success(), "{stderr}");
    stderr
}

/// The spans of one exported request: the request's and its plugin call's.
struct Exported {
    request: otlp::Span,
    call: otlp::Span,
}

/// The server span of trace `trace_id` and the plugin call under it, once both have arrived.
fn request_spans(spans: &[otlp::Span], trace_id: &str) -> Option<Exported> {
    let request = spans
        .iter()
        .find(|s| s.trace_id == trace_id && s.kind == otlp::KIND_SERVER)?;
    let call = spans.iter().find(|s| s.parent_span_id == request.span_id)?;
    Some(Exported {
        request: request.clone(),
        call: call.clone(),
    })
}

async fn exporting(log_format: &str, service_name: Option<&str>) {
    let receiver = Receiver::start().await;
    let setup = Setup::new(log_format).await;
    let endpoint = receiver.endpoint();
    let mut env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_BSP_SCHEDULE_DELAY", "50"),
    ];
    env.extend(service_name.map(|name| ("OTEL_SERVICE_NAME", name)));
    let host = setup.serve(&env);
    let json = log_format == "json";

    // A request in the caller's trace: its span continues it, the plugin call is the span's child.
    let echoed = setup.echo(&host, Some(&ECHO_CALLER)).await;
    assert_logged_with_trace(&host, &echoed, ECHO_CALLER.trace_id, json).await;
    let echo = receiver
        .wait_for("span of the traced echo request", LIMIT, |spans| {
            request_spans(spans, ECHO_CALLER.trace_id)
        })
        .await;
    let service = service_name.unwrap_or("plugin-host");
    let request = &echo.request;
    assert_eq!(request.service, service, "{request:?}");
    assert_eq!(request.parent_span_id, ECHO_CALLER.span_id, "{request:?}");
    assert_eq!(request.name, "POST /echo", "{request:?}");
    for (key, value) in [
        ("plugin", "echo"),
        ("route", "/echo"),
        ("method", "POST"),
        ("status", "200"),
        ("request_id", echoed.as_str()),
    ] {
        assert_eq!(request.attribute(key), value, "{key}: {request:?}");
    }
    let call = &echo.call;
    assert_eq!(call.trace_id, ECHO_CALLER.trace_id, "{call:?}");
    assert_eq!(call.name, "plugin call", "{call:?}");
    assert_eq!(call.attribute("plugin"), "echo", "{call:?}");
    assert_eq!(call.attribute("version"), "0.1.0", "{call:?}");

    // Without a caller's trace the request starts one; its log lines name it.
    let fresh = setup.echo(&host, None).await;
    let completed = log_line(&host, &["request completed", &fresh]).await;
    let trace_id = if json {
        let line: Value = serde_json::from_str(&completed).unwrap();
        line["span"]["trace_id"].as_str().unwrap().to_owned()
    } else {
        let (_, rest) = completed.split_once("trace_id=").expect(&completed);
        rest[..32].to_owned()
    };
    assert_logged_with_trace(&host, &fresh, &trace_id, json).await;
    let root = receiver
        .wait_for("span of the untraced echo request", LIMIT, |spans| {
            request_spans(spans, &trace_id)
        })
        .await;
    assert_eq!(root.request.parent_span_id, "", "{:?}", root.request);
    assert_eq!(root.request.attribute("request_id"), fresh);

    // An outbound call: a client span under the plugin call, and its traceparent is what the upstream
    // got (the plugin's forged one dropped), with the caller's tracestate.
    let got = setup.call_out(&host, Some(&OUTBOUND_CALLER)).await;
    let (sent, call, out) = receiver
        .wait_for("spans of the outbound call", LIMIT, |spans| {
            let sent = request_spans(spans, OUTBOUND_CALLER.trace_id)?;
            let out = spans
                .iter()
                .find(|s| s.parent_span_id == sent.call.span_id)?;
            Some((sent.request, sent.call, out.clone()))
        })
        .await;
    assert_eq!(sent.parent_span_id, OUTBOUND_CALLER.span_id, "{sent:?}");
    assert_eq!(sent.attribute("route"), "/outbound/send", "{sent:?}");
    assert_eq!(call.attribute("plugin"), "outbound", "{call:?}");
    assert_eq!(out.kind, otlp::KIND_CLIENT, "{out:?}");
    assert_eq!(out.attribute("upstream"), setup.upstream.base(), "{out:?}");
    assert_eq!(out.attribute("status"), "200", "{out:?}");
    assert_eq!(
        header(&got, "traceparent"),
        Some(format!("00-{}-{}-01", OUTBOUND_CALLER.trace_id, out.span_id).as_str()),
        "{got:?}"
    );
    assert_eq!(header(&got, "tracestate"), Some(TRACESTATE), "{got:?}");

    let stderr = stop(host);
    assert!(
        stderr.contains("OpenTelemetry: exporting spans to http://127.0.0.1:"),
        "{stderr}"
    );
}

/// Text log lines, the default service name.
#[tokio::test]
async fn spans_reach_the_collector_in_the_callers_trace_with_text_logs() {
    exporting("text", None).await;
}

/// JSON log lines, `OTEL_SERVICE_NAME` honoured.
#[tokio::test]
async fn spans_reach_the_collector_in_the_callers_trace_with_json_logs() {
    exporting("json", Some("edge-plugins")).await;
}

/// With no `OTEL_*` variable the host behaves as before (no trace id where no trace came in, nothing
/// added to outbound calls), and a caller's trace is still logged and passed on as it came.
#[tokio::test]
async fn without_otel_variables_an_incoming_trace_is_logged_and_passed_on_unchanged() {
    let setup = Setup::new("text").await;
    let host = setup.serve(&[]);

    let plain = setup.echo(&host, None).await;
    let completed = log_line(&host, &["request completed", &plain]).await;
    assert!(!completed.contains("trace_id"), "{completed}");
    let got = setup.call_out(&host, None).await;
    assert_eq!(header(&got, "traceparent"), None, "{got:?}");
    assert_eq!(header(&got, "tracestate"), None, "{got:?}");

    let traced = setup.echo(&host, Some(&ECHO_CALLER)).await;
    assert_logged_with_trace(&host, &traced, ECHO_CALLER.trace_id, false).await;
    let got = setup.call_out(&host, Some(&OUTBOUND_CALLER)).await;
    assert_eq!(
        header(&got, "traceparent"),
        Some(OUTBOUND_CALLER.traceparent().as_str()),
        "{got:?}"
    );
    assert_eq!(header(&got, "tracestate"), Some(TRACESTATE), "{got:?}");

    let stderr = stop(host);
    assert!(!stderr.contains("OpenTelemetry"), "{stderr}");
}

/// An endpoint with export switched off, or with a protocol this build lacks: the host says so, serves
/// as usual, and has sent nothing by the time it has exited (a host that exports flushes on exit).
#[tokio::test]
async fn export_switched_off_or_not_built_sends_nothing() {
    let receiver = Receiver::start().await;
    let setup = Setup::new("text").await;
    let endpoint = receiver.endpoint();
    for (switch, said) in [
        (("OTEL_SDK_DISABLED", "true"), "INFO"),
        (("OTEL_TRACES_EXPORTER", "none"), "INFO"),
        (("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"), "WARN"),
    ] {
        let host = setup.serve(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
            ("OTEL_BSP_SCHEDULE_DELAY", "50"),
            switch,
        ]);
        let line = log_line(&host, &["OpenTelemetry: spans are"]).await;
        assert!(line.contains(said), "{switch:?}: {line}");
        assert!(
            line.contains(&format!("{}={}", switch.0, switch.1)),
            "{line}"
        );
        let traced = setup.echo(&host, Some(&ECHO_CALLER)).await;
        assert_logged_with_trace(&host, &traced, ECHO_CALLER.trace_id, false).await;
        stop(host);
        assert_eq!(receiver.posts(), 0, "{switch:?}: {:?}", receiver.spans());
    }
}
