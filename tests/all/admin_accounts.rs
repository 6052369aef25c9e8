//! The accounts admin API and its audit rows, the `user`/`key` commands of the real binary, and the
//! one-time bootstrap of the first admin.

use std::time::Duration;

use plugin_host_tests::{
    Fetch, HostProcess, TestServer, cli_add_root_admin, example, json_error, run_host_with_stdin,
};
use reqwest::StatusCode;
use serde_json::{Value, json};

on_both_backends! {
    async fn admin_changes_write_audit_rows() {
        let server = TestServer::examples().await;
        let c = &server.client;
        let admin = |method: reqwest::Method, path: &str| {
            c.request(method, server.url(path))
                .bearer_auth(&server.admin_key)
        };
        assert_eq!(
            admin(reqwest::Method::POST, "/admin/api/users")
                .json(&json!({ "name": "ada", "password": "a-long-password", "role": "user" }))
                .fetch_status()
                .await,
            StatusCode::CREATED
        );
        let key: Value = admin(reqwest::Method::POST, "/admin/api/keys")
            .json(&json!({ "user": "ada", "scopes": ["/notes"], "expires": "30d" }))
            .fetch_json()
            .await;
        let text = key["key"].as_str().unwrap();
        assert!(text.starts_with("phk_") && text.starts_with(key["prefix"].as_str().unwrap()));
        let id = key["id"].as_str().unwrap();
        let listed: Value = admin(reqwest::Method::GET, "/admin/api/keys?user=ada")
            .fetch_json()
            .await;
        assert_eq!(listed["keys"][0]["id"], id);
        assert!(
            listed["keys"][0].get("key").is_none(),
            "listings never show the key"
        );
        assert_eq!(
            admin(reqwest::Method::DELETE, &format!("/admin/api/keys/{id}"))
                .fetch_status()
                .await,
            StatusCode::OK
        );
        let bad = admin(reqwest::Method::POST, "/admin/api/users")
            .json(&json!({ "name": "ada", "password": "a-long-password" }))
            .send()
            .await
            .unwrap();
        let (status, message) = json_error(bad).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("already exists"), "{message}");
        assert_eq!(server.reload().await.0, StatusCode::OK);
        assert_eq!(
            admin(reqwest::Method::DELETE, "/admin/api/users/ada")
                .fetch_status()
                .await,
            StatusCode::NO_CONTENT
        );
        let last_admin = admin(reqwest::Method::DELETE, "/admin/api/users/admin")
            .send()
            .await
            .unwrap();
        let (status, message) = json_error(last_admin).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(message.contains("last admin"), "{message}");

        let (status, page) = server.admin_get_json("/admin/api/audit?limit=3").await;
        assert_eq!(status, StatusCode::OK);
        let entries = page["entries"].as_array().unwrap();
        assert_eq!(entries.len(), 3);
        let (_, rest) = server
            .admin_get_json(&format!("/admin/api/audit?before={}", page["next"]))
            .await;
        let all: Vec<&Value> = entries
            .iter()
            .chain(rest["entries"].as_array().unwrap())
            .collect();
        // On PostgreSQL (cluster mode) the set-up's plugin pushes are audited too; they are not what
        // this test is about.
        let actions: Vec<&str> = all
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .filter(|a| *a != "plugin.push")
            .collect();
        assert_eq!(
            actions,
            [
                "user.remove",
                "reload",
                "key.revoke",
                "key.create",
                "user.add"
            ]
        );
        for e in all.iter().filter(|e| e["action"] != "plugin.push") {
            assert!(e["actor"].as_str().unwrap().starts_with("key:"), "{e}");
            assert_eq!(e["client"], "127.0.0.1");
        }
        assert_eq!(all[4]["target"], "ada");
        assert!(
            all[1]["detail"]
                .as_str()
                .unwrap()
                .starts_with("generation 2")
        );
        server.stop().await;
    }
}

fn cli(args: &[&str], stdin: Option<&str>) -> (bool, String, String) {
    let out = run_host_with_stdin(args, stdin, Duration::from_secs(60));
    (out.status.success(), out.stdout, out.stderr)
}

on_both_backends! {
    async fn cli_manages_users_and_keys_in_the_servers_database() {
        let data = tempfile::tempdir().unwrap();
        let d = data.path().to_str().unwrap();
        let added = cli_add_root_admin(d);
        assert!(added.status.success(), "{}", added.stderr);
        assert!(
            added.stdout.contains("created admin user root"),
            "{}",
            added.stdout
        );
        // The first command on an empty SQLite data directory says it creates the database.
        let sqlite = plugin_host_tests::database_for(data.path()).is_none();
        assert_eq!(
            added.stderr.contains("creating a new one"),
            sqlite,
            "{}",
            added.stderr
        );
        let (ok, _, err) = cli(
            &["user", "add", "root", "--password-stdin", "--data", d],
            Some("another-password\n"),
        );
        assert!(!ok && err.contains("already exists"), "{err}");
        assert!(!err.contains("creating a new one"), "{err}");
        let (ok, _, err) = cli(
            &["user", "add", "short", "--password-stdin", "--data", d],
            Some("short\n"),
        );
        assert!(!ok && err.contains("at least 8"), "{err}");
        let (ok, _, err) = cli(&["user", "add", "nopass", "--data", d], None);
        assert!(!ok && err.contains("--password-stdin"), "{err}");
        let (ok, out, err) = cli(
            &[
                "key",
                "create",
                "--user",
                "root",
                "--scope",
                "/hello",
                "--expires",
                "30d",
                "--data",
                d,
            ],
            None,
        );
        assert!(ok, "{err}");
        let key = out.trim().to_owned();
        assert!(key.starts_with("phk_") && key.len() == 47, "{key}");
        assert!(err.contains("shown only now"), "{err}");
        let (ok, out, _) = cli(&["key", "list", "--data", d], None);
        assert!(
            ok && out.contains(&key[..12]) && out.contains("active") && out.contains("/hello"),
            "{out}"
        );
        assert!(!out.contains(&key), "listings never show the key");
        let (ok, out, _) = cli(&["user", "list", "--data", d], None);
        assert!(ok && out.contains("root") && out.contains("admin"), "{out}");
        let (ok, _, err) = cli(&["user", "remove", "root", "--data", d], None);
        assert!(!ok && err.contains("last admin"), "{err}");

        // The server on the same data directory accepts the key, within its scope.
        let plugins = example("hello");
        let host = HostProcess::serve(&[
            "--plugins",
            plugins.parent().unwrap().to_str().unwrap(),
            "--data",
            d,
        ]);
        let client = reqwest::Client::new();
        let hello = client
            .get(host.url("/hello/cli"))
            .bearer_auth(&key)
            .send()
            .await
            .unwrap();
        assert_eq!(hello.status(), StatusCode::OK);
        assert_eq!(
            client
                .get(host.url("/admin/api/generations"))
                .bearer_auth(&key)
                .fetch_status()
                .await,
            StatusCode::FORBIDDEN
        );
        // Revoking from the CLI while the server runs takes effect at once.
        let (ok, out, err) = cli(&["key", "revoke", &key[..12], "--data", d], None);
        assert!(ok, "{err}");
        assert!(out.contains("revoked"), "{out}");
        assert_eq!(
            client
                .get(host.url("/hello/cli"))
                .bearer_auth(&key)
                .fetch_status()
                .await,
            StatusCode::UNAUTHORIZED
        );
        let (ok, out, _) = cli(
            &["user", "passwd", "root", "--password-stdin", "--data", d],
            Some("a-new-long-password\n"),
        );
        assert!(ok && out.contains("changed"), "{out}");
        // Every CLI change is in the audit log, by the OS user.
        let admin_key = cli(&["key", "create", "--user", "root", "--data", d], None)
            .1
            .trim()
            .to_owned();
        let page: Value = client
            .get(host.url("/admin/api/audit"))
            .header("x-api-key", &admin_key)
            .fetch_json()
            .await;
        let actions: Vec<&str> = page["entries"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["action"].as_str().unwrap())
            .filter(|a| *a != "plugin.push")
            .collect();
        assert_eq!(
            actions,
            [
                "key.create",
                "user.passwd",
                "key.revoke",
                "key.create",
                "user.add"
            ]
        );
        assert!(
            page["entries"][0]["actor"]
                .as_str()
                .unwrap()
                .starts_with("cli:")
        );
        host.terminate();
        host.wait(Duration::from_secs(15));
    }
}

on_both_backends! {
    async fn bootstrap_secret_creates_the_first_admin_once() {
        let data = tempfile::tempdir().unwrap();
        let plugins = example("hello");
        let secret = "a-bootstrap-secret-for-tests";
        let host =
            HostProcess::serve_bootstrap(plugins.parent().unwrap(), data.path(), Some(secret), &[]);
        let client = reqwest::Client::new();
        let boot = |secret: &str, user: &str| {
            client
                .post(host.url("/admin/api/bootstrap"))
                .json(&json!({ "secret": secret, "username": user, "password": "a-long-password" }))
                .send()
        };
        let (status, message) = json_error(boot("wrong-secret", "root").await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(message.contains("wrong bootstrap secret"), "{message}");
        assert_eq!(
            boot(secret, "root").await.unwrap().status(),
            StatusCode::CREATED
        );
        let (status, message) = json_error(boot(secret, "second").await.unwrap()).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(message.contains("closed"), "{message}");
        assert_eq!(
            client
                .post(host.url("/admin/login"))
                .json(&json!({ "username": "root", "password": "a-long-password" }))
                .fetch_status()
                .await,
            StatusCode::OK
        );
        host.terminate();
        let (_, stderr) = host.wait(Duration::from_secs(15));
        assert!(
            !stderr.contains(secret),
            "the operator's secret is never logged"
        );
        assert!(
            !stderr.contains("a-long-password"),
            "passwords are never logged"
        );
    }
}

on_both_backends! {
    async fn without_an_admin_a_random_bootstrap_secret_is_logged() {
        let data = tempfile::tempdir().unwrap();
        let plugins = example("hello");
        let host = HostProcess::serve_bootstrap(plugins.parent().unwrap(), data.path(), None, &[]);
        // The line is written before "listening"; the reader thread may still be catching up.
        let mut logged = String::new();
        for _ in 0..100 {
            logged = host.stderr();
            if logged.contains("bootstrap_secret=") {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let secret = logged
            .split("bootstrap_secret=")
            .nth(1)
            .and_then(|s| s.split_whitespace().next())
            .unwrap_or_else(|| panic!("no secret in the log: {logged}"))
            .to_owned();
        assert_eq!(
            reqwest::Client::new()
                .post(host.url("/admin/api/bootstrap"))
                .json(&json!({ "secret": secret, "username": "root", "password": "a-long-password" }))
                .fetch_status()
                .await,
            StatusCode::CREATED
        );
        host.terminate();
        host.wait(Duration::from_secs(15));
    }
}
