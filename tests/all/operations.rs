//! Running under a service manager and configuring by environment: the real binary sends systemd's
//! readiness notifications (`READY=1` once serving, `RELOADING=1`/`READY=1` around SIGHUP,
//! `STOPPING=1` on SIGTERM) to a `NOTIFY_SOCKET` the test binds, and `PLUGIN_HOST_` variables configure
//! it (a wrong one stops it with the variable named).

use std::os::unix::net::UnixDatagram;
use std::time::{Duration, Instant};

use plugin_host_tests::{Fetch, HostProcess, example, plugins_dir_with, run_host, run_host_env};

/// A datagram socket standing in for systemd's notification socket.
struct NotifySocket {
    socket: UnixDatagram,
    path: std::path::PathBuf,
    _dir: tempfile::TempDir,
}

impl NotifySocket {
    fn bind() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("notify.sock");
        let socket = UnixDatagram::bind(&path).unwrap();
        Self {
            socket,
            path,
            _dir: dir,
        }
    }

    /// The next message whose lines include `state` (bounded); the messages before it are returned too.
    fn until(&self, state: &str) -> Vec<String> {
        let deadline = Instant::now() + Duration::from_secs(60);
        let mut seen = Vec::new();
        let mut buffer = [0u8; 4096];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            assert!(!left.is_zero(), "no {state} within 60 s; got {seen:?}");
            self.socket.set_read_timeout(Some(left)).unwrap();
            let n = self
                .socket
                .recv(&mut buffer)
                .unwrap_or_else(|e| panic!("waiting for {state}: {e}; got {seen:?}"));
            let message = String::from_utf8_lossy(&buffer[..n]).into_owned();
            let found = message.lines().any(|l| l == state);
            seen.push(message);
            if found {
                return seen;
            }
        }
    }
}

#[tokio::test]
async fn systemd_hears_ready_reloading_and_stopping() {
    let plugins = plugins_dir_with(&[&example("hello")]);
    let data = tempfile::tempdir().unwrap();
    let notify = NotifySocket::bind();
    let host = HostProcess::serve_env(
        &[
            "--plugins",
            plugins.path().to_str().unwrap(),
            "--data",
            data.path().to_str().unwrap(),
        ],
        &[("NOTIFY_SOCKET", notify.path.to_str().unwrap())],
    );
    let ready = notify.until("READY=1");
    assert!(
        ready
            .last()
            .unwrap()
            .contains("STATUS=serving generation 1"),
        "{ready:?}"
    );
    // READY means serving: no wait after it.
    let status = reqwest::Client::new()
        .get(host.url("/hello/ops"))
        .fetch_status()
        .await;
    assert_eq!(status, reqwest::StatusCode::OK);

    host.hangup();
    let reload = notify.until("READY=1");
    assert!(
        reload.iter().any(|m| m.lines().any(|l| l == "RELOADING=1")),
        "{reload:?}"
    );
    assert!(
        reload
            .last()
            .unwrap()
            .contains("STATUS=serving generation 2"),
        "{reload:?}"
    );

    host.terminate();
    let stopping = notify.until("STOPPING=1");
    assert!(!stopping.is_empty());
    let (status, _) = host.wait(Duration::from_secs(30));
    assert!(status.success());
}

#[tokio::test]
async fn environment_variables_configure_the_server() {
    let plugins = plugins_dir_with(&[&example("hello")]);
    let data = tempfile::tempdir().unwrap();
    let host = HostProcess::serve_env(
        &["--data", data.path().to_str().unwrap()],
        &[
            ("PLUGIN_HOST_PLUGINS_DIR", plugins.path().to_str().unwrap()),
            (
                "PLUGIN_HOST_PLUGIN_CONTENT_SECURITY_POLICY",
                "default-src 'none'",
            ),
            ("PLUGIN_HOST_PLUGINS__hello__CONFIG__greeting", "ahoy"),
        ],
    );
    let response = reqwest::get(host.url("/hello/env")).await.unwrap();
    assert_eq!(
        response.headers()["content-security-policy"],
        "default-src 'none'"
    );
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["message"], "ahoy, env", "{body}");
}

#[test]
fn a_wrong_variable_stops_the_start_and_is_named() {
    let data = tempfile::tempdir().unwrap();
    let out = run_host_env(
        &[
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--data",
            data.path().to_str().unwrap(),
        ],
        &[("PLUGIN_HOST_LIMITS_REQUEST_TIMEOUT", "5000")],
        Duration::from_secs(60),
    );
    assert!(!out.status.success(), "{}", out.stdout);
    assert!(
        out.stderr
            .contains("PLUGIN_HOST_LIMITS_REQUEST_TIMEOUT is not a configuration key"),
        "{}",
        out.stderr
    );
    let out = run_host_env(
        &["config"],
        &[("PLUGIN_HOST_LIMITS_REQUEST_TIMEOUT_MS", "1234")],
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("request_timeout_ms = 1234"),
        "{}",
        out.stdout
    );
    let reference = run_host(&["config", "--reference"], Duration::from_secs(60));
    assert!(reference.status.success());
    let committed =
        std::fs::read_to_string(plugin_host_tests::repo_root().join("docs/configuration.md"))
            .unwrap();
    assert_eq!(reference.stdout, committed);
}
