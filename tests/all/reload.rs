//! Generations: reloads swap in a new generation atomically, failed reloads change nothing, concurrent
//! reloads share one build, the compile cache recompiles only what changed, and an old generation is
//! freed (its Engine gone) once its last request finishes.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use plugin_host_tests::{
    Fetch, TestServer, deploy, example, fixture, hello_and_soak, request_stream, source_fixture,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A server whose plugins directory is a fresh temp dir holding `files` (name → source).
async fn server_with(files: &[(&str, std::path::PathBuf)]) -> (TestServer, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    for (name, source) in files {
        deploy(dir.path(), source, name);
    }
    let path = dir.path().to_owned();
    // A held request (`/soak/hold/...`) ends when the test releases it, not at a deadline.
    let server = TestServer::start(move |c| {
        c.plugins_dir = path;
        c.plugins
            .entry("soak".into())
            .or_default()
            .request_timeout_ms = Some(60_000);
    })
    .await;
    (server, dir)
}

/// Start `GET /soak/hold/{key}` (it stays in flight until [`release`]) and wait until it is running.
async fn hold(server: &TestServer, key: &str) -> tokio::task::JoinHandle<reqwest::Response> {
    let client = server.client.clone();
    let url = server.url(&format!("/soak/hold/{key}"));
    let held = tokio::spawn(async move { client.get(url).send().await.unwrap() });
    let started = Instant::now();
    while server.state.current().in_flight() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the held request never started"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    held
}

/// Let the requests held on `key` answer.
async fn release(server: &TestServer, key: &str) {
    assert_eq!(
        server
            .client
            .put(server.url(&format!("/soak/hold/{key}")))
            .bearer_auth(&server.admin_key)
            .fetch_status()
            .await,
        StatusCode::NO_CONTENT
    );
}

/// Wait (at most 10 s) until `done` holds; `what` says what was awaited.
async fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let started = Instant::now();
    while !done() {
        assert!(started.elapsed() < Duration::from_secs(10), "{what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn plugin<'a>(outcome: &'a Value, name: &str) -> &'a Value {
    outcome["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == name)
        .unwrap_or_else(|| panic!("no plugin {name} in {outcome}"))
}

async fn generation_header(server: &TestServer, path: &str) -> (String, Value) {
    let response = server.client.get(server.url(path)).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK, "{path}");
    let generation = response.headers()["x-generation"]
        .to_str()
        .unwrap()
        .to_owned();
    (generation, response.json().await.unwrap())
}

#[tokio::test]
async fn reload_swaps_in_a_new_generation_and_recompiles_only_what_changed() {
    let (server, dir) = server_with(&[
        ("hello.wasm", example("hello")),
        ("soak.wasm", fixture("soak-a.wasm")),
    ])
    .await;
    let (generation, body) = generation_header(&server, "/soak").await;
    assert_eq!((generation.as_str(), &body["variant"]), ("1", &json!("a")));

    // Nothing changed: everything comes from the compile cache written by generation 1.
    let (status, outcome) = server.reload().await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["ok"], true);
    assert_eq!(outcome["generation"], 2);
    assert_eq!(outcome["previous"], 1);
    assert_eq!(plugin(&outcome, "hello")["cached"], true);
    assert_eq!(plugin(&outcome, "soak")["cached"], true);

    // One plugin changed: only it is compiled.
    deploy(dir.path(), &fixture("soak-b.wasm"), "soak.wasm");
    let (status, outcome) = server.reload().await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(outcome["generation"], 3);
    assert_eq!(plugin(&outcome, "hello")["cached"], true);
    assert_eq!(plugin(&outcome, "soak")["cached"], false);
    let (generation, body) = generation_header(&server, "/soak").await;
    assert_eq!(generation, "3");
    assert_eq!(body["variant"], "b");
    assert_eq!(generation_header(&server, "/hello").await.0, "3");
    server.stop().await;
}

#[tokio::test]
async fn failed_reloads_change_nothing_and_name_the_file() {
    let (server, dir) = server_with(&[("hello.wasm", example("hello"))]).await;

    deploy(dir.path(), &source_fixture("not-wasm.wasm"), "broken.wasm");
    let (status, outcome) = server.reload().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(outcome["ok"], false);
    assert_eq!(outcome["generation"], 1);
    let error = outcome["error"].as_str().unwrap();
    assert!(
        error.contains("broken.wasm") && error.contains("not a WebAssembly file"),
        "{error}"
    );
    assert_eq!(generation_header(&server, "/hello/x").await.0, "1");
    std::fs::remove_file(dir.path().join("broken.wasm")).unwrap();

    deploy(dir.path(), &fixture("clash.wasm"), "clash.wasm");
    let (status, outcome) = server.reload().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .contains("route conflict"),
        "{outcome}"
    );
    assert_eq!(
        server.get_json("/hello/x").await.1,
        json!({ "message": "hello, x" })
    );
    std::fs::remove_file(dir.path().join("clash.wasm")).unwrap();

    let (status, outcome) = server.reload().await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(
        outcome["generation"], 2,
        "failed builds do not use up generation ids"
    );
    let (_, generations) = server.admin_get_json("/admin/api/generations").await;
    assert_eq!(generations["reloads"], json!({ "ok": 1, "failed": 2 }));
    server.stop().await;
}

// One thread: the build task cannot run until all six callers have asked.
#[tokio::test]
async fn concurrent_reloads_share_one_build() {
    let (server, dir) = server_with(&[("soak.wasm", fixture("soak-a.wasm"))]).await;
    deploy(dir.path(), &fixture("soak-b.wasm"), "soak.wasm");
    // Six callers, all asking before the build can finish (`join!` polls each once before this
    // thread can run the build task): one build, one outcome for all of them.
    let state = &server.state;
    let outcomes = tokio::join!(
        state.reload(),
        state.reload(),
        state.reload(),
        state.reload(),
        state.reload(),
        state.reload()
    );
    let outcomes = [
        outcomes.0, outcomes.1, outcomes.2, outcomes.3, outcomes.4, outcomes.5,
    ];
    assert!(outcomes.iter().all(|o| o.ok && o.generation == 2));
    assert!(
        outcomes
            .iter()
            .all(|o| std::sync::Arc::ptr_eq(o, &outcomes[0]))
    );
    // Over HTTP, the admin API reports the same single build.
    let (_, generations) = server.admin_get_json("/admin/api/generations").await;
    assert_eq!(generations["reloads"]["ok"], 1, "{generations}");
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn old_generation_drains_then_is_freed() {
    let (server, dir) = server_with(&[("soak.wasm", fixture("soak-a.wasm"))]).await;
    let engine = server.state.current().engine_weak();

    // A request that stays in flight until released starts on generation 1.
    let slow = hold(&server, "drain").await;

    deploy(dir.path(), &fixture("soak-b.wasm"), "soak.wasm");
    let (status, outcome) = server.reload().await;
    assert_eq!(status, StatusCode::OK, "{outcome}");

    // New requests see generation 2; generation 1 is retired but alive, with one request in flight.
    let (generation, body) = generation_header(&server, "/soak").await;
    assert_eq!((generation.as_str(), &body["variant"]), ("2", &json!("b")));
    let (_, generations) = server.admin_get_json("/admin/api/generations").await;
    assert_eq!(generations["current"]["id"], 2);
    assert_eq!(generations["retired"][0]["id"], 1);
    assert_eq!(generations["retired"][0]["in_flight"], 1);
    assert!(
        engine.upgrade().is_some(),
        "generation 1 must live while its request runs"
    );

    // Released, the held request finishes with generation 1's answer.
    release(&server, "drain").await;
    let response = slow.await.unwrap();
    assert_eq!(response.headers()["x-generation"], "1");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["variant"], "a");

    // Then generation 1's Engine is gone, and the retired list is empty.
    eventually("generation 1's Engine outlived its last request", || {
        engine.upgrade().is_none()
    })
    .await;
    let (_, generations) = server.admin_get_json("/admin/api/generations").await;
    assert_eq!(generations["retired"], json!([]));
    let metrics = server.metrics_text().await;
    assert!(
        metrics.contains("plugin_host_live_generations 1"),
        "{metrics}"
    );
    server.stop().await;
}

#[tokio::test]
async fn corrupt_or_foreign_cache_entries_are_recompiled() {
    let (server, _dir) = server_with(&[("hello.wasm", example("hello"))]).await;
    let cache = server.data_dir().join("compile-cache");
    let entries: Vec<_> = walk(&cache)
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    assert_eq!(
        entries.len(),
        1,
        "generation 1 wrote one cache entry: {entries:?}"
    );
    // Corrupt the entry: the reload still succeeds, recompiling.
    let mut bytes = std::fs::read(&entries[0]).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(&entries[0], &bytes).unwrap();
    let (status, outcome) = server.reload().await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(plugin(&outcome, "hello")["cached"], false);
    // Replace it with garbage: same.
    std::fs::write(&entries[0], b"PHCACHE1 but not really").unwrap();
    let (status, outcome) = server.reload().await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    assert_eq!(plugin(&outcome, "hello")["cached"], false);
    // And the rewritten entry is good again.
    let (_, outcome) = server.reload().await;
    assert_eq!(plugin(&outcome, "hello")["cached"], true);
    assert_eq!(server.get_json("/hello").await.0, StatusCode::OK);
    server.stop().await;
}

#[tokio::test]
async fn watcher_reloads_once_per_burst_and_ignores_hidden_files() {
    let (server, dir) = server_with(&[("soak.wasm", fixture("soak-a.wasm"))]).await;
    let templates = tempfile::tempdir().unwrap();
    let watch = plugin_host::app::watch::spawn(
        server.state.clone(),
        dir.path().to_owned(),
        templates.path().to_owned(),
        Duration::from_secs(1),
    )
    .unwrap();
    let counts = &watch.counts;
    let wait_for_generation = async |id: u64, what: &str| {
        let started = Instant::now();
        while server.state.current().id < id {
            assert!(started.elapsed() < Duration::from_secs(10), "{what}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(server.state.current().id, id, "{what}: one reload");
    };

    // A burst of changes (well inside the one-second quiet period): one reload.
    for source in ["soak-b.wasm", "soak-a.wasm", "soak-b.wasm"] {
        deploy(dir.path(), &fixture(source), "soak.wasm");
    }
    wait_for_generation(2, "the watcher never reloaded").await;
    assert_eq!(generation_header(&server, "/soak").await.1["variant"], "b");

    // A hidden file (a deploy in progress) is seen and ignored: once the watcher has classified its
    // events, nothing was counted as a change and no reload was started.
    let (relevant, ignored) = (
        counts.relevant.load(Ordering::Relaxed),
        counts.ignored.load(Ordering::Relaxed),
    );
    std::fs::copy(fixture("soak-a.wasm"), dir.path().join(".soak.wasm.tmp")).unwrap();
    let started = Instant::now();
    while counts.ignored.load(Ordering::Relaxed) == ignored {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the watcher never saw the hidden file"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(counts.relevant.load(Ordering::Relaxed), relevant);
    assert_eq!(counts.reloads.load(Ordering::Relaxed), 1);

    // A template dropped into a folder of the templates directory: one more reload, the second in all
    // (so the burst did not leave a reload behind either).
    std::fs::create_dir(templates.path().join("soak")).unwrap();
    std::fs::write(templates.path().join("soak/extra.html"), "<p>x</p>").unwrap();
    wait_for_generation(3, "a template change did not reload").await;
    assert_eq!(counts.reloads.load(Ordering::Relaxed), 2);
    let (_, generations) = server.admin_get_json("/admin/api/generations").await;
    assert_eq!(generations["reloads"]["ok"], 2, "{generations}");
    server.stop().await;
}

#[tokio::test]
async fn metrics_count_requests_by_route_and_status() {
    let server = TestServer::examples().await;
    for _ in 0..3 {
        server.get_json("/hello/a").await;
    }
    server.get_json("/nope").await;
    let response = server
        .client
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap();
    assert!(
        response.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = response.text().await.unwrap();
    assert!(
        text.contains(
            r#"plugin_host_requests_total{plugin="hello",route="/hello/{name}",status="200"} 3"#
        ),
        "{text}"
    );
    assert!(
        text.contains(r#"plugin_host_requests_total{plugin="",route="unmatched",status="404"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"plugin_host_request_duration_seconds_count{plugin="hello"} 3"#),
        "{text}"
    );
    assert!(text.contains("plugin_host_live_generations 1"), "{text}");
    assert!(
        text.contains("plugin_host_reloads_total{result=\"ok\"} 0"),
        "{text}"
    );
    let rss: u64 = text
        .lines()
        .find_map(|l| l.strip_prefix("process_resident_memory_bytes "))
        .unwrap()
        .parse()
        .unwrap();
    assert!(rss > 1 << 20, "rss {rss}");
    server.stop().await;
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(walk(&path));
        } else {
            out.push(path);
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_request_fails_because_of_reloads() {
    let dir = hello_and_soak();
    let path = dir.path().to_owned();
    // A request still on an old generation must not make a reload refuse: that limit is not what
    // this test is about.
    let server = TestServer::start(move |c| {
        c.plugins_dir = path;
        c.limits.max_live_generations = 64;
    })
    .await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| request_stream(&server, "/soak", stop.clone()))
        .collect();
    for i in 0..10 {
        let source = if i % 2 == 0 {
            "soak-b.wasm"
        } else {
            "soak-a.wasm"
        };
        deploy(dir.path(), &fixture(source), "soak.wasm");
        let (status, outcome) = server.reload().await;
        assert_eq!(status, StatusCode::OK, "{outcome}");
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut total = 0;
    for client in clients {
        total += client.await.unwrap();
    }
    assert!(total > 0);
    assert_eq!(server.state.current().id, 11);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_is_refused_while_too_many_generations_are_alive() {
    let dir = tempfile::tempdir().unwrap();
    deploy(dir.path(), &fixture("soak-a.wasm"), "soak.wasm");
    let path = dir.path().to_owned();
    let server = TestServer::start(move |c| {
        c.plugins_dir = path;
        c.limits.max_live_generations = 2;
        c.plugins
            .entry("soak".into())
            .or_default()
            .request_timeout_ms = Some(60_000);
    })
    .await;
    let slow = hold(&server, "limit").await;
    // Generation 1 drains while 2 serves: that is the limit.
    assert_eq!(server.reload().await.0, StatusCode::OK);
    let (status, outcome) = server.reload().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    assert!(
        outcome["error"]
            .as_str()
            .unwrap()
            .contains("max_live_generations is 2"),
        "{outcome}"
    );
    assert_eq!(generation_header(&server, "/soak").await.0, "2");
    // Once generation 1 has drained, reloading works again.
    release(&server, "limit").await;
    assert_eq!(slow.await.unwrap().status(), StatusCode::OK);
    eventually("generation 1 never drained", || {
        server.state.retired().is_empty()
    })
    .await;
    assert_eq!(server.reload().await.1["generation"], 3);
    server.stop().await;
}
