//! `GET /openapi.json`: the document is valid OpenAPI 3.1 (checked by `openapi-spec-validator`), names
//! every plugin route with its parameters, role and tag, follows reloads, and schemathesis — driving
//! the live server from it with a user's key and with an admin's, bounded — finds nothing: no 5xx, no
//! undocumented status, content type or body shape. The Python tools come from `make test`'s
//! virtualenv (target/venv).

use std::path::PathBuf;
use std::time::Duration;

use plugin_host::bindings::types::Role;
use plugin_host_tests::upstream::Upstream;
use plugin_host_tests::{Fetch, TestServer, deploy, example, plugins_dir_with, repo_root};

/// A tool installed by `make test` into target/venv.
fn venv_tool(name: &str) -> PathBuf {
    let path = repo_root().join("target/venv/bin").join(name);
    assert!(
        path.exists(),
        "{} is missing: `make test` installs it (the target/venv virtualenv from tests/python/requirements.txt)",
        path.display()
    );
    path
}

/// Run `program args` to completion within `limit`; exit success and everything it printed.
/// It runs in a temporary directory: schemathesis keeps a cache in its working directory.
async fn run(
    program: PathBuf,
    args: &[&str],
    stdin: Option<&[u8]>,
    limit: Duration,
) -> (bool, String) {
    use tokio::io::AsyncWriteExt;
    let cwd = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(&program)
        .args(args)
        .current_dir(cwd.path())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", program.display()));
    let mut input = child.stdin.take().unwrap();
    if let Some(bytes) = stdin {
        input.write_all(bytes).await.unwrap();
    }
    drop(input);
    let out = tokio::time::timeout(limit, child.wait_with_output())
        .await
        .unwrap_or_else(|_| panic!("{} {args:?} ran over {limit:?}", program.display()))
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

/// Whether `document` is a valid OpenAPI 3.1 document, and what the validator said.
async fn validate(document: &[u8]) -> (bool, String) {
    let check = "import json, sys\n\
                 from openapi_spec_validator import validate\n\
                 from openapi_spec_validator.validation.validators import OpenAPIV31SpecValidator\n\
                 validate(json.load(sys.stdin), cls=OpenAPIV31SpecValidator)\n\
                 print('valid')\n";
    run(
        venv_tool("python"),
        &["-c", check],
        Some(document),
        Duration::from_secs(120),
    )
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_document_is_valid_openapi_31_and_follows_reloads() {
    let plugins = plugins_dir_with(&[&example("hello")]);
    let dir = plugins.path().to_owned();
    let server = TestServer::start(move |c| c.plugins_dir = dir).await;
    let response = server
        .client
        .get(server.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), reqwest::StatusCode::OK);
    assert_eq!(response.headers()["content-type"], "application/json");
    let bytes = response.bytes().await.unwrap();
    let (valid, said) = validate(&bytes).await;
    assert!(valid, "not valid OpenAPI 3.1: {said}");
    let doc: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    assert_eq!(doc["info"]["version"], "generation 1");
    let hello = &doc["paths"]["/hello/{name}"]["get"];
    assert_eq!(hello["tags"][0], "hello", "{hello}");
    assert_eq!(hello["parameters"][0]["name"], "name");
    assert_eq!(hello["parameters"][0]["in"], "path");
    assert!(
        hello.get("security").is_none(),
        "an anonymous route needs no key: {hello}"
    );
    for status in ["500", "503", "504"] {
        assert_eq!(
            hello["responses"][status]["content"]["application/json"]["schema"]["$ref"],
            "#/components/schemas/Error",
            "{status}"
        );
    }
    assert!(hello["responses"]["default"]["content"]["text/html"].is_object());
    for path in [
        "/healthz",
        "/readyz",
        "/api",
        "/openapi.json",
        "/metrics",
        "/admin/api/reload",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} missing");
    }
    let schemes = doc["components"]["securitySchemes"].as_object().unwrap();
    assert_eq!(schemes["apiKeyHeader"]["name"], "X-Api-Key");
    assert_eq!(schemes["apiKeyQuery"]["in"], "query");
    assert_eq!(schemes["bearer"]["scheme"], "bearer");
    assert_eq!(schemes["session"]["in"], "cookie");
    // The catalogue links it.
    let (_, catalogue) = server.get_json("/api").await;
    assert_eq!(catalogue["openapi"], "/openapi.json");

    // A reload with another plugin: a new document, with the notes routes and their key requirement.
    deploy(
        server.state.config().plugins_dir.as_path(),
        &example("notes"),
        "notes.wasm",
    );
    let (status, body) = server.reload().await;
    assert_eq!(status, reqwest::StatusCode::OK, "{body}");
    let doc = server
        .client
        .get(server.url("/openapi.json"))
        .fetch_json()
        .await;
    assert_eq!(doc["info"]["version"], "generation 2");
    let notes = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(path, _)| path.starts_with("/notes"))
        .flat_map(|(_, item)| item.as_object().unwrap().values())
        .collect::<Vec<_>>();
    assert!(!notes.is_empty(), "{doc}");
    assert!(
        notes
            .iter()
            .any(|op| op["security"].as_array().is_some_and(|s| s.len() == 4)),
        "a notes route that needs a key lists the four ways to send one"
    );
    let (valid, said) = validate(&serde_json::to_vec(&doc).unwrap()).await;
    assert!(valid, "{said}");
    server.stop().await;
}

/// Every documented admin operation exists: without credentials each answers 401 (not the plugin
/// router's 404 or a 405), so the document cannot list a route the server does not have.
#[tokio::test]
async fn every_documented_admin_operation_is_served() {
    let server = TestServer::examples().await;
    let doc = server
        .client
        .get(server.url("/openapi.json"))
        .fetch_json()
        .await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if op["tags"][0] != "admin" {
                continue;
            }
            let url = server.url(&path.replace(['{', '}'], ""));
            let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
            let status = server
                .client
                .request(method.clone(), url)
                .fetch_status()
                .await;
            assert_eq!(status, reqwest::StatusCode::UNAUTHORIZED, "{method} {path}");
            checked += 1;
        }
    }
    assert!(checked >= 15, "{checked}");
    server.stop().await;
}

/// schemathesis against the example plugins (weather with a real upstream), bounded: once with a
/// user's key, once with an admin's. `positive_data_acceptance` is left out: plugin manifests do not
/// declare body schemas, so any JSON counts as valid and a plugin rightly answers 400 to a body it
/// does not understand.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schemathesis_finds_no_failures() {
    let upstream = Upstream::start().await;
    // A copy of the examples: the admin's run may delete or disable plugins through the deploy API.
    let examples: Vec<PathBuf> = std::fs::read_dir(example("hello").parent().unwrap())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
        .collect();
    let plugins = plugins_dir_with(&examples.iter().map(PathBuf::as_path).collect::<Vec<_>>());
    let dir = plugins.path().to_owned();
    let server = TestServer::start(|c| {
        c.plugins_dir = dir;
        upstream.serve_weather(c);
    })
    .await;
    let user_key = server
        .add_user_with_key("schemathesis", "a-long-password-1", Role::User)
        .await;
    let url = server.url("/openapi.json");
    let report = tempfile::tempdir().unwrap();
    for (who, key) in [
        ("user", user_key.as_str()),
        ("admin", server.admin_key.as_str()),
    ] {
        let header = format!("Authorization: Bearer {key}");
        let (ok, output) = run(
            venv_tool("schemathesis"),
            &[
                "run",
                &url,
                "--header",
                &header,
                "--checks",
                "all",
                "--exclude-checks",
                "positive_data_acceptance",
                "--max-examples",
                "25",
                "--seed",
                "1",
                "--workers",
                "1",
                "--report-dir",
                report.path().to_str().unwrap(),
            ],
            None,
            Duration::from_secs(600),
        )
        .await;
        assert!(
            ok,
            "schemathesis with the {who}'s key found failures:\n{output}"
        );
        assert!(output.contains("Test cases:"), "{output}");
    }
    // The host is still whole after it all.
    assert_eq!(
        server
            .client
            .get(server.url("/hello/after"))
            .fetch_status()
            .await,
        reqwest::StatusCode::OK
    );
    server.stop().await;
}
