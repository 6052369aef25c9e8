//! `plugin-host check`: the same verdict as `serve`, without serving.

use std::time::Duration;

use plugin_host_tests::{example, fixture, run_host, source_fixture};

#[test]
fn check_prints_the_manifest_of_a_good_plugin() {
    let hello = example("hello");
    let out = run_host(&["check", hello.to_str().unwrap()], Duration::from_secs(60));
    assert!(out.status.success(), "{}", out.stderr);
    assert!(
        out.stdout.contains("plugin:      hello 0.1.0"),
        "{}",
        out.stdout
    );
    let route_line = out
        .stdout
        .lines()
        .find(|l| l.contains("/hello/{name}"))
        .unwrap_or_else(|| panic!("no route line in:\n{}", out.stdout));
    let cells: Vec<&str> = route_line.split_whitespace().collect();
    assert_eq!(
        &cells[..4],
        ["GET", "/hello/{name}", "anonymous", "hello.html"]
    );
    assert!(
        route_line.ends_with("Greet someone by name"),
        "{route_line}"
    );
}

#[test]
fn check_rejects_bad_files_with_the_reason_and_exit_1() {
    for (file, reason) in [
        (source_fixture("not-wasm.wasm"), "not a WebAssembly file"),
        (fixture("core-module.wasm"), "not a component"),
        (fixture("dup-route.wasm"), "declared twice"),
        (fixture("bad-pattern.wasm"), "invalid path pattern"),
    ] {
        let out = run_host(&["check", file.to_str().unwrap()], Duration::from_secs(60));
        assert_eq!(
            out.status.code(),
            Some(1),
            "{}: {}",
            file.display(),
            out.stdout
        );
        assert!(
            out.stderr.contains(&*file.to_string_lossy()),
            "{}",
            out.stderr
        );
        assert!(out.stderr.contains(reason), "{}", out.stderr);
    }
}
