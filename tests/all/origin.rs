//! Plugins share the admin UI's origin (issue 19, class 1). A signed-in admin opens a plugin page whose
//! script (the `reflect` fixture, standing for a page that reflects user input) tries to read
//! `/admin/users` for its CSRF token and post the form that adds an admin. Under the host's default
//! policy for plugin responses (a `sandbox` Content-Security-Policy: the page is an opaque origin) it
//! can do neither. The control case turns the policy off for that plugin and shows the same page
//! succeeds, so the test would notice the policy going missing.

use std::time::{Duration, Instant};

use plugin_host_tests::browser::Browser;
use plugin_host_tests::{HostProcess, cli_add_root_admin, fixture, plugins_dir_with, run_host};

const DEFAULT_POLICY: &str = "sandbox allow-scripts allow-forms allow-popups allow-downloads";

/// What the page's script reported, and whether the admin `mallory` exists afterwards.
struct Attack {
    report: serde_json::Value,
    mallory: bool,
    policy: Option<String>,
}

/// Serve the `reflect` fixture (with `config` laid over the defaults), sign in as an admin in Chromium,
/// open the page and wait for its script to report.
async fn attack(config: &str) -> Attack {
    let plugins = plugins_dir_with(&[&fixture("reflect.wasm")]);
    let data = tempfile::tempdir().unwrap();
    let data_arg = data.path().to_str().unwrap();
    assert!(cli_add_root_admin(data_arg).status.success());
    let config_file = data.path().join("host.toml");
    std::fs::write(&config_file, config).unwrap();
    let host = HostProcess::serve(&[
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--data",
        data_arg,
        "--config",
        config_file.to_str().unwrap(),
    ]);
    let base = format!("http://{}", host.addr);
    let policy = reqwest::get(format!("{base}/reflect/page"))
        .await
        .unwrap()
        .headers()
        .get("content-security-policy")
        .map(|v| v.to_str().unwrap().to_owned());

    let browser = Browser::start().await.unwrap();
    browser.goto(&format!("{base}/admin/login")).await.unwrap();
    browser.fill("#username", "root").await.unwrap();
    browser.fill("#password", "a-long-password").await.unwrap();
    browser
        .click_and_wait("#login button[type=submit]")
        .await
        .unwrap();
    let signed_in = format!("{base}/admin");
    browser
        .wait_for_url("the dashboard after signing in", |url| {
            url.starts_with(&signed_in)
        })
        .await
        .unwrap();

    browser.goto(&format!("{base}/reflect/page")).await.unwrap();
    let report = wait_for_report(&browser).await;
    browser.close().await.unwrap();
    let users = run_host(
        &["user", "list", "--data", data_arg],
        Duration::from_secs(60),
    );
    assert!(users.status.success(), "{}", users.stderr);
    Attack {
        report,
        mallory: users.stdout.contains("mallory"),
        policy,
    }
}

/// The JSON the page's script writes into `#result` once it has finished (bounded wait).
async fn wait_for_report(browser: &Browser) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let text = browser
            .eval("return document.getElementById('result').textContent")
            .await
            .unwrap();
        if let Some(text) = text.as_str().filter(|t| !t.is_empty()) {
            return serde_json::from_str(text).unwrap();
        }
        assert!(
            Instant::now() < deadline,
            "the page's script never reported"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plugin_page_cannot_act_as_the_signed_in_admin() {
    let attack = attack("").await;
    assert_eq!(attack.policy.as_deref(), Some(DEFAULT_POLICY));
    assert_eq!(
        attack.report["origin"], "null",
        "the page is an opaque origin: {}",
        attack.report
    );
    let read = attack.report["read"].as_str().unwrap();
    assert!(
        read.starts_with("blocked"),
        "the admin page could not be read: {}",
        attack.report
    );
    assert!(attack.report.get("post").is_none(), "{}", attack.report);
    assert!(!attack.mallory, "no admin was added");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_policy_the_same_page_takes_over_the_admin() {
    let attack = attack("[plugins.reflect]\ncontent_security_policy = \"\"\n").await;
    assert_eq!(
        attack.policy, None,
        "the operator turned the policy off for this plugin"
    );
    assert_eq!(
        attack.report["read"], "csrf token read",
        "{}",
        attack.report
    );
    assert!(
        attack.mallory,
        "the control: with the policy off the attack works ({})",
        attack.report
    );
}

/// `admin_listen`: the admin UI, the admin API and `/metrics` move to their own listener (another
/// origin); the main one serves plugins and health checks only, and the admin one no plugins.
#[tokio::test]
async fn the_admin_can_have_an_origin_of_its_own() {
    let plugins = plugins_dir_with(&[&plugin_host_tests::example("hello")]);
    let data = tempfile::tempdir().unwrap();
    let admin_addr = format!(
        "127.0.0.1:{}",
        plugin_host_kit::process::free_port().unwrap()
    );
    let host = HostProcess::serve(&[
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--data",
        data.path().to_str().unwrap(),
        "--admin-listen",
        &admin_addr,
    ]);
    let (public, admin) = (
        format!("http://{}", host.addr),
        format!("http://{admin_addr}"),
    );
    let status = async |url: String| reqwest::get(url).await.unwrap().status().as_u16();
    assert_eq!(status(format!("{public}/hello/ada")).await, 200);
    assert_eq!(status(format!("{public}/healthz")).await, 200);
    for path in [
        "/admin",
        "/admin/login",
        "/admin/api/generations",
        "/metrics",
    ] {
        assert_eq!(
            status(format!("{public}{path}")).await,
            404,
            "{path} on the public listener"
        );
    }
    assert_eq!(status(format!("{admin}/admin/login")).await, 200);
    assert_eq!(status(format!("{admin}/metrics")).await, 200);
    assert_eq!(status(format!("{admin}/healthz")).await, 200);
    assert_eq!(
        status(format!("{admin}/admin/api/generations")).await,
        401,
        "still needs a key"
    );
    let plugin_on_admin = reqwest::get(format!("{admin}/hello/ada")).await.unwrap();
    assert_eq!(plugin_on_admin.status(), 404);
    let body: serde_json::Value = plugin_on_admin.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("admin listener"),
        "{body}"
    );
}
