//! Cluster mode with real processes: `plugin-host serve` nodes on one PostgreSQL database (the private
//! server of the test run, or one of its own where the test stops it), haproxy in front, real HTTP.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use plugin_host_kit::postgres::Postgres;
use plugin_host_tests::cluster::{Cluster, Haproxy, POLL_SECS, eventually};
use plugin_host_tests::{example, fixture, source_fixture};
use reqwest::StatusCode;
use serde_json::{Value, json};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// The status of `GET url` (a transport error is `None`).
async fn status(c: &reqwest::Client, url: &str) -> Option<StatusCode> {
    c.get(url).send().await.ok().map(|r| r.status())
}

/// Wait until every node answers `path` with `want`.
async fn every_node_answers(c: &reqwest::Client, cluster: &Cluster, path: &str, want: StatusCode) {
    for i in 0..cluster.len() {
        let url = cluster.url_of(i, path);
        eventually(
            Duration::from_secs(10),
            &format!("node {i} answers {path} with {want}"),
            || async { (status(c, &url).await == Some(want)).then_some(()) },
        )
        .await;
    }
}

/// `GET path` on node `node` with the admin key: its JSON body (`None` when the node does not answer).
async fn admin_get(
    c: &reqwest::Client,
    cluster: &Cluster,
    node: usize,
    path: &str,
) -> Option<Value> {
    let r = c
        .get(cluster.url_of(node, path))
        .bearer_auth(&cluster.admin_key)
        .send()
        .await
        .ok()?;
    r.json().await.ok()
}

/// `GET url`: status and JSON body (`None` while the node does not answer, e.g. restarting).
async fn readyz(c: &reqwest::Client, url: &str) -> Option<(StatusCode, Value)> {
    let r = c.get(url).send().await.ok()?;
    Some((r.status(), r.json().await.ok()?))
}

async fn push(
    c: &reqwest::Client,
    cluster: &Cluster,
    node: usize,
    name: &str,
    bytes: Vec<u8>,
) -> (StatusCode, Value) {
    let r = c
        .put(cluster.url_of(node, &format!("/admin/api/plugins/{name}")))
        .bearer_auth(&cluster.admin_key)
        .body(bytes)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

async fn post_admin(
    c: &reqwest::Client,
    cluster: &Cluster,
    node: usize,
    path: &str,
) -> (StatusCode, Value) {
    let r = c
        .post(cluster.url_of(node, path))
        .bearer_auth(&cluster.admin_key)
        .send()
        .await
        .unwrap();
    (r.status(), r.json().await.unwrap())
}

/// The revision every node reports in `/readyz`, once they all agree.
async fn converged_revision(c: &reqwest::Client, cluster: &Cluster, want: i64) {
    for i in 0..cluster.len() {
        let url = cluster.url_of(i, "/readyz");
        eventually(
            Duration::from_secs(10),
            &format!("node {i} serves revision {want}"),
            || async {
                let (s, body) = readyz(c, &url).await?;
                (s == StatusCode::OK && body["revision"] == want).then_some(())
            },
        )
        .await;
    }
}

#[tokio::test]
async fn a_change_through_one_node_reaches_every_node_and_a_bad_one_reaches_none() {
    let cluster = Cluster::start(Postgres::shared().fresh_database(), 3);
    let c = client();
    // An empty plugin set is revision 0: every node is ready and serves no plugins.
    converged_revision(&c, &cluster, 0).await;
    every_node_answers(&c, &cluster, "/hello/world", StatusCode::NOT_FOUND).await;

    let hello = std::fs::read(example("hello")).unwrap();
    let (s, body) = push(&c, &cluster, 0, "hello", hello.clone()).await;
    assert_eq!(s, StatusCode::OK, "{body}");
    assert_eq!(
        (body["name"].as_str(), body["revision"].as_i64()),
        (Some("hello"), Some(1))
    );
    assert_eq!(body["version"], "0.1.0");
    assert_eq!(body["sha256"].as_str().unwrap().len(), 64);
    every_node_answers(&c, &cluster, "/hello/world", StatusCode::OK).await;
    converged_revision(&c, &cluster, 1).await;

    // The same component again changes nothing.
    let (s, body) = push(&c, &cluster, 2, "hello", hello).await;
    assert_eq!(
        (s, &body["changed"], &body["revision"]),
        (StatusCode::OK, &json!(false), &json!(1))
    );

    // Disable on node B, enable on node C, delete on node A: each reaches every node.
    let (s, body) = post_admin(&c, &cluster, 1, "/admin/api/plugins/hello/disable").await;
    assert_eq!(
        (s, &body["revision"]),
        (StatusCode::OK, &json!(2)),
        "{body}"
    );
    every_node_answers(&c, &cluster, "/hello/world", StatusCode::NOT_FOUND).await;
    let (s, body) = post_admin(&c, &cluster, 2, "/admin/api/plugins/hello/enable").await;
    assert_eq!(
        (s, &body["revision"]),
        (StatusCode::OK, &json!(3)),
        "{body}"
    );
    every_node_answers(&c, &cluster, "/hello/world", StatusCode::OK).await;

    // Refused before anything is committed: not wasm, a component under another name, and a valid
    // component whose route clashes with hello's (only the whole set shows that).
    let not_wasm = std::fs::read(source_fixture("not-wasm.wasm")).unwrap();
    let (s, body) = push(&c, &cluster, 0, "hello", not_wasm).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"]
            .as_str()
            .unwrap()
            .contains("not a WebAssembly file"),
        "{body}"
    );
    let echo = std::fs::read(example("echo")).unwrap();
    let (s, body) = push(&c, &cluster, 1, "hello", echo).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not \"hello\""),
        "{body}"
    );
    let clash = std::fs::read(fixture("clash.wasm")).unwrap();
    let (s, body) = push(&c, &cluster, 2, "clash", clash).await;
    assert_eq!(s, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("/hello/{who}"),
        "{body}"
    );
    assert_eq!(
        status(&c, &cluster.url_of(0, "/admin/api/plugins")).await,
        Some(StatusCode::UNAUTHORIZED),
        "the plugin list needs the admin role"
    );
    let listed: Value = admin_get(&c, &cluster, 1, "/admin/api/plugins")
        .await
        .unwrap();
    assert_eq!(listed["revision"], 3, "nothing was committed: {listed}");
    assert_eq!(listed["plugins"].as_array().unwrap().len(), 1, "{listed}");
    converged_revision(&c, &cluster, 3).await;

    let r = c
        .delete(cluster.url_of(0, "/admin/api/plugins/hello"))
        .bearer_auth(&cluster.admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    every_node_answers(&c, &cluster, "/hello/world", StatusCode::NOT_FOUND).await;
    converged_revision(&c, &cluster, 4).await;

    // The nodes' own reports agree, and every change is in the audit log once.
    let overview: Value = eventually(
        Duration::from_secs(10),
        "the nodes report convergence",
        || async {
            let v: Value = admin_get(&c, &cluster, 2, "/admin/api/nodes").await?;
            (v["converged"] == true && v["nodes"].as_array()?.len() == 3).then_some(v)
        },
    )
    .await;
    assert_eq!(overview["revision"], 4, "{overview}");
    let page = c
        .get(cluster.url_of(0, "/admin/nodes"))
        .bearer_auth(&cluster.admin_key)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Every node serves it"), "{page}");
    assert!(page.contains("(this node)"), "{page}");
    let audit: Value = admin_get(&c, &cluster, 1, "/admin/api/audit?limit=50")
        .await
        .unwrap();
    let actions: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str().filter(|a| a.starts_with("plugin.")))
        .collect();
    assert_eq!(
        actions.iter().filter(|a| !a.contains("upload")).count(),
        4,
        "push, disable, enable, remove: {actions:?}"
    );
    assert_eq!(
        actions.iter().filter(|a| **a == "plugin.upload").count(),
        3,
        "the three refused uploads: {actions:?}"
    );
}

#[tokio::test]
async fn a_key_and_a_browser_session_from_one_node_work_on_another() {
    let cluster = Cluster::start(Postgres::shared().fresh_database(), 2);
    let c = client();
    converged_revision(&c, &cluster, 0).await;
    // A key made through node A authenticates on node B.
    let r = c
        .post(cluster.url_of(0, "/admin/api/keys"))
        .bearer_auth(&cluster.admin_key)
        .json(&json!({ "user": "root" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let key = r.json::<Value>().await.unwrap()["key"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = c
        .get(cluster.url_of(1, "/admin/api/users"))
        .bearer_auth(&key)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);

    // A session signed in on A works on B, and B checks its CSRF token.
    let r = c
        .post(cluster.url_of(0, "/admin/login"))
        .json(&json!({ "username": "root", "password": "a-long-password" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let cookie = r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .split(';')
        .next()
        .unwrap()
        .to_owned();
    let csrf = r.json::<Value>().await.unwrap()["csrf"]
        .as_str()
        .unwrap()
        .to_owned();
    let new_user = json!({ "name": "ada", "password": "a-password-for-ada" });
    let r = c
        .post(cluster.url_of(1, "/admin/api/users"))
        .header("cookie", &cookie)
        .json(&new_user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN, "no CSRF token");
    let r = c
        .post(cluster.url_of(1, "/admin/api/users"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .json(&new_user)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    // Signing out on B ends the session on A too.
    let r = c
        .post(cluster.url_of(1, "/admin/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    let r = c
        .get(cluster.url_of(0, "/admin/api/users"))
        .header("cookie", &cookie)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::UNAUTHORIZED);

    // The session cookie is Secure when the trusted proxy (127.0.0.1 here) says the client came over
    // HTTPS, and only then.
    let login = |proto: Option<&'static str>| {
        let mut r = c
            .post(cluster.url_of(0, "/admin/login"))
            .json(&json!({ "username": "root", "password": "a-long-password" }));
        if let Some(p) = proto {
            r = r.header("x-forwarded-proto", p);
        }
        async move {
            let r = r.send().await.unwrap();
            assert_eq!(r.status(), StatusCode::OK);
            r.headers()["set-cookie"].to_str().unwrap().to_owned()
        }
    };
    assert!(login(Some("https")).await.contains("; Secure"));
    assert!(!login(Some("http")).await.contains("Secure"));
    assert!(!login(None).await.contains("Secure"));
}

#[tokio::test]
async fn nodes_ride_out_a_database_restart_and_catch_a_missed_change_by_polling() {
    let dir = tempfile::tempdir().unwrap();
    let pg = Postgres::start(&dir.path().join("pg")).unwrap();
    pg.psql("postgres", "CREATE DATABASE cluster").unwrap();
    let mut cluster = Cluster::start(pg.url("cluster"), 2);
    let c = client();
    let hello = std::fs::read(example("hello")).unwrap();
    assert_eq!(
        push(&c, &cluster, 0, "hello", hello).await.0,
        StatusCode::OK
    );
    converged_revision(&c, &cluster, 1).await;

    // The database goes away: nodes keep serving plugins but report not ready (liveness stays up).
    pg.stop().unwrap();
    for i in 0..2 {
        let url = cluster.url_of(i, "/readyz");
        let body = eventually(
            Duration::from_secs(10),
            "a node reports the outage",
            || async {
                let (s, body) = readyz(&c, &url).await?;
                (s == StatusCode::SERVICE_UNAVAILABLE).then_some(body)
            },
        )
        .await;
        assert_eq!(body["reason"], "database unreachable", "{body}");
        assert_eq!(
            status(&c, &cluster.url_of(i, "/healthz")).await,
            Some(StatusCode::OK)
        );
        assert_eq!(
            status(&c, &cluster.url_of(i, "/hello/x")).await,
            Some(StatusCode::OK)
        );
    }
    pg.restart().unwrap();
    converged_revision(&c, &cluster, 1).await;

    // A change whose notification never arrives (made behind the nodes' backs, with no NOTIFY): the
    // poll finds it.
    pg.psql(
        "cluster",
        "BEGIN; UPDATE plugin_set SET enabled = 0 WHERE name = 'hello'; \
         UPDATE cluster SET revision = revision + 1; COMMIT;",
    )
    .unwrap();
    let started = std::time::Instant::now();
    every_node_answers(&c, &cluster, "/hello/x", StatusCode::NOT_FOUND).await;
    assert!(
        started.elapsed() < Duration::from_secs(POLL_SECS * 3),
        "found within the poll interval: {:?}",
        started.elapsed()
    );
    converged_revision(&c, &cluster, 2).await;

    // A node that was down when a change was made serves it when it comes back.
    cluster.stop(1);
    let (s, _) = post_admin(&c, &cluster, 0, "/admin/api/plugins/hello/enable").await;
    assert_eq!(s, StatusCode::OK);
    cluster.restart(1);
    converged_revision(&c, &cluster, 3).await;
    every_node_answers(&c, &cluster, "/hello/x", StatusCode::OK).await;

    // The CLI sees the same set.
    let listed = plugin_host_tests::run_host(
        &["plugin", "list", "--database", &cluster.url],
        Duration::from_secs(60),
    );
    assert!(listed.status.success(), "{}", listed.stderr);
    assert!(listed.stdout.starts_with("revision 3"), "{}", listed.stdout);
    assert!(
        listed.stdout.contains("hello") && listed.stdout.contains("enabled"),
        "{}",
        listed.stdout
    );

    // A revision no node can build (a component whose bytes do not match its SHA-256, written behind
    // the API's back): every node keeps serving revision 3 and reports the error; none stops being ready.
    pg.psql(
        "cluster",
        "BEGIN; INSERT INTO components VALUES (repeat('0', 64), '\\x0061736d', 4, 0); \
         UPDATE plugin_set SET sha256 = repeat('0', 64) WHERE name = 'hello'; \
         UPDATE cluster SET revision = 4; SELECT pg_notify('plugin_host_revision', '4'); COMMIT;",
    )
    .unwrap();
    let overview: Value = eventually(
        Duration::from_secs(10),
        "both nodes report the failed build",
        || async {
            let v: Value = admin_get(&c, &cluster, 0, "/admin/api/nodes").await?;
            let nodes = v["nodes"].as_array()?;
            (nodes
                .iter()
                .filter(|n| !n["error"].as_str().unwrap_or("").is_empty())
                .count()
                == 2)
                .then_some(v)
        },
    )
    .await;
    assert_eq!(
        (&overview["revision"], &overview["converged"]),
        (&json!(4), &json!(false)),
        "{overview}"
    );
    for n in overview["nodes"].as_array().unwrap() {
        assert_eq!(n["revision"], 3, "{n}");
        assert!(
            n["error"]
                .as_str()
                .unwrap()
                .contains("does not match its SHA-256"),
            "{n}"
        );
    }
    for i in 0..2 {
        let (s, body) = readyz(&c, &cluster.url_of(i, "/readyz")).await.unwrap();
        assert_eq!(
            (s, &body["revision"]),
            (StatusCode::OK, &json!(3)),
            "{body}"
        );
        assert_eq!(
            status(&c, &cluster.url_of(i, "/hello/x")).await,
            Some(StatusCode::OK)
        );
    }
}

/// Send GETs through `proxy` from `tasks` tasks until `stop`; (requests, failures, first failure).
fn load(
    proxy: &Haproxy,
    tasks: usize,
    stop: Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<(u64, u64, Option<String>)>> {
    (0..tasks)
        .map(|_| {
            let url = proxy.url("/hello/load");
            let stop = stop.clone();
            tokio::spawn(async move {
                let c = client();
                let (mut sent, mut failed, mut first) = (0u64, 0u64, None);
                while !stop.load(Ordering::Relaxed) {
                    sent += 1;
                    match c.get(&url).send().await {
                        Ok(r) if r.status() == StatusCode::OK => {}
                        Ok(r) => {
                            failed += 1;
                            first.get_or_insert(format!("status {}", r.status()));
                        }
                        Err(e) => {
                            failed += 1;
                            first.get_or_insert(format!("{e}"));
                        }
                    }
                }
                (sent, failed, first)
            })
        })
        .collect()
}

#[tokio::test]
async fn rolling_restart_and_reloads_under_load_lose_no_request_and_kill9_loses_no_write() {
    let mut cluster = Cluster::start(Postgres::shared().fresh_database(), 3);
    let c = client();
    for (name, file) in [("hello", example("hello")), ("notes", example("notes"))] {
        let (s, body) = push(&c, &cluster, 0, name, std::fs::read(file).unwrap()).await;
        assert_eq!(s, StatusCode::OK, "{body}");
    }
    converged_revision(&c, &cluster, 2).await;
    let proxy = Haproxy::start(&cluster.ports);
    eventually(Duration::from_secs(10), "haproxy serves", || async {
        (status(&c, &proxy.url("/hello/x")).await == Some(StatusCode::OK)).then_some(())
    })
    .await;

    let stop = Arc::new(AtomicBool::new(false));
    let loaders = load(&proxy, 4, stop.clone());
    // A reload every second, on a node that is not the one restarting.
    let restarting = Arc::new(AtomicU64::new(0));
    let reloader = {
        let (stop, restarting) = (stop.clone(), restarting.clone());
        let urls: Vec<String> = (0..3)
            .map(|i| cluster.url_of(i, "/admin/api/reload"))
            .collect();
        let key = cluster.admin_key.clone();
        tokio::spawn(async move {
            let c = client();
            let mut reloads = 0;
            let mut every = tokio::time::interval(Duration::from_secs(1));
            while !stop.load(Ordering::Relaxed) {
                every.tick().await;
                let target = (restarting.load(Ordering::Relaxed) as usize + 1) % 3;
                let r = c
                    .post(&urls[target])
                    .bearer_auth(&key)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), StatusCode::OK, "reload on node {target}");
                reloads += 1;
            }
            reloads
        })
    };
    for i in 0..3 {
        restarting.store(i as u64, Ordering::Relaxed);
        let stderr = cluster.stop(i);
        assert!(stderr.contains("not ready, still serving"), "{stderr}");
        cluster.restart(i);
        converged_revision(&c, &cluster, 2).await;
        // haproxy sees it up again (two good checks) before the next node goes.
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    stop.store(true, Ordering::Relaxed);
    let (mut sent, mut failed, mut first) = (0, 0, None);
    for l in loaders {
        let (s, f, e) = l.await.unwrap();
        sent += s;
        failed += f;
        first = first.or(e);
    }
    let reloads = reloader.await.unwrap();
    assert!(
        sent > 100 && reloads >= 3,
        "{sent} requests, {reloads} reloads"
    );
    assert_eq!(
        failed, 0,
        "{failed} of {sent} requests failed; first: {first:?}"
    );

    // Acknowledged writes survive a node's SIGKILL: notes written through haproxy while node 1 dies.
    let mut acknowledged = Vec::new();
    for n in 0..60 {
        if n == 20 {
            cluster.kill9(1);
        }
        let r = c
            .post(proxy.url("/notes"))
            .bearer_auth(&cluster.admin_key)
            .json(&json!({ "title": format!("note {n}"), "body": "kept" }))
            .send()
            .await;
        if let Ok(r) = r
            && r.status() == StatusCode::CREATED
        {
            let id = r.json::<Value>().await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_owned();
            acknowledged.push((n, id));
        }
    }
    assert!(
        acknowledged.len() >= 50,
        "most writes go through: {}",
        acknowledged.len()
    );
    cluster.restart(1);
    converged_revision(&c, &cluster, 2).await;
    for (n, id) in &acknowledged {
        for i in 0..3 {
            let note: Value = c
                .get(cluster.url_of(i, &format!("/notes/{id}")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            assert_eq!(note["title"], format!("note {n}"), "node {i}: {note}");
        }
    }
}

#[tokio::test]
async fn the_login_limit_holds_across_nodes_and_counts_real_clients_behind_the_proxy() {
    let cluster = Cluster::start(Postgres::shared().fresh_database(), 3);
    let c = client();
    converged_revision(&c, &cluster, 0).await;
    let proxy = Haproxy::start(&cluster.ports);
    eventually(Duration::from_secs(10), "haproxy serves", || async {
        (status(&c, &proxy.url("/readyz")).await == Some(StatusCode::OK)).then_some(())
    })
    .await;
    let attempt = |client_addr: &'static str, user: &'static str, password: &'static str| {
        let c = c.clone();
        let url = proxy.url("/admin/login");
        async move {
            c.post(url)
                .header("x-forwarded-for", client_addr)
                .json(&json!({ "username": user, "password": password }))
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    // The default allows 5 free failures per user name and per client. Round robin spreads the attempts
    // over the three nodes; the shared count locks the sixth one's user and client out on every node.
    for n in 0..6 {
        assert_eq!(
            attempt("198.51.100.7", "root", "wrong").await,
            StatusCode::UNAUTHORIZED,
            "attempt {n}"
        );
    }
    // The first lockout lasts a second: these two checks are answered before any password is checked.
    assert_eq!(
        attempt("203.0.113.5", "root", "a-long-password").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the user name is locked for every client"
    );
    assert_eq!(
        attempt("198.51.100.7", "someone-else", "wrong").await,
        StatusCode::TOO_MANY_REQUESTS,
        "the client is locked out whatever name it tries"
    );
    // Another real client behind the same proxy is counted by its own address, not the proxy's.
    assert_eq!(
        attempt("203.0.113.5", "ada", "wrong").await,
        StatusCode::UNAUTHORIZED
    );
}
