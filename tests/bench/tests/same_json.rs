//! The native baseline answers exactly as the hello plugin does, so the side-by-side benchmark compares
//! the same work. (`wasi-hello` under `wasmtime serve` is checked by the benchmark itself before it is
//! measured, so that `make test` does not need wasmtime-cli.) Needs `make build`.

use std::path::PathBuf;

use plugin_host_bench::probe;
use plugin_host_bench::server::{Server, Spec};

/// A binary of the same build profile as this test: target/<profile>/deps/<test> -> target/<profile>/NAME.
fn sibling_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    exe.parent().unwrap().parent().unwrap().join(name)
}

#[test]
fn native_hello_gives_the_hello_plugins_json() {
    let root = plugin_host_bench::repo();
    let data = std::env::temp_dir().join(format!("ph-bench-same-json-{}", std::process::id()));
    let host_bin = sibling_bin("plugin-host");
    assert!(
        host_bin.is_file(),
        "{} is missing: make build",
        host_bin.display()
    );
    let host = Server::start(
        &Spec {
            command: vec![
                host_bin.to_string_lossy().into_owned(),
                "serve".into(),
                "--listen".into(),
                "127.0.0.1:0".into(),
                "--plugins".into(),
                root.join("target/plugins").to_string_lossy().into_owned(),
                "--data".into(),
                data.to_string_lossy().into_owned(),
            ],
            env: vec![("RUST_LOG".into(), "warn".into())],
            ready_prefix: "plugin-host listening on ".into(),
        },
        Some(0),
    )
    .unwrap();
    let native = Server::start(
        &Spec {
            command: vec![env!("CARGO_BIN_EXE_native-hello").into()],
            env: Vec::new(),
            ready_prefix: "native-hello listening on ".into(),
        },
        Some(0),
    )
    .unwrap();

    for path in [
        "/hello/world",
        "/hello/ada",
        "/hello/ada%20lovelace",
        "/hello/%22q%22",
    ] {
        let accept = ["Accept: application/json"];
        let want = probe::get(&host.base, path, &accept).unwrap();
        let got = probe::get(&native.base, path, &accept).unwrap();
        assert_eq!(want.status, 200, "{path}: {want:?}");
        assert_eq!((got.status, &got.body), (want.status, &want.body), "{path}");
        assert_eq!(
            got.header("content-type"),
            want.header("content-type"),
            "{path}"
        );
    }
    assert_eq!(
        probe::get(&native.base, "/hello/world", &[]).unwrap().body,
        r#"{"message":"hello, world"}"#
    );
    drop(host);
    std::fs::remove_dir_all(&data).ok();
}
