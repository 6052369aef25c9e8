//! The OTLP trace exporter, set up once at start-up from the standard `OTEL_*` environment variables.
//!
//! Export is on only when an endpoint is named (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, used as it is, or
//! `OTEL_EXPORTER_OTLP_ENDPOINT`, with `/v1/traces` added) and nothing switches it off
//! (`OTEL_SDK_DISABLED=true`, `OTEL_TRACES_EXPORTER=none`). This build speaks OTLP over HTTP with
//! protobuf only: asking for `grpc` or `http/json` leaves export off with a warning that says so, as
//! does an endpoint that is not an http(s) URL; the server starts either way. Everything else the
//! OpenTelemetry SDK reads itself: `OTEL_SERVICE_NAME` (default here: `plugin-host`) and
//! `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_EXPORTER_OTLP_{,TRACES_}HEADERS` and `_TIMEOUT`,
//! `OTEL_TRACES_SAMPLER` and `_ARG` (default: parent-based, always on), `OTEL_BSP_*` (the batch
//! processor: its own thread, 5 s between exports by default).
//!
//! Spans leave through the SDK's batch processor, whose thread hands each batch to [`ExportClient`]
//! (the host's reqwest on a runtime of its own). [`Exporter::shutdown`] flushes what is queued; the
//! CLI calls it after the server has drained on SIGTERM.

use std::time::Duration;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry::{Key, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig, WithHttpConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{BatchSpanProcessor, SdkTracerProvider};
use tracing::Subscriber;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::Layer;
use tracing_subscriber::filter::{FilterExt, FilterFn, LevelFilter};
use tracing_subscriber::layer::Filter;
use tracing_subscriber::registry::LookupSpan;

use super::export_client::ExportClient;

/// `service.name` when neither `OTEL_SERVICE_NAME` nor `OTEL_RESOURCE_ATTRIBUTES` names one.
pub const DEFAULT_SERVICE_NAME: &str = "plugin-host";

/// How long the exporter may take to send one batch when `OTEL_EXPORTER_OTLP_{,TRACES_}TIMEOUT` say
/// nothing (the OTLP default).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// How long shutdown waits for the last spans to leave.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// What the environment asks for.
#[derive(Debug, PartialEq, Eq)]
enum Decision {
    /// No endpoint: the default, nothing to say.
    Unset,
    /// Switched off on purpose; said at `info`.
    Disabled(String),
    /// Asked for in a way this build cannot do; said at `warn`.
    Unsupported(String),
    /// Export; `origin` is the endpoint's `scheme://host:port`, for the log (never its path, query or
    /// credentials).
    Export { origin: String },
}

/// Read the decision from `var` (the environment, or a test's map).
fn decide(lookup: impl Fn(&str) -> Option<String>) -> Decision {
    let var = |name: &str| {
        lookup(name)
            .map(|v| v.trim().to_owned())
            .filter(|v| !v.is_empty())
    };
    if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
        return Decision::Disabled("OTEL_SDK_DISABLED=true".into());
    }
    if let Some(exporters) = var("OTEL_TRACES_EXPORTER") {
        let names: Vec<String> = exporters
            .split(',')
            .map(|n| n.trim().to_ascii_lowercase())
            .collect();
        if names.iter().all(|n| n == "none") {
            return Decision::Disabled("OTEL_TRACES_EXPORTER=none".into());
        }
        if !names.iter().any(|n| n == "otlp") {
            return Decision::Unsupported(format!(
                "OTEL_TRACES_EXPORTER={exporters} names no exporter this host has (it has otlp)"
            ));
        }
    }
    let endpoint = match (
        var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        var("OTEL_EXPORTER_OTLP_ENDPOINT"),
    ) {
        (Some(e), _) => ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", e),
        (None, Some(e)) => ("OTEL_EXPORTER_OTLP_ENDPOINT", e),
        (None, None) => return Decision::Unset,
    };
    let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .map(|p| ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", p))
        .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL").map(|p| ("OTEL_EXPORTER_OTLP_PROTOCOL", p)));
    if let Some((name, protocol)) = protocol
        && !protocol.eq_ignore_ascii_case("http/protobuf")
    {
        let hint = if protocol.eq_ignore_ascii_case("grpc") {
            "; a collector usually takes OTLP/HTTP on port 4318 beside gRPC on 4317"
        } else {
            ""
        };
        return Decision::Unsupported(format!(
            "{name}={protocol} is not built into this host, which sends OTLP over HTTP with protobuf \
             only: set it to http/protobuf (or unset it) and point {} at the collector's OTLP/HTTP \
             endpoint{hint}",
            endpoint.0
        ));
    }
    match url::Url::parse(&endpoint.1) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host().is_some() => {
            let port = url.port_or_known_default().unwrap_or_default();
            Decision::Export {
                origin: format!("{}://{}:{port}", url.scheme(), url.host().expect("checked")),
            }
        }
        _ => Decision::Unsupported(format!(
            "{} is not an http:// or https:// URL with a host",
            endpoint.0
        )),
    }
}

/// The exporter's timeout for one batch, from the same variables the OTLP exporter reads.
fn timeout(var: impl Fn(&str) -> Option<String>) -> Duration {
    [
        "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
        "OTEL_EXPORTER_OTLP_TIMEOUT",
    ]
    .iter()
    .find_map(|name| var(name)?.trim().parse().ok())
    .map_or(DEFAULT_TIMEOUT, Duration::from_millis)
}

/// What start-up found: the exporter when export is on, and what to say about it once the log is up.
pub struct Plan {
    pub exporter: Option<Exporter>,
    said: Option<(tracing::Level, String)>,
}

impl Plan {
    /// Read the `OTEL_*` variables and, when they ask for export, build the exporter (its thread and
    /// runtime start here; nothing is sent before the first span ends).
    pub fn from_env() -> Self {
        let env = |name: &str| std::env::var(name).ok();
        let (exporter, said) = match decide(env) {
            Decision::Unset => (None, None),
            Decision::Disabled(why) => (
                None,
                Some((
                    tracing::Level::INFO,
                    format!(
                        "OpenTelemetry: spans are not exported ({why}); an incoming traceparent is \
                         still logged and passed on"
                    ),
                )),
            ),
            Decision::Unsupported(why) => (
                None,
                Some((
                    tracing::Level::WARN,
                    format!("OpenTelemetry: spans are NOT exported: {why}"),
                )),
            ),
            Decision::Export { origin } => match Exporter::build(timeout(env)) {
                Ok(exporter) => {
                    let said = format!(
                        "OpenTelemetry: exporting spans to {origin} over OTLP/HTTP (protobuf) as service {:?}",
                        exporter.service_name
                    );
                    (Some(exporter), Some((tracing::Level::INFO, said)))
                }
                Err(e) => (
                    None,
                    Some((
                        tracing::Level::WARN,
                        format!("OpenTelemetry: spans are NOT exported: {e:#}"),
                    )),
                ),
            },
        };
        Self { exporter, said }
    }

    /// Say what was decided, once the subscriber is installed.
    pub fn report(&self) {
        match &self.said {
            Some((level, said)) if *level == tracing::Level::WARN => tracing::warn!("{said}"),
            Some((_, said)) => tracing::info!("{said}"),
            None => {}
        }
    }
}

/// The tracer provider with its batch processor and OTLP/HTTP exporter.
pub struct Exporter {
    provider: SdkTracerProvider,
    service_name: String,
}

impl Exporter {
    fn build(timeout: Duration) -> anyhow::Result<Self> {
        let client = ExportClient::new(timeout)?;
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_timeout(timeout)
            .with_http_client(client)
            .build()?;
        let resource = resource();
        let service_name = resource
            .get(&Key::from_static_str("service.name"))
            .map(|v| v.as_str().into_owned())
            .unwrap_or_default();
        let provider = SdkTracerProvider::builder()
            .with_span_processor(BatchSpanProcessor::builder(exporter).build())
            .with_resource(resource)
            .build();
        Ok(Self {
            provider,
            service_name,
        })
    }

    /// The `tracing` layer that turns the host's spans into OpenTelemetry spans: only spans (log
    /// events stay in the log), only the host's own, no code locations or thread names. Asking for it
    /// marks the process as exporting: it is asked for only to be installed.
    pub fn layer<S>(&self) -> impl Layer<S> + use<S>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        super::set_exporting();
        let tracer = self.provider.tracer(DEFAULT_SERVICE_NAME);
        let spans =
            FilterFn::new(|meta| meta.is_span() && meta.target().starts_with("plugin_host"))
                .with_max_level_hint(LevelFilter::INFO);
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_location(false)
            .with_threads(false)
            .with_target(false)
            .with_tracked_inactivity(false)
            .with_filter(spans)
    }

    /// Send what is still queued and stop the batch processor (bounded by [`FLUSH_TIMEOUT`]).
    pub fn shutdown(self) {
        if let Err(e) = self.provider.shutdown_with_timeout(FLUSH_TIMEOUT) {
            tracing::warn!(error = %e, "OpenTelemetry: the last spans could not be sent");
        }
    }
}

/// The log's own filter while exporting: the operator's `filter`, less the spans only the exporter
/// needs ([`super::SPAN_TARGET`]), and with the OpenTelemetry crates' own lines capped at `warn` (below
/// it they are chatty, and their debug lines can carry a collector's answers) unless `filter` names them.
pub fn log_filter<S>(filter: EnvFilter) -> impl Filter<S> + use<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let filter = if filter.to_string().contains("opentelemetry") {
        filter
    } else {
        filter.add_directive("opentelemetry=warn".parse().expect("a valid directive"))
    };
    // The hint keeps the filter's own maximum level: without one the combination would have none,
    // and every `log` record of the dependencies (wasmtime writes many at trace level) would be
    // turned into an event and matched against the filter, per request.
    let exporter_only = FilterFn::new(|meta| meta.target() != super::SPAN_TARGET)
        .with_max_level_hint(LevelFilter::TRACE);
    filter.and(exporter_only)
}

/// The resource spans are reported under: what the SDK finds in the environment, with
/// `service.name` defaulting to [`DEFAULT_SERVICE_NAME`] rather than the SDK's `unknown_service`, and
/// `service.version` to the host's version.
fn resource() -> Resource {
    let found = Resource::builder().build();
    let mut builder = Resource::builder();
    let named = found
        .get(&Key::from_static_str("service.name"))
        .is_some_and(|name| !name.as_str().starts_with("unknown_service"));
    if !named {
        builder = builder.with_service_name(DEFAULT_SERVICE_NAME);
    }
    if found
        .get(&Key::from_static_str("service.version"))
        .is_none()
    {
        builder =
            builder.with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")));
    }
    builder.build()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decide_with(vars: &[(&str, &str)]) -> Decision {
        decide(|name| {
            vars.iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| v.to_string())
        })
    }

    #[test]
    fn export_needs_an_endpoint_and_nothing_switching_it_off() {
        assert_eq!(decide_with(&[]), Decision::Unset);
        assert_eq!(
            decide_with(&[
                ("OTEL_SERVICE_NAME", "x"),
                ("OTEL_EXPORTER_OTLP_ENDPOINT", " ")
            ]),
            Decision::Unset
        );
        let export = Decision::Export {
            origin: "http://collector:4318".into(),
        };
        assert_eq!(
            decide_with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")]),
            export
        );
        assert_eq!(
            decide_with(&[
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "https://user:secret@otel.example/v1/traces?k=v"
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
                ("OTEL_TRACES_EXPORTER", "otlp"),
            ]),
            Decision::Export {
                origin: "https://otel.example:443".into()
            }
        );
        for off in [
            ("OTEL_SDK_DISABLED", "TRUE"),
            ("OTEL_TRACES_EXPORTER", "none"),
        ] {
            let decided = decide_with(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"), off]);
            assert!(
                matches!(decided, Decision::Disabled(_)),
                "{off:?}: {decided:?}"
            );
        }
        assert_eq!(
            decide_with(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318"),
                ("OTEL_SDK_DISABLED", "false")
            ]),
            export
        );
    }

    #[test]
    fn what_this_build_cannot_do_is_said_not_attempted() {
        let endpoint = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4317");
        for (vars, says) in [
            (
                vec![endpoint, ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")],
                "OTEL_EXPORTER_OTLP_PROTOCOL=grpc is not built",
            ),
            (
                vec![
                    endpoint,
                    ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/json"),
                ],
                "http/json is not built",
            ),
            (
                vec![endpoint, ("OTEL_TRACES_EXPORTER", "zipkin")],
                "zipkin names no exporter",
            ),
            (
                vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")],
                "not an http:// or https:// URL",
            ),
        ] {
            match decide_with(&vars) {
                Decision::Unsupported(why) => assert!(why.contains(says), "{why}"),
                other => panic!("{vars:?}: {other:?}"),
            }
        }
        // A traces-specific protocol wins over the general one.
        assert!(matches!(
            decide_with(&[
                endpoint,
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
                ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "http/protobuf"),
            ]),
            Decision::Export { .. }
        ));
    }

    #[test]
    fn the_batch_timeout_follows_the_otlp_variables() {
        assert_eq!(timeout(|_| None), DEFAULT_TIMEOUT);
        let general = |n: &str| (n == "OTEL_EXPORTER_OTLP_TIMEOUT").then(|| "2500".to_owned());
        assert_eq!(timeout(general), Duration::from_millis(2500));
        let both = |n: &str| match n {
            "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT" => Some("700".to_owned()),
            _ => Some("2500".to_owned()),
        };
        assert_eq!(timeout(both), Duration::from_millis(700));
    }
}
