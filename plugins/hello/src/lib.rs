//! The `hello` example plugin: `GET /hello` and `GET /hello/{name}`. The greeting word is "hello", or the
//! operator's `[plugins.hello.config] greeting`, or the request's `?greeting=`. Browsers get the
//! greeting through the `hello.html` view.

use plugin_sdk::prelude::*;

fn plugin() -> Plugin {
    Plugin::new(
        "hello",
        env!("CARGO_PKG_VERSION"),
        "Greets the world, or someone by name",
    )
    .template("hello.html", include_str!("../templates/hello.html"))
    .get("/hello", greet)
    .summary("Greet the world")
    .view("hello.html")
    .get("/hello/{name}", greet)
    .summary("Greet someone by name")
    .view("hello.html")
}

fn greet(req: &Request) -> Result {
    let name: String = match req.route() {
        "/hello" => "world".to_owned(),
        _ => req.param("name")?,
    };
    let configured = plugin_sdk::config::get("greeting");
    let greeting = req
        .query("greeting")
        .or(configured.as_deref())
        .unwrap_or("hello");
    Response::json(&json!({ "message": format!("{greeting}, {name}") }))
}

plugin_sdk::plugin!(plugin);
