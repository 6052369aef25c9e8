//! Hardening from the outside (issue 19): what a plugin answers, logs and declares is bounded and
//! checked by the host. Each test checks what the client gets, what the operator sees (the log line
//! naming the plugin, the metric) and that `hello` kept being served meanwhile. Most run the host as a
//! child process, so its log and its process-wide counters belong to the test alone.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use plugin_host_tests::{Fetch, HostProcess, deploy, example, fixture};
use reqwest::StatusCode;

/// How long a log line or a refusal may take before the test calls it a hang.
const LIMIT: Duration = Duration::from_secs(10);

/// `plugin-host serve` of hello and the faults fixture, with its own data directory.
struct Host {
    process: HostProcess,
    client: reqwest::Client,
    _plugins: tempfile::TempDir,
    _data: tempfile::TempDir,
}

impl Host {
    fn start() -> Self {
        let plugins = tempfile::tempdir().unwrap();
        deploy(plugins.path(), &example("hello"), "hello.wasm");
        deploy(plugins.path(), &fixture("faults.wasm"), "faults.wasm");
        let data = tempfile::tempdir().unwrap();
        let process = HostProcess::serve(&[
            "--plugins",
            plugins.path().to_str().unwrap(),
            "--data",
            data.path().to_str().unwrap(),
        ]);
        Self {
            process,
            client: reqwest::Client::new(),
            _plugins: plugins,
            _data: data,
        }
    }

    fn url(&self, path: &str) -> String {
        self.process.url(path)
    }

    /// GET `path`: the status, the request id and the response.
    async fn get(&self, path: &str) -> (StatusCode, String, reqwest::Response) {
        let response = self.client.get(self.url(path)).send().await.unwrap();
        let id = response.headers()["x-request-id"]
            .to_str()
            .unwrap()
            .to_owned();
        (response.status(), id, response)
    }

    /// Every line of the host's log so far holding all of `needles`.
    fn lines_with(&self, needles: &[&str]) -> Vec<String> {
        self.process
            .stderr()
            .lines()
            .filter(|l| needles.iter().all(|n| l.contains(n)))
            .map(str::to_owned)
            .collect()
    }

    /// The first log line holding all of `needles`, waiting (bounded) for the reader to catch up.
    async fn log_line(&self, needles: &[&str]) -> String {
        let started = Instant::now();
        loop {
            if let Some(line) = self.lines_with(needles).into_iter().next() {
                return line;
            }
            assert!(
                started.elapsed() < LIMIT,
                "no log line with {needles:?} in:\n{}",
                self.process.stderr()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The value of the metric line starting with `series ` (0 when absent).
    async fn metric(&self, series: &str) -> u64 {
        let text = self.client.get(self.url("/metrics")).fetch_text().await;
        let key = format!("{series} ");
        text.lines()
            .find_map(|l| l.strip_prefix(&key))
            .map_or(0, |n| n.parse().unwrap())
    }

    /// `hello` requested over and over until the returned guard stops it; every answer must be 200.
    fn hello_stream(&self) -> Stream {
        let stop = Arc::new(AtomicBool::new(false));
        let (client, url, flag) = (self.client.clone(), self.url("/hello/stream"), stop.clone());
        let task = tokio::spawn(async move {
            let mut answered = 0u32;
            while !flag.load(Ordering::Relaxed) {
                assert_eq!(client.get(&url).fetch_status().await, StatusCode::OK);
                answered += 1;
            }
            answered
        });
        Stream { stop, task }
    }
}

/// A running stream of `hello` requests.
struct Stream {
    stop: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<u32>,
}

impl Stream {
    /// Stop it; it must have been answered at least once, always with 200.
    async fn served(self) {
        self.stop.store(true, Ordering::Relaxed);
        assert!(self.task.await.unwrap() > 0, "hello was never answered");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_logs_have_a_per_call_budget() {
    let host = Host::start();
    let stream = host.hello_stream();

    // 1,000 short lines: the first 100 are logged, then one summary.
    let (status, id, response) = host.get("/faults/log-flood?lines=1000&bytes=50").await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        response.json::<serde_json::Value>().await.unwrap()["logged"],
        1000
    );
    let summary = host
        .log_line(&[&id, "plugin faults dropped 900 log lines (45000 bytes) over its budget of 100 lines and 65536 bytes per call"])
        .await;
    assert!(
        summary.contains("WARN") && summary.contains("plugin=faults"),
        "{summary}"
    );
    let logged = host.lines_with(&[&id, "flood line "]);
    assert_eq!(logged.len(), 100, "{logged:#?}");
    assert!(logged[99].contains("flood line 99:"), "{}", logged[99]);

    // 40 lines of 4,000 bytes: the byte budget (64 KiB) lets 16 through.
    let (status, id, _) = host.get("/faults/log-flood?lines=40&bytes=4000").await;
    assert_eq!(status, StatusCode::OK);
    host.log_line(&[&id, "plugin faults dropped 24 log lines (96000 bytes)"])
        .await;
    assert_eq!(host.lines_with(&[&id, "flood line "]).len(), 16);

    // Under budget: no summary.
    let (status, id, _) = host.get("/faults/log-flood?lines=3&bytes=20").await;
    assert_eq!(status, StatusCode::OK);
    host.log_line(&[&id, "request completed"]).await;
    assert_eq!(host.lines_with(&[&id, "flood line "]).len(), 3);
    assert!(host.lines_with(&[&id, "dropped"]).is_empty());

    let dropped = "plugin_host_plugin_log_lines_dropped_total{plugin=\"faults\"}";
    assert_eq!(host.metric(dropped).await, 924);
    let bytes = "plugin_host_plugin_log_bytes_dropped_total{plugin=\"faults\"}";
    assert_eq!(host.metric(bytes).await, 45_000 + 96_000);
    stream.served().await;
}
