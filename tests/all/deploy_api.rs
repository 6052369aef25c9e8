//! The deploy API in single-node mode (files in the plugins directory): push, disable, enable and delete
//! by plugin name, a refused upload that changes nothing, every change audited. Cluster mode's is in
//! `cluster.rs`.

use plugin_host_tests::{TestServer, example, plugins_dir_with, source_fixture};
use reqwest::StatusCode;
use serde_json::Value;

async fn send(server: &TestServer, request: reqwest::RequestBuilder) -> (StatusCode, Value) {
    let r = request.bearer_auth(&server.admin_key).send().await.unwrap();
    (r.status(), r.json().await.unwrap())
}

#[tokio::test]
async fn plugins_are_pushed_disabled_enabled_and_deleted_by_name() {
    let dir = plugins_dir_with(&[&example("hello")]);
    let path = dir.path().to_owned();
    let server = TestServer::start(move |c| c.plugins_dir = path).await;
    let c = &server.client;
    let get = |p: &str| c.get(server.url(p));

    let (s, list) = send(&server, get("/admin/api/plugins")).await;
    assert_eq!((s, &list["mode"]), (StatusCode::OK, &Value::from("files")));
    assert_eq!(list["plugins"][0]["name"], "hello");

    // Push a new plugin by name: it is checked, placed as NAME.wasm and served.
    let echo = std::fs::read(example("echo")).unwrap();
    let (s, body) = send(
        &server,
        c.put(server.url("/admin/api/plugins/echo"))
            .body(echo.clone()),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        (body["name"].as_str(), body["version"].as_str()),
        (Some("echo"), Some("0.1.0"))
    );
    assert_eq!(body["sha256"].as_str().unwrap().len(), 64);
    assert!(dir.path().join("echo.wasm").exists());
    // Under another name, or not a component: refused, and nothing changes.
    let (s, body) = send(
        &server,
        c.put(server.url("/admin/api/plugins/other")).body(echo),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    let bad = std::fs::read(source_fixture("not-wasm.wasm")).unwrap();
    let (s, body) = send(
        &server,
        c.put(server.url("/admin/api/plugins/echo")).body(bad),
    )
    .await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly file"),
        "{body}"
    );
    let generation = server.state.current().id;

    let (s, body) = send(
        &server,
        c.post(server.url("/admin/api/plugins/hello/disable")),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(server.state.current().id > generation);
    assert!(dir.path().join("hello.wasm.disabled").exists());
    assert_eq!(
        get("/hello/x").send().await.unwrap().status(),
        StatusCode::NOT_FOUND
    );
    let (_, list) = send(&server, get("/admin/api/plugins")).await;
    let hello = list["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hello")
        .unwrap();
    assert_eq!(hello["enabled"], false, "{list}");

    let (s, body) = send(
        &server,
        c.post(server.url("/admin/api/plugins/hello/enable")),
    )
    .await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        get("/hello/x").send().await.unwrap().status(),
        StatusCode::OK
    );

    let (s, body) = send(&server, c.delete(server.url("/admin/api/plugins/echo"))).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert!(!dir.path().join("echo.wasm").exists());
    let (s, _) = send(&server, c.delete(server.url("/admin/api/plugins/echo"))).await;
    assert_eq!(s, StatusCode::NOT_FOUND);

    // Every change and every refusal is in the audit log.
    let (_, audit) = send(&server, get("/admin/api/audit?limit=100")).await;
    let actions: Vec<String> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            format!(
                "{} {}",
                e["action"].as_str().unwrap(),
                e["target"].as_str().unwrap()
            )
        })
        .filter(|a| a.starts_with("plugin."))
        .collect();
    for want in [
        "plugin.upload echo",
        "plugin.upload other",
        "plugin.disable hello",
        "plugin.enable hello",
        "plugin.delete echo",
    ] {
        assert!(actions.iter().any(|a| a == want), "{want} in {actions:?}");
    }
    let page = get("/admin/nodes")
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("single node"), "{page}");
    server.stop().await;
}
