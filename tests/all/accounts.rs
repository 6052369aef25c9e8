//! Accounts against the real server: API keys in every form, roles, scopes, expiry and revocation,
//! browser sessions with CSRF and expiry, the login rate limit, the audit log, and what the database
//! file holds. The `notes` example serves as a plugin with anonymous reads and `user` writes.

use std::time::Duration;

use plugin_host::bindings::types::Role;
use plugin_host_tests::{ADMIN_PASSWORD, ADMIN_USER, Fetch, TestServer, json_error};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// A user `name` with `role`, and a key of theirs with `scopes` and `expires_at`.
async fn user_key(
    server: &TestServer,
    name: &str,
    role: Role,
    scopes: &[&str],
    expires_at: Option<i64>,
) -> String {
    let db = &server.state.auth().db;
    if plugin_host::accounts::users::get(db, name)
        .await
        .unwrap()
        .is_none()
    {
        plugin_host::accounts::users::create(db, name, "a-password-for-tests", role)
            .await
            .unwrap();
    }
    let scopes: Vec<String> = scopes.iter().map(|s| s.to_string()).collect();
    plugin_host::accounts::keys::create(db, name, Some(role), &scopes, expires_at)
        .await
        .unwrap()
        .key
}

async fn post_note(server: &TestServer, key: Option<&str>) -> reqwest::Response {
    let mut request = server
        .client
        .post(server.url("/notes"))
        .json(&json!({ "title": "t", "body": "b" }));
    if let Some(key) = key {
        request = request.bearer_auth(key);
    }
    request.send().await.unwrap()
}

on_both_backends! {
    async fn no_credentials_is_401_and_too_low_a_role_is_403() {
        let server = TestServer::examples().await;
        let response = post_note(&server, None).await;
        assert_eq!(
            response.headers()["www-authenticate"],
            "Bearer realm=\"plugin-host\""
        );
        let (status, message) = json_error(response).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(message.contains("needs role user"), "{message}");

        let ada = user_key(&server, "ada", Role::User, &[], None).await;
        assert_eq!(
            post_note(&server, Some(&ada)).await.status(),
            StatusCode::CREATED
        );
        let response = server
            .client
            .post(server.url("/admin/api/reload"))
            .bearer_auth(&ada)
            .send()
            .await
            .unwrap();
        let (status, message) = json_error(response).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(message.contains("needs role admin"), "{message}");
        // The admin API has no anonymous door any more, loopback or not.
        let response = server
            .client
            .get(server.url("/admin/api/generations"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        // Open endpoints stay open.
        for path in ["/healthz", "/readyz", "/metrics"] {
            assert_eq!(
                server.client.get(server.url(path)).fetch_status().await,
                StatusCode::OK,
                "{path}"
            );
        }
        server.stop().await;
    }
}

on_both_backends! {
    async fn unknown_revoked_and_expired_keys_are_401_even_on_anonymous_routes() {
        let server = TestServer::examples().await;
        let past = plugin_host::clock::unix_ms() - 1000;
        let expired = user_key(&server, "ada", Role::User, &[], Some(past)).await;
        let revoked = user_key(&server, "ada", Role::User, &[], None).await;
        let db = &server.state.auth().db;
        let id = plugin_host::accounts::keys::list(db, Some("ada"))
            .await
            .unwrap();
        let revoked_id = id
            .iter()
            .find(|k| revoked.starts_with(&k.prefix) && k.expires_at.is_none())
            .unwrap()
            .id
            .clone();
        plugin_host::accounts::keys::revoke(db, &revoked_id)
            .await
            .unwrap();
        let unknown = format!("phk_{}", "A".repeat(43));
        for (key, expect) in [
            (&unknown, "unknown API key"),
            (&revoked, "has been revoked"),
            (&expired, "has expired"),
            (&"not-even-a-key".to_owned(), "unknown API key"),
        ] {
            for path in ["/hello/world", "/notes"] {
                let response = server
                    .client
                    .get(server.url(path))
                    .bearer_auth(key)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(
                    response.headers()["www-authenticate"],
                    "Bearer realm=\"plugin-host\""
                );
                let (status, message) = json_error(response).await;
                assert_eq!(status, StatusCode::UNAUTHORIZED, "{path} {expect}");
                assert!(message.contains(expect), "{message}");
            }
        }
        server.stop().await;
    }
}

on_both_backends! {
    async fn a_key_outside_its_scope_is_403() {
        let server = TestServer::examples().await;
        let key = user_key(&server, "ada", Role::User, &["/notes"], None).await;
        assert_eq!(
            post_note(&server, Some(&key)).await.status(),
            StatusCode::CREATED
        );
        let response = server
            .client
            .get(server.url("/notes"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK);
        // Outside: another plugin's route, and the admin API (the key's role would not do there anyway).
        for path in ["/hello/world", "/admin/api/session"] {
            let response = server
                .client
                .get(server.url(path))
                .bearer_auth(&key)
                .send()
                .await
                .unwrap();
            let (status, message) = json_error(response).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{path}");
            assert!(message.contains("limited to /notes"), "{message}");
        }
        server.stop().await;
    }
}

on_both_backends! {
    async fn a_key_is_accepted_in_each_form_and_never_above_its_owner() {
        let server = TestServer::examples().await;
        let key = user_key(&server, "ada", Role::User, &[], None).await;
        let url = server.url("/admin/api/session");
        let c = &server.client;
        let forms = [
            c.get(&url).header("authorization", format!("Bearer {key}")),
            c.get(&url).header("authorization", format!("bearer {key}")),
            c.get(&url).header("x-api-key", &key),
            c.get(format!("{url}?api-key={key}")),
            c.get(format!("{url}?api_key={key}")),
        ];
        for request in forms {
            let response = request.send().await.unwrap();
            assert_eq!(response.status(), StatusCode::OK);
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["user"], "ada");
            assert_eq!(body["auth"], "api-key");
            assert_eq!(body["roles"], json!(["user"]));
        }
        // Two different keys at once are refused rather than guessed between.
        let response = c
            .get(&url)
            .bearer_auth(&key)
            .header("x-api-key", &server.admin_key)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        // A user cannot hold an admin key, and a key dies with its owner.
        let db = &server.state.auth().db;
        let err = plugin_host::accounts::keys::create(db, "ada", Some(Role::Admin), &[], None)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("can have role user"), "{err}");
        plugin_host::accounts::users::remove(db, "ada")
            .await
            .unwrap();
        assert_eq!(
            c.get(&url).bearer_auth(&key).fetch_status().await,
            StatusCode::UNAUTHORIZED
        );
        server.stop().await;
    }
}

/// Log in with JSON; returns the cookie pair (`ph_session=...`) and the CSRF token.
async fn login(server: &TestServer, user: &str, password: &str) -> (String, String) {
    let response = server
        .client
        .post(server.url("/admin/login"))
        .json(&json!({ "username": user, "password": password }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        cookie.contains("HttpOnly") && cookie.contains("SameSite=Lax") && cookie.contains("Path=/"),
        "{cookie}"
    );
    assert!(!cookie.contains("Secure"), "plain-HTTP default: {cookie}");
    let pair = cookie.split(';').next().unwrap().to_owned();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["user"], user);
    (pair, body["csrf"].as_str().unwrap().to_owned())
}

on_both_backends! {
    async fn session_login_csrf_and_logout() {
        let server = TestServer::examples().await;
        let (cookie, csrf) = login(&server, ADMIN_USER, ADMIN_PASSWORD).await;
        let c = &server.client;
        let session: Value = c
            .get(server.url("/admin/api/session"))
            .header("cookie", &cookie)
            .fetch_json()
            .await;
        assert_eq!(session["user"], ADMIN_USER);
        assert_eq!(session["auth"], "session");
        assert_eq!(session["csrf"], csrf.as_str());
        assert_eq!(session["roles"], json!(["user", "admin"]));

        // Reads need no token; state changes need the right one.
        let reads = c
            .get(server.url("/admin/api/generations"))
            .header("cookie", &cookie);
        assert_eq!(reads.fetch_status().await, StatusCode::OK);
        let reload = || {
            c.post(server.url("/admin/api/reload"))
                .header("cookie", &cookie)
        };
        let (status, message) = json_error(reload().send().await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(message.contains("CSRF"), "{message}");
        assert_eq!(
            reload()
                .header("x-csrf-token", "wrong")
                .fetch_status()
                .await,
            StatusCode::FORBIDDEN
        );
        assert_eq!(
            reload().header("x-csrf-token", &csrf).fetch_status().await,
            StatusCode::OK
        );
        // A browser form (no custom headers) sends the token as its `csrf` field.
        let form = |fields: &[(&str, &str)]| {
            c.post(server.url("/admin/api/users"))
                .header("cookie", &cookie)
                .form(fields)
        };
        let fields = [("name", "formuser"), ("password", "a-long-password")];
        assert_eq!(form(&fields).fetch_status().await, StatusCode::FORBIDDEN);
        let with_token = [fields[0], fields[1], ("csrf", csrf.as_str())];
        assert_eq!(form(&with_token).fetch_status().await, StatusCode::CREATED);
        // The same rule on plugin routes: a session write without the token is refused.
        let note = || {
            c.post(server.url("/notes"))
                .header("cookie", &cookie)
                .json(&json!({"title": "x"}))
        };
        assert_eq!(note().fetch_status().await, StatusCode::FORBIDDEN);
        let created = note().header("x-csrf-token", &csrf).send().await.unwrap();
        assert_eq!(created.status(), StatusCode::CREATED);
        let body: Value = created.json().await.unwrap();
        assert_eq!(body["author"], ADMIN_USER);

        // Logout needs the token too, then the cookie is worthless.
        let logout = || {
            c.post(server.url("/admin/logout"))
                .header("cookie", &cookie)
        };
        assert_eq!(logout().fetch_status().await, StatusCode::FORBIDDEN);
        let out = logout().header("x-csrf-token", &csrf).send().await.unwrap();
        assert_eq!(out.status(), StatusCode::OK);
        assert!(
            out.headers()["set-cookie"]
                .to_str()
                .unwrap()
                .contains("Max-Age=0")
        );
        let after = c
            .get(server.url("/admin/api/session"))
            .header("cookie", &cookie)
            .send()
            .await
            .unwrap();
        let (status, message) = json_error(after).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        assert!(message.contains("session has expired"), "{message}");
        server.stop().await;
    }
}

on_both_backends! {
    async fn form_login_redirects_only_to_local_paths() {
        let server = TestServer::start(|c| c.auth.secure_cookies = true).await;
        for (next, location) in [
            ("/admin/keys", "/admin/keys"),
            ("//evil.example/x", "/admin"),
            ("https://evil.example/", "/admin"),
        ] {
            let response = server
                .client
                .post(server.url("/admin/login"))
                .form(&[
                    ("username", ADMIN_USER),
                    ("password", ADMIN_PASSWORD),
                    ("next", next),
                ])
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::SEE_OTHER);
            assert_eq!(response.headers()["location"], location);
            let cookie = response.headers()["set-cookie"].to_str().unwrap();
            assert!(cookie.ends_with("; Secure"), "{cookie}");
        }
        // A form logout with the token in the form field.
        let response = server
            .client
            .post(server.url("/admin/login"))
            .json(&json!({ "username": ADMIN_USER, "password": ADMIN_PASSWORD }))
            .send()
            .await
            .unwrap();
        let cookie = response.headers()["set-cookie"]
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let csrf = response.json::<Value>().await.unwrap()["csrf"]
            .as_str()
            .unwrap()
            .to_owned();
        assert_eq!(
            server
                .client
                .post(server.url("/admin/logout"))
                .header("cookie", &cookie)
                .form(&[("csrf", csrf.as_str())])
                .fetch_status()
                .await,
            StatusCode::SEE_OTHER
        );
        server.stop().await;
    }
}

on_both_backends! {
    async fn sessions_expire_when_idle_and_absolutely() {
        let server = TestServer::start(|c| {
            c.auth.session_idle_secs = 100;
            c.auth.session_absolute_secs = 250;
        })
        .await;
        // Time is the server's accounts clock, stopped and moved by the test: no real waiting, no race
        // with a slow machine.
        let clock = server.state.auth().clock.clone();
        clock.stop();
        let whoami = |cookie: String| {
            let request = server
                .client
                .get(server.url("/admin/api/session"))
                .header("cookie", cookie);
            async move { request.fetch_status().await }
        };
        // Idle: 90 s after the last use it still works (and that use counts); 100 s without one end it.
        let (cookie, _) = login(&server, ADMIN_USER, ADMIN_PASSWORD).await;
        clock.advance(Duration::from_secs(90));
        assert_eq!(whoami(cookie.clone()).await, StatusCode::OK);
        clock.advance(Duration::from_secs(90));
        assert_eq!(
            whoami(cookie.clone()).await,
            StatusCode::OK,
            "use resets the idle time"
        );
        clock.advance(Duration::from_secs(100));
        assert_eq!(whoami(cookie).await, StatusCode::UNAUTHORIZED);
        // Absolute: used every 90 s, it still ends 250 s after login.
        let (cookie, _) = login(&server, ADMIN_USER, ADMIN_PASSWORD).await;
        for _ in 0..2 {
            clock.advance(Duration::from_secs(90));
            assert_eq!(whoami(cookie.clone()).await, StatusCode::OK);
        }
        clock.advance(Duration::from_secs(70));
        assert_eq!(whoami(cookie).await, StatusCode::UNAUTHORIZED);
        server.stop().await;
    }
}

on_both_backends! {
    async fn failed_logins_are_rate_limited_per_user_and_address() {
        let server = TestServer::start(|c| c.auth.login_free_failures = 2).await;
        let attempt = |user: &'static str, password: &'static str| {
            let request = server
                .client
                .post(server.url("/admin/login"))
                .json(&json!({ "username": user, "password": password }));
            async move { request.send().await.unwrap() }
        };
        // The server's accounts clock, stopped: lockouts end exactly when the test moves it on.
        let clock = server.state.auth().clock.clone();
        clock.stop();
        for _ in 0..3 {
            assert_eq!(
                attempt(ADMIN_USER, "wrong password").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        // Locked for 1 s now; each failure once a lockout has passed doubles it.
        for passed in [1, 2, 4, 8] {
            assert_eq!(
                attempt(ADMIN_USER, ADMIN_PASSWORD).await.status(),
                StatusCode::TOO_MANY_REQUESTS
            );
            clock.advance(Duration::from_secs(passed));
            assert_eq!(
                attempt(ADMIN_USER, "wrong password").await.status(),
                StatusCode::UNAUTHORIZED
            );
        }
        // Locked out now, even with the right password.
        let response = attempt(ADMIN_USER, ADMIN_PASSWORD).await;
        assert_eq!(response.headers()["retry-after"], "16");
        let (status, message) = json_error(response).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        assert!(message.contains("retry in"), "{message}");
        // The address is locked too: another name from the same client waits as well.
        assert_eq!(
            attempt("someone", "x").await.status(),
            StatusCode::TOO_MANY_REQUESTS
        );
        // After the lockout (on the server's accounts clock), the right password works and clears the count.
        clock.advance(Duration::from_secs(16));
        assert_eq!(
            attempt(ADMIN_USER, ADMIN_PASSWORD).await.status(),
            StatusCode::OK
        );
        server.stop().await;
    }
}

on_both_backends! {
    async fn the_database_holds_only_hashes_of_passwords_and_keys() {
        let server = TestServer::examples().await;
        let password = "grep-me-if-you-can-1234";
        let key = server.add_user_with_key("ada", password, Role::User).await;
        let (cookie, csrf) = login(&server, ADMIN_USER, ADMIN_PASSWORD).await;
        let session_id = cookie.strip_prefix("ph_session=").unwrap().to_owned();
        let data = server.stop_keep_data().await;
        let bytes = plugin_host_tests::database_contents(data.path());
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            text.contains("$argon2id$"),
            "argon2id PHC strings are stored"
        );
        for secret in [password, ADMIN_PASSWORD, &key, &key[4..], &session_id] {
            assert!(!text.contains(secret), "a secret is in the database");
        }
        // The CSRF token is stored (it is compared, not a credential on its own).
        assert!(text.contains(&csrf));
    }
}
