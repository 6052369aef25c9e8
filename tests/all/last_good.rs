//! A bad file cannot stop a restart: after a failed reload leaves it in the plugins (or templates)
//! directory, the next start serves the last good set recorded in the data directory, and says so on
//! `/readyz` (200, `degraded`, naming the file), in the log, in `/metrics` and in the admin UI, until a
//! reload from the fixed directory clears it. Also: the admin UI says when the configuration file
//! changed since the start (it is read at start only).

use std::path::Path;
use std::time::{Duration, Instant};

use plugin_host_tests::pages::AdminPages;
use plugin_host_tests::{
    ADMIN_PASSWORD, ADMIN_USER, Fetch, HostProcess, TestServer, cli_add_root_admin, deploy, example,
};

/// `kill -HUP` the host: reload from its directories.
/// `/readyz`'s status code and body.
async fn readyz(base: &str) -> (reqwest::StatusCode, serde_json::Value) {
    let response = reqwest::get(format!("{base}/readyz")).await.unwrap();
    (response.status(), response.json().await.unwrap())
}

/// Poll `/readyz` until its `status` is `want` (bounded); the last body.
async fn readyz_until(base: &str, want: &str) -> serde_json::Value {
    let started = Instant::now();
    loop {
        let (code, body) = readyz(base).await;
        if body["status"] == want {
            assert_eq!(code, reqwest::StatusCode::OK, "{body}");
            return body;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "/readyz never said {want}: {body}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn hello_status(base: &str) -> reqwest::StatusCode {
    reqwest::Client::new()
        .get(format!("{base}/hello/ada"))
        .fetch_status()
        .await
}

async fn degraded_gauge(base: &str) -> String {
    let metrics = reqwest::get(format!("{base}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    metrics
        .lines()
        .find(|l| l.starts_with("plugin_host_degraded "))
        .unwrap_or_else(|| panic!("no plugin_host_degraded in /metrics:\n{metrics}"))
        .to_owned()
}

/// The real binary: a bad file replaces the only plugin and the SIGHUP reload fails (degraded, the old
/// generation serving); the process restarts with the bad file still there and serves the last good
/// copy; putting the good file back and reloading clears the degraded state.
#[tokio::test]
async fn a_bad_file_left_by_a_failed_reload_does_not_stop_the_restart() {
    let data = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    deploy(plugins.path(), &example("hello"), "hello.wasm");
    let args = [
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--data",
        data.path().to_str().unwrap(),
    ];
    let host = HostProcess::serve(&args);
    let base = host.url("");
    assert_eq!(hello_status(&base).await, reqwest::StatusCode::OK);
    readyz_until(&base, "ready").await;
    assert!(
        data.path().join("last-good/set.json").is_file(),
        "a good start records its set"
    );

    // A half-copied deploy: the file is cut short. The reload fails and the old generation serves on.
    let good = std::fs::read(example("hello")).unwrap();
    let bad = plugins.path().join("hello.wasm");
    std::fs::write(&bad, &good[..good.len() / 3]).unwrap();
    host.hangup();
    let body = readyz_until(&base, "degraded").await;
    let why = body["degraded"].as_str().unwrap();
    assert!(
        why.contains("hello.wasm") && why.contains("a restart serves the last good set"),
        "{body}"
    );
    assert_eq!(hello_status(&base).await, reqwest::StatusCode::OK);
    assert_eq!(degraded_gauge(&base).await, "plugin_host_degraded 1");
    host.terminate();
    let (status, _) = host.wait(Duration::from_secs(15));
    assert!(status.success());

    // The restart, with the bad file still in place, serves the recorded copy.
    let host = HostProcess::serve(&args);
    let base = host.url("");
    assert_eq!(hello_status(&base).await, reqwest::StatusCode::OK);
    let (code, body) = readyz(&base).await;
    assert_eq!(code, reqwest::StatusCode::OK, "{body}");
    assert_eq!(body["status"], "degraded", "{body}");
    let why = body["degraded"].as_str().unwrap();
    assert!(
        why.contains("hello.wasm") && why.contains("serving the last good set"),
        "{body}"
    );
    assert_eq!(degraded_gauge(&base).await, "plugin_host_degraded 1");
    let log = host.stderr();
    assert!(
        log.lines().any(|l| l.contains("ERROR")
            && l.contains("serving the last good set instead")
            && l.contains("hello.wasm")),
        "{log}"
    );

    // The operator puts the good file back and reloads: ready, not degraded.
    deploy(plugins.path(), &example("hello"), "hello.wasm");
    host.hangup();
    let body = readyz_until(&base, "ready").await;
    assert!(body["degraded"].is_null(), "{body}");
    assert_eq!(degraded_gauge(&base).await, "plugin_host_degraded 0");
    host.terminate();
    let (status, stderr) = host.wait(Duration::from_secs(15));
    assert!(status.success(), "{stderr}");
}

/// A template that no longer parses: the restart serves the last good templates with the plugins, and
/// the admin UI shows the problem on every page until a reload from the fixed directory.
#[tokio::test]
async fn a_bad_template_at_restart_serves_the_last_good_templates_and_the_admin_ui_says_so() {
    let plugins = tempfile::tempdir().unwrap();
    deploy(plugins.path(), &example("hello"), "hello.wasm");
    let templates = tempfile::tempdir().unwrap();
    let page = templates.path().join("errors/404.html");
    std::fs::create_dir_all(page.parent().unwrap()).unwrap();
    std::fs::write(&page, "<p id=\"marker\">the good 404</p>").unwrap();
    let dirs = |plugins: &Path, templates: &Path| {
        let (plugins, templates) = (plugins.to_owned(), templates.to_owned());
        move |c: &mut plugin_host::config::Config| {
            c.plugins_dir = plugins;
            c.templates_dir = templates;
        }
    };
    let server = TestServer::start(dirs(plugins.path(), templates.path())).await;
    let not_found = |server: &TestServer| {
        server
            .client
            .get(server.url("/no/such/page"))
            .header("accept", "text/html")
            .fetch_text()
    };
    assert!(not_found(&server).await.contains("the good 404"));
    let data = server.stop_keep_data().await;

    std::fs::write(&page, "<p>{% if %}</p>").unwrap();
    let server = TestServer::start_in(data, dirs(plugins.path(), templates.path())).await;
    assert!(
        not_found(&server).await.contains("the good 404"),
        "the recorded template serves"
    );
    let (_, body) = server.get_json("/readyz").await;
    assert_eq!(body["status"], "degraded", "{body}");
    assert!(
        body["degraded"]
            .as_str()
            .unwrap()
            .contains("errors/404.html"),
        "{body}"
    );
    let (_, generations) = server.admin_get_json("/admin/api/generations").await;
    assert_eq!(generations["degraded"]["serving"]["kind"], "last_good");
    let base = server.url("");
    let mut admin = AdminPages::sign_in(&base, ADMIN_USER, ADMIN_PASSWORD).await;
    for path in ["/admin", "/admin/plugins", "/admin/keys"] {
        let html = admin.get(path).await.html.replace("&#x2f;", "/");
        assert!(
            html.contains("data-warning") && html.contains("errors/404.html"),
            "{path} shows no warning:\n{html}"
        );
    }

    std::fs::write(&page, "<p id=\"marker\">the fixed 404</p>").unwrap();
    let (_, outcome) = server.reload().await;
    assert_eq!(outcome["ok"], true, "{outcome}");
    assert!(not_found(&server).await.contains("the fixed 404"));
    let (_, body) = server.get_json("/readyz").await;
    assert_eq!(body["status"], "ready", "{body}");
    assert!(!admin.get("/admin").await.html.contains("data-warning"));
    server.stop().await;
}

/// The configuration file is read at start only: once it changes, every admin page says a restart is
/// needed to apply it.
#[tokio::test]
async fn the_admin_ui_says_when_the_configuration_file_changed() {
    let data = tempfile::tempdir().unwrap();
    let plugins = tempfile::tempdir().unwrap();
    deploy(plugins.path(), &example("hello"), "hello.wasm");
    let config = data.path().join("host.toml");
    std::fs::write(&config, "shutdown_delay_ms = 0\n").unwrap();
    let added = cli_add_root_admin(data.path().to_str().unwrap());
    assert!(added.status.success(), "{}", added.stderr);
    let host = HostProcess::serve(&[
        "--config",
        config.to_str().unwrap(),
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--data",
        data.path().to_str().unwrap(),
    ]);
    let base = host.url("");
    let mut admin = AdminPages::sign_in(&base, "root", "a-long-password").await;
    assert!(!admin.get("/admin").await.html.contains("data-warning"));

    std::fs::write(&config, "shutdown_delay_ms = 100\n").unwrap();
    let html = admin.get("/admin").await.html;
    assert!(
        html.contains("data-warning")
            && html.contains("host.toml")
            && html.contains("restart to apply it"),
        "{html}"
    );
    host.terminate();
    let (status, stderr) = host.wait(Duration::from_secs(15));
    assert!(status.success(), "{stderr}");
}
