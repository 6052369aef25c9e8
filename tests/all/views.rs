//! HTML views: the same handlers answer services with JSON and browsers with HTML; error pages; the route
//! catalogue; escaping of hostile data; operator overrides and bad templates through reloads; and the
//! proof that pages are rendered from templates parsed once per generation, never per request.

use std::path::Path;

use plugin_host_tests::{Fetch, HostProcess, TestServer, example, plugins_dir_with, repo_root};
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, CONTENT_TYPE, VARY};
use serde_json::Value;

/// What Firefox sends for a page load.
const BROWSER: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// GET `path` with `accept`; status, content type and body text.
async fn fetch(
    server: &TestServer,
    path: &str,
    accept: Option<&str>,
) -> (StatusCode, String, String) {
    let mut request = server.client.get(server.url(path));
    if let Some(accept) = accept {
        request = request.header(ACCEPT, accept);
    }
    let response = request.send().await.unwrap();
    let status = response.status();
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.text().await.unwrap())
}

/// A server on the example plugins with its templates in `templates` (for override tests).
async fn server_with_templates(templates: &Path) -> TestServer {
    let dir = templates.to_owned();
    TestServer::start(move |c| c.templates_dir = dir).await
}

/// The current generation's template counts from the admin API.
async fn template_stats(server: &TestServer) -> (u64, u64, u64) {
    let (_, g) = server.admin_get_json("/admin/api/generations").await;
    let t = &g["current"]["templates"];
    (
        t["templates"].as_u64().unwrap(),
        t["parsed"].as_u64().unwrap(),
        t["renders"].as_u64().unwrap(),
    )
}

#[tokio::test]
async fn browsers_get_html_and_services_get_json_from_the_same_handler() {
    let server = TestServer::examples().await;

    let response = server
        .client
        .get(server.url("/hello"))
        .header(ACCEPT, BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()[CONTENT_TYPE], "text/html; charset=utf-8");
    assert!(
        response.headers()[VARY]
            .to_str()
            .unwrap()
            .contains("accept")
    );
    let page = response.text().await.unwrap();
    assert!(page.starts_with("<!doctype html>"), "{page}");
    assert!(page.contains("<h1>hello, world</h1>"), "{page}");

    for accept in [None, Some("*/*"), Some("application/json")] {
        let (status, content_type, body) = fetch(&server, "/hello/ann", accept).await;
        assert_eq!(
            (status, content_type.as_str()),
            (StatusCode::OK, "application/json"),
            "{accept:?}"
        );
        let body: Value = serde_json::from_str(&body).unwrap();
        assert_eq!(body["message"], "hello, ann");
    }

    // The query parameter overrides Accept, both ways.
    let (_, content_type, _) = fetch(&server, "/hello?format=json", Some(BROWSER)).await;
    assert_eq!(content_type, "application/json");
    let (_, content_type, page) = fetch(&server, "/hello/bo?format=html", None).await;
    assert_eq!(content_type, "text/html; charset=utf-8");
    assert!(page.contains("<h1>hello, bo</h1>"), "{page}");
    server.stop().await;
}

#[tokio::test]
async fn the_status_page_serves_health_checks_in_both_forms() {
    let server = TestServer::examples().await;
    let (status, body) = server.get_json("/status").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert!(
        body["checks"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["ok"] == true),
        "{body}"
    );

    let (status, content_type, page) = fetch(&server, "/status", Some("text/html")).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    assert!(
        page.contains("plugin-host is <span class=\"ok\">ok</span>"),
        "{page}"
    );
    assert!(page.contains("<td>wall clock</td>"), "{page}");
    server.stop().await;
}

#[tokio::test]
async fn routes_without_a_view_render_the_generic_data_page() {
    let server = TestServer::examples().await;
    let response = server
        .client
        .post(server.url("/echo?tag=a&tag=b"))
        .header(ACCEPT, BROWSER)
        .body("plain words")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let page = response.text().await.unwrap();
    // An object becomes a definition list, nested values nest, lists become ordered lists.
    assert!(page.contains("<dt>method</dt><dd>POST</dd>"), "{page}");
    assert!(page.contains("<dt>data</dt><dd>plain words</dd>"), "{page}");
    assert!(page.contains("<ol>"), "{page}");
    server.stop().await;
}

#[tokio::test]
async fn hostile_strings_in_plugin_data_come_out_escaped() {
    let server = TestServer::examples().await;
    let hostile = r#"<script>alert("x")</script> 'q' {{ 7*7 }} {% if true %}T{% endif %}"#;

    // Through the generic data page (echo has no view).
    let response = server
        .client
        .post(server.url("/echo?format=html"))
        .query(&[("q", "<img src=x onerror=alert(1)>")])
        .body(hostile)
        .send()
        .await
        .unwrap();
    // The footer shows the request id: random hex, which may well contain "49".
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let page = response.text().await.unwrap();
    assert!(!page.contains("<script>alert"), "{page}");
    assert!(!page.contains("<img src=x"), "{page}");
    assert!(
        page.contains("&lt;script&gt;alert(&quot;x&quot;)&lt;&#x2f;script&gt;"),
        "{page}"
    );
    assert!(page.contains("&#x27;q&#x27;"), "{page}");
    assert!(
        page.contains("{{ 7*7 }}") && !page.replace(&id, "").contains("49"),
        "data is never evaluated: {page}"
    );
    assert!(page.contains("{% if true %}T{% endif %}"), "{page}");

    // Through a plugin's own view: the name comes from the path, the greeting from the query.
    let response = server
        .client
        .get(server.url("/hello/%3Cb%3Ebold%3C%2Fb%3E"))
        .query(&[("greeting", "{{ 7*7 }}\"><script>")])
        .header(ACCEPT, BROWSER)
        .send()
        .await
        .unwrap();
    let page = response.text().await.unwrap();
    assert!(
        page.contains("<h1>{{ 7*7 }}&quot;&gt;&lt;script&gt;, &lt;b&gt;bold&lt;&#x2f;b&gt;</h1>"),
        "{page}"
    );
    server.stop().await;
}

#[tokio::test]
async fn errors_are_pages_for_browsers_and_json_for_services() {
    let server = TestServer::examples().await;

    let (status, content_type, page) = fetch(&server, "/no/such/page", Some(BROWSER)).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::NOT_FOUND, "text/html; charset=utf-8")
    );
    assert!(page.contains("<h1>404 Not Found</h1>"), "{page}");
    assert!(
        page.contains("no route for GET &#x2f;no&#x2f;such&#x2f;page"),
        "{page}"
    );
    assert!(page.contains("href=\"/api\""), "{page}");

    let (status, content_type, body) = fetch(&server, "/no/such/page", None).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::NOT_FOUND, "application/json")
    );
    let body: Value = serde_json::from_str(&body).unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("no route"),
        "{body}"
    );

    let response = server
        .client
        .delete(server.url("/hello"))
        .header(ACCEPT, BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.headers()["allow"], "GET, HEAD");
    let page = response.text().await.unwrap();
    assert!(
        page.contains("This address answers: <code>GET, HEAD</code>"),
        "{page}"
    );

    // The same for a route that exists with another method.
    let (status, _, page) = fetch(&server, "/echo", Some(BROWSER)).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    assert!(page.contains("405 Method Not Allowed"), "{page}");
    server.stop().await;
}

#[tokio::test]
async fn the_catalogue_lists_every_route_as_json_and_html() {
    let server = TestServer::examples().await;
    let (status, catalogue) = server.get_json("/api").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(catalogue["generation"], 1);
    let routes = catalogue["routes"].as_array().unwrap();
    let hello = routes
        .iter()
        .find(|r| r["path"] == "/hello/{name}")
        .unwrap_or_else(|| panic!("{catalogue}"));
    assert_eq!(hello["plugin"], "hello");
    assert_eq!(hello["method"], "GET");
    assert_eq!(hello["role"], "anonymous");
    assert_eq!(hello["summary"], "Greet someone by name");
    assert_eq!(hello["view"], "hello.html");
    assert!(
        hello["version"].as_str().unwrap().starts_with("0."),
        "{hello}"
    );
    for path in ["/echo", "/hello", "/status"] {
        assert!(
            routes.iter().any(|r| r["path"] == path),
            "{path} in {catalogue}"
        );
    }

    let (status, content_type, page) = fetch(&server, "/api", Some(BROWSER)).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    // minijinja escapes `/` too; browsers read `&#x2f;` as `/`.
    assert!(
        page.contains("<a href=\"&#x2f;hello\"><code>&#x2f;hello</code></a>"),
        "{page}"
    );
    assert!(
        page.contains("<code>&#x2f;hello&#x2f;{name}</code>"),
        "{page}"
    );
    assert!(page.contains("Greet someone by name"), "{page}");
    server.stop().await;
}

#[tokio::test]
async fn thousands_of_pages_parse_no_template() {
    let server = TestServer::examples().await;
    let (templates, parsed, renders) = template_stats(&server).await;
    assert_eq!(
        parsed, templates,
        "every template is parsed exactly once, at build"
    );
    assert_eq!(renders, 1, "only the catalogue was rendered, at build");

    const ROUNDS: usize = 500;
    let paths = ["/hello", "/hello/x", "/status", "/missing"];
    for _ in 0..ROUNDS {
        for path in paths {
            let (status, content_type, _) = fetch(&server, path, Some(BROWSER)).await;
            assert!(
                status == StatusCode::OK || status == StatusCode::NOT_FOUND,
                "{path}"
            );
            assert_eq!(content_type, "text/html; charset=utf-8");
        }
    }
    let (_, parsed_after, renders_after) = template_stats(&server).await;
    assert_eq!(parsed_after, parsed, "no template was parsed while serving");
    assert_eq!(renders_after, renders + (ROUNDS * paths.len()) as u64);
    server.stop().await;
}

#[tokio::test]
async fn the_process_parses_templates_only_when_it_builds_a_generation() {
    let plugins = plugins_dir_with(&[&example("hello"), &example("status")]);
    let data = tempfile::tempdir().unwrap();
    let host = HostProcess::serve(&[
        "--data",
        data.path().to_str().unwrap(),
        "--plugins",
        plugins.path().to_str().unwrap(),
        "--templates",
        repo_root().join("templates").to_str().unwrap(),
    ]);
    let client = reqwest::Client::new();
    let url = |p: &str| format!("http://{}{p}", host.addr);
    let parses = || async {
        let text = client.get(url("/metrics")).fetch_text().await;
        text.lines()
            .find_map(|l| l.strip_prefix("plugin_host_template_parses_total "))
            .unwrap_or_else(|| panic!("no parse counter in {text}"))
            .parse::<u64>()
            .unwrap()
    };
    let at_start = parses().await;
    assert!(at_start > 0);
    for i in 0..1000 {
        let path = if i % 2 == 0 { "/status" } else { "/hello" };
        let response = client
            .get(url(path))
            .header(ACCEPT, BROWSER)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        response.text().await.unwrap();
    }
    assert_eq!(parses().await, at_start, "1,000 pages parsed nothing");

    // Reload by SIGHUP (no credentials needed) and wait for the new generation's templates.
    let hup = std::process::Command::new("kill")
        .args(["-HUP", &host.child.id().to_string()])
        .status()
        .unwrap();
    assert!(hup.success());
    // The reload is counted once its generation is built, so wait for that count, not for the first
    // change of the parse counter (which moves template by template while the build runs).
    let started = std::time::Instant::now();
    loop {
        let metrics = client.get(url("/metrics")).send().await.unwrap();
        let text = metrics.text().await.unwrap();
        if text.contains("plugin_host_reloads_total{result=\"ok\"} 1") {
            break;
        }
        assert!(
            started.elapsed() < std::time::Duration::from_secs(20),
            "no reload"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(
        parses().await,
        2 * at_start,
        "a reload parses its generation's templates once"
    );
    host.terminate();
    host.wait(std::time::Duration::from_secs(10));
}

#[tokio::test]
async fn operators_override_a_plugin_template_by_dropping_a_file_and_reloading() {
    let templates = tempfile::tempdir().unwrap();
    let server = server_with_templates(templates.path()).await;
    let (_, _, page) = fetch(&server, "/hello", Some(BROWSER)).await;
    assert!(page.contains("<h1>hello, world</h1>"), "{page}");

    std::fs::create_dir(templates.path().join("hello")).unwrap();
    std::fs::write(
        templates.path().join("hello/hello.html"),
        "{% extends \"layout.html\" %}{% block content %}<p id=\"custom\">{{ message | upper }}</p>{% endblock %}",
    )
    .unwrap();
    let (status, outcome) = server.reload().await;
    assert_eq!(status, StatusCode::OK, "{outcome}");
    let (_, _, page) = fetch(&server, "/hello", Some(BROWSER)).await;
    assert!(page.contains("<p id=\"custom\">HELLO, WORLD</p>"), "{page}");
    assert!(
        page.contains("<!doctype html>"),
        "the override extends the layout: {page}"
    );

    let (_, generations) = server.admin_get_json("/admin/api/generations").await;
    let hello = generations["current"]["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "hello")
        .unwrap()
        .clone();
    assert_eq!(hello["templates"][0]["name"], "hello/hello.html");
    assert_eq!(
        hello["templates"][0]["origin"]["kind"], "override",
        "{hello}"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_bad_template_fails_the_reload_and_the_old_generation_keeps_serving() {
    let templates = tempfile::tempdir().unwrap();
    let server = server_with_templates(templates.path()).await;
    std::fs::create_dir(templates.path().join("status")).unwrap();
    let bad_file = templates.path().join("status").join("status.html");
    std::fs::write(&bad_file, "<h1>\n{{ status }}\n{% if %}\n").unwrap();
    let (status, outcome) = server.reload().await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{outcome}");
    let error = outcome["error"].as_str().unwrap();
    assert!(
        error.contains(bad_file.to_str().unwrap()),
        "names the file: {error}"
    );
    assert!(error.contains("line 3"), "names the line: {error}");

    let response = server
        .client
        .get(server.url("/status"))
        .header(ACCEPT, BROWSER)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.headers()["x-generation"], "1");
    assert!(
        response
            .text()
            .await
            .unwrap()
            .contains("is <span class=\"ok\">ok</span>")
    );
    server.stop().await;
}

#[tokio::test]
async fn a_template_that_fails_while_rendering_costs_only_its_own_page() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::create_dir(templates.path().join("hello")).unwrap();
    std::fs::write(
        templates.path().join("hello/hello.html"),
        "{% extends \"no-such-layout.html\" %}",
    )
    .unwrap();
    let server = server_with_templates(templates.path()).await;

    let (status, content_type, page) = fetch(&server, "/hello", Some(BROWSER)).await;
    assert_eq!(
        (status, content_type.as_str()),
        (
            StatusCode::INTERNAL_SERVER_ERROR,
            "text/html; charset=utf-8"
        )
    );
    assert!(
        page.contains("cannot render the page for GET &#x2f;hello"),
        "{page}"
    );
    assert!(
        !page.contains("no-such-layout"),
        "template details stay in the log: {page}"
    );

    // The same route still answers services, and other pages render.
    let (status, body) = server.get_json("/hello").await;
    assert_eq!(
        (status, body["message"].as_str()),
        (StatusCode::OK, Some("hello, world"))
    );
    let (status, _, _) = fetch(&server, "/status", Some(BROWSER)).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        server
            .metrics_text()
            .await
            .contains("plugin_host_plugin_faults_total{plugin=\"hello\",kind=\"render\"} 1"),
        "the failure is counted"
    );
    server.stop().await;
}

#[test]
fn a_bad_template_stops_the_server_from_starting() {
    let templates = tempfile::tempdir().unwrap();
    std::fs::write(templates.path().join("layout.html"), "{% block title %}\n").unwrap();
    let data = tempfile::tempdir().unwrap();
    let exited = plugin_host_tests::run_host(
        &[
            "serve",
            "--data",
            data.path().to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--plugins",
            example("hello").parent().unwrap().to_str().unwrap(),
            "--templates",
            templates.path().to_str().unwrap(),
        ],
        std::time::Duration::from_secs(30),
    );
    assert!(!exited.status.success());
    assert!(exited.stderr.contains("layout.html"), "{}", exited.stderr);
    assert!(
        exited.stderr.contains("line 1") || exited.stderr.contains("line 2"),
        "{}",
        exited.stderr
    );
}

#[tokio::test]
async fn the_login_page_signs_a_browser_in() {
    let server = TestServer::examples().await;
    let (status, content_type, page) =
        fetch(&server, "/admin/login?next=/status", Some(BROWSER)).await;
    assert_eq!(
        (status, content_type.as_str()),
        (StatusCode::OK, "text/html; charset=utf-8")
    );
    assert!(
        page.contains(
            "<form class=\"stack\" method=\"post\" action=\"/admin/login\" id=\"login\">"
        ),
        "{page}"
    );
    assert!(
        page.contains("name=\"next\" value=\"&#x2f;status\""),
        "{page}"
    );

    let form = |password: &str| {
        server
            .client
            .post(server.url("/admin/login"))
            .form(&[
                ("username", plugin_host_tests::ADMIN_USER),
                ("password", password),
                ("next", "/status"),
            ])
            .send()
    };
    let refused = form("wrong").await.unwrap();
    assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
    let page = refused.text().await.unwrap();
    assert!(page.contains("Wrong user name or password."), "{page}");
    assert!(page.contains("value=\"admin\""), "the name is kept: {page}");

    let signed_in = form(plugin_host_tests::ADMIN_PASSWORD).await.unwrap();
    assert_eq!(signed_in.status(), StatusCode::SEE_OTHER);
    assert_eq!(signed_in.headers()["location"], "/status");
    let cookie = signed_in.headers()["set-cookie"].to_str().unwrap();
    assert!(
        cookie.starts_with("ph_session=") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
    server.stop().await;
}
