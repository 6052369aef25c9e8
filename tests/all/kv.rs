//! The plugin key-value store through real plugins: `kv-a` and `kv-b` (tests/fixtures/kv.rs) and the
//! `notes` example. Namespaces, caps, persistence across reloads and restarts.

use plugin_host::bindings::types::Role;
use plugin_host_tests::{Fetch, TestServer, fixture, json_error, plugins_dir_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

async fn kv_server(
    adjust: impl FnOnce(&mut plugin_host::config::Config),
) -> (TestServer, tempfile::TempDir) {
    let dir = plugins_dir_with(&[&fixture("kv-a.wasm"), &fixture("kv-b.wasm")]);
    let path = dir.path().to_owned();
    let server = TestServer::start(move |c| {
        c.plugins_dir = path;
        adjust(c);
    })
    .await;
    (server, dir)
}

async fn put(server: &TestServer, path: &str, value: Vec<u8>) -> reqwest::Response {
    server
        .client
        .put(server.url(path))
        .body(value)
        .send()
        .await
        .unwrap()
}

async fn get(server: &TestServer, path: &str) -> (StatusCode, Vec<u8>) {
    let response = server.client.get(server.url(path)).send().await.unwrap();
    (response.status(), response.bytes().await.unwrap().to_vec())
}

on_both_backends! {
    async fn plugins_never_see_each_others_keys() {
        let (server, _dir) = kv_server(|_| {}).await;
        assert_eq!(
            put(&server, "/kv-a/shared", b"from a".to_vec())
                .await
                .status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            put(&server, "/kv-b/shared", b"from b".to_vec())
                .await
                .status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            put(&server, "/kv-a/only-a", b"x".to_vec()).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            get(&server, "/kv-a/shared").await,
            (StatusCode::OK, b"from a".to_vec())
        );
        assert_eq!(
            get(&server, "/kv-b/shared").await,
            (StatusCode::OK, b"from b".to_vec())
        );
        assert_eq!(get(&server, "/kv-b/only-a").await.0, StatusCode::NOT_FOUND);
        assert_eq!(
            server.get_json("/kv-a").await.1,
            json!(["only-a", "shared"])
        );
        assert_eq!(server.get_json("/kv-b").await.1, json!(["shared"]));
        assert_eq!(
            server.get_json("/kv-a?prefix=on").await.1,
            json!(["only-a"])
        );
        // Prefixes are literal: % and _ are not wildcards.
        assert_eq!(server.get_json("/kv-a?prefix=%25").await.1, json!([]));
        assert_eq!(
            server
                .client
                .delete(server.url("/kv-a/shared"))
                .fetch_status()
                .await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(get(&server, "/kv-a/shared").await.0, StatusCode::NOT_FOUND);
        assert_eq!(get(&server, "/kv-b/shared").await.0, StatusCode::OK);
        server.stop().await;
    }
}

on_both_backends! {
    async fn values_and_plugins_are_capped() {
        let (server, _dir) = kv_server(|c| {
            c.limits.kv_value_bytes = 100;
            c.plugins.entry("kv-b".into()).or_default().kv_plugin_bytes = Some(300);
        })
        .await;
        let (status, message) = json_error(put(&server, "/kv-a/big", vec![7; 101]).await).await;
        assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
        assert!(message.contains("at most 100 bytes"), "{message}");
        // kv-b: 3 x (2-byte key + 90 bytes) = 276 fits; a fourth does not, and nothing is written.
        for k in ["k1", "k2", "k3"] {
            let status = put(&server, &format!("/kv-b/{k}"), vec![1; 90])
                .await
                .status();
            assert_eq!(status, StatusCode::NO_CONTENT);
        }
        let (status, message) = json_error(put(&server, "/kv-b/k4", vec![1; 90]).await).await;
        assert_eq!(status, StatusCode::INSUFFICIENT_STORAGE);
        assert!(message.contains("may store 300 bytes"), "{message}");
        assert_eq!(get(&server, "/kv-b/k4").await.0, StatusCode::NOT_FOUND);
        // Replacing a value counts its new size, not both.
        assert_eq!(
            put(&server, "/kv-b/k3", vec![2; 95]).await.status(),
            StatusCode::NO_CONTENT
        );
        // kv-a has the global cap, untouched by kv-b's.
        assert_eq!(
            put(&server, "/kv-a/k4", vec![1; 90]).await.status(),
            StatusCode::NO_CONTENT
        );
        server.stop().await;
    }
}

on_both_backends! {
    async fn data_survives_reloads_and_restarts() {
        let dir = plugins_dir_with(&[&fixture("kv-a.wasm"), &fixture("kv-b.wasm")]);
        let path = dir.path().to_owned();
        let server = TestServer::start({
            let path = path.clone();
            move |c| c.plugins_dir = path
        })
        .await;
        assert_eq!(
            put(&server, "/kv-a/kept", b"1".to_vec()).await.status(),
            StatusCode::NO_CONTENT
        );
        assert_eq!(server.reload().await.0, StatusCode::OK);
        assert_eq!(
            get(&server, "/kv-a/kept").await,
            (StatusCode::OK, b"1".to_vec())
        );
        let data = server.stop_keep_data().await;
        let server = TestServer::start_in(data, move |c| c.plugins_dir = path).await;
        assert_eq!(
            get(&server, "/kv-a/kept").await,
            (StatusCode::OK, b"1".to_vec())
        );
        server.stop().await;
    }
}

on_both_backends! {
    async fn notes_crud_reads_anonymous_writes_need_a_user() {
        let server = TestServer::examples().await;
        let key = server
            .add_user_with_key("ada", "a-password-for-tests", Role::User)
            .await;
        let c = &server.client;
        assert_eq!(
            server.get_json("/notes").await,
            (StatusCode::OK, json!({ "notes": [] }))
        );
        assert_eq!(
            c.post(server.url("/notes"))
                .json(&json!({"title": "x"}))
                .fetch_status()
                .await,
            StatusCode::UNAUTHORIZED
        );
        let created = c
            .post(server.url("/notes"))
            .bearer_auth(&key)
            .json(&json!({ "title": "first", "body": "hello" }))
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let note: Value = created.json().await.unwrap();
        assert_eq!(note["author"], "ada");
        let id = note["id"].as_str().unwrap().to_owned();
        let (status, shown) = server.get_json(&format!("/notes/{id}")).await;
        assert_eq!((status, &shown["title"]), (StatusCode::OK, &json!("first")));
        assert_eq!(
            c.put(server.url(&format!("/notes/{id}")))
                .bearer_auth(&key)
                .json(&json!({ "title": "changed" }))
                .fetch_status()
                .await,
            StatusCode::OK
        );
        let (_, list) = server.get_json("/notes").await;
        assert_eq!(list["notes"][0]["title"], "changed");
        assert_eq!(
            c.post(server.url("/notes"))
                .bearer_auth(&key)
                .json(&json!({"title": " "}))
                .fetch_status()
                .await,
            StatusCode::BAD_REQUEST
        );
        assert_eq!(
            c.delete(server.url(&format!("/notes/{id}")))
                .bearer_auth(&key)
                .fetch_status()
                .await,
            StatusCode::NO_CONTENT
        );
        assert_eq!(
            server.get_json(&format!("/notes/{id}")).await.0,
            StatusCode::NOT_FOUND
        );
        server.stop().await;
    }
}
