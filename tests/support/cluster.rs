//! Cluster tests' real parts: `plugin-host serve` nodes on one PostgreSQL database, each with its own
//! data directory on a fixed loopback port (so a restarted node comes back where the load balancer
//! expects it), and haproxy in front with active health checks on `/readyz`.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{HostProcess, run_host_with_stdin};

/// How often a node re-reads the revision without a notification, in these tests.
pub const POLL_SECS: u64 = 2;

/// A free port on 127.0.0.1 (free when asked; the caller binds it right after).
pub fn free_port() -> u16 {
    plugin_host_kit::process::free_port().expect("loopback has a free port")
}

/// Nodes of one cluster: their database, ports, data directories and processes.
pub struct Cluster {
    /// The database URL every node uses.
    pub url: String,
    /// An API key with the admin role, made with the CLI before any node started.
    pub admin_key: String,
    pub ports: Vec<u16>,
    nodes: Vec<Option<HostProcess>>,
    data: Vec<tempfile::TempDir>,
    config: PathBuf,
    _config_dir: tempfile::TempDir,
}

impl Cluster {
    /// `n` nodes on the database at `url` (empty: no plugins yet), with an admin `root` and a key.
    pub fn start(url: String, n: usize) -> Self {
        let config_dir = tempfile::tempdir().unwrap();
        let config = config_dir.path().join("node.toml");
        std::fs::write(
            &config,
            format!(
                "shutdown_delay_ms = 1000\nshutdown_grace_ms = 5000\ntrusted_proxies = [\"127.0.0.1\"]\n\
                 [cluster]\npoll_secs = {POLL_SECS}\nheartbeat_ms = 200\n"
            ),
        )
        .unwrap();
        let data: Vec<tempfile::TempDir> = (0..n).map(|_| tempfile::tempdir().unwrap()).collect();
        let first = data[0].path().to_str().unwrap().to_owned();
        let added = run_host_with_stdin(
            &[
                "user",
                "add",
                "root",
                "--admin",
                "--password-stdin",
                "--database",
                &url,
                "--data",
                &first,
            ],
            Some("a-long-password\n"),
            Duration::from_secs(60),
        );
        assert!(added.status.success(), "{}", added.stderr);
        let key = run_host_with_stdin(
            &[
                "key",
                "create",
                "--user",
                "root",
                "--database",
                &url,
                "--data",
                &first,
            ],
            None,
            Duration::from_secs(60),
        );
        assert!(key.status.success(), "{}", key.stderr);
        let admin_key = key
            .stdout
            .split_whitespace()
            .find(|w| w.starts_with("phk_"))
            .expect("the key is printed")
            .to_owned();
        let ports: Vec<u16> = (0..n).map(|_| free_port()).collect();
        let mut cluster = Self {
            url,
            admin_key,
            ports,
            nodes: Vec::new(),
            data,
            config,
            _config_dir: config_dir,
        };
        for i in 0..n {
            let node = cluster.spawn(i);
            cluster.nodes.push(Some(node));
        }
        cluster
    }

    fn spawn(&self, i: usize) -> HostProcess {
        let listen = format!("127.0.0.1:{}", self.ports[i]);
        HostProcess::serve_at(
            &listen,
            &[
                "--config",
                self.config.to_str().unwrap(),
                "--database",
                &self.url,
                "--data",
                self.data[i].path().to_str().unwrap(),
            ],
        )
    }

    /// `http://NODE/path` for node `i`.
    pub fn url_of(&self, i: usize, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.ports[i])
    }

    /// How many nodes there are (running or not).
    pub fn len(&self) -> usize {
        self.ports.len()
    }

    /// Whether the cluster has no nodes.
    pub fn is_empty(&self) -> bool {
        self.ports.is_empty()
    }

    /// Node `i`'s process (panics if it is stopped).
    pub fn node(&self, i: usize) -> &HostProcess {
        self.nodes[i].as_ref().expect("node is running")
    }

    /// SIGTERM node `i` and wait (bounded) for it to exit; its stderr.
    pub fn stop(&mut self, i: usize) -> String {
        let node = self.nodes[i].take().expect("node is running");
        node.terminate();
        let (status, stderr) = node.wait(Duration::from_secs(30));
        assert!(status.success(), "node {i} exited with {status}: {stderr}");
        stderr
    }

    /// SIGKILL node `i`.
    pub fn kill9(&mut self, i: usize) {
        let mut node = self.nodes[i].take().expect("node is running");
        node.kill9();
    }

    /// Start node `i` again on its port and data directory.
    pub fn restart(&mut self, i: usize) {
        assert!(self.nodes[i].is_none(), "node {i} is running");
        self.nodes[i] = Some(self.spawn(i));
    }

    /// Node `i`'s data directory.
    pub fn data_dir(&self, i: usize) -> &Path {
        self.data[i].path()
    }
}

/// haproxy on a free loopback port in front of `ports`, checking `GET /readyz` every 100 ms, retrying a
/// request that found a connection refused or closed on another node. Killed when dropped.
pub struct Haproxy {
    proxy: plugin_host_kit::haproxy::Haproxy,
    _dir: tempfile::TempDir,
}

impl Haproxy {
    pub fn start(ports: &[u16]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let backends: Vec<SocketAddr> = ports
            .iter()
            .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
            .collect();
        let options = plugin_host_kit::haproxy::Options {
            port: 0,
            check_interval: Duration::from_millis(100),
            retries: true,
        };
        let proxy = plugin_host_kit::haproxy::Haproxy::start(dir.path(), &backends, &options)
            .unwrap_or_else(|e| panic!("{e}"));
        Self { proxy, _dir: dir }
    }

    /// `http://HAPROXY/path`.
    pub fn url(&self, path: &str) -> String {
        self.proxy.url(path)
    }
}

/// Wait (up to `within`) until `check` returns `Some`, asking again every 25 ms; panics with `what`.
pub async fn eventually<T, F, Fut>(within: Duration, what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}
