//! Startup: the real binary refuses to serve anything half-loaded, naming the file and the reason;
//! a good start serves, and SIGTERM stops it cleanly with exit status 0.

use std::path::Path;
use std::time::Duration;

use plugin_host_tests::{
    Fetch, HostProcess, example, fixture, plugins_dir_with, run_host, source_fixture,
};

/// Start `serve` on a plugins directory holding `files`; it must exit non-zero, say why, and never listen.
fn refuses(files: &[&Path], expected: &[&str]) {
    let plugins = plugins_dir_with(files);
    let data = tempfile::tempdir().unwrap();
    let out = run_host(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--plugins",
            plugins.path().to_str().unwrap(),
            "--data",
            data.path().to_str().unwrap(),
        ],
        Duration::from_secs(60),
    );
    assert!(
        !out.status.success(),
        "started anyway; stdout: {}",
        out.stdout
    );
    assert!(
        !out.stdout.contains("listening"),
        "listened although a plugin is bad: {}",
        out.stdout
    );
    for needle in expected {
        assert!(
            out.stderr.contains(needle),
            "stderr lacks {needle:?}:\n{}",
            out.stderr
        );
    }
}

#[test]
fn refuses_a_file_that_is_not_wasm() {
    refuses(
        &[&example("hello"), &source_fixture("not-wasm.wasm")],
        // A first start: no last good set to fall back on (last_good.rs covers the restart).
        &[
            "not-wasm.wasm",
            "not a WebAssembly file",
            "no last good set is recorded",
        ],
    );
}

#[test]
fn refuses_a_truncated_component() {
    let dir = tempfile::tempdir().unwrap();
    let bytes = std::fs::read(example("hello")).unwrap();
    let truncated = dir.path().join("truncated.wasm");
    std::fs::write(&truncated, &bytes[..bytes.len() / 2]).unwrap();
    refuses(&[&truncated], &["truncated.wasm", "does not compile"]);
}

#[test]
fn refuses_a_core_module() {
    refuses(
        &[&fixture("core-module.wasm")],
        &[
            "core-module.wasm",
            "a core WebAssembly module, not a component",
        ],
    );
}

#[test]
fn refuses_a_component_without_the_contract() {
    let dir = tempfile::tempdir().unwrap();
    let empty = dir.path().join("empty.wasm");
    std::fs::write(&empty, wat::parse_str("(component)").unwrap()).unwrap();
    refuses(
        &[&empty],
        &["empty.wasm", "does not implement the plugin contract"],
    );
}

#[test]
fn refuses_an_invalid_path_pattern() {
    refuses(
        &[&fixture("bad-pattern.wasm")],
        &[
            "bad-pattern.wasm",
            "invalid manifest",
            "invalid path pattern \"/items/{id\"",
        ],
    );
}

#[test]
fn refuses_a_duplicate_route_inside_one_plugin() {
    refuses(
        &[&fixture("dup-route.wasm")],
        &["dup-route.wasm", "GET /dup/{b} is declared twice"],
    );
}

#[test]
fn refuses_two_plugins_claiming_one_route() {
    refuses(
        &[&example("hello"), &fixture("clash.wasm")],
        &[
            "route conflict",
            "GET /hello/{who} of plugin \"clash\"",
            "GET /hello/{name} of plugin \"hello\"",
            "clash.wasm",
            "hello.wasm",
        ],
    );
}

#[test]
fn refuses_a_missing_plugins_directory() {
    let out = run_host(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--plugins",
            "/nonexistent/plugins",
        ],
        Duration::from_secs(60),
    );
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("/nonexistent/plugins"),
        "{}",
        out.stderr
    );
}

#[tokio::test]
async fn serves_then_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    let plugins = example("hello");
    let host = HostProcess::serve(&[
        "--plugins",
        plugins.parent().unwrap().to_str().unwrap(),
        "--data",
        data.path().to_str().unwrap(),
    ]);
    let client = reqwest::Client::new();
    let hello = client
        .get(format!("http://{}/hello/world", host.addr))
        .send()
        .await
        .unwrap();
    assert_eq!(hello.text().await.unwrap(), r#"{"message":"hello, world"}"#);
    let echo = client
        .post(format!("http://{}/echo", host.addr))
        .body("hi")
        .send()
        .await
        .unwrap();
    let echo = echo.text().await.unwrap();
    assert!(echo.contains("\"data\":\"hi\""), "{echo}");

    host.terminate();
    let (status, stderr) = host.wait(Duration::from_secs(15));
    assert!(
        status.success(),
        "exit status {status:?}; stderr:\n{stderr}"
    );
    // One structured line per request with route, plugin and status; plugin log lines are tagged.
    assert!(stderr.contains("request completed"), "{stderr}");
    assert!(stderr.contains("route=/hello/{name}"), "{stderr}");
    assert!(stderr.contains("plugin=hello"), "{stderr}");
    assert!(stderr.contains("echoing 2 body bytes"), "{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
}

#[tokio::test]
async fn sighup_reloads_the_plugins_directory() {
    let data = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    plugin_host_tests::deploy(plugins.path(), &fixture("soak-a.wasm"), "soak.wasm");
    let host = HostProcess::serve(&[
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--data",
        data.path().to_str().unwrap(),
    ]);
    let client = reqwest::Client::new();
    let url = format!("http://{}/soak", host.addr);
    let variant = |body: serde_json::Value| body["variant"].as_str().unwrap().to_owned();
    let first: serde_json::Value = client.get(&url).fetch_json().await;
    assert_eq!(variant(first), "a");

    plugin_host_tests::deploy(plugins.path(), &fixture("soak-b.wasm"), "soak.wasm");
    let status = std::process::Command::new("kill")
        .args(["-HUP", &host.child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let started = std::time::Instant::now();
    loop {
        let body: serde_json::Value = client.get(&url).fetch_json().await;
        if variant(body) == "b" {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "SIGHUP did not reload"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    host.terminate();
    let (status, stderr) = host.wait(Duration::from_secs(15));
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("SIGHUP: reloading") && stderr.contains("reloaded"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_panic_goes_to_the_log_with_plugin_and_version_never_to_the_client() {
    let data = tempfile::tempdir().unwrap();
    let plugins = plugin_host_tests::plugins_dir_with(&[&fixture("faults.wasm")]);
    let host = HostProcess::serve(&[
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--data",
        data.path().to_str().unwrap(),
    ]);
    let response = reqwest::get(format!("http://{}/faults/panic", host.addr))
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        reqwest::StatusCode::INTERNAL_SERVER_ERROR
    );
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body = response.text().await.unwrap();
    assert!(!body.contains("on purpose") && body.contains(&id), "{body}");

    host.terminate();
    let (status, stderr) = host.wait(Duration::from_secs(15));
    assert!(status.success(), "{stderr}");
    let panic_line = stderr
        .lines()
        .find(|l| l.contains("plugin panicked: ") && l.contains("panics on purpose"))
        .unwrap_or_else(|| panic!("no panic message in the log:\n{stderr}"));
    assert!(
        panic_line.contains("plugin=faults") && panic_line.contains(&id),
        "{panic_line}"
    );
    let trap_line = stderr
        .lines()
        .find(|l| l.contains("plugin trapped"))
        .unwrap_or_else(|| panic!("no trap line in the log:\n{stderr}"));
    assert!(
        trap_line.contains("plugin=faults") && trap_line.contains("version=0.1.0"),
        "{trap_line}"
    );
}

/// A `[plugins.NAME]` table for a plugin that is not loaded (here a typo) starts the server, with a
/// warning naming it; the correctly named one draws none.
#[test]
fn settings_for_a_plugin_that_is_not_loaded_are_warned_about() {
    let plugins = plugins_dir_with(&[&example("hello")]);
    let data = tempfile::tempdir().unwrap();
    let config = data.path().join("host.toml");
    std::fs::write(
        &config,
        "[plugins.helo.config]\ngreeting = \"hi\"\n[plugins.hello.config]\ngreeting = \"hi\"\n",
    )
    .unwrap();
    let host = HostProcess::serve(&[
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--data",
        data.path().to_str().unwrap(),
        "--config",
        config.to_str().unwrap(),
    ]);
    // Written before the listening line, but read from the pipe by another thread: wait for it.
    let warning = "[plugins.helo] is configured, but no plugin named helo is loaded";
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let stderr = loop {
        let stderr = host.stderr();
        if stderr.contains(warning) || std::time::Instant::now() > deadline {
            break stderr;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(stderr.contains(warning), "{stderr}");
    assert!(
        !stderr.contains("[plugins.hello] is configured"),
        "{stderr}"
    );
}
