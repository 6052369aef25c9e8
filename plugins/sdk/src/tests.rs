//! Unit tests of the SDK's native side: errors, response accessors, the request builder, routing in
//! `Plugin::call` and the fake host behind `testing`.

use crate::prelude::*;
use crate::{AuthMethod, Map, RequestBuilder, clock, config, kv, log, testing};

/// Answers with what it was given: the route, the parameters and the query.
fn echo_route(req: &Request) -> Result {
    let query: Vec<String> = req
        .query_pairs()
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    Response::json(&json!({ "route": req.route(), "params": params_of(req), "query": query }))
}

fn params_of(req: &Request) -> Value {
    let names = ["id", "name"];
    let found: Map<String, Value> = names
        .iter()
        .filter_map(|n| Some((n.to_string(), Value::from(req.param::<String>(n).ok()?))))
        .collect();
    Value::Object(found)
}

fn routes() -> Plugin {
    Plugin::new("t", "1.2.3", "routing under test")
        .get("/items/{id}", echo_route)
        .get("/items/new", echo_route)
        .delete("/items/{id}", echo_route)
        .post("/people/{name}", echo_route)
        .get("/", echo_route)
}

fn call(plugin: &Plugin, request: RequestBuilder) -> Result<Value, Error> {
    plugin.call(request.build())?.body_json()
}

#[test]
fn a_literal_segment_beats_a_parameter_and_params_are_percent_decoded() {
    let plugin = routes();
    let new = call(&plugin, Request::builder().get("/items/new")).unwrap();
    assert_eq!(new["route"], "/items/new");
    let one = call(&plugin, Request::builder().get("/items/a%20b")).unwrap();
    assert_eq!(
        (&one["route"], &one["params"]["id"]),
        (&json!("/items/{id}"), &json!("a b"))
    );
    let root = call(&plugin, Request::builder().get("/")).unwrap();
    assert_eq!(root["route"], "/");
}

#[test]
fn head_falls_back_to_get_and_a_missing_method_is_405_naming_the_allowed_ones() {
    let plugin = routes();
    let head = call(
        &plugin,
        Request::builder().method(Method::Head).path("/items/new"),
    );
    assert_eq!(head.unwrap()["route"], "/items/new");
    let put = call(&plugin, Request::builder().put("/items/7")).unwrap_err();
    assert_eq!(put.status(), 405);
    assert_eq!(
        put.message(),
        "PUT is not allowed on /items/7; allowed: GET, DELETE, HEAD"
    );
    let nothing = call(&plugin, Request::builder().get("/items/7/more")).unwrap_err();
    assert_eq!(nothing.status(), 404);
    let relative = call(&plugin, Request::builder().get("items")).unwrap_err();
    assert_eq!(relative.status(), 400);
}

#[test]
fn a_given_route_picks_the_handler_with_the_given_params() {
    let plugin = routes();
    let request = Request::builder()
        .route("/people/{name}")
        .method(Method::Post)
        .param("name", "ada")
        .query("x", "1");
    let answer = call(&plugin, request).unwrap();
    assert_eq!(answer["params"]["name"], "ada");
    assert_eq!(answer["query"], json!(["x=1"]));
    let wrong = Request::builder()
        .route("/people/{name}")
        .param("name", "ada");
    assert_eq!(call(&plugin, wrong).unwrap_err().status(), 405);
    let unknown = Request::builder().route("/nope");
    assert_eq!(call(&plugin, unknown).unwrap_err().status(), 404);
}

#[test]
fn the_manifest_reads_back() {
    let plugin = routes();
    assert_eq!((plugin.name(), plugin.version()), ("t", "1.2.3"));
    assert_eq!(plugin.description(), "routing under test");
    let paths: Vec<&str> = plugin.routes().iter().map(|r| r.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/items/{id}",
            "/items/new",
            "/items/{id}",
            "/people/{name}",
            "/"
        ]
    );
}

#[test]
#[should_panic(expected = "summary/role/view must follow a route")]
fn a_modifier_before_any_route_panics() {
    let _ = Plugin::new("p", "0.1.0", "broken").summary("no route yet");
}

#[test]
fn the_builder_fills_the_principal_like_the_host() {
    let anonymous = Request::builder().build();
    assert_eq!(
        (anonymous.subject(), anonymous.auth_method()),
        ("anonymous", AuthMethod::None)
    );
    assert!(anonymous.has_role(Role::Anonymous) && !anonymous.has_role(Role::User));
    let admin = Request::builder().role(Role::Admin).build();
    assert_eq!(
        (admin.subject(), admin.auth_method()),
        ("test-user", AuthMethod::ApiKey)
    );
    assert!(
        [Role::Anonymous, Role::User, Role::Admin]
            .iter()
            .all(|r| admin.has_role(*r))
    );
    let user = Request::builder().role(Role::User).subject("ada").build();
    assert_eq!(user.subject(), "ada");
    assert!(user.has_role(Role::User) && !user.has_role(Role::Admin));
}

#[test]
fn the_builder_sets_path_headers_and_bodies() {
    let req = Request::builder()
        .route("/notes/{id}")
        .param("id", "7")
        .header("X-Trace", "abc")
        .json(&json!({ "a": 1 }))
        .text("plain")
        .id("r-1")
        .build();
    assert_eq!((req.path(), req.id()), ("/notes/7", "r-1"));
    assert_eq!(req.header("x-trace"), Some("abc"));
    assert_eq!(req.text().unwrap(), "plain");
    let content_types: Vec<&str> = req
        .headers()
        .iter()
        .filter(|(k, _)| k == "content-type")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(content_types, ["text/plain; charset=utf-8"]);
    assert_eq!(Request::builder().build().path(), "/");
}

#[test]
fn response_accessors_report_what_the_host_will_send() {
    let bytes = Response::bytes("image/png", vec![1, 2]);
    assert_eq!(
        (bytes.content_type(), bytes.body_bytes()),
        (Some("image/png"), &[1u8, 2][..])
    );
    assert_eq!(bytes.body_text(), None);
    let overridden = Response::text("x").header("Content-Type", "text/csv");
    assert_eq!(overridden.content_type(), Some("text/csv"));
    let json = Response::json(&json!([1])).unwrap();
    assert_eq!(
        (json.content_type(), json.body_text()),
        (Some("application/json"), Some("[1]"))
    );
    let empty = Response::empty().status(204);
    assert_eq!((empty.status_code(), empty.body_bytes()), (204, &[][..]));
    assert_eq!(empty.body_json::<Value>().unwrap_err().status(), 500);
    assert_eq!(json.body_json::<String>().unwrap_err().status(), 500);
}

#[test]
fn serde_errors_are_400_and_io_errors_500() {
    let syntax: Error = serde_json::from_str::<Value>("{").unwrap_err().into();
    assert_eq!(syntax.status(), 400);
    assert!(syntax.message().contains("EOF"), "{syntax}");
    let data: Error = serde_json::from_str::<u8>("\"x\"").unwrap_err().into();
    assert_eq!(data.status(), 400);
    let failing = std::io::Error::other("disk gone");
    let io: Error = serde_json::Error::io(failing).into();
    assert_eq!((io.status(), io.message()), (500, "disk gone"));
    assert_eq!(Error::conflict("taken").to_string(), "409 taken");
    let named = [
        Error::bad_request(""),
        Error::unauthorized(""),
        Error::forbidden(""),
        Error::not_found(""),
        Error::conflict(""),
        Error::unprocessable(""),
        Error::internal(""),
    ];
    let statuses: Vec<u16> = named.iter().map(Error::status).collect();
    assert_eq!(statuses, [400, 401, 403, 404, 409, 422, 500]);
}

#[test]
fn the_fake_store_keeps_the_hosts_key_rule_and_order() {
    assert_eq!(kv::set("", b"x").unwrap_err().status(), 400);
    let long = "k".repeat(513);
    assert_eq!(kv::get(&long).unwrap_err().status(), 400);
    assert!(kv::set(&"k".repeat(512), b"x").is_ok());
    for key in ["b/2", "a/1", "b/1", "c"] {
        kv::set(key, key.as_bytes()).unwrap();
    }
    assert_eq!(kv::list("b/").unwrap(), ["b/1", "b/2"]);
    assert_eq!(kv::get("a/1").unwrap().as_deref(), Some(&b"a/1"[..]));
    assert!(kv::delete("c").unwrap() && !kv::delete("c").unwrap());
    assert_eq!(testing::kv_keys().len(), 4);
    testing::reset();
    assert!(testing::kv_keys().is_empty());
}

#[test]
fn the_fake_clocks_move_only_when_told() {
    assert_eq!(clock::now_millis(), testing::START_MILLIS);
    let start = clock::monotonic_nanos();
    testing::set_now_millis(testing::START_MILLIS + 10);
    assert_eq!(clock::monotonic_nanos() - start, 10_000_000);
    testing::set_now_millis(5);
    assert_eq!(clock::now_millis(), 5);
    assert_eq!(clock::monotonic_nanos() - start, 10_000_000);
}

#[test]
fn config_and_logs_are_per_thread() {
    testing::set_config("greeting", "hi");
    crate::log!(Warn, "careful {}", 1);
    let elsewhere = std::thread::spawn(|| (config::get("greeting"), testing::logs().len()));
    assert_eq!(elsewhere.join().unwrap(), (None, 0));
    assert_eq!(config::get("greeting").as_deref(), Some("hi"));
    testing::clear_config();
    assert_eq!(config::get("greeting"), None);
    assert_eq!(
        testing::take_logs(),
        [(log::Level::Warn, "careful 1".to_owned())]
    );
    assert!(testing::logs().is_empty());
}
