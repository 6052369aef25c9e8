//! Debian's headless Chromium driven through `chromedriver` (WebDriver, with fantoccini), for the admin
//! UI's end-to-end test. `make test` installs both packages when missing; nothing is downloaded.
//!
//! - chromedriver starts on `--port=0` in its own process group; dropping [`Browser`] ends the session
//!   and kills the group, so no Chromium outlives a test, even one that panics.
//! - Chromium talks to loopback only: background services are switched off by flags and prefs, and a
//!   dead local proxy catches anything else.
//! - [`Browser::console_errors`] drains the console log (console.error, uncaught exceptions, failed
//!   loads, Content-Security-Policy violations) through chromedriver's log endpoint.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use fantoccini::wd::{Capabilities, WebDriverCompatibleCommand};
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{Value, json};

/// Headless, root-safe, and quiet on the network.
const CHROMIUM_ARGS: &[&str] = &[
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--hide-scrollbars",
    "--mute-audio",
    "--no-first-run",
    "--no-default-browser-check",
    "--no-pings",
    "--disable-background-networking",
    "--disable-component-update",
    "--component-updater=url-source=http://127.0.0.1:9/update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--disable-breakpad",
    "--metrics-recording-only",
    "--safebrowsing-disable-auto-update",
    "--disable-field-trial-config",
    "--disable-search-engine-choice-screen",
    "--disable-features=Translate,OptimizationHints,OptimizationGuideModelDownloading,OptimizationHintsFetching,OptimizationTargetPrediction,MediaRouter,AutofillServerCommunication,CertificateTransparencyComponentUpdater,PasswordLeakDetection,NetworkTimeServiceQuerying",
    // Anything not on loopback goes to a closed local port (loopback bypasses proxies).
    "--proxy-server=http://127.0.0.1:9",
];

/// Profile preferences: no prediction, no password manager, no remote search engine.
fn preferences() -> Value {
    json!({
        "net": { "network_prediction_options": 2 },
        "credentials_enable_service": false,
        "profile": { "password_manager_enabled": false, "password_manager_leak_detection": false },
        "default_search_provider_data": { "template_url_data": {
            "short_name": "none", "keyword": "none", "url": "http://127.0.0.1:9/?q={searchTerms}"
        }},
    })
}

/// The longest the tour waits for a page, an element or an address.
pub const WAIT: Duration = Duration::from_secs(10);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(25);

static INSTANCES: AtomicUsize = AtomicUsize::new(0);

/// The chromedriver process, its session and its scratch directory; cleaned up on drop.
struct Driver {
    child: Child,
    port: u16,
    session: Option<String>,
    scratch: PathBuf,
}

impl Drop for Driver {
    fn drop(&mut self) {
        // Ending the session makes chromedriver quit Chromium; the runtime may be gone (a panic), so
        // this is a blocking request.
        if let Some(id) = self.session.take() {
            let _ = blocking_request(self.port, "DELETE", &format!("/session/{id}"));
        }
        // chromedriver and anything it started share its process group.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_dir_all(&self.scratch);
    }
}

/// Check, before anything starts, that both programs exist and are of the same major version
/// (chromedriver refuses a browser of another one, with a message that is easy to miss).
fn preflight(driver: &str, chromium: &str) -> Result<()> {
    let hint = "`make browser` installs Debian's chromium and chromium-driver";
    let browser = major_version(chromium).with_context(|| format!("no usable Chromium: {hint}"))?;
    let driven =
        major_version(driver).with_context(|| format!("no usable chromedriver: {hint}"))?;
    if browser != driven {
        bail!(
            "{chromium} is version {browser} but {driver} is version {driven}: they must match \
             (install both from the same source, e.g. `apt-get install chromium chromium-driver`)"
        );
    }
    Ok(())
}

/// The major version `program --version` prints (its first dotted number).
fn major_version(program: &str) -> Result<u32> {
    let output = Command::new(program)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{program} --version`"))?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "`{program} --version` failed ({}): {text}{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    text.split_whitespace()
        .find_map(|word| {
            word.split('.')
                .next()?
                .parse()
                .ok()
                .filter(|_| word.contains('.'))
        })
        .with_context(|| format!("`{program} --version` printed no version: {text:?}"))
}

/// One bodiless HTTP/1.1 request to chromedriver; reads `Content-Length` bytes of answer (it keeps
/// the connection open whatever `Connection` says).
fn blocking_request(port: u16, method: &str, path: &str) -> std::io::Result<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(15)))?;
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
    )?;
    let mut reader = BufReader::new(stream);
    let mut length = 0usize;
    loop {
        let mut line = String::new();
        if reader.read_line(&mut line)? == 0 || line == "\r\n" {
            break;
        }
        if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
            length = v.trim().parse().unwrap_or(0);
        }
    }
    let mut body = vec![0; length];
    reader.read_exact(&mut body)?;
    Ok(String::from_utf8_lossy(&body).into_owned())
}

/// chromedriver's log endpoint (`POST /session/{id}/se/log {"type":"browser"}`): returns and clears
/// the console entries buffered so far.
#[derive(Debug)]
struct BrowserLog;

impl WebDriverCompatibleCommand for BrowserLog {
    fn endpoint(
        &self,
        base: &url::Url,
        session: Option<&str>,
    ) -> std::result::Result<url::Url, url::ParseError> {
        base.join(&format!("session/{}/se/log", session.unwrap_or_default()))
    }

    fn method_and_body(&self, _url: &url::Url) -> (http::Method, Option<String>) {
        (http::Method::POST, Some(r#"{"type":"browser"}"#.into()))
    }
}

/// A headless Chromium session.
pub struct Browser {
    client: Option<Client>,
    driver: Driver,
}

impl Browser {
    /// Start chromedriver and open a Chromium window with a 1280×900 viewport.
    pub async fn start() -> Result<Self> {
        let n = INSTANCES.fetch_add(1, Ordering::Relaxed);
        let scratch =
            std::env::temp_dir().join(format!("plugin-host-browser-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        let (home, profile) = (scratch.join("home"), scratch.join("profile"));
        std::fs::create_dir_all(&home)?;
        std::fs::create_dir_all(&profile)?;
        let program = std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into());
        let chromium = std::env::var("CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
        preflight(&program, &chromium)?;
        let mut child = Command::new(&program)
            .args(["--port=0", "--log-level=WARNING"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .process_group(0)
            // Chromium writes crash databases and caches under HOME: keep them in the scratch dir.
            .env("HOME", &home)
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("XDG_CACHE_HOME", home.join(".cache"))
            .spawn()
            .with_context(|| {
                format!(
                    "cannot start {program} (`make browser` installs chromium and chromium-driver)"
                )
            })?;
        // chromedriver prints "... started successfully on port N." once it listens; its output is
        // drained for the rest of its life so it never blocks on a full pipe.
        let stdout = child.stdout.take().expect("piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("started successfully on port ").nth(1)
                    && let Some(tx) = tx.take()
                {
                    let _ = tx.send(rest.trim_end_matches('.').trim().parse::<u16>());
                }
            }
        });
        let mut driver = Driver {
            child,
            port: 0,
            session: None,
            scratch,
        };
        driver.port = rx
            .recv_timeout(Duration::from_secs(20))
            .context("chromedriver did not report its port")?
            .context("chromedriver reported a bad port")?;
        let mut args: Vec<String> = CHROMIUM_ARGS.iter().map(|s| (*s).to_owned()).collect();
        args.push(format!("--user-data-dir={}", profile.display()));
        let mut capabilities = Capabilities::new();
        capabilities.insert("browserName".into(), json!("chrome"));
        capabilities.insert(
            "goog:chromeOptions".into(),
            json!({ "binary": chromium, "args": args, "prefs": preferences() }),
        );
        capabilities.insert("goog:loggingPrefs".into(), json!({ "browser": "ALL" }));
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let client = ClientBuilder::new(connector)
            .capabilities(capabilities)
            .connect(&format!("http://127.0.0.1:{}", driver.port))
            .await
            .with_context(|| {
                format!(
                    "chromedriver started but could not start {chromium} (its own message is above; \
                     when it mentions the sandbox or /dev/shm, the flags in CHROMIUM_ARGS are where to look)"
                )
            })?;
        driver.session = client.session_id().await?;
        let browser = Self {
            client: Some(client),
            driver,
        };
        browser.resize(1280, 900).await?;
        Ok(browser)
    }

    fn client(&self) -> &Client {
        self.client.as_ref().expect("the browser is open")
    }

    /// Navigate to `url` and wait for the page to load.
    pub async fn goto(&self, url: &str) -> Result<()> {
        Ok(self.client().goto(url).await?)
    }

    /// Type `value` into the (cleared) field `selector`.
    pub async fn fill(&self, selector: &str, value: &str) -> Result<()> {
        let field = self.find(selector).await?;
        field.clear().await?;
        field.send_keys(value).await?;
        Ok(())
    }

    /// Choose `file` in the file input `selector`.
    pub async fn choose_file(&self, selector: &str, file: &Path) -> Result<()> {
        let path = std::fs::canonicalize(file)?;
        let input = self.find(selector).await?;
        input
            .send_keys(path.to_str().ok_or_else(|| anyhow!("non-UTF-8 path"))?)
            .await?;
        Ok(())
    }

    /// Type `keys` into whatever has the focus, as a keyboard would (`\t` moves the focus on, `\n`
    /// presses Enter).
    pub async fn type_keys(&self, keys: &str) -> Result<()> {
        let keys: String = keys
            .chars()
            .map(|c| match c {
                '\t' => char::from(fantoccini::key::Key::Tab),
                '\n' => char::from(fantoccini::key::Key::Enter),
                c => c,
            })
            .collect();
        self.client()
            .active_element()
            .await?
            .send_keys(&keys)
            .await?;
        Ok(())
    }

    /// Click `selector` on the page, for a click that does not leave it (see
    /// [`Browser::click_and_wait`] for one that does).
    pub async fn click(&self, selector: &str) -> Result<()> {
        self.find(selector).await?.click().await?;
        Ok(())
    }

    /// Click `selector` and wait until the page it was on has been replaced by the next one, fully
    /// loaded. WebDriver's click returns as soon as the click is dispatched; whether it also waits for
    /// the navigation that click starts is up to the driver, so reading the next page right away can
    /// read the old one.
    pub async fn click_and_wait(&self, selector: &str) -> Result<()> {
        let element = self.find(selector).await?;
        self.navigation(&format!("clicking {selector:?}"), async {
            element.click().await?;
            Ok(())
        })
        .await
    }

    /// [`Browser::type_keys`] for keys that submit a form: waits for the next page as
    /// [`Browser::click_and_wait`] does.
    pub async fn type_keys_and_wait(&self, keys: &str) -> Result<()> {
        self.navigation("typing into the page", self.type_keys(keys))
            .await
    }

    /// Mark the current document, run `action`, then wait (at most [`WAIT`]) until a document without
    /// the mark has finished loading. Errors while the browser is between documents (no execution
    /// context yet) count as "not yet".
    async fn navigation(&self, what: &str, action: impl Future<Output = Result<()>>) -> Result<()> {
        self.eval("window.__tourOldPage = true; return true")
            .await?;
        action.await?;
        let deadline = std::time::Instant::now() + WAIT;
        let probe = "return [window.__tourOldPage === true, document.readyState]";
        loop {
            if let Ok(state) = self.eval(probe).await
                && state[0] == false
                && state[1] == "complete"
            {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                bail!(
                    "{what} did not lead to a new page within {WAIT:?}; the browser shows {}",
                    self.describe().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Wait (at most [`WAIT`]) until the current address satisfies `expected`; `what` names the
    /// expectation in the error, which also says what the browser shows instead.
    pub async fn wait_for_url(&self, what: &str, expected: impl Fn(&str) -> bool) -> Result<()> {
        let deadline = std::time::Instant::now() + WAIT;
        loop {
            if let Ok(url) = self.url().await
                && expected(&url)
            {
                return Ok(());
            }
            if std::time::Instant::now() >= deadline {
                bail!(
                    "waited {WAIT:?} for {what}; the browser shows {}",
                    self.describe().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The current address and heading, for error messages.
    async fn describe(&self) -> String {
        let url = self
            .url()
            .await
            .unwrap_or_else(|e| format!("<no address: {e}>"));
        let heading = self
            .eval("const h = document.querySelector('h1'); return h ? h.innerText : document.title")
            .await
            .map(|v| v.as_str().unwrap_or_default().to_owned())
            .unwrap_or_else(|e| format!("<page not readable: {e}>"));
        format!("{url} (\"{heading}\")")
    }

    /// The rendered text of `selector`.
    pub async fn text(&self, selector: &str) -> Result<String> {
        Ok(self.find(selector).await?.text().await?)
    }

    async fn find(&self, selector: &str) -> Result<fantoccini::elements::Element> {
        self.client()
            .wait()
            .at_most(WAIT)
            .for_element(Locator::Css(selector))
            .await
            .with_context(|| format!("no element {selector:?} appeared within {WAIT:?}"))
    }

    /// The address of the current page.
    pub async fn url(&self) -> Result<String> {
        Ok(self.client().current_url().await?.to_string())
    }

    /// Run `script` (a function body that `return`s) in the page.
    pub async fn eval(&self, script: &str) -> Result<Value> {
        Ok(self.client().execute(script, vec![]).await?)
    }

    /// Save a PNG of the viewport to `path`.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let png = self.client().screenshot().await?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, png)?;
        Ok(())
    }

    /// Make the viewport `width`×`height` (headless Chromium keeps room for window chrome, so the
    /// window is grown by the difference).
    pub async fn resize(&self, width: u32, height: u32) -> Result<()> {
        let c = self.client();
        c.set_window_size(width, height).await?;
        let inner = c
            .execute("return [window.innerWidth, window.innerHeight]", vec![])
            .await?;
        let (w, h) = (
            inner[0].as_u64().unwrap_or(0) as u32,
            inner[1].as_u64().unwrap_or(0) as u32,
        );
        if (w, h) != (width, height) {
            c.set_window_size(
                width + width.saturating_sub(w),
                height + height.saturating_sub(h),
            )
            .await?;
        }
        Ok(())
    }

    /// The console errors since the last call (each entry as `[source] message`).
    pub async fn console_errors(&self) -> Result<Vec<String>> {
        let entries = self.client().issue_cmd(BrowserLog).await?;
        let Some(entries) = entries.as_array() else {
            bail!("chromedriver's log answer is not a list: {entries}");
        };
        Ok(entries
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| {
                format!(
                    "[{}] {}",
                    e["source"].as_str().unwrap_or_default(),
                    e["message"].as_str().unwrap_or_default()
                )
            })
            .collect())
    }

    /// End the session (Chromium quits) and stop chromedriver.
    pub async fn close(mut self) -> Result<()> {
        if let Some(client) = self.client.take() {
            client.close().await?;
            self.driver.session = None;
        }
        Ok(())
    }
}
