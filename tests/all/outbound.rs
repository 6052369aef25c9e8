//! Contract 1.1 outbound HTTP: a plugin reaches only what the operator allowed (`allow_http`), never
//! loopback, link-local or private addresses through a name, gets redirects back instead of followed,
//! is held to its response cap, call cap and the request's deadline (while waiting it holds no worker),
//! and never forwards the caller's credentials. The `outbound` fixture makes the calls a test asks for;
//! the upstream is a real HTTP server on 127.0.0.1 (support/upstream.rs).

use std::time::{Duration, Instant};

use plugin_host::config::{Config, PluginSettings};
use plugin_host_tests::upstream::Upstream;
use plugin_host_tests::{
    Fetch, HostProcess, TestServer, cli_root_admin_key, example, fixture, plugins_dir_with,
};
use serde_json::{Value, json};

/// A server with the `outbound` fixture (and `hello`), `allow` as its allow-list, `adjust` besides.
async fn server(
    allow: &[String],
    adjust: impl FnOnce(&mut Config),
) -> (TestServer, tempfile::TempDir) {
    let plugins = plugins_dir_with(&[&fixture("outbound.wasm"), &example("hello")]);
    let dir = plugins.path().to_owned();
    let allow = allow.to_vec();
    let server = TestServer::start(move |c| {
        c.plugins_dir = dir;
        let settings: &mut PluginSettings = c.plugins.entry("outbound".into()).or_default();
        settings.allow_http = allow;
        adjust(c);
    })
    .await;
    (server, plugins)
}

/// POST `/outbound/send` with `ask`; the status and the first (or every) result.
async fn send(server: &TestServer, ask: Value) -> (reqwest::StatusCode, Value) {
    let response = server
        .client
        .post(server.url("/outbound/send"))
        .bearer_auth(&server.admin_key)
        .json(&ask)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let body: Value = response.json().await.unwrap();
    (status, body)
}

async fn first(server: &TestServer, ask: Value) -> Value {
    let (status, body) = send(server, ask).await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    body["results"][0].clone()
}

fn outbound_count(metrics: &str, upstream: &str, outcome: &str) -> u64 {
    let prefix = format!(
        "plugin_host_outbound_requests_total{{plugin=\"outbound\",upstream=\"{upstream}\",outcome=\"{outcome}\"}} "
    );
    metrics
        .lines()
        .find_map(|l| l.strip_prefix(&prefix))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test]
async fn an_allowed_call_gets_the_upstream_answer_and_is_counted() {
    let upstream = Upstream::start().await;
    let (server, _plugins) = server(&[upstream.base()], |_| {}).await;
    let answer = first(
        &server,
        json!({ "url": format!("{}/forecast?city=Oslo", upstream.base()) }),
    )
    .await;
    assert_eq!(answer["status"], 200, "{answer}");
    let forecast: Value = serde_json::from_str(answer["body"].as_str().unwrap()).unwrap();
    assert_eq!(forecast["conditions"], "snow");
    let metrics = server.metrics_text().await;
    let origin = format!("http://{}", upstream.addr);
    assert_eq!(outbound_count(&metrics, &origin, "2xx"), 1, "{metrics}");
    assert!(
        metrics.contains("plugin_host_outbound_request_duration_seconds_count{plugin=\"outbound\"")
    );
    server.stop().await;
}

#[tokio::test]
async fn what_is_not_listed_is_refused_with_a_typed_error() {
    let upstream = Upstream::start().await;
    // Only the /forecast prefix of the upstream is allowed.
    let (server, _plugins) = server(&[format!("{}/forecast", upstream.base())], |_| {}).await;
    for url in [
        format!("{}/echo", upstream.base()),
        format!("{}/forecastx", upstream.base()),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "https://example.com/".to_owned(),
    ] {
        let answer = first(&server, json!({ "url": url })).await;
        assert_eq!(answer["error"], "not-allowed", "{url}: {answer}");
        assert!(
            answer["message"].as_str().unwrap().contains("allow_http"),
            "{answer}"
        );
    }
    let answer = first(&server, json!({ "url": "file:///etc/passwd" })).await;
    assert_eq!(answer["error"], "invalid-request", "{answer}");
    assert_eq!(
        upstream.arrived(),
        0,
        "nothing refused reached the upstream"
    );
    let metrics = server.metrics_text().await;
    assert_eq!(outbound_count(&metrics, "-", "not_allowed"), 4, "{metrics}");
    server.stop().await;
}

/// Loopback is reachable only when an entry names the address: a name that resolves to it (here
/// `localhost`) is refused even when that name is listed, so DNS cannot turn an allowed name inward.
#[tokio::test]
async fn a_name_that_resolves_to_loopback_is_refused_even_when_listed() {
    let upstream = Upstream::start().await;
    let port = upstream.addr.port();
    let (server, _plugins) = server(&[format!("http://localhost:{port}")], |_| {}).await;
    let answer = first(
        &server,
        json!({ "url": format!("http://localhost:{port}/forecast?city=Oslo") }),
    )
    .await;
    assert_eq!(answer["error"], "not-allowed", "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(
        message.contains("localhost") && message.contains("loopback"),
        "{message}"
    );
    // Listed by address, the same upstream is reachable.
    let (server2, _plugins2) = server_with_address(&upstream).await;
    let answer = first(
        &server2,
        json!({ "url": format!("{}/forecast?city=Oslo", upstream.base()) }),
    )
    .await;
    assert_eq!(answer["status"], 200, "{answer}");
    assert_eq!(upstream.arrived(), 1);
    server.stop().await;
    server2.stop().await;
}

async fn server_with_address(upstream: &Upstream) -> (TestServer, tempfile::TempDir) {
    server(&[upstream.base()], |_| {}).await
}

#[tokio::test]
async fn redirects_are_returned_not_followed() {
    let upstream = Upstream::start().await;
    let (server, _plugins) = server(&[upstream.base()], |_| {}).await;
    let answer = first(
        &server,
        json!({ "url": format!("{}/redirect", upstream.base()) }),
    )
    .await;
    assert_eq!(answer["status"], 302, "{answer}");
    let location = answer["headers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h[0] == "location")
        .unwrap();
    assert_eq!(location[1], "/forecast?city=Oslo");
    assert_eq!(upstream.arrived(), 1, "the redirect was not followed");
    server.stop().await;
}

#[tokio::test]
async fn a_response_over_the_cap_is_refused_with_or_without_a_length() {
    let upstream = Upstream::start().await;
    let (server, _plugins) = server(&[upstream.base()], |c| {
        c.limits.http_response_body_bytes = 64 * 1024;
    })
    .await;
    for path in ["/big?bytes=100000", "/big-stream?bytes=100000"] {
        let answer = first(
            &server,
            json!({ "url": format!("{}{path}", upstream.base()) }),
        )
        .await;
        assert_eq!(answer["error"], "response-too-large", "{path}: {answer}");
    }
    let answer = first(
        &server,
        json!({ "url": format!("{}/big?bytes=60000", upstream.base()) }),
    )
    .await;
    assert_eq!(answer["status"], 200, "under the cap it arrives");
    assert_eq!(answer["body"].as_str().unwrap().len(), 60000);
    server.stop().await;
}

#[tokio::test]
async fn a_request_makes_at_most_the_capped_number_of_calls() {
    let upstream = Upstream::start().await;
    let (server, _plugins) = server(&[upstream.base()], |c| {
        c.limits.http_calls_per_request = 3;
    })
    .await;
    let (status, body) = send(
        &server,
        json!({ "url": format!("{}/forecast?city=Oslo", upstream.base()), "calls": 5 }),
    )
    .await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let kinds: Vec<Value> = body["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r.get("error").cloned().unwrap_or(r["status"].clone()))
        .collect();
    assert_eq!(
        kinds,
        [
            json!(200),
            json!(200),
            json!(200),
            json!("too-many-calls"),
            json!("too-many-calls")
        ]
    );
    assert_eq!(upstream.arrived(), 3);
    server.stop().await;
}

#[tokio::test]
async fn the_callers_credentials_are_never_forwarded() {
    let upstream = Upstream::start().await;
    let (server, _plugins) = server(&[upstream.base()], |_| {}).await;
    // The fixture copies every header it was given onto its call; the host gave it none of these.
    let response = server
        .client
        .post(server.url("/outbound/send"))
        .bearer_auth(&server.admin_key)
        .header("cookie", "theme=dark; tracking=secret")
        .header("x-trace", "kept")
        .json(&json!({
            "url": format!("{}/echo", upstream.base()),
            "forward_headers": true,
            "headers": [["x-plugin-own", "its own"]],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let echoed: Value = serde_json::from_str(body["results"][0]["body"].as_str().unwrap()).unwrap();
    let names: Vec<&str> = echoed["headers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h[0].as_str().unwrap())
        .collect();
    assert!(
        names.contains(&"x-trace") && names.contains(&"x-plugin-own"),
        "{names:?}"
    );
    for credential in ["authorization", "cookie"] {
        assert!(
            !names.contains(&credential),
            "{credential} reached the upstream: {names:?}"
        );
    }
    server.stop().await;
}

/// A hung upstream: the request gets its 504 at the plugin's deadline, not when the upstream answers;
/// and while eight requests wait on it, another request is answered at once (a waiting plugin is a
/// suspended fiber, not a blocked worker thread).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hung_upstream_costs_its_requests_their_deadline_and_nobody_else_anything() {
    let upstream = Upstream::start().await;
    let deadline = Duration::from_secs(3);
    let (server, _plugins) = server(&[upstream.base()], |c| {
        c.plugins
            .entry("outbound".into())
            .or_default()
            .request_timeout_ms = Some(deadline.as_millis() as u64);
    })
    .await;
    let server = std::sync::Arc::new(server);
    let slow_url = format!("{}/slow", upstream.base());
    let waiting: Vec<_> = (0..8)
        .map(|_| {
            let (server, url) = (server.clone(), slow_url.clone());
            tokio::spawn(async move {
                let started = Instant::now();
                let (status, _) = send(&server, json!({ "url": url })).await;
                (status, started.elapsed(), Instant::now())
            })
        })
        .collect();
    upstream.wait_for_arrivals(8, Duration::from_secs(10)).await;
    let hello = server
        .client
        .get(server.url("/hello/ada"))
        .fetch_status()
        .await;
    let hello_done = Instant::now();
    assert_eq!(hello, reqwest::StatusCode::OK);
    for task in waiting {
        let (status, took, done) = task.await.unwrap();
        assert_eq!(status, reqwest::StatusCode::GATEWAY_TIMEOUT);
        assert!(
            took >= deadline && took < deadline + Duration::from_secs(5),
            "504 after {took:?}, deadline {deadline:?}"
        );
        assert!(
            hello_done < done,
            "the other request waited for the hung ones"
        );
    }
    std::sync::Arc::into_inner(server).unwrap().stop().await;
}

/// The real binary: a refused call is logged with the plugin and the reason (config from a file).
#[tokio::test]
async fn a_refused_call_is_logged_with_the_plugin_and_the_reason() {
    let data = tempfile::tempdir().unwrap();
    let d = data.path().to_str().unwrap();
    let plugins = plugins_dir_with(&[&fixture("outbound.wasm")]);
    let config = data.path().join("host.toml");
    std::fs::write(
        &config,
        "[plugins.outbound]\nallow_http = [\"https://api.example.com\"]\n",
    )
    .unwrap();
    let key = cli_root_admin_key(d);
    let host = HostProcess::serve(&[
        "--config",
        config.to_str().unwrap(),
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--data",
        d,
    ]);
    let response = reqwest::Client::new()
        .post(host.url("/outbound/send"))
        .bearer_auth(&key)
        .json(&json!({ "url": "http://10.1.2.3/internal" }))
        .send()
        .await
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["results"][0]["error"], "not-allowed", "{body}");
    host.terminate();
    let (status, stderr) = host.wait(Duration::from_secs(15));
    assert!(status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.contains("outbound call refused"))
        .unwrap_or_else(|| panic!("no refusal in the log:\n{stderr}"));
    assert!(
        line.contains("WARN")
            && line.contains("plugin=outbound")
            && line.contains("http://10.1.2.3:80"),
        "{line}"
    );
}

/// Plugins built against contract 1.0.0 (kept as built, in tests/fixtures/contract-1.0) load and serve
/// unchanged on the 1.1.0 host: `hello` (config, log) and `notes` (the key-value store).
#[tokio::test]
async fn plugins_built_against_contract_1_0_keep_working() {
    let old = plugin_host_tests::repo_root().join("tests/fixtures/contract-1.0");
    let plugins = plugins_dir_with(&[&old.join("hello.wasm"), &old.join("notes.wasm")]);
    let dir = plugins.path().to_owned();
    let server = TestServer::start(move |c| c.plugins_dir = dir).await;
    let (status, body) = server.get_json("/hello/ada").await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let created = server
        .client
        .post(server.url("/notes"))
        .bearer_auth(&server.admin_key)
        .json(&json!({ "title": "kept", "body": "from 1.0" }))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), reqwest::StatusCode::CREATED);
    let listed = server
        .client
        .get(server.url("/notes"))
        .bearer_auth(&server.admin_key)
        .fetch_json()
        .await;
    assert!(listed.to_string().contains("from 1.0"), "{listed}");
    server.stop().await;
}

/// The `weather` example against a real upstream, as an operator would set it up: its `upstream`
/// config value and an `allow_http` entry for it. JSON, the HTML view, and the upstream's 404.
#[tokio::test]
async fn the_weather_example_renders_an_upstream_forecast_as_json_and_html() {
    let upstream = Upstream::start().await;
    let plugins = plugins_dir_with(&[&example("weather")]);
    let dir = plugins.path().to_owned();
    let server = TestServer::start(|c| {
        c.plugins_dir = dir;
        upstream.serve_weather(c);
    })
    .await;
    let (status, forecast) = server.get_json("/weather/Oslo").await;
    assert_eq!(status, reqwest::StatusCode::OK, "{forecast}");
    assert_eq!(forecast["city"], "Oslo");
    assert_eq!(forecast["conditions"], "snow");
    let page = server
        .client
        .get(server.url("/weather/Oslo"))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert!(
        page.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );
    let html = page.text().await.unwrap();
    assert!(html.contains("Oslo") && html.contains("snow"), "{html}");
    let (status, body) = server.get_json("/weather/Atlantis").await;
    assert_eq!(status, reqwest::StatusCode::NOT_FOUND, "{body}");
    assert_eq!(upstream.arrived(), 3);
    server.stop().await;
}
