//! Helpers for the integration tests: where the built plugins and fixtures are, a real server started
//! in-process on 127.0.0.1:0, and the real `plugin-host` binary started as a child process.
//!
//! The plugins are built by `make plugins` (which `make test` runs first); a test that cannot find them
//! says so instead of failing obscurely.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus};
use std::sync::Arc;
use std::time::Duration;

pub mod browser;
pub mod cluster;
pub mod otlp;
pub mod pages;
pub mod upstream;

use plugin_host::app::state::AppState;
use plugin_host::bindings::types::Role;
use plugin_host::config::Config;
use plugin_host::server::Server;
use plugin_host_kit::process::{ChildProcess, Ready};

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

/// The database backend a test runs on: SQLite (the default) or the private PostgreSQL server
/// ([`plugin_host_kit::postgres::Postgres::shared`]). Tests that must hold on both run their body
/// inside [`Backend::scope`] (the `on_both_backends!` macro of the integration tests does this).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

tokio::task_local! {
    static BACKEND: Backend;
}

impl Backend {
    /// Run `body` with this backend: every [`TestServer`] and every `plugin-host` process it starts
    /// uses it.
    pub async fn scope<F: std::future::Future>(self, body: F) -> F::Output {
        BACKEND.scope(self, body).await
    }

    /// The backend of the running test (SQLite outside any scope).
    pub fn current() -> Self {
        BACKEND.try_with(|b| *b).unwrap_or(Backend::Sqlite)
    }
}

/// File in a test's data directory naming its PostgreSQL database, so a server restarted on the same
/// data directory, and the CLI pointed at it, find the same database.
const DATABASE_URL_FILE: &str = "test-database-url";

/// The `database` setting for a test whose data directory is `data`: `None` on SQLite (the default file
/// in `data`); on PostgreSQL the URL of a database made for this data directory on first use.
pub fn database_for(data: &Path) -> Option<String> {
    if Backend::current() == Backend::Sqlite {
        return None;
    }
    let file = data.join(DATABASE_URL_FILE);
    if let Ok(url) = std::fs::read_to_string(&file) {
        return Some(url);
    }
    let url = plugin_host_kit::postgres::Postgres::shared().fresh_database();
    std::fs::create_dir_all(data).unwrap();
    std::fs::write(&file, &url).unwrap();
    Some(url)
}

/// On PostgreSQL the server runs in cluster mode, where the plugins come from the database's plugin set:
/// put the `*.wasm` files of `config.plugins_dir` there first (as `plugin-host plugin push` does), so a
/// test sees the same plugins on both backends. Files already in the set change nothing.
async fn push_plugins_dir(config: &Config) {
    use plugin_host::accounts::db::{Location, open_location};
    use plugin_host::cluster::store::{Change, apply, check_component};
    let location = config.database_location();
    if !matches!(location, Location::Postgres(_)) {
        return;
    }
    let db = open_location(&location).await.unwrap();
    for file in plugin_host::generation::plugin_files(&config.plugins_dir).unwrap() {
        let bytes = std::fs::read(&file).unwrap();
        let (name, version, sha256) = check_component(config, &bytes, &file.display().to_string())
            .await
            .unwrap();
        let change = Change::Put {
            name,
            version,
            sha256,
            bytes: bytes.into(),
        };
        apply(&db, config, change, "test", "").await.unwrap();
    }
    db.close().await;
}

/// Everything the database of the test with data directory `data` holds, as bytes to search: the SQLite
/// files, or a `pg_dump` of the PostgreSQL database.
pub fn database_contents(data: &Path) -> Vec<u8> {
    match database_for(data) {
        Some(url) => {
            let name = url.rsplit('/').next().unwrap();
            plugin_host_kit::postgres::Postgres::shared()
                .dump(name)
                .unwrap()
                .into_bytes()
        }
        None => {
            // The last connection's close checkpoints the WAL into the database file and deletes it,
            // on sqlx's worker thread, possibly just after the pool said it was closed: wait (bounded)
            // for the WAL to go, so the files are not read while they change.
            let wal = data.join("plugin-host.db-wal");
            let settled = std::time::Instant::now() + std::time::Duration::from_secs(10);
            while wal.exists() && std::time::Instant::now() < settled {
                std::thread::sleep(std::time::Duration::from_millis(10));
            }
            let mut bytes = Vec::new();
            for entry in std::fs::read_dir(data).unwrap() {
                let path = entry.unwrap().path();
                let name = path.file_name().unwrap().to_string_lossy().into_owned();
                if name.starts_with("plugin-host.db") {
                    match std::fs::read(&path) {
                        Ok(contents) => bytes.extend(contents),
                        // A WAL or shared-memory file that went away after all holds nothing new.
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => panic!("cannot read {}: {e}", path.display()),
                    }
                }
            }
            bytes
        }
    }
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
        if let Some(url) = database_for(data.path()) {
            config.database = url;
        }
        adjust(&mut config);
        push_plugins_dir(&config).await;
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
        self.admin_json(self.client.get(self.url(path))).await
    }

    /// Send `request` with the admin key; status and JSON body.
    async fn admin_json(
        &self,
        request: reqwest::RequestBuilder,
    ) -> (reqwest::StatusCode, serde_json::Value) {
        let response = request.bearer_auth(&self.admin_key).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    /// The server's data directory (compile cache and the database).
    pub fn data_dir(&self) -> &Path {
        self._data.path()
    }

    /// POST `/admin/api/reload`; returns status and the JSON outcome.
    pub async fn reload(&self) -> (reqwest::StatusCode, serde_json::Value) {
        self.admin_json(self.client.post(self.url("/admin/api/reload")))
            .await
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

/// The `plugin-host` binary running as a child process; killed when dropped.
pub struct HostProcess {
    pub child: ChildProcess,
    pub addr: SocketAddr,
}

/// What a `plugin-host` process that exited printed.
pub struct Exited {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

/// The line `plugin-host serve` prints once it accepts connections, up to the address.
const LISTENING: &str = "plugin-host listening on http://";

/// `plugin-host ARGS`, with what the calling shell has in its environment that would change a test
/// removed: every `PLUGIN_HOST_` variable (tests set up bootstrap and configuration themselves) and
/// OpenTelemetry's `OTEL_*` (tests that export set them). On PostgreSQL ([`Backend`]), a command given
/// `--data DIR` gets that data directory's database as `PLUGIN_HOST_DATABASE`.
fn host_command(args: &[&str], log_level: &str) -> Command {
    let mut command = Command::new(host_bin());
    command.args(args).env("RUST_LOG", log_level);
    for (name, _) in std::env::vars_os() {
        let name_text = name.to_string_lossy();
        if name_text.starts_with("PLUGIN_HOST_") || name_text.starts_with("OTEL_") {
            command.env_remove(&name);
        }
    }
    let data = args
        .windows(2)
        .find(|w| w[0] == "--data")
        .map(|w| PathBuf::from(w[1]));
    if let Some(url) = data.and_then(|d| database_for(&d)) {
        command.env("PLUGIN_HOST_DATABASE", url);
    }
    command
}

/// Run `plugin-host ARGS` to completion (bounded by `limit`).
pub fn run_host(args: &[&str], limit: Duration) -> Exited {
    run_host_with_stdin(args, None, limit)
}

/// Run `plugin-host ARGS` with the environment variables `env` added, to completion (bounded by `limit`).
pub fn run_host_env(args: &[&str], env: &[(&str, &str)], limit: Duration) -> Exited {
    let name = format!("plugin-host {args:?}");
    let mut command = host_command(args, "warn");
    command.envs(env.iter().copied());
    let out = plugin_host_kit::process::run(command, &name, None, limit)
        .unwrap_or_else(|e| panic!("{e}"));
    Exited {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

/// Run `plugin-host ARGS` with `stdin` as its standard input (none: empty), bounded by `limit`.
pub fn run_host_with_stdin(args: &[&str], stdin: Option<&str>, limit: Duration) -> Exited {
    let name = format!("plugin-host {args:?}");
    let out = plugin_host_kit::process::run(host_command(args, "warn"), &name, stdin, limit)
        .unwrap_or_else(|e| panic!("{e}"));
    Exited {
        status: out.status,
        stdout: out.stdout,
        stderr: out.stderr,
    }
}

impl HostProcess {
    /// Start `plugin-host serve --listen 127.0.0.1:0 ARGS` and wait for its "listening on" line.
    pub fn serve(args: &[&str]) -> Self {
        Self::serve_env(args, &[])
    }

    /// [`HostProcess::serve`] with extra environment variables.
    pub fn serve_env(args: &[&str], env: &[(&str, &str)]) -> Self {
        Self::serve_at_env("127.0.0.1:0", args, env)
    }

    /// `plugin-host serve --listen LISTEN ARGS` (a fixed port, e.g. a cluster node's).
    pub fn serve_at(listen: &str, args: &[&str]) -> Self {
        Self::serve_at_env(listen, args, &[])
    }

    fn serve_at_env(listen: &str, args: &[&str], env: &[(&str, &str)]) -> Self {
        // On PostgreSQL (cluster mode) the plugins come from the database: push `--plugins DIR` first.
        let flag = |name: &str| args.windows(2).find(|w| w[0] == name).map(|w| w[1]);
        if let (Some(plugins), Some(data)) = (flag("--plugins"), flag("--data"))
            && database_for(Path::new(data)).is_some()
        {
            let files: Vec<String> = plugin_host::generation::plugin_files(Path::new(plugins))
                .unwrap()
                .iter()
                .map(|f| f.display().to_string())
                .collect();
            let mut push = vec!["plugin", "push", "--data", data];
            push.extend(files.iter().map(String::as_str));
            let pushed = run_host(&push, Duration::from_secs(60));
            assert!(pushed.status.success(), "{}", pushed.stderr);
        }
        let mut all = vec!["serve", "--listen", listen];
        all.extend_from_slice(args);
        // Tests read info-level lines.
        let mut command = host_command(&all, "info");
        command.envs(env.iter().copied());
        let ready = Ready {
            name: "plugin-host",
            prefix: LISTENING,
            on_stderr: false,
            within: Duration::from_secs(60),
            keep_lines: None,
        };
        let (child, addr) = ChildProcess::start(command, &ready, |rest| rest.parse().ok())
            .unwrap_or_else(|e| panic!("{e}"));
        Self { child, addr }
    }

    /// A first run: `plugin-host serve` of the plugins in `plugins` on the data directory `data`
    /// (with no admin yet), whose first admin is created with the bootstrap secret `secret` (given as
    /// `PLUGIN_HOST_BOOTSTRAP_SECRET`; `None`: the host makes one up and logs it), with `env` besides.
    pub fn serve_bootstrap(
        plugins: &Path,
        data: &Path,
        secret: Option<&str>,
        env: &[(&str, &str)],
    ) -> Self {
        let args = ["--plugins", path_str(plugins), "--data", path_str(data)];
        let mut env = env.to_vec();
        env.extend(secret.map(|secret| ("PLUGIN_HOST_BOOTSTRAP_SECRET", secret)));
        Self::serve_env(&args, &env)
    }

    /// Everything the process wrote to stderr so far (a thread drains it, so the pipe never fills).
    pub fn stderr(&self) -> String {
        self.child.stderr().text()
    }

    /// `http://ADDR/path`.
    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Send SIGKILL (no chance to clean up: a crash).
    pub fn kill9(&mut self) {
        self.child.kill();
    }

    /// Send SIGTERM.
    pub fn terminate(&self) {
        self.child.terminate().unwrap_or_else(|e| panic!("{e}"));
    }

    /// Send SIGHUP (a reload).
    pub fn hangup(&self) {
        let status = Command::new("kill")
            .args(["-HUP", &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Wait (bounded) for the process to exit; returns its status and what it wrote to stderr.
    pub fn wait(self, limit: Duration) -> (ExitStatus, String) {
        let stopped = self.child.wait(limit).unwrap_or_else(|e| panic!("{e}"));
        (stopped.status, stopped.stderr.text())
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("test paths are UTF-8")
}

/// Shorthands for tests: send a request and read what the test wants of the answer (a transport
/// error or an unreadable body fails the test).
pub trait Fetch {
    /// The answer's body as JSON.
    fn fetch_json(self) -> impl std::future::Future<Output = serde_json::Value> + Send;
    /// The answer's body as text.
    fn fetch_text(self) -> impl std::future::Future<Output = String> + Send;
    /// The answer's status (the body is dropped).
    fn fetch_status(self) -> impl std::future::Future<Output = reqwest::StatusCode> + Send;
}

impl Fetch for reqwest::RequestBuilder {
    async fn fetch_json(self) -> serde_json::Value {
        self.send().await.unwrap().json().await.unwrap()
    }

    async fn fetch_text(self) -> String {
        self.send().await.unwrap().text().await.unwrap()
    }

    async fn fetch_status(self) -> reqwest::StatusCode {
        self.send().await.unwrap().status()
    }
}

/// `plugin-host user add root --admin --password-stdin --data DATA` (password `a-long-password`): the
/// first admin, made from the command line as an operator would.
pub fn cli_add_root_admin(data: &str) -> Exited {
    run_host_with_stdin(
        &[
            "user",
            "add",
            "root",
            "--admin",
            "--password-stdin",
            "--data",
            data,
        ],
        Some("a-long-password\n"),
        Duration::from_secs(60),
    )
}

/// [`cli_add_root_admin`], then an API key for root through `key create`: the key, as printed.
pub fn cli_root_admin_key(data: &str) -> String {
    let added = cli_add_root_admin(data);
    assert!(added.status.success(), "{}", added.stderr);
    let key = run_host_with_stdin(
        &["key", "create", "--user", "root", "--data", data],
        None,
        Duration::from_secs(60),
    );
    assert!(key.status.success(), "{}", key.stderr);
    key.stdout.trim().to_owned()
}

/// A temporary plugins directory with the hello example and the soak fixture (as `soak.wasm`).
pub fn hello_and_soak() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    deploy(dir.path(), &example("hello"), "hello.wasm");
    deploy(dir.path(), &fixture("soak-a.wasm"), "soak.wasm");
    dir
}

impl TestServer {
    /// Add user `name` with `password` and `role` to this server's database, and an API key of theirs
    /// (returned).
    pub async fn add_user_with_key(&self, name: &str, password: &str, role: Role) -> String {
        let db = &self.state.auth().db;
        plugin_host::accounts::users::create(db, name, password, role)
            .await
            .unwrap();
        plugin_host::accounts::keys::create(db, name, None, &[], None)
            .await
            .unwrap()
            .key
    }
}
