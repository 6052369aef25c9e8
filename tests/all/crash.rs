//! The crash test: the real binary under a stream of key-value writes and API-key creations is killed
//! with SIGKILL mid-stream; restarted on the same data directory, the database opens cleanly and every
//! write the server acknowledged before the kill is there.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use plugin_host_tests::{Fetch, HostProcess, cli_root_admin_key, fixture, plugins_dir_with};
use reqwest::StatusCode;
use serde_json::{Value, json};

/// Upper bounds of each stream (the kill comes long before).
const MAX_WRITES: usize = 20_000;
const MAX_KEYS: usize = 5_000;
/// Acknowledged writes to wait for before the kill.
const KILL_AFTER: usize = 300;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9() {
    let data = tempfile::tempdir().unwrap();
    let plugins = plugins_dir_with(&[&fixture("kv-a.wasm")]);
    let d = data.path().to_str().unwrap();
    let admin_key = cli_root_admin_key(d);
    let args = ["--plugins", plugins.path().to_str().unwrap(), "--data", d];

    let mut host = HostProcess::serve(&args);
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let acked_writes = Arc::new(Mutex::new(Vec::new()));
    let acked_keys = Arc::new(Mutex::new(Vec::new()));
    let count = Arc::new(AtomicUsize::new(0));

    let writes = tokio::spawn({
        let (client, url, acked, count) = (
            client.clone(),
            host.url("/kv-a"),
            acked_writes.clone(),
            count.clone(),
        );
        async move {
            for i in 0..MAX_WRITES {
                let sent = client
                    .put(format!("{url}/k{i}"))
                    .body(format!("value {i}"))
                    .send()
                    .await;
                match sent {
                    Ok(r) if r.status() == StatusCode::NO_CONTENT => {
                        acked.lock().unwrap().push(i);
                        count.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(r) => panic!("write {i}: {}", r.status()),
                    Err(_) => break, // the host is gone
                }
            }
        }
    });
    let keys = tokio::spawn({
        let (client, url, acked, admin_key) = (
            client.clone(),
            host.url("/admin/api/keys"),
            acked_keys.clone(),
            admin_key.clone(),
        );
        async move {
            for _ in 0..MAX_KEYS {
                let sent = client
                    .post(&url)
                    .bearer_auth(&admin_key)
                    .json(&json!({ "user": "root" }))
                    .send()
                    .await;
                let Ok(response) = sent else { break };
                if response.status() != StatusCode::CREATED {
                    panic!("key creation: {}", response.status());
                }
                // The body is the acknowledgement: a key whose answer was cut off is not counted.
                let Ok(body) = response.json::<Value>().await else {
                    break;
                };
                acked
                    .lock()
                    .unwrap()
                    .push(body["id"].as_str().unwrap().to_owned());
            }
        }
    });

    let started = Instant::now();
    while count.load(Ordering::Relaxed) < KILL_AFTER {
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "the write stream is too slow"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    host.kill9();
    writes.await.unwrap();
    keys.await.unwrap();
    let acked_writes = acked_writes.lock().unwrap().clone();
    let acked_keys = acked_keys.lock().unwrap().clone();
    assert!(acked_writes.len() >= KILL_AFTER && !acked_keys.is_empty());

    // Restart on the same files: it must open (migrations, WAL recovery) and hold every acked write.
    let host = HostProcess::serve(&args);
    for i in &acked_writes {
        let response = client
            .get(host.url(&format!("/kv-a/k{i}")))
            .send()
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::OK,
            "acknowledged write k{i} is lost"
        );
        assert_eq!(response.text().await.unwrap(), format!("value {i}"));
    }
    let listed: Value = client
        .get(host.url("/admin/api/keys"))
        .bearer_auth(&admin_key)
        .fetch_json()
        .await;
    let stored: Vec<&str> = listed["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["id"].as_str().unwrap())
        .collect();
    for id in &acked_keys {
        assert!(
            stored.contains(&id.as_str()),
            "acknowledged key {id} is lost"
        );
    }
    host.terminate();
    host.wait(Duration::from_secs(15));
    let pool = plugin_host::accounts::db::open(&data.path().join("plugin-host.db"))
        .await
        .unwrap();
    assert_eq!(
        plugin_host::accounts::db::integrity_check(&pool)
            .await
            .unwrap(),
        "ok"
    );
    eprintln!(
        "crash test: {} writes and {} keys acknowledged before kill -9, all present",
        acked_writes.len(),
        acked_keys.len()
    );
}
