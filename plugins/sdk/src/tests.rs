//! Unit tests of the SDK's native side: errors, response accessors, the request builder, routing in
//! `Plugin::call`, the outbound HTTP client, randomness and the fake host behind `testing`.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use crate::http::{self, ErrorKind};
use crate::prelude::*;
use crate::{AuthMethod, Map, RequestBuilder, clock, config, kv, log, random, testing};

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

#[test]
fn log_enabled_follows_the_level_and_log_skips_formatting_below_it() {
    assert!(
        log::enabled(log::Level::Trace),
        "every level is on by default"
    );
    testing::set_log_level(Some(log::Level::Warn));
    let formatted = Cell::new(0);
    let count = || {
        formatted.set(formatted.get() + 1);
        "x"
    };
    crate::log!(Info, "hidden {}", count());
    crate::log!(Error, "shown {}", count());
    assert_eq!(
        formatted.get(),
        1,
        "the Info line's arguments were not evaluated"
    );
    log::log(log::Level::Debug, "dropped like the host drops it");
    assert_eq!(testing::logs(), [(log::Level::Error, "shown x".to_owned())]);
    let levels = [
        log::Level::Trace,
        log::Level::Debug,
        log::Level::Info,
        log::Level::Warn,
        log::Level::Error,
    ];
    let on: Vec<bool> = levels.iter().map(|l| log::enabled(*l)).collect();
    assert_eq!(on, [false, false, false, true, true]);
    testing::set_log_level(None);
    assert!(!levels.iter().any(|l| log::enabled(*l)));
    crate::log!(Error, "still sent {}", count());
    assert_eq!(formatted.get(), 2, "error lines always reach the host");
    testing::reset();
    assert!(log::enabled(log::Level::Trace));
}

#[test]
fn random_bytes_go_past_the_per_call_cap_and_differ() {
    let big = random::bytes(random::MAX_BYTES_PER_CALL * 2 + 3);
    assert_eq!(big.len(), 131_075);
    assert!(random::bytes(0).is_empty());
    // 16 random bytes twice alike: 2^-128.
    assert_ne!(random::bytes(16), random::bytes(16));
    // Every byte value turns up in 128 KiB (each misses with probability ~e^-512).
    let mut seen = [false; 256];
    big.iter().for_each(|b| seen[*b as usize] = true);
    assert!(seen.iter().all(|s| *s));
    // The fake caps one call like the host.
    let one_call = crate::fake::random::get_random_bytes(u32::MAX);
    assert_eq!(one_call.len(), random::MAX_BYTES_PER_CALL);
}

#[test]
fn a_seed_makes_random_repeatable() {
    testing::seed_random(42);
    let first = (random::bytes(40), random::uuid());
    testing::seed_random(42);
    assert_eq!((random::bytes(40), random::uuid()), first);
    testing::seed_random(43);
    assert_ne!(random::bytes(40), first.0);
}

#[test]
fn uuids_are_version_4_lowercase_and_hyphenated() {
    let mut seen = std::collections::HashSet::new();
    for _ in 0..200 {
        let id = random::uuid();
        let groups: Vec<usize> = id.split('-').map(str::len).collect();
        assert_eq!(groups, [8, 4, 4, 4, 12], "{id}");
        assert!(
            id.chars()
                .all(|c| c == '-' || c.is_ascii_digit() || ('a'..='f').contains(&c)),
            "{id}"
        );
        assert_eq!(&id[14..15], "4", "version 4: {id}");
        assert!("89ab".contains(&id[19..20]), "variant 10: {id}");
        assert!(seen.insert(id));
    }
}

#[test]
fn without_a_responder_calls_are_not_allowed() {
    let error = http::get("http://up.test/x?key=secret").send().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::NotAllowed);
    assert!(error.message().contains("no upstream in tests"), "{error}");
    // The URL in messages leaves out the query (keys often travel there).
    assert!(
        error
            .to_string()
            .starts_with("GET http://up.test/x: not-allowed: "),
        "{error}"
    );
    assert_eq!(
        testing::http_requests()[0].url(),
        "http://up.test/x?key=secret"
    );
    let relative = http::get("/relative").send().unwrap_err();
    assert_eq!(relative.kind(), ErrorKind::InvalidRequest);
}

#[test]
fn the_builder_sends_method_url_headers_body_and_timeout() {
    testing::http_responder(|req| {
        Ok(http::Response::new(201)
            .with_header("X-Seen", req.method().as_str())
            .with_body(req.body().to_vec()))
    });
    let response = http::post("http://up.test/items?a=1#top")
        .query("name", "Ada Lovelace & co")
        .header("X-Trace", "t-1")
        .header("content-type", "text/plain")
        .json(&json!({ "n": 1 }))
        .timeout(Duration::from_millis(1_500))
        .send()
        .unwrap();
    assert_eq!(
        (response.status(), response.header("x-seen")),
        (201, Some("POST"))
    );
    assert_eq!(response.headers(), [("x-seen".into(), "POST".into())]);
    assert_eq!(response.json::<Value>().unwrap(), json!({ "n": 1 }));
    let sent = testing::http_requests().pop().unwrap();
    assert_eq!(
        sent.url(),
        "http://up.test/items?a=1&name=Ada%20Lovelace%20%26%20co#top"
    );
    assert_eq!(sent.header("x-trace"), Some("t-1"));
    let content_types: Vec<&str> = sent
        .headers()
        .iter()
        .filter(|(k, _)| k.eq_ignore_ascii_case("content-type"))
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(content_types, ["application/json"], ".json replaces it");
    assert_eq!(sent.timeout(), Some(Duration::from_millis(1_500)));
    assert_eq!(sent.json::<Value>().unwrap(), json!({ "n": 1 }));

    for (method, builder) in [
        (Method::Get, http::get("http://u.test/")),
        (Method::Put, http::put("http://u.test/")),
        (Method::Patch, http::patch("http://u.test/")),
        (Method::Delete, http::delete("http://u.test/")),
        (Method::Head, http::request(Method::Head, "http://u.test/")),
    ] {
        let request = builder.body("b").into_request();
        assert_eq!((request.method(), request.text()), (method, Some("b")));
        assert_eq!(request.timeout(), None);
    }
    let tiny = http::get("http://u.test/").timeout(Duration::from_micros(10));
    assert_eq!(
        tiny.into_request().timeout(),
        Some(Duration::from_millis(1))
    );
    let no_query = http::get("http://u.test/p?").query("q", "1").into_request();
    assert_eq!(no_query.url(), "http://u.test/p?q=1");
}

#[test]
fn a_body_that_does_not_serialise_fails_at_send_without_a_call() {
    let mut map = std::collections::HashMap::new();
    map.insert(vec![1u8], 1);
    let error = http::post("http://up.test/").json(&map).send().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::InvalidRequest);
    assert!(testing::http_requests().is_empty());
}

#[test]
fn response_readers_and_error_for_status() {
    testing::http_responder(|req| match req.url() {
        "http://up.test/json" => Ok(http::Response::new(200).with_json(&json!({ "a": [1] }))),
        "http://up.test/bytes" => Ok(http::Response::new(200).with_body(vec![0xff, 0xfe])),
        "http://up.test/moved" => {
            Ok(http::Response::new(302).with_header("Location", "/elsewhere"))
        }
        _ => Ok(http::Response::new(500).with_body("x".repeat(300))),
    });
    let json = http::get("http://up.test/json").send().unwrap();
    assert!(json.is_success());
    assert_eq!(json.header("Content-Type"), Some("application/json"));
    assert_eq!(json.text().unwrap(), r#"{"a":[1]}"#);
    let wrong = json.json::<Vec<u8>>().unwrap_err();
    assert_eq!(wrong.kind(), ErrorKind::InvalidResponse);
    assert!(
        wrong
            .to_string()
            .starts_with("GET http://up.test/json: invalid-response: ")
    );
    assert_eq!(json.clone().error_for_status().unwrap(), json);
    assert_eq!(json.into_bytes(), br#"{"a":[1]}"#);

    let bytes = http::get("http://up.test/bytes").send().unwrap();
    assert_eq!(bytes.bytes(), [0xff, 0xfe]);
    assert_eq!(bytes.text().unwrap_err().kind(), ErrorKind::InvalidResponse);

    let moved = http::get("http://up.test/moved").send().unwrap();
    let error = moved.error_for_status().unwrap_err();
    assert_eq!(
        (error.kind(), error.status()),
        (ErrorKind::Status(302), Some(302))
    );
    assert!(error.message().contains("location: /elsewhere"), "{error}");

    let failed = http::get("http://up.test/fail?token=abc").send().unwrap();
    let error = failed.error_for_status().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Status(500));
    let expected = format!(
        "GET http://up.test/fail: status 500: the upstream answered 500: {}...",
        "x".repeat(200)
    );
    assert_eq!(error.to_string(), expected);
}

#[test]
fn http_errors_become_502_or_504_and_the_detail_goes_to_the_log_only() {
    let kinds = [
        (ErrorKind::NotAllowed, 502),
        (ErrorKind::InvalidRequest, 502),
        (ErrorKind::Timeout, 504),
        (ErrorKind::ConnectionFailed, 502),
        (ErrorKind::ResponseTooLarge, 502),
        (ErrorKind::TooManyCalls, 502),
        (ErrorKind::Status(404), 502),
        (ErrorKind::InvalidResponse, 502),
    ];
    for (kind, status) in kinds {
        testing::http_responder(move |_| Err(http::Error::new(kind, "secret upstream detail")));
        let http_error = http::get("http://user:pw@up.test/a?k=v")
            .send()
            .unwrap_err();
        assert_eq!(http_error.is_timeout(), kind == ErrorKind::Timeout);
        let error = crate::Error::from(http_error);
        assert_eq!(error.status(), status, "{kind:?}");
        assert!(!error.message().contains("secret"), "{error}");
        let expected = match kind {
            ErrorKind::Timeout => "upstream did not answer in time",
            _ => "upstream request failed",
        };
        assert_eq!(error.message(), expected);
        let logs = testing::take_logs();
        let line = format!(
            "upstream request failed: GET http://up.test/a: {}: secret upstream detail",
            kind.name()
        );
        assert_eq!(
            logs,
            [(log::Level::Warn, line)],
            "no user or password either"
        );
    }
    testing::set_log_level(Some(log::Level::Error));
    let _ = crate::Error::from(http::Error::new(ErrorKind::Timeout, "t"));
    assert!(testing::logs().is_empty());
}

#[test]
fn the_host_errors_map_one_to_one() {
    use crate::bindings::plugin_host::plugin::http_client::Error as Wit;
    let cases = [
        (Wit::NotAllowed("m".into()), ErrorKind::NotAllowed),
        (Wit::InvalidRequest("m".into()), ErrorKind::InvalidRequest),
        (Wit::Timeout("m".into()), ErrorKind::Timeout),
        (
            Wit::ConnectionFailed("m".into()),
            ErrorKind::ConnectionFailed,
        ),
        (
            Wit::ResponseTooLarge("m".into()),
            ErrorKind::ResponseTooLarge,
        ),
        (Wit::TooManyCalls("m".into()), ErrorKind::TooManyCalls),
    ];
    for (wit, kind) in cases {
        let error = http::Error::from(wit);
        assert_eq!((error.kind(), error.message()), (kind, "m"));
        assert_eq!(error.to_string(), format!("{}: m", kind.name()));
    }
}

#[test]
fn a_handler_uses_question_mark_on_calls_and_a_responder_can_use_the_fakes() {
    fn proxy(_: &Request) -> Result {
        let upstream = config::get("upstream").ok_or_else(|| Error::internal("no upstream"))?;
        let answer = http::get(format!("{upstream}/v"))
            .send()?
            .error_for_status()?;
        Ok(Response::text(answer.text()?.to_owned()))
    }
    let plugin = Plugin::new("p", "0.1.0", "proxy").get("/p", proxy);
    testing::set_config("upstream", "http://up.test");
    let calls = Rc::new(Cell::new(0));
    let counted = Rc::clone(&calls);
    testing::http_responder(move |_| {
        counted.set(counted.get() + 1);
        crate::log!(Debug, "responder saw config {:?}", config::get("upstream"));
        Ok(http::Response::new(200).with_body("v1"))
    });
    let ok = plugin.call(Request::builder().get("/p").build()).unwrap();
    assert_eq!((ok.body_text(), calls.get()), (Some("v1"), 1));
    testing::http_responder(|_| Ok(http::Response::new(503)));
    let down = plugin
        .call(Request::builder().get("/p").build())
        .unwrap_err();
    assert_eq!(down.status(), 502);
    testing::clear_http_responder();
    let refused = plugin
        .call(Request::builder().get("/p").build())
        .unwrap_err();
    assert_eq!(refused.status(), 502);
    assert_eq!(testing::http_requests().len(), 3);
    testing::reset();
    assert!(testing::http_requests().is_empty());
}

#[test]
fn percent_encoding_keeps_only_unreserved_bytes() {
    assert_eq!(http::percent_encode("aZ09-._~"), "aZ09-._~");
    assert_eq!(
        http::percent_encode("a b/c?d=e&f#g%"),
        "a%20b%2Fc%3Fd%3De%26f%23g%25"
    );
    assert_eq!(http::percent_encode("Zürich"), "Z%C3%BCrich");
}
