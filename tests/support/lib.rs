//! Helpers for the integration tests: where the built plugins and fixtures are, a real server started
//! in-process on 127.0.0.1:0, and the real `plugin-host` binary started as a child process.
//!
//! The plugins are built by `make plugins` (which `make test` runs first); a test that cannot find them
//! says so instead of failing obscurely.

use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub mod browser;
pub mod pages;

use plugin_host::app::state::AppState;
use plugin_host::bindings::types::Role;
use plugin_host::config::Config;
use plugin_host::server::Server;

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

fn built(dir: &str, name: &str) -> PathBuf {
    let path = repo_root().join("target").join(dir).join(name);
    assert!(
        path.exists(),
        "{} is missing: run `make plugins` (or `make test`) first",
        path.display()
    );
    path
}

/// An example plugin component built by `make plugins`, e.g. `example("hello")`.
pub fn example(name: &str) -> PathBuf {
    built("plugins", &format!("{name}.wasm"))
}

/// A fixture built by `make plugins` into target/fixtures.
pub fn fixture(name: &str) -> PathBuf {
    built("fixtures", name)
}

/// A fixture kept as a file in the repository (tests/fixtures).
pub fn source_fixture(name: &str) -> PathBuf {
    repo_root().join("tests/fixtures").join(name)
}

/// The `plugin-host` binary of the same build profile as this test.
pub fn host_bin() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    // target/<profile>/deps/<test-binary> -> target/<profile>/plugin-host
    let bin = exe.parent().unwrap().parent().unwrap().join("plugin-host");
    assert!(
        bin.exists(),
        "{} is missing: build it with `cargo build --release -p plugin-host`",
        bin.display()
    );
    bin
}

/// Put `source` into `dir` as `name` the way operators should: write a hidden file, then rename it.
pub fn deploy(dir: &Path, source: &Path, name: &str) {
    let tmp = dir.join(format!(".{name}.tmp"));
    std::fs::copy(source, &tmp).unwrap();
    std::fs::rename(&tmp, dir.join(name)).unwrap();
}

/// A temporary plugins directory holding copies of `files`.
pub fn plugins_dir_with(files: &[&Path]) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for f in files {
        std::fs::copy(f, dir.path().join(f.file_name().unwrap())).unwrap();
    }
    dir
}

/// A configuration for tests: port 0 on loopback, the given plugins directory, a temporary data dir.
pub fn test_config(plugins_dir: &Path, data_dir: &Path) -> Config {
    let mut config = Config::defaults();
    config.listen = "127.0.0.1:0".parse().unwrap();
    config.plugins_dir = plugins_dir.to_owned();
    config.data_dir = data_dir.to_owned();
    config.templates_dir = repo_root().join("templates");
    config.shutdown_grace_ms = 2000;
    config
}

/// A real server running in this process on 127.0.0.1:0.
pub struct TestServer {
    pub addr: SocketAddr,
    pub state: Arc<AppState>,
    pub client: reqwest::Client,
    /// An API key with the admin role (its owner is the user [`ADMIN_USER`]).
    pub admin_key: String,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
    _data: tempfile::TempDir,
}

/// The admin every [`TestServer`] starts with, and its password.
pub const ADMIN_USER: &str = "admin";
pub const ADMIN_PASSWORD: &str = "correct horse battery staple";

impl TestServer {
    /// Serve the example plugins with the default limits.
    pub async fn examples() -> Self {
        Self::start(|_| {}).await
    }

    /// Serve the example plugins (target/plugins) after `adjust` has changed the configuration.
    pub async fn start(adjust: impl FnOnce(&mut Config)) -> Self {
        let data = tempfile::tempdir().unwrap();
        Self::start_in(data, adjust).await
    }

    /// Serve with `data` as the data directory (e.g. one a previous server used), after `adjust`.
    /// Provisions the admin [`ADMIN_USER`] and an admin key through the library, as the CLI would.
    pub async fn start_in(data: tempfile::TempDir, adjust: impl FnOnce(&mut Config)) -> Self {
        let mut config = test_config(example("hello").parent().unwrap(), data.path());
        adjust(&mut config);
        let server = Server::bind(config).await.expect("server starts");
        let addr = server.local_addr();
        let state = server.state();
        let db = &state.auth().db;
        if plugin_host::accounts::users::get(db, ADMIN_USER)
            .await
            .unwrap()
            .is_none()
        {
            plugin_host::accounts::users::create(db, ADMIN_USER, ADMIN_PASSWORD, Role::Admin)
                .await
                .unwrap();
        }
        let admin_key = plugin_host::accounts::keys::create(db, ADMIN_USER, None, &[], None)
            .await
            .unwrap()
            .key;
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            rx.await.ok();
        }));
        Self {
            addr,
            state,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            admin_key,
            shutdown: Some(tx),
            task: Some(task),
            _data: data,
        }
    }

    /// Stop the server and keep its data directory (to start another server on it).
    pub async fn stop_keep_data(mut self) -> tempfile::TempDir {
        self.shutdown_and_wait().await;
        let placeholder = tempfile::tempdir().unwrap();
        std::mem::replace(&mut self._data, placeholder)
    }

    async fn shutdown_and_wait(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            tx.send(()).ok();
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap().unwrap();
        }
    }

    /// GET `path` with the admin key; status and JSON body.
    pub async fn admin_get_json(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self
            .client
            .get(self.url(path))
            .bearer_auth(&self.admin_key)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// The server's data directory (compile cache and the database).
    pub fn data_dir(&self) -> &Path {
        self._data.path()
    }

    /// POST `/admin/api/reload`; returns status and the JSON outcome.
    pub async fn reload(&self) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self
            .client
            .post(self.url("/admin/api/reload"))
            .bearer_auth(&self.admin_key)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// GET `/metrics` as text.
    pub async fn metrics_text(&self) -> String {
        let response = self.client.get(self.url("/metrics")).send().await.unwrap();
        response.text().await.unwrap()
    }

    /// `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// GET `path` and return status and JSON body.
    pub async fn get_json(&self, path: &str) -> (reqwest::StatusCode, serde_json::Value) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// Stop the server and wait for it to finish.
    pub async fn stop(mut self) {
        self.shutdown_and_wait().await;
    }
}

/// Read a host error response: checks that its JSON body carries the same request id as its
/// `x-request-id` header, and returns the status and the error message.
pub async fn json_error(response: reqwest::Response) -> (reqwest::StatusCode, String) {
    let status = response.status();
    let id = response.headers()["x-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["request_id"], id.as_str(), "{body}");
    (
        status,
        body["error"].as_str().expect("an error message").to_owned(),
    )
}

/// Request `path` over and over until `stop` is set; every answer must be a 200. Returns the count.
pub fn request_stream(
    server: &TestServer,
    path: &str,
    stop: Arc<std::sync::atomic::AtomicBool>,
) -> tokio::task::JoinHandle<u32> {
    let client = server.client.clone();
    let url = server.url(path);
    tokio::spawn(async move {
        let mut answered = 0;
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            let response = client.get(&url).send().await.unwrap();
            assert_eq!(response.status(), reqwest::StatusCode::OK, "{url}");
            answered += 1;
        }
        answered
    })
}

/// The `plugin-host` binary running as a child process.
pub struct HostProcess {
    pub child: Child,
    pub addr: SocketAddr,
    /// Everything the process wrote to stderr so far (drained by a thread so the pipe never fills).
    pub stderr: Arc<std::sync::Mutex<String>>,
    stderr_reader: Option<std::thread::JoinHandle<()>>,
}

/// What a `plugin-host` process that exited printed.
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// Run `plugin-host ARGS` to completion (bounded by `limit`).
pub fn run_host(args: &[&str], limit: Duration) -> Exited {
    run_host_with_stdin(args, None, limit)
}

/// Run `plugin-host ARGS` with `stdin` as its standard input (none: empty), bounded by `limit`.
pub fn run_host_with_stdin(args: &[&str], stdin: Option<&str>, limit: Duration) -> Exited {
    let mut child = Command::new(host_bin())
        .args(args)
        .env("RUST_LOG", "warn")
        .env_remove("PLUGIN_HOST_BOOTSTRAP_SECRET")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().unwrap();
        pipe.write_all(input.as_bytes()).unwrap();
    }
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if started.elapsed() > limit {
            child.kill().ok();
            panic!("plugin-host {args:?} did not exit within {limit:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    Exited {
        status,
        stdout,
        stderr,
    }
}

impl HostProcess {
    /// Start `plugin-host serve --listen 127.0.0.1:0 ARGS` and wait for its "listening on" line.
    pub fn serve(args: &[&str]) -> Self {
        Self::serve_env(args, &[])
    }

    /// [`HostProcess::serve`] with extra environment variables.
    pub fn serve_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        let mut child = Command::new(host_bin())
            .arg("serve")
            .args(["--listen", "127.0.0.1:0"])
            .args(args)
            // Tests read info-level lines, and set up bootstrap themselves: what the calling shell
            // has in its environment must not change either.
            .env("RUST_LOG", "info")
            .env_remove("PLUGIN_HOST_BOOTSTRAP_SECRET")
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(addr) = line.strip_prefix("plugin-host listening on http://") {
                    tx.send(addr.parse::<SocketAddr>().unwrap()).ok();
                }
            }
        });
        let stderr = Arc::new(std::sync::Mutex::new(String::new()));
        let sink = stderr.clone();
        let pipe = child.stderr.take().unwrap();
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines() {
                let Ok(line) = line else { break };
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                child.kill().ok();
                child.wait().ok();
                stderr_reader.join().ok();
                panic!(
                    "plugin-host did not start listening: {}",
                    stderr.lock().unwrap()
                );
            }
        };
        Self {
            child,
            addr,
            stderr,
            stderr_reader: Some(stderr_reader),
        }
    }

    /// `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Send SIGKILL (no chance to clean up: a crash).
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// Send SIGTERM.
    pub fn terminate(&self) {
        let status = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait (bounded) for the process to exit; returns its status and what it wrote to stderr.
    pub fn wait(mut self, limit: Duration) -> (ExitStatus, String) {
        let started = Instant::now();
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if started.elapsed() > limit {
                self.child.kill().ok();
                panic!("plugin-host did not exit within {limit:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        if let Some(reader) = self.stderr_reader.take() {
            reader.join().ok();
        }
        let stderr = self.stderr.lock().unwrap().clone();
        (status, stderr)
    }
}

impl Drop for HostProcess {
    fn drop(&mut self) {
        self.child.kill().ok();
        self.child.wait().ok();
    }
}
