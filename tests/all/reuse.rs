//! Instance reuse: off by default (every request on a fresh instance); with `instance_reuse = N` an
//! instance serves N requests and is then dropped, a failed call drops its instance at once, and idle
//! instances go with their generation on reload.

use std::time::{Duration, Instant};

use plugin_host::config::PluginSettings;
use plugin_host_tests::{TestServer, fixture, plugins_dir_with};
use reqwest::StatusCode;

/// A server with the reuse fixture, its `instance_reuse` set to `reuse` (None: the default).
async fn server(reuse: Option<u32>) -> (TestServer, tempfile::TempDir) {
    let dir = plugins_dir_with(&[&fixture("reuse.wasm")]);
    let path = dir.path().to_owned();
    let server = TestServer::start(move |c| {
        c.plugins_dir = path;
        if let Some(n) = reuse {
            let settings = PluginSettings {
                instance_reuse: Some(n),
                ..PluginSettings::default()
            };
            c.plugins.insert("reuse".into(), settings);
        }
    })
    .await;
    (server, dir)
}

async fn count(server: &TestServer) -> u64 {
    let (status, body) = server.get_json("/reuse/count").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    body["count"].as_u64().unwrap()
}

#[tokio::test]
async fn by_default_every_request_gets_a_fresh_instance() {
    let (server, _dir) = server(None).await;
    for _ in 0..10 {
        assert_eq!(count(&server).await, 1, "nothing survives a request");
    }
    server.stop().await;
}

/// The SDK's arena is its static plus the unused end of the initial memory: a fresh instance fills all
/// of it without growing memory (so the host makes no memory syscall), every block keeps its contents
/// (no region overlaps the stack, the data or the other region), and what does not fit grows memory.
#[tokio::test]
async fn the_sdk_arena_uses_the_initial_memory_before_memory_grows() {
    let (server, _dir) = server(None).await;
    let mut free = Vec::new();
    for _ in 0..2 {
        let (status, body) = server.get_json("/reuse/arena").await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(body["intact"], true, "a block lost its contents: {body}");
        assert_eq!(
            body["pages_filled"], body["pages_before"],
            "filling the arena grew memory: {body}"
        );
        assert!(
            body["pages_overflowed"].as_u64() > body["pages_filled"].as_u64(),
            "64 KiB past the arena did not grow memory: {body}"
        );
        let (free_bytes, static_bytes) = (&body["free"], &body["static"]);
        assert!(static_bytes.as_u64() > Some(0), "no static region: {body}");
        assert!(
            free_bytes.as_u64() > static_bytes.as_u64(),
            "the arena is no larger than its static: the end of the initial memory is unused: {body}"
        );
        free.push(body["free"].as_u64().unwrap());
    }
    assert_eq!(
        free[0], free[1],
        "a fresh instance starts with a fresh arena"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_reused_instance_serves_n_requests_then_a_fresh_one_takes_over() {
    let (server, _dir) = server(Some(4)).await;
    let mut seen = Vec::new();
    for _ in 0..12 {
        seen.push(count(&server).await);
    }
    assert_eq!(seen, [1, 2, 3, 4, 1, 2, 3, 4, 1, 2, 3, 4]);
    server.stop().await;
}

#[tokio::test]
async fn a_failed_call_drops_its_instance() {
    let (server, _dir) = server(Some(100)).await;
    assert_eq!(count(&server).await, 1);
    assert_eq!(count(&server).await, 2);
    let (status, _) = server.get_json("/reuse/panic").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert_eq!(count(&server).await, 1, "the instance that trapped is gone");
    server.stop().await;
}

#[tokio::test]
async fn start_up_work_is_paid_once_per_instance_and_answers_stay_the_same() {
    let (fresh, _a) = server(None).await;
    let (reused, _b) = server(Some(16)).await;
    for i in [0, 7, 1000, 32767] {
        let path = format!("/reuse/warm?i={i}");
        let (a, b) = (fresh.get_json(&path).await, reused.get_json(&path).await);
        assert_eq!(a.0, StatusCode::OK);
        assert_eq!(a, b, "the same answer with and without reuse");
    }
    fresh.stop().await;
    reused.stop().await;
}

#[tokio::test]
async fn idle_instances_are_freed_with_their_generation() {
    let (server, _dir) = server(Some(1000)).await;
    assert_eq!(count(&server).await, 1);
    assert_eq!(count(&server).await, 2);
    let old_engine = server.state.current().engine_weak();

    let (status, outcome) = server.reload().await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(
        count(&server).await,
        1,
        "the new generation starts with fresh instances"
    );
    let started = Instant::now();
    while old_engine.upgrade().is_some() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the old generation (and its idle instance) is still alive"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.stop().await;
}
