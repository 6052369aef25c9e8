//! The request path against the example plugins, in-process server on 127.0.0.1:0.

use plugin_host_tests::{Fetch, TestServer, json_error};
use reqwest::StatusCode;
use serde_json::json;

#[tokio::test]
async fn hello_greets_by_name_as_json() {
    let server = TestServer::examples().await;
    let response = server
        .client
        .get(server.url("/hello/world"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        id.len(),
        16,
        "generated request ids are 16 hex digits: {id}"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body, json!({ "message": "hello, world" }));
    server.stop().await;
}

#[tokio::test]
async fn hello_default_greeting_query_and_decoding() {
    let server = TestServer::examples().await;
    assert_eq!(
        server.get_json("/hello").await,
        (StatusCode::OK, json!({ "message": "hello, world" }))
    );
    assert_eq!(
        server.get_json("/hello/ada?greeting=hi").await,
        (StatusCode::OK, json!({ "message": "hi, ada" }))
    );
    assert_eq!(
        server.get_json("/hello/J%C3%B6rg%20B").await,
        (StatusCode::OK, json!({ "message": "hello, Jörg B" }))
    );
    server.stop().await;
}

#[tokio::test]
async fn plugin_reads_its_config_values() {
    let server = TestServer::start(|c| {
        let hello = c.plugins.entry("hello".into()).or_default();
        hello
            .config
            .insert("greeting".into(), "good morning".into());
    })
    .await;
    assert_eq!(
        server.get_json("/hello/ada").await,
        (StatusCode::OK, json!({ "message": "good morning, ada" }))
    );
    // The request's query still wins over configuration.
    assert_eq!(
        server.get_json("/hello/ada?greeting=hi").await.1,
        json!({ "message": "hi, ada" })
    );
    server.stop().await;
}

#[tokio::test]
async fn echo_reflects_the_request_but_never_credentials() {
    let server = TestServer::examples().await;
    // A real key in all three forms (one key, so it authenticates): the plugin must see none of them.
    let secret = &server.admin_key;
    let response = server
        .client
        .post(server.url(&format!("/echo?a=1&b=two%20words&a=3&api-key={secret}")))
        .header("content-type", "text/plain")
        .header("authorization", format!("Bearer {secret}"))
        .header("x-api-key", secret)
        .header("user-agent", "tests/1")
        .body("some text")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["method"], "POST");
    assert_eq!(body["path"], "/echo");
    assert_eq!(
        body["query"],
        json!([["a", "1"], ["b", "two words"], ["a", "3"]])
    );
    assert_eq!(body["headers"]["content-type"], "text/plain");
    assert_eq!(body["headers"]["user-agent"], "tests/1");
    assert_eq!(
        body["body"],
        json!({ "encoding": "utf-8", "data": "some text" })
    );
    assert!(
        !body.to_string().contains(secret.as_str()),
        "credentials reached the plugin: {body}"
    );

    let binary = server
        .client
        .post(server.url("/echo"))
        .body(vec![0xff_u8, 0x00, 0xfe, 0x41])
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = binary.json().await.unwrap();
    assert_eq!(
        body["body"],
        json!({ "encoding": "base64", "data": "/wD+QQ==" })
    );
    server.stop().await;
}

#[tokio::test]
async fn unknown_path_is_404_with_json_error() {
    let server = TestServer::examples().await;
    let response = server
        .client
        .get(server.url("/nope/nothing"))
        .send()
        .await
        .unwrap();
    let (status, error) = json_error(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error, "no route for GET /nope/nothing");
    // A trailing slash is a different path.
    assert_eq!(server.get_json("/hello/").await.0, StatusCode::NOT_FOUND);
    server.stop().await;
}

#[tokio::test]
async fn wrong_method_is_405_with_allow() {
    let server = TestServer::examples().await;
    let response = server
        .client
        .delete(server.url("/hello/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    let (status, error) = json_error(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(error.contains("DELETE"), "{error}");

    let response = server.client.get(server.url("/echo")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "POST");

    // A host route (the router's own 405) answers with the same JSON error body.
    let response = server
        .client
        .delete(server.url("/admin/api/reload"))
        .bearer_auth(&server.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["allow"], "POST");
    let (status, error) = json_error(response).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(
        error.contains("DELETE") && error.contains("/admin/api/reload"),
        "{error}"
    );
    server.stop().await;
}

#[tokio::test]
async fn head_is_served_by_the_get_route_without_a_body() {
    let server = TestServer::examples().await;
    let response = server
        .client
        .head(server.url("/hello/x"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    assert!(response.bytes().await.unwrap().is_empty());
    server.stop().await;
}

#[tokio::test]
async fn caller_request_id_is_kept_when_plain() {
    let server = TestServer::examples().await;
    let response = server
        .client
        .get(server.url("/hello"))
        .header("x-request-id", "lb-1234.abc")
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-request-id"], "lb-1234.abc");
    let response = server
        .client
        .get(server.url("/hello"))
        .header("x-request-id", "no spaces <allowed>")
        .send()
        .await
        .unwrap();
    assert_ne!(response.headers()["x-request-id"], "no spaces <allowed>");
    server.stop().await;
}

#[tokio::test]
async fn health_and_readiness() {
    let server = TestServer::examples().await;
    assert_eq!(
        server.get_json("/healthz").await,
        (StatusCode::OK, json!({ "status": "ok" }))
    );
    let (status, body) = server.get_json("/readyz").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ready");
    assert_eq!(body["generation"], 1);
    assert_eq!(body["plugins"], 5);
    server.stop().await;
}

#[tokio::test]
async fn oversized_body_is_413_before_the_plugin_runs() {
    let server = TestServer::start(|c| c.limits.max_request_body_bytes = 1024).await;
    let response = server
        .client
        .post(server.url("/echo"))
        .body(vec![b'x'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let body: serde_json::Value = response.json().await.unwrap();
    assert!(body["error"].as_str().unwrap().contains("1024"), "{body}");
    // At the limit is fine.
    let response = server
        .client
        .post(server.url("/echo"))
        .body(vec![b'x'; 1024])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_each_get_a_fresh_instance() {
    let server = TestServer::examples().await;
    let mut tasks = Vec::new();
    for i in 0..200 {
        let client = server.client.clone();
        let url = server.url(&format!("/hello/n{i}"));
        tasks.push(tokio::spawn(async move {
            let body: serde_json::Value = client.get(url).fetch_json().await;
            body
        }));
    }
    for (i, task) in tasks.into_iter().enumerate() {
        assert_eq!(
            task.await.unwrap(),
            json!({ "message": format!("hello, n{i}") })
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn full_pool_answers_503_with_retry_after() {
    // One slot; hold it with a permit taken directly, as a long request would.
    let server = TestServer::start(|c| c.limits.max_instances = 1).await;
    let generation = server.state.current();
    let held = generation
        .instance_permits()
        .clone()
        .try_acquire_owned()
        .unwrap();
    let response = server
        .client
        .get(server.url("/hello"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(response.headers()["retry-after"], "1");
    drop(held);
    assert_eq!(server.get_json("/hello").await.0, StatusCode::OK);
    server.stop().await;
}
