//! The handlers, called natively by `cargo test` (no wasm, no host): the SDK's fakes stand in for the
//! key-value store, the configuration, the clock and the log. Each test runs on its own thread with
//! fakes of its own.

use plugin_sdk::prelude::*;
use plugin_sdk::testing;

use super::plugin;

#[test]
fn greets_by_name() {
    let response = plugin().call(Request::builder().get("/@NAME@/ada").build()).unwrap();
    assert_eq!(response.status_code(), 200);
    let body: Value = response.body_json().unwrap();
    assert_eq!(body["message"], "hello, ada");
}

#[test]
fn the_greeting_word_is_configurable() {
    testing::set_config("greeting", "ahoy");
    let response = plugin().call(Request::builder().get("/@NAME@/ada").build()).unwrap();
    assert_eq!(response.body_json::<Value>().unwrap()["message"], "ahoy, ada");
}

#[test]
fn a_kept_message_is_listed() {
    let post = Request::builder()
        .post("/@NAME@/messages")
        .role(Role::User)
        .subject("ada")
        .json(&json!({ "text": "hi there" }))
        .build();
    let created = plugin().call(post).unwrap();
    assert_eq!(created.status_code(), 201);
    assert!(created.header_value("location").unwrap().starts_with("/@NAME@/messages#"));

    let listed = plugin().call(Request::builder().get("/@NAME@/messages").build()).unwrap();
    let body: Value = listed.body_json().unwrap();
    assert_eq!(body["messages"][0]["text"], "hi there");
    assert_eq!(body["messages"][0]["from"], "ada");
    assert!(testing::logs().iter().any(|(_, line)| line.contains("kept message")));
}

#[test]
fn an_empty_message_is_refused() {
    let post = Request::builder()
        .post("/@NAME@/messages")
        .role(Role::User)
        .json(&json!({ "text": " " }))
        .build();
    let error = plugin().call(post).unwrap_err();
    assert_eq!(error.status(), 422);
}
