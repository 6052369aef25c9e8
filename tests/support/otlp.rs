//! A loopback OTLP/HTTP receiver: what an OpenTelemetry collector is to the host, for the telemetry
//! tests. It takes `POST /v1/traces` (an `ExportTraceServiceRequest` in protobuf), keeps every span
//! with its resource's `service.name`, and lets a test wait for the spans it expects rather than sleep.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue, any_value};
use prost::Message;

/// `span.kind` values of OTLP.
pub const KIND_SERVER: i32 = 2;
pub const KIND_CLIENT: i32 = 3;
/// `status.code` of a failed span.
pub const STATUS_ERROR: i32 = 2;

/// One received span, ids in lowercase hex as `traceparent` writes them.
#[derive(Debug, Clone)]
pub struct Span {
    /// The `service.name` of the resource it came under.
    pub service: String,
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    pub name: String,
    pub kind: i32,
    pub status: i32,
    /// Attribute values as text (numbers and booleans printed).
    pub attributes: BTreeMap<String, String>,
}

impl Span {
    /// The attribute `key` (empty when absent).
    pub fn attribute(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }
}

struct Shared {
    spans: Mutex<Vec<Span>>,
    /// Export requests received (decodable or not); bumped after their spans are stored.
    posts: tokio::sync::watch::Sender<usize>,
}

/// The running receiver; stops when dropped.
pub struct Receiver {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Receiver {
    /// Start it on 127.0.0.1:0.
    pub async fn start() -> Self {
        let shared = Arc::new(Shared {
            spans: Mutex::new(Vec::new()),
            posts: tokio::sync::watch::Sender::new(0),
        });
        let app = Router::new()
            .route("/v1/traces", post(traces))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self { addr, shared, task }
    }

    /// `http://127.0.0.1:PORT`, for `OTEL_EXPORTER_OTLP_ENDPOINT` (the exporter adds `/v1/traces`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Export requests received so far.
    pub fn posts(&self) -> usize {
        *self.shared.posts.borrow()
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Span> {
        self.shared.spans.lock().unwrap().clone()
    }

    /// Wait (bounded by `within`) until `found` picks what it looks for out of the spans received so
    /// far; returns what it picked. `what` names it in the failure message.
    pub async fn wait_for<T>(
        &self,
        what: &str,
        within: Duration,
        found: impl Fn(&[Span]) -> Option<T>,
    ) -> T {
        let deadline = Instant::now() + within;
        let mut posts = self.shared.posts.subscribe();
        loop {
            posts.borrow_and_update();
            if let Some(picked) = found(&self.spans()) {
                return picked;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if tokio::time::timeout(left, posts.changed()).await.is_err() {
                panic!("no {what} within {within:?}; received: {:#?}", self.spans());
            }
        }
    }
}

async fn traces(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let request = match ExportTraceServiceRequest::decode(body) {
        Ok(request) => request,
        Err(e) => {
            shared.posts.send_modify(|n| *n += 1);
            return (StatusCode::BAD_REQUEST, e.to_string()).into_response();
        }
    };
    let mut received = Vec::new();
    for resource_spans in request.resource_spans {
        let resource = resource_spans.resource.unwrap_or_default();
        let service = attributes(&resource.attributes)
            .remove("service.name")
            .unwrap_or_default();
        for span in resource_spans
            .scope_spans
            .into_iter()
            .flat_map(|scope| scope.spans)
        {
            received.push(Span {
                service: service.clone(),
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                name: span.name,
                kind: span.kind,
                status: span.status.map_or(0, |s| s.code),
                attributes: attributes(&span.attributes),
            });
        }
    }
    shared.spans.lock().unwrap().extend(received);
    shared.posts.send_modify(|n| *n += 1);
    // An empty ExportTraceServiceResponse: everything accepted.
    (
        [(header::CONTENT_TYPE, "application/x-protobuf")],
        Vec::<u8>::new(),
    )
        .into_response()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn attributes(pairs: &[KeyValue]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|kv| (kv.key.clone(), text(kv.value.as_ref())))
        .collect()
}

fn text(value: Option<&AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) => s.clone(),
        Some(any_value::Value::IntValue(i)) => i.to_string(),
        Some(any_value::Value::BoolValue(b)) => b.to_string(),
        Some(any_value::Value::DoubleValue(d)) => d.to_string(),
        Some(other) => format!("{other:?}"),
        None => String::new(),
    }
}
