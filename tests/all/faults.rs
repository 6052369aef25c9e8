//! Sandbox limits: each misbehaving route of the `faults` fixture costs only its own request — the right
//! status within a bound — while a stream of `hello` requests keeps succeeding; limits are per plugin;
//! slow clients are cut off.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use plugin_host_tests::{
    Fetch, TestServer, deploy, example, fixture, hello_and_soak, json_error, request_stream,
};
use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// hello + faults, with the faults plugin on a 1 s deadline and a 40 MiB memory cap (its huge response
/// needs 16 MiB; the memory bomb hits the cap).
async fn server(
    adjust: impl FnOnce(&mut plugin_host::config::Config),
) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    deploy(dir.path(), &example("hello"), "hello.wasm");
    deploy(dir.path(), &fixture("faults.wasm"), "faults.wasm");
    let path = dir.path().to_owned();
    let server = TestServer::start(move |c| {
        c.plugins_dir = path;
        let faults = c.plugins.entry("faults".into()).or_default();
        faults.request_timeout_ms = Some(1000);
        faults.instance_memory_bytes = Some(40 << 20);
        adjust(c);
    })
    .await;
    (server, dir)
}

async fn faults_metric(server: &TestServer, kind: &str) -> u64 {
    let text = server.metrics_text().await;
    let key = format!("plugin_host_plugin_faults_total{{plugin=\"faults\",kind=\"{kind}\"}} ");
    text.lines()
        .find_map(|l| l.strip_prefix(&key))
        .map_or(0, |n| n.parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_fault_gets_its_status_while_others_are_served() {
    let (server, _dir) = server(|_| {}).await;
    let stop = Arc::new(AtomicBool::new(false));
    let stream = request_stream(&server, "/hello/stream", stop.clone());

    // (route, status, fault kind counted)
    let cases = [
        ("/faults/loop", StatusCode::GATEWAY_TIMEOUT, "timeout"),
        ("/faults/slow", StatusCode::GATEWAY_TIMEOUT, "timeout"),
        (
            "/faults/memory",
            StatusCode::INTERNAL_SERVER_ERROR,
            "memory_limit",
        ),
        (
            "/faults/recursion",
            StatusCode::INTERNAL_SERVER_ERROR,
            "trap",
        ),
        ("/faults/deep", StatusCode::INTERNAL_SERVER_ERROR, "trap"),
        ("/faults/panic", StatusCode::INTERNAL_SERVER_ERROR, "trap"),
        (
            "/faults/huge",
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_response",
        ),
        (
            "/faults/malformed-json",
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_response",
        ),
        (
            "/faults/malformed-status",
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_response",
        ),
        (
            "/faults/malformed-header",
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_response",
        ),
        // Issue 19 (tests/all/hardening.rs has each with its log line and limits).
        (
            "/faults/header-flood",
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_response",
        ),
        (
            "/faults/no-content-with-body",
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_response",
        ),
        (
            "/faults/deep-json",
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_response",
        ),
        (
            "/faults/session-cookie",
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_response",
        ),
        (
            "/faults/csp",
            StatusCode::INTERNAL_SERVER_ERROR,
            "invalid_response",
        ),
    ];
    // The status and the fault counted say which limit fired; the time is only a guard against a hang
    // (the deadline itself is 1 s, checked below).
    let hang = Duration::from_secs(10);
    for (route, status, kind) in cases {
        let before = faults_metric(&server, kind).await;
        let started = Instant::now();
        let response = server.client.get(server.url(route)).send().await.unwrap();
        let took = started.elapsed();
        assert!(took < hang, "{route} took {took:?}");
        let (got, message) = json_error(response).await;
        assert_eq!(got, status, "{route}");
        assert!(message.contains("faults"), "{route}: {message}");
        for secret in [
            "panics on purpose",
            "wasm backtrace",
            "unreachable",
            "stack",
        ] {
            assert!(
                !message.contains(secret),
                "{route} leaked {secret:?}: {message}"
            );
        }
        assert_eq!(
            faults_metric(&server, kind).await,
            before + 1,
            "{route} counted as {kind}"
        );
    }
    // Bounded recursion works; only the unbounded kind runs into wasm_stack_bytes.
    assert_eq!(
        server.get_json("/faults/deep?limit=1000").await.0,
        StatusCode::OK
    );
    // The deadline is the plugin's override (1 s), not the global 5 s.
    let started = Instant::now();
    assert_eq!(
        server.get_json("/faults/loop").await.0,
        StatusCode::GATEWAY_TIMEOUT
    );
    assert!(
        started.elapsed() >= Duration::from_millis(1000),
        "interrupted before its deadline"
    );

    stop.store(true, Ordering::Relaxed);
    assert!(stream.await.unwrap() > 0);
    // Nothing is left running, and the plugin still works.
    assert_eq!(server.state.current().in_flight(), 0);
    assert_eq!(server.get_json("/faults/ok").await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_instance_cap_answers_503_fast_and_spares_other_plugins() {
    // The soak fixture's held request keeps the plugin's only instance until the test releases it:
    // no deadline decides how long the 503 has to arrive.
    let dir = hello_and_soak();
    let path = dir.path().to_owned();
    let server = TestServer::start(move |c| {
        c.plugins_dir = path;
        let soak = c.plugins.entry("soak".into()).or_default();
        soak.max_instances = Some(1);
        soak.request_timeout_ms = Some(60_000);
    })
    .await;
    let pool = server.state.current().instance_permits().clone();
    let free = pool.available_permits();
    let client = server.client.clone();
    let url = server.url("/soak/hold/cap");
    let held = tokio::spawn(async move { client.get(url).fetch_status().await });
    // Wait until the held call has its instance (it counts as in flight before it has one).
    let started = Instant::now();
    while pool.available_permits() == free {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the held call never got an instance"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let response = server.client.get(server.url("/soak")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    // Not queued behind the held call: that call is still running.
    assert!(!held.is_finished(), "503 must not queue");
    assert_eq!(server.get_json("/hello/x").await.0, StatusCode::OK);
    server
        .state
        .kv()
        .set("soak", "cap", b"released")
        .await
        .unwrap();
    assert_eq!(held.await.unwrap(), StatusCode::OK);
    assert_eq!(server.get_json("/soak").await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_clients_are_cut_off() {
    let (server, _dir) = server(|c| {
        c.limits.client_header_timeout_ms = 300;
        c.limits.client_body_timeout_ms = 300;
    })
    .await;

    // Headers that never finish: the connection is closed soon after the header timeout.
    // The header timer starts when the server accepts, so the clock starts before connecting.
    let started = Instant::now();
    let mut stalled = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(b"GET /hello/x HTTP/1.1\r\nHost: test\r\nX-Slow: ")
        .await
        .unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), stalled.read_to_end(&mut buf)).await;
    assert!(
        read.is_ok(),
        "a client stalling its headers kept its connection"
    );
    assert!(started.elapsed() >= Duration::from_millis(250));

    // A connection that never sends anything is closed as well.
    let mut silent = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(3), silent.read_to_end(&mut buf)).await;
    assert!(read.is_ok(), "a silent client kept its connection");

    // A body that never finishes: 408 after the body timeout, before any plugin runs.
    let mut stalled = tokio::net::TcpStream::connect(server.addr).await.unwrap();
    stalled
        .write_all(
            b"GET /hello/x HTTP/1.1\r\nHost: test\r\nContent-Length: 100\r\n\r\nonly a little",
        )
        .await
        .unwrap();
    let mut buf = vec![0; 4096];
    let n = tokio::time::timeout(Duration::from_secs(3), stalled.read(&mut buf))
        .await
        .expect("no answer to a stalled body")
        .unwrap();
    let head = String::from_utf8_lossy(&buf[..n]);
    assert!(head.starts_with("HTTP/1.1 408"), "{head}");

    // Meanwhile everyone else is served.
    assert_eq!(server.get_json("/hello/x").await.0, StatusCode::OK);
    server.stop().await;
}
