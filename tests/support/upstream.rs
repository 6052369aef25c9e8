//! A real upstream service on 127.0.0.1 for outbound-HTTP tests and the outbound benchmark: what a
//! plugin calls. It counts the requests that reached it, so tests wait on arrivals instead of sleeping.
//!
//! - `GET /forecast?city=C` — `{"city", "temperature_c", "conditions"}`; 404 for the city `Atlantis`;
//! - `GET /echo` — the request's method, path and headers as JSON (to see what the host forwarded);
//! - `GET /slow` — answers after 30 s (a hung upstream);
//! - `GET /big?bytes=N` — N bytes with a `content-length`; `GET /big-stream?bytes=N` — N bytes in
//!   chunks with no length;
//! - `GET /redirect` — 302 to `/forecast?city=Oslo`.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

/// The running upstream; stops when dropped.
pub struct Upstream {
    pub addr: SocketAddr,
    arrived: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

type Params = Query<std::collections::HashMap<String, String>>;

impl Upstream {
    /// Start it on 127.0.0.1:0.
    pub async fn start() -> Self {
        let arrived = Arc::new(AtomicUsize::new(0));
        let app = Router::new()
            .route("/forecast", get(forecast))
            .route("/echo", get(echo).post(echo))
            .route("/slow", get(slow))
            .route("/big", get(big))
            .route("/big-stream", get(big_stream))
            .route("/redirect", get(redirect))
            .layer(axum::middleware::from_fn_with_state(arrived.clone(), count))
            .with_state(());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        Self {
            addr,
            arrived,
            task,
        }
    }

    /// `http://127.0.0.1:PORT`.
    /// Point the `weather` example at this upstream in `config`, as an operator would: its `upstream`
    /// config value and an `allow_http` entry for `/forecast`.
    pub fn serve_weather(&self, config: &mut plugin_host::config::Config) {
        let base = self.base();
        let weather = config.plugins.entry("weather".into()).or_default();
        weather.allow_http = vec![format!("{base}/forecast")];
        weather.config.insert("upstream".into(), base);
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Requests that reached it so far.
    pub fn arrived(&self) -> usize {
        self.arrived.load(Ordering::SeqCst)
    }

    /// Wait (bounded) until `n` requests have reached it.
    pub async fn wait_for_arrivals(&self, n: usize, within: Duration) {
        let started = std::time::Instant::now();
        while self.arrived() < n {
            assert!(
                started.elapsed() < within,
                "only {} of {n} requests reached the upstream",
                self.arrived()
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

async fn count(
    State(arrived): State<Arc<AtomicUsize>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    arrived.fetch_add(1, Ordering::SeqCst);
    next.run(request).await
}

async fn forecast(Query(params): Params) -> Response {
    let city = params.get("city").cloned().unwrap_or_default();
    if city == "Atlantis" {
        return (StatusCode::NOT_FOUND, "no such city").into_response();
    }
    axum::Json(json!({ "city": city, "temperature_c": 3.5, "conditions": "snow" })).into_response()
}

async fn echo(method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let headers: Vec<(String, String)> = headers
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("?").to_owned()))
        .collect();
    axum::Json(json!({ "method": method.as_str(), "path": uri.path(), "headers": headers }))
        .into_response()
}

async fn slow() -> &'static str {
    tokio::time::sleep(Duration::from_secs(30)).await;
    "late"
}

fn size(params: &Params) -> usize {
    params
        .get("bytes")
        .and_then(|b| b.parse().ok())
        .unwrap_or(1 << 20)
}

async fn big(params: Params) -> Vec<u8> {
    vec![b'x'; size(&params)]
}

async fn big_stream(params: Params) -> Response {
    let total = size(&params);
    let chunks = (0..total.div_ceil(8192)).map(move |i| {
        let len = 8192.min(total - i * 8192);
        Ok::<_, std::io::Error>(vec![b'y'; len])
    });
    Response::new(Body::from_stream(futures_util::stream::iter(chunks)))
}

async fn redirect() -> Response {
    (
        StatusCode::FOUND,
        [(header::LOCATION, "/forecast?city=Oslo")],
    )
        .into_response()
}
