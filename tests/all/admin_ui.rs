//! The admin web UI over real HTTP: first-run setup, the login redirect and 403 pages, CSRF and audit
//! rows on every change, keys shown once, users (never the last admin), uploads checked and undone when
//! the reload fails, disable/enable/delete, the dashboard's chart, and pages that never parse templates.

use std::time::Duration;

use plugin_host_tests::pages::AdminPages;
use plugin_host_tests::{
    ADMIN_PASSWORD, ADMIN_USER, Fetch, HostProcess, TestServer, example, fixture, plugins_dir_with,
};
use reqwest::StatusCode;

fn base(server: &TestServer) -> String {
    format!("http://{}", server.addr)
}

fn files_in(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[tokio::test]
async fn first_run_setup_creates_the_admin_and_signs_in() {
    let data = tempfile::tempdir().unwrap();
    let secret = "a-first-run-secret-for-tests";
    let host = HostProcess::serve_bootstrap(
        example("hello").parent().unwrap(),
        data.path(),
        Some(secret),
        &[],
    );
    let base = format!("http://{}", host.addr);
    let mut browser = AdminPages::anonymous(&base);
    let setup = browser.get("/admin").await;
    assert_eq!(setup.status, StatusCode::OK);
    assert!(setup.html.contains("id=\"setup\""), "{}", setup.html);
    // Every other page, and the login page, lead to the setup form while no admin exists.
    for path in ["/admin/keys", "/admin/login"] {
        let page = browser.get(path).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER, "{path}");
        assert_eq!(page.location.as_deref(), Some("/admin"), "{path}");
    }
    let form = |secret: &'static str, confirm: &'static str| {
        [
            ("secret", secret),
            ("username", "root"),
            ("password", "a-long-password"),
            ("confirm", confirm),
        ]
    };
    let wrong = browser
        .post_plain("/admin/setup", &form("not-the-secret", "a-long-password"))
        .await;
    assert_eq!(wrong.status, StatusCode::FORBIDDEN);
    assert!(
        wrong
            .text_of("error")
            .unwrap()
            .contains("not the bootstrap secret")
    );
    let differ = browser
        .post_plain("/admin/setup", &form(secret, "another-password"))
        .await;
    assert_eq!(differ.status, StatusCode::UNPROCESSABLE_ENTITY);
    let done = browser
        .post_plain("/admin/setup", &form(secret, "a-long-password"))
        .await;
    assert_eq!(done.status, StatusCode::SEE_OTHER, "{}", done.html);
    assert_eq!(done.location.as_deref(), Some("/admin"));
    let dashboard = browser.get("/admin").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert!(dashboard.html.contains("<h1>Dashboard</h1>"));
    // Setup is closed now: a second attempt goes to the login page, which is back.
    let mut other = AdminPages::anonymous(&base);
    let again = other
        .post_plain("/admin/setup", &form(secret, "a-long-password"))
        .await;
    assert_eq!(again.location.as_deref(), Some("/admin/login"));
    assert_eq!(other.get("/admin/login").await.status, StatusCode::OK);
    let audit = browser.get("/admin/audit").await;
    assert!(audit.html.contains("<td>bootstrap</td>"), "{}", audit.html);
    host.terminate();
    let (_, stderr) = host.wait(Duration::from_secs(15));
    assert!(!stderr.contains(secret) && !stderr.contains("a-long-password"));
}

#[tokio::test]
async fn anonymous_browsers_sign_in_and_return_non_admins_get_403_pages() {
    let server = TestServer::examples().await;
    let base = base(&server);
    let mut anonymous = AdminPages::anonymous(&base);
    let sent = anonymous.get("/admin/keys?user=admin").await;
    assert_eq!(sent.status, StatusCode::SEE_OTHER);
    let location = sent.location.unwrap();
    assert_eq!(location, "/admin/login?next=%2Fadmin%2Fkeys%3Fuser%3Dadmin");
    let login = anonymous.get(&location).await;
    let next = login.input_value("next").unwrap();
    assert_eq!(next, "/admin/keys?user=admin");
    let back = anonymous
        .post_plain(
            "/admin/login",
            &[
                ("username", ADMIN_USER),
                ("password", ADMIN_PASSWORD),
                ("next", &next),
            ],
        )
        .await;
    assert_eq!(back.location.as_deref(), Some("/admin/keys?user=admin"));
    let keys = anonymous.get("/admin/keys?user=admin").await;
    assert_eq!(keys.status, StatusCode::OK);

    // A plain user: 403 pages, and their forms change nothing.
    let mut admin = AdminPages::sign_in(&base, ADMIN_USER, ADMIN_PASSWORD).await;
    admin.get("/admin/users").await;
    let added = admin
        .post(
            "/admin/users",
            &[
                ("op", "add"),
                ("name", "ursula"),
                ("password", "a-long-password"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(added.status, StatusCode::OK, "{}", added.html);
    let mut user = AdminPages::sign_in(&base, "ursula", "a-long-password").await;
    let refused = user.get("/admin").await;
    assert_eq!(refused.status, StatusCode::FORBIDDEN);
    assert!(refused.html.contains("not an admin"), "{}", refused.html);
    user.csrf = admin.csrf.clone();
    let change = user
        .post(
            "/admin/users",
            &[("op", "role"), ("name", "ursula"), ("role", "admin")],
        )
        .await;
    assert_eq!(change.status, StatusCode::FORBIDDEN);
    let users = admin.get("/admin/users").await;
    let row = &users.html[users.html.find("id=\"user-ursula\"").unwrap()..];
    assert!(row[..200].contains("<td>user</td>"), "{}", &row[..200]);
    server.stop().await;
}

#[tokio::test]
async fn changes_need_the_csrf_token_and_write_audit_rows() {
    let server = TestServer::examples().await;
    let base = base(&server);
    let mut admin = AdminPages::sign_in(&base, ADMIN_USER, ADMIN_PASSWORD).await;
    let users = admin.get("/admin/users").await;
    assert_eq!(users.status, StatusCode::OK);
    // Without the token (or with another session's), nothing happens.
    let forged = admin
        .post_plain(
            "/admin/users",
            &[
                ("op", "add"),
                ("name", "mallory"),
                ("password", "a-long-password"),
            ],
        )
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    let stale = admin
        .post_plain(
            "/admin/users",
            &[
                ("csrf", "not-the-token"),
                ("op", "add"),
                ("name", "mallory"),
                ("password", "a-long-password"),
            ],
        )
        .await;
    assert_eq!(stale.status, StatusCode::FORBIDDEN);
    assert!(!admin.get("/admin/users").await.html.contains("mallory"));

    // Users: add, reset password, change role, remove (asked first), never the last admin.
    let added = admin
        .post(
            "/admin/users",
            &[
                ("op", "add"),
                ("name", "ada"),
                ("password", "a-long-password"),
                ("role", "user"),
            ],
        )
        .await;
    assert_eq!(
        added.text_of("notice").as_deref(),
        Some("Added ada (user).")
    );
    let reset = admin
        .post(
            "/admin/users",
            &[
                ("op", "password"),
                ("name", "ada"),
                ("password", "another-long-one"),
            ],
        )
        .await;
    assert_eq!(reset.status, StatusCode::OK, "{}", reset.html);
    AdminPages::sign_in(&base, "ada", "another-long-one").await;
    let promoted = admin
        .post(
            "/admin/users",
            &[("op", "role"), ("name", "ada"), ("role", "admin")],
        )
        .await;
    assert_eq!(
        promoted.text_of("notice").as_deref(),
        Some("ada is now admin.")
    );
    let ask = admin
        .post("/admin/users", &[("op", "remove"), ("name", "ada")])
        .await;
    assert!(ask.html.contains("id=\"confirm-remove\""));
    let removed = admin
        .post(
            "/admin/users",
            &[("op", "remove"), ("name", "ada"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(removed.status, StatusCode::OK);
    let last = admin
        .post(
            "/admin/users",
            &[("op", "remove"), ("name", ADMIN_USER), ("confirm", "yes")],
        )
        .await;
    assert_eq!(last.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(last.text_of("error").unwrap().contains("last admin"));
    let demote = admin
        .post(
            "/admin/users",
            &[("op", "role"), ("name", ADMIN_USER), ("role", "user")],
        )
        .await;
    assert_eq!(demote.status, StatusCode::UNPROCESSABLE_ENTITY);

    // Keys: created and shown once, usable at once, revoked at once.
    let created = admin
        .post(
            "/admin/keys",
            &[
                ("op", "create"),
                ("user", ADMIN_USER),
                ("role", "user"),
                ("scopes", "/notes"),
                ("expires", "30d"),
            ],
        )
        .await;
    assert_eq!(created.status, StatusCode::CREATED, "{}", created.html);
    let key = created.text_of("new-key-value").unwrap().to_owned();
    assert!(key.starts_with("phk_"));
    let curl = created.text_of("new-key-curl").unwrap();
    assert!(
        curl.starts_with("curl -H 'Authorization: Bearer "),
        "{curl}"
    );
    assert!(curl.contains(&key) && curl.contains("/notes"), "{curl}");
    let with_key = |key: &str| {
        server
            .client
            .get(server.url("/notes"))
            .bearer_auth(key.to_owned())
            .send()
    };
    assert_eq!(with_key(&key).await.unwrap().status(), StatusCode::OK);
    let listing = admin.get("/admin/keys").await;
    assert!(!listing.html.contains(&key), "the key is shown only once");
    let id = listing.input_value("id").unwrap();
    let revoked = admin
        .post("/admin/keys", &[("op", "revoke"), ("id", &id)])
        .await;
    assert!(
        revoked
            .text_of("notice")
            .unwrap()
            .starts_with("Revoked key")
    );
    assert_eq!(
        with_key(&key).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    let audit = admin.get("/admin/audit").await;
    for action in [
        "user.add",
        "user.passwd",
        "user.role",
        "user.remove",
        "key.create",
        "key.revoke",
    ] {
        assert!(
            audit.html.contains(&format!("<code>{action}</code>")),
            "{action} audited"
        );
    }
    assert!(
        !audit.html.contains("mallory"),
        "refused forms leave no trace but the 403"
    );
    server.stop().await;
}

#[tokio::test]
async fn uploads_are_checked_and_a_failed_reload_changes_nothing() {
    let plugins = plugins_dir_with(&[&example("hello"), &example("status")]);
    let dir = plugins.path().to_owned();
    let server = TestServer::start(|c| c.plugins_dir = dir.clone()).await;
    let base = base(&server);
    let mut admin = AdminPages::sign_in(&base, ADMIN_USER, ADMIN_PASSWORD).await;
    let page = admin.get("/admin/plugins").await;
    assert!(page.html.contains("id=\"upload\""));
    let csrf = admin.csrf.clone().unwrap();
    let before = files_in(&dir);
    let read = |p: std::path::PathBuf| std::fs::read(p).unwrap();

    // Not a component, a bad manifest, a route clash with hello: refused, nothing written.
    let junk = admin
        .upload("junk.wasm", b"\0asm not really".to_vec(), Some(&csrf))
        .await;
    assert_eq!(junk.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        junk.text_of("error").unwrap().contains("junk.wasm"),
        "{:?}",
        junk.text_of("error")
    );
    let bad = admin
        .upload("bad.wasm", read(fixture("bad-pattern.wasm")), Some(&csrf))
        .await;
    assert_eq!(bad.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(
        bad.text_of("error")
            .unwrap()
            .contains("invalid path pattern")
    );
    let clash = admin
        .upload("clash.wasm", read(fixture("clash.wasm")), Some(&csrf))
        .await;
    assert_eq!(clash.status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(clash.text_of("error").unwrap().contains("route conflict"));
    assert_eq!(
        files_in(&dir),
        before,
        "refused uploads leave the directory as it was"
    );
    assert_eq!(server.get_json("/hello").await.0, StatusCode::OK);
    // No token: refused before anything is read into the directory.
    let forged = admin
        .upload("notes.wasm", read(example("notes")), None)
        .await;
    assert_eq!(forged.status, StatusCode::FORBIDDEN);
    assert_eq!(files_in(&dir), before);

    // A good upload goes live, named after its manifest.
    let generation = server.state.current().id;
    let ok = admin
        .upload("whatever.wasm", read(example("notes")), Some(&csrf))
        .await;
    assert_eq!(ok.status, StatusCode::OK, "{}", ok.html);
    assert!(
        ok.text_of("notice")
            .unwrap()
            .starts_with("Added plugin notes")
    );
    assert!(files_in(&dir).contains(&"notes.wasm".to_owned()));
    assert!(server.state.current().id > generation);
    assert_eq!(server.get_json("/notes").await.0, StatusCode::OK);

    // Disable, enable, delete (asked first).
    let disabled = admin
        .post(
            "/admin/plugins",
            &[("op", "disable"), ("file", "hello.wasm")],
        )
        .await;
    assert_eq!(disabled.status, StatusCode::OK, "{}", disabled.html);
    assert!(files_in(&dir).contains(&"hello.wasm.disabled".to_owned()));
    assert_eq!(
        server.client.get(server.url("/hello")).fetch_status().await,
        StatusCode::NOT_FOUND
    );
    assert!(
        disabled
            .html
            .contains("id=\"disabled-hello.wasm.disabled\"")
    );
    let enabled = admin
        .post(
            "/admin/plugins",
            &[("op", "enable"), ("file", "hello.wasm.disabled")],
        )
        .await;
    assert_eq!(enabled.status, StatusCode::OK, "{}", enabled.html);
    assert_eq!(server.get_json("/hello").await.0, StatusCode::OK);
    let ask = admin
        .post(
            "/admin/plugins",
            &[("op", "delete"), ("file", "notes.wasm")],
        )
        .await;
    assert!(ask.html.contains("id=\"confirm-delete\""));
    assert!(
        files_in(&dir).contains(&"notes.wasm".to_owned()),
        "asking deletes nothing"
    );
    let deleted = admin
        .post(
            "/admin/plugins",
            &[("op", "delete"), ("file", "notes.wasm"), ("confirm", "yes")],
        )
        .await;
    assert_eq!(deleted.status, StatusCode::OK, "{}", deleted.html);
    assert!(!files_in(&dir).contains(&"notes.wasm".to_owned()));
    assert_eq!(
        server.client.get(server.url("/notes")).fetch_status().await,
        StatusCode::NOT_FOUND
    );
    for hostile in ["../hello.wasm", ".hidden.wasm", "hello.txt"] {
        let refused = admin
            .post("/admin/plugins", &[("op", "disable"), ("file", hostile)])
            .await;
        assert_eq!(
            refused.status,
            StatusCode::UNPROCESSABLE_ENTITY,
            "{hostile}"
        );
    }
    assert_eq!(
        files_in(&dir),
        before,
        "no temporary or backup files are left behind"
    );

    let audit = admin.get("/admin/audit").await;
    for action in [
        "plugin.upload",
        "plugin.disable",
        "plugin.enable",
        "plugin.delete",
    ] {
        assert!(
            audit.html.contains(&format!("<code>{action}</code>")),
            "{action} audited"
        );
    }
    server.stop().await;
}

#[tokio::test]
async fn pages_show_the_generation_the_chart_and_plugin_details() {
    let server = TestServer::examples().await;
    let base = base(&server);
    for _ in 0..20 {
        server.get_json("/hello").await;
    }
    let mut admin = AdminPages::sign_in(&base, ADMIN_USER, ADMIN_PASSWORD).await;
    let dashboard = admin.get("/admin").await;
    assert_eq!(dashboard.status, StatusCode::OK);
    assert_eq!(dashboard.text_of("generation").as_deref(), Some("1"));
    assert!(dashboard.html.contains("<svg class=\"chart\""));
    assert!(
        dashboard
            .html
            .contains("class=\"rss\" fill=\"none\" points=\"")
    );
    assert!(dashboard.text_of("rss").unwrap().ends_with(" MiB"));

    let reloaded = admin.post("/admin/reload", &[]).await;
    assert_eq!(reloaded.status, StatusCode::OK);
    assert!(
        reloaded
            .text_of("notice")
            .unwrap()
            .starts_with("Reloaded: generation 2")
    );
    assert_eq!(
        admin.get("/admin").await.text_of("generation").as_deref(),
        Some("2")
    );

    let detail = admin.get("/admin/plugins/hello").await;
    assert_eq!(detail.status, StatusCode::OK);
    assert!(
        detail.html.contains("<code>hello&#x2f;hello.html</code>"),
        "the plugin's template is listed"
    );
    assert_eq!(
        admin.get("/admin/plugins/nope").await.status,
        StatusCode::NOT_FOUND
    );
    let routes = admin.get("/admin/routes").await;
    assert!(
        routes.html.contains("<a href=\"&#x2f;status\">"),
        "plain GET routes are links"
    );

    server.stop().await;
}

/// The parse counter of the real binary (`/metrics`): other tests in this process build generations
/// of their own, so the in-process counter could move for reasons that have nothing to do with pages.
async fn template_parses(host: &HostProcess) -> u64 {
    let text = reqwest::get(host.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix("plugin_host_template_parses_total "))
        .expect("the parse counter is exported")
        .parse()
        .unwrap()
}

#[tokio::test]
async fn admin_pages_never_parse_templates() {
    let data = tempfile::tempdir().unwrap();
    let secret = "a-parse-counting-secret";
    let host = HostProcess::serve_bootstrap(
        example("hello").parent().unwrap(),
        data.path(),
        Some(secret),
        &[],
    );
    let mut admin = AdminPages::anonymous(&format!("http://{}", host.addr));
    let fields = [
        ("secret", secret),
        ("username", "root"),
        ("password", "a-long-password"),
        ("confirm", "a-long-password"),
    ];
    assert_eq!(
        admin.post_plain("/admin/setup", &fields).await.status,
        StatusCode::SEE_OTHER
    );
    let parsed = template_parses(&host).await;
    assert!(
        parsed > 0,
        "building the first generation parsed its templates"
    );
    for path in [
        "/admin",
        "/admin/plugins",
        "/admin/plugins/hello",
        "/admin/routes",
        "/admin/keys",
        "/admin/users",
        "/admin/audit",
    ] {
        for _ in 0..10 {
            assert_eq!(admin.get(path).await.status, StatusCode::OK, "{path}");
        }
    }
    assert_eq!(
        template_parses(&host).await,
        parsed,
        "pages render from the generation's parsed templates"
    );
    host.terminate();
    host.wait(Duration::from_secs(15));
}

#[tokio::test]
async fn the_audit_log_is_paged() {
    let server = TestServer::examples().await;
    for i in 0..60 {
        assert_eq!(
            server
                .client
                .post(server.url("/admin/api/keys"))
                .bearer_auth(&server.admin_key)
                .json(&serde_json::json!({ "user": ADMIN_USER, "scopes": [format!("/k{i}")] }))
                .fetch_status()
                .await,
            StatusCode::CREATED
        );
    }
    let mut admin = AdminPages::sign_in(&base(&server), ADMIN_USER, ADMIN_PASSWORD).await;
    let first = admin.get("/admin/audit").await;
    assert_eq!(first.html.matches("<tr><td>").count(), 50);
    assert!(first.html.contains("k59"), "newest first");
    assert!(
        first.html.contains("<code>login</code>"),
        "signing in is audited"
    );
    let older = first
        .html
        .split("href=\"/admin/audit?before=")
        .nth(1)
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .to_owned();
    let second = admin.get(&format!("/admin/audit?before={older}")).await;
    assert_eq!(
        second.html.matches("<tr><td>").count(),
        11,
        "60 keys and the sign-in"
    );
    assert!(second.html.contains("k0]") && !second.html.contains("id=\"older\""));
    assert_eq!(
        admin.get("/admin/audit?before=x").await.status,
        StatusCode::BAD_REQUEST
    );
    server.stop().await;
}
