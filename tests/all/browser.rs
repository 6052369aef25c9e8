//! The admin UI in a real browser (Debian's headless Chromium) against the real binary: first-run setup
//! → sign out → sign in → dashboard → upload a plugin → its route answers → create a key → the key works
//! from an HTTP client → revoke it → it stops working → reload → a non-admin's 403 → sign out. Every page
//! is screenshotted into target/test-output/admin/, must have no console errors (script errors, failed
//! loads, CSP violations) and must label every form field.

use std::path::PathBuf;
use std::time::Duration;

use plugin_host_tests::browser::Browser;
use plugin_host_tests::{Fetch, HostProcess, example, plugins_dir_with, repo_root};
use reqwest::StatusCode;

const SECRET: &str = "browser-test-bootstrap-secret";
const PASSWORD: &str = "a browser-test password";

/// The browser and where its screenshots go; each `page` call checks and records the current page.
struct Tour {
    browser: Browser,
    base: String,
    shots: PathBuf,
    taken: usize,
}

impl Tour {
    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    async fn goto(&self, path: &str) {
        self.browser.goto(&self.url(path)).await.unwrap();
    }

    /// Check the page now showing and save its screenshot as `NN-name.png`.
    async fn page(&mut self, name: &str) {
        self.page_answered(name, None).await;
    }

    /// [`Tour::page`] for a page answered with an error `status` on purpose: Chromium reports the
    /// document's own status as a failed load, and only that entry is allowed.
    async fn page_answered(&mut self, name: &str, status: Option<u16>) {
        let expected = status.map(|s| format!("the server responded with a status of {s}"));
        let errors: Vec<String> = self
            .browser
            .console_errors()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| {
                !expected
                    .as_ref()
                    .is_some_and(|x| e.starts_with("[network]") && e.contains(x.as_str()))
            })
            .collect();
        assert!(errors.is_empty(), "console errors on {name}: {errors:#?}");
        // Every visible form field has a label (or an aria-label), and the page says its language.
        let unlabelled = self
            .browser
            .eval(
                "return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
                   .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
                   .map(e => e.name || e.id)",
            )
            .await
            .unwrap();
        assert_eq!(
            unlabelled,
            serde_json::json!([]),
            "unlabelled fields on {name}"
        );
        let lang = self
            .browser
            .eval("return document.documentElement.lang")
            .await
            .unwrap();
        assert_eq!(lang, "en", "{name}");
        self.taken += 1;
        let file = self.shots.join(format!("{:02}-{name}.png", self.taken));
        self.browser.screenshot(&file).await.unwrap();
    }

    async fn text(&self, selector: &str) -> String {
        self.browser.text(selector).await.unwrap()
    }

    /// Click `selector`, wait for the page it leads to, and check that page's path begins with
    /// `landing` (the error says what the browser shows instead).
    async fn click_to(&self, selector: &str, landing: &str) {
        self.browser.click_and_wait(selector).await.unwrap();
        self.expect_path(landing).await;
    }

    /// Wait until the path (and query) of the page showing begins with `landing`.
    async fn expect_path(&self, landing: &str) {
        let full = self.url(landing);
        self.browser
            .wait_for_url(&format!("a page at {landing}"), |url| {
                url.starts_with(&full)
            })
            .await
            .unwrap();
    }

    async fn path(&self) -> String {
        let url = self.browser.url().await.unwrap();
        url.strip_prefix(&self.base).unwrap_or(&url).to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_runs_the_server_from_a_browser() {
    let plugins = plugins_dir_with(&[&example("hello"), &example("status")]);
    let data = tempfile::tempdir().unwrap();
    let host = HostProcess::serve_bootstrap(
        plugins.path(),
        data.path(),
        Some(SECRET),
        &[("RUST_LOG", "warn")],
    );
    let base = format!("http://{}", host.addr);
    let shots = repo_root().join("target/test-output/admin");
    let _ = std::fs::remove_dir_all(&shots);
    let http = reqwest::Client::new();
    let mut tour = Tour {
        browser: Browser::start().await.unwrap(),
        base: base.clone(),
        shots: shots.clone(),
        taken: 0,
    };

    // First run: /admin is the setup form; it creates the admin and signs them in.
    tour.goto("/admin").await;
    assert_eq!(tour.text("h1").await, "Set up Plugin Host");
    tour.page("setup").await;
    tour.browser.fill("#secret", SECRET).await.unwrap();
    tour.browser.fill("#username", "olga").await.unwrap();
    tour.browser.fill("#password", PASSWORD).await.unwrap();
    tour.browser.fill("#confirm", PASSWORD).await.unwrap();
    tour.click_to("#setup button[type=submit]", "/admin").await;
    assert_eq!(tour.text("h1").await, "Dashboard");
    assert_eq!(tour.path().await, "/admin");

    // Sign out, and back in through the login page (which returns to where the browser was going).
    tour.click_to("#sign-out", "/admin/login").await;
    tour.goto("/admin/plugins").await;
    assert_eq!(tour.path().await, "/admin/login?next=%2Fadmin%2Fplugins");
    tour.page("login").await;
    // By keyboard alone: the name field has the focus, Tab reaches the password, Enter submits.
    tour.browser
        .type_keys_and_wait(&format!("olga\t{PASSWORD}\n"))
        .await
        .unwrap();
    tour.expect_path("/admin/plugins").await;
    assert_eq!(tour.path().await, "/admin/plugins");
    tour.goto("/admin").await;
    assert_eq!(tour.text("#generation").await, "1");
    assert!(tour.text("#rss").await.ends_with("MiB"));
    tour.browser.resize(1280, 1300).await.unwrap();
    tour.page("dashboard").await;
    tour.browser.resize(1280, 900).await.unwrap();

    // Upload a plugin; its route answers at once.
    assert_eq!(
        http.get(format!("{base}/notes")).fetch_status().await,
        StatusCode::NOT_FOUND
    );
    tour.goto("/admin/plugins").await;
    tour.browser
        .choose_file("#plugin-file", &example("notes"))
        .await
        .unwrap();
    tour.click_to("#upload button[type=submit]", "/admin/plugins")
        .await;
    let notice = tour.text("#notice").await;
    assert!(notice.starts_with("Added plugin notes"), "{notice}");
    tour.page("plugins-uploaded").await;
    assert_eq!(
        http.get(format!("{base}/notes")).fetch_status().await,
        StatusCode::OK
    );
    tour.click_to("#plugin-notes a", "/admin/plugins/notes")
        .await;
    assert_eq!(tour.path().await, "/admin/plugins/notes");
    tour.page("plugin-notes").await;
    tour.goto("/admin/routes").await;
    tour.page("routes").await;

    // Create a key for the notes routes; it is shown once, with a curl example, and works.
    tour.goto("/admin/keys").await;
    tour.browser.fill("#key-scopes", "/notes").await.unwrap();
    tour.browser.fill("#key-expires", "30d").await.unwrap();
    tour.click_to("#create-key button[type=submit]", "/admin/keys")
        .await;
    let key = tour.text("#new-key-value").await;
    assert!(key.starts_with("phk_"), "{key}");
    let curl = tour.text("#new-key-curl").await;
    assert!(curl.contains(&key) && curl.contains("/notes"), "{curl}");
    // The optional script shows the copy button; clicking it must not raise an error.
    tour.browser
        .click("button[data-copy=new-key-value]")
        .await
        .unwrap();
    tour.page("key-created").await;
    let add_note = |key: Option<&str>| {
        let request = http
            .post(format!("{base}/notes"))
            .json(&serde_json::json!({ "title": "from the browser test", "body": "hi" }));
        match key {
            Some(k) => request.bearer_auth(k),
            None => request,
        }
        .send()
    };
    assert_eq!(
        add_note(None).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );
    let created = add_note(Some(&key)).await.unwrap().status();
    assert!(created.is_success(), "the new key works: {created}");

    // Revoke it: it stops working.
    tour.goto("/admin/keys").await;
    tour.click_to("form input[name=id] ~ button[type=submit]", "/admin/keys")
        .await;
    assert!(tour.text("#notice").await.starts_with("Revoked key"));
    tour.page("key-revoked").await;
    assert_eq!(
        add_note(Some(&key)).await.unwrap().status(),
        StatusCode::UNAUTHORIZED
    );

    // Reload from the dashboard.
    tour.goto("/admin").await;
    tour.click_to("#reload button[type=submit]", "/admin").await;
    let notice = tour.text("#notice").await;
    assert!(notice.starts_with("Reloaded: generation"), "{notice}");
    tour.page("reloaded").await;

    // Users: add a plain user; the audit log shows everything done so far.
    tour.goto("/admin/users").await;
    tour.browser.fill("#new-user-name", "una").await.unwrap();
    tour.browser
        .fill("#new-user-password", PASSWORD)
        .await
        .unwrap();
    tour.click_to("#add-user button[type=submit]", "/admin/users")
        .await;
    assert_eq!(tour.text("#notice").await, "Added una (user).");
    tour.page("users").await;
    tour.goto("/admin/audit").await;
    let log = tour.text("table").await;
    for action in [
        "user.add",
        "login",
        "logout",
        "plugin.upload",
        "key.create",
        "key.revoke",
        "reload",
    ] {
        assert!(log.contains(action), "{action} in the audit log:\n{log}");
    }
    tour.page("audit").await;

    // The dashboard on a phone.
    tour.goto("/admin").await;
    tour.browser.resize(390, 844).await.unwrap();
    let overflow = tour
        .browser
        .eval("return document.documentElement.scrollWidth - window.innerWidth")
        .await
        .unwrap();
    assert!(
        overflow.as_i64().unwrap() <= 0,
        "the page fits a phone's width ({overflow} px wider)"
    );
    tour.page("dashboard-phone").await;
    tour.browser.resize(1280, 900).await.unwrap();

    // A non-admin gets a 403 page; signing out ends at the login page.
    tour.click_to("#sign-out", "/admin/login").await;
    tour.goto("/admin/login").await;
    tour.browser.fill("#username", "una").await.unwrap();
    tour.browser.fill("#password", PASSWORD).await.unwrap();
    tour.click_to("#login button[type=submit]", "/admin").await;
    assert_eq!(tour.text("h1").await, "403 Forbidden");
    tour.page_answered("forbidden", Some(403)).await;
    tour.click_to("#sign-out", "/admin/login").await;
    tour.goto("/admin").await;
    assert_eq!(tour.path().await, "/admin/login?next=%2Fadmin");
    tour.page("signed-out").await;

    tour.browser.close().await.unwrap();
    let saved = std::fs::read_dir(&shots).unwrap().count();
    assert_eq!(
        saved,
        tour.taken,
        "one screenshot per page in {}",
        shots.display()
    );
    host.terminate();
    let (_, stderr) = host.wait(Duration::from_secs(15));
    assert!(
        !stderr.contains(PASSWORD) && !stderr.contains(&key),
        "no secrets in the log"
    );
}
