//! OpenTelemetry traces as every tier sees them: whether spans are exported (one switch for the
//! process, set once at start-up by [`export`]), the W3C trace context a request comes with, the spans of
//! a request (the request itself, its plugin call, the plugin's outbound calls), the trace id its log
//! lines carry, and the `traceparent` an outbound call sends.
//!
//! Export is off unless an OTLP endpoint is configured (`OTEL_EXPORTER_OTLP_ENDPOINT` or
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`). Then no OpenTelemetry layer is installed and the only work per
//! request is looking for a `traceparent` header. When one came in it is still honoured: the request's
//! log lines (plugin lines included) carry its trace id, and the plugin's outbound calls forward it
//! unchanged, as a proxy that records no spans of its own does (and as OpenTelemetry's API does with
//! no SDK installed). With export on, the request span is the incoming span's child, the plugin call
//! its child, each outbound call a child of that, and outbound calls carry their own span's id.
//!
//! The request span is the one log lines are written in, so its fields are the span's attributes. The
//! plugin-call and outbound-call spans exist only while exporting and only for the exporter
//! ([`SPAN_TARGET`]; the log filter leaves them out), so log lines look as they did before traces.

pub mod export;
mod export_client;

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};

use opentelemetry::Context;
use opentelemetry::context::FutureExt as _;
use opentelemetry::propagation::{Injector, TextMapPropagator};
use opentelemetry::trace::{Status, TraceContextExt, TraceId};
use opentelemetry_http::HeaderExtractor;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use tracing::field::{self, DisplayValue};
use tracing::{Instrument, Span};
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The header a W3C trace context arrives in.
pub const TRACEPARENT: &str = "traceparent";
/// Its companion, vendor data that travels with it.
pub const TRACESTATE: &str = "tracestate";

/// The target of the spans only the exporter sees (the plugin call and outbound calls).
pub const SPAN_TARGET: &str = "plugin_host::trace";

static EXPORTING: AtomicBool = AtomicBool::new(false);

/// Whether spans are exported (the OpenTelemetry layer is installed).
pub fn exporting() -> bool {
    EXPORTING.load(Ordering::Relaxed)
}

/// Called when the OpenTelemetry layer is made, just before it is installed.
fn set_exporting() {
    EXPORTING.store(true, Ordering::Relaxed);
}

/// The trace context of an incoming request: its valid `traceparent` (and `tracestate`), else `None`.
/// A malformed header is ignored, as W3C trace context asks.
pub fn incoming(headers: &http::HeaderMap) -> Option<Context> {
    if !headers.contains_key(TRACEPARENT) {
        return None;
    }
    let cx = TraceContextPropagator::new().extract(&HeaderExtractor(headers));
    cx.span().span_context().is_valid().then_some(cx)
}

/// Tie the request span to its trace. The span must declare the fields `trace_id` and `otel.kind`
/// (empty). Exporting: the span becomes the incoming span's child (or a new trace's root) and a server
/// span; its trace id is recorded. Not exporting: an incoming trace's id is recorded, and the context
/// is returned for [`within`] to make current while the request runs.
pub fn start_request(span: &Span, incoming: Option<Context>) -> Option<Context> {
    if exporting() {
        span.record("otel.kind", "server");
        // Fails only for a span the subscriber disabled, which then has no trace to join.
        let _ = span.set_parent(incoming.unwrap_or_default());
        let cx = span.context();
        let trace = cx.span().span_context().trace_id();
        if trace != TraceId::INVALID {
            span.record("trace_id", field::display(trace));
        }
        None
    } else {
        let cx = incoming?;
        span.record(
            "trace_id",
            field::display(cx.span().span_context().trace_id()),
        );
        Some(cx)
    }
}

/// Run a request's future with `cx` (from [`start_request`]) as the current trace context, so its
/// outbound calls and plugin log lines find the incoming trace.
pub async fn within<F: Future>(cx: Option<Context>, request: F) -> F::Output {
    match cx {
        Some(cx) => request.with_context(cx).await,
        None => request.await,
    }
}

/// Name the exported request span once the request is answered: `METHOD ROUTE` (the route's pattern,
/// never the raw path), or the method alone when nothing matched; a 5xx marks it failed.
pub fn finish_request(span: &Span, method: &str, route: Option<&str>, status: u16) {
    if !exporting() {
        return;
    }
    let cx = span.context();
    let otel = cx.span();
    otel.update_name(match route {
        Some(route) => format!("{method} {route}"),
        None => method.to_owned(),
    });
    if status >= 500 {
        otel.set_status(Status::error(format!("answered {status}")));
    }
}

/// Run a plugin call; while exporting, as the plugin-call span (a child of the current, request span),
/// marked failed when the call fails.
pub async fn plugin_call<T, E>(
    plugin: &str,
    version: &str,
    call: impl Future<Output = Result<T, E>>,
) -> Result<T, E> {
    if !exporting() {
        return call.await;
    }
    let span = tracing::info_span!(
        target: SPAN_TARGET,
        "plugin call",
        plugin,
        version,
        otel.status_code = field::Empty,
    );
    let outcome = call.instrument(span.clone()).await;
    if outcome.is_err() {
        failed(&span);
    }
    outcome
}

/// Mark an exported span (plugin call, outbound call) failed.
fn failed(span: &Span) {
    span.record("otel.status_code", "error");
}

/// An outbound call's span, only while exporting: a client span, child of the current (plugin-call)
/// span. [`outbound_finished`] records where it went and what came back.
pub fn outbound_call(method: &str) -> Option<Span> {
    exporting().then(|| {
        tracing::info_span!(
            target: SPAN_TARGET,
            "outbound call",
            otel.kind = "client",
            otel.status_code = field::Empty,
            method,
            upstream = field::Empty,
            status = field::Empty,
        )
    })
}

/// Record an outbound call's upstream (`scheme://host:port`, no path or query) and status (`None`: the
/// call failed).
pub fn outbound_finished(span: &Span, upstream: &str, status: Option<u16>) {
    span.record("upstream", upstream);
    match status {
        Some(status) => {
            span.record("status", status);
            if status >= 500 {
                failed(span);
            }
        }
        None => failed(span),
    }
}

/// The trace context an outbound call carries: its own span's while exporting, else the incoming one
/// (empty when none came: then nothing is sent).
pub fn outgoing(span: Option<&Span>) -> Context {
    match span {
        Some(span) => span.context(),
        None => Context::current(),
    }
}

/// Put `cx`'s `traceparent` (and a non-empty `tracestate`) into `headers`, replacing any there.
pub fn inject(cx: &Context, headers: &mut http::HeaderMap) {
    struct Headers<'a>(&'a mut http::HeaderMap);
    impl Injector for Headers<'_> {
        fn set(&mut self, key: &str, value: String) {
            let (Ok(name), Ok(value)) = (
                http::HeaderName::from_bytes(key.as_bytes()),
                http::HeaderValue::from_str(&value),
            ) else {
                return;
            };
            if !value.is_empty() {
                self.0.insert(name, value);
            }
        }
    }
    TraceContextPropagator::new().inject_context(cx, &mut Headers(headers));
}

/// The current trace's id for a log line (a plugin's), `None` outside a trace.
pub fn current_trace_id() -> Option<DisplayValue<TraceId>> {
    Context::map_current(|cx| {
        let span = cx.span();
        let context = span.span_context();
        context
            .is_valid()
            .then(|| field::display(context.trace_id()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> http::HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| {
                (
                    http::HeaderName::from_static(k),
                    http::HeaderValue::from_static(v),
                )
            })
            .collect()
    }

    const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn a_valid_traceparent_is_forwarded_unchanged_with_its_tracestate() {
        let cx = incoming(&headers(&[
            (TRACEPARENT, PARENT),
            (TRACESTATE, "vendor=opaque"),
        ]))
        .expect("a valid traceparent");
        let mut out = http::HeaderMap::new();
        inject(&cx, &mut out);
        assert_eq!(out[TRACEPARENT], PARENT);
        assert_eq!(out[TRACESTATE], "vendor=opaque");
    }

    #[test]
    fn malformed_or_missing_traceparents_are_ignored() {
        assert!(incoming(&headers(&[])).is_none());
        for bad in [
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "garbage",
        ] {
            assert!(incoming(&headers(&[(TRACEPARENT, bad)])).is_none(), "{bad}");
        }
    }

    #[test]
    fn without_a_trace_nothing_is_injected_and_no_trace_id_is_logged() {
        let mut out = http::HeaderMap::new();
        inject(&Context::new(), &mut out);
        assert!(out.is_empty());
        assert!(current_trace_id().is_none());
        let cx = incoming(&headers(&[(TRACEPARENT, PARENT)])).unwrap();
        let _current = cx.attach();
        assert_eq!(
            current_trace_id().map(|id| format!("{id}")).as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
    }
}
