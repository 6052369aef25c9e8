//! The plugin author's kit from the outside, as a new author would use it: in an empty directory
//! outside the repository, `plugin-host new`, `build`, `check`, `call`, `test`, native `cargo test`, and
//! `dev` rebuilding and reloading on a change. The crates' wasm and native builds share this repository's
//! target directories (`target/wasm`, `target/plugins-lint`), so the standard library and the
//! dependencies are built once per run rather than once per test.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use plugin_host_tests::{example, fixture, host_bin, repo_root, run_host};

/// A scratch directory outside the repository with `plugin-host new NAME` run in it; the SDK goes to
/// a home of the test's own.
struct Author {
    work: tempfile::TempDir,
    name: &'static str,
}

impl Author {
    fn new(name: &'static str) -> Self {
        let work = tempfile::tempdir().unwrap();
        assert!(
            !work.path().starts_with(repo_root()),
            "the crate must live outside the repository"
        );
        let author = Self { work, name };
        let out = author.run_in(author.work.path(), &["new", name], LIMIT);
        assert!(out.status.success(), "new: {}", out.stderr);
        author
    }

    fn crate_dir(&self) -> PathBuf {
        self.work.path().join(self.name)
    }

    fn component(&self) -> PathBuf {
        self.crate_dir().join(format!("{}.wasm", self.name))
    }

    /// `plugin-host ARGS` in `dir`, with the wasm build in this repository's target directory.
    fn command(&self, dir: &Path, args: &[&str]) -> Command {
        let mut command = Command::new(host_bin());
        command
            .args(args)
            .current_dir(dir)
            .env("PLUGIN_HOST_HOME", self.work.path().join("home"))
            .env("CARGO_TARGET_DIR", repo_root().join("target/wasm"))
            .env_remove("RUST_LOG");
        command
    }

    fn run_in(
        &self,
        dir: &Path,
        args: &[&str],
        limit: Duration,
    ) -> plugin_host_kit::process::Output {
        let name = format!("plugin-host {args:?}");
        plugin_host_kit::process::run(self.command(dir, args), &name, None, limit)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// `plugin-host ARGS` in the crate's directory.
    fn run(&self, args: &[&str]) -> plugin_host_kit::process::Output {
        self.run_in(&self.crate_dir(), args, LIMIT)
    }

    fn build(&self) {
        let started = Instant::now();
        let out = self.run_in(&self.crate_dir(), &["build"], BUILD_LIMIT);
        assert!(out.status.success(), "build: {}", out.stderr);
        eprintln!(
            "kit: plugin-host build took {:.1} s",
            started.elapsed().as_secs_f64()
        );
        assert!(
            self.component().is_file(),
            "no {} after build:\n{}",
            self.component().display(),
            out.stdout
        );
    }
}

const LIMIT: Duration = Duration::from_secs(60);
/// A first build on a fresh clone compiles the wasm standard library.
const BUILD_LIMIT: Duration = Duration::from_secs(600);

#[test]
fn a_new_plugin_builds_answers_passes_its_cases_and_its_cargo_tests() {
    let author = Author::new("greeter");
    let manifest = std::fs::read_to_string(author.crate_dir().join("Cargo.toml")).unwrap();
    let sdk = author.work.path().join("home/sdk/0.1.0");
    assert!(
        manifest.contains(&format!(
            "plugin-sdk = {{ version = \"0.1.0\", path = \"{}\" }}",
            sdk.display()
        )),
        "outside the repository the SDK is a versioned dependency on the copy the binary writes:\n{manifest}"
    );
    assert!(sdk.join("wit/plugin.wit").is_file() && sdk.join("src/lib.rs").is_file());
    // A copy that went missing is written again by build.
    std::fs::remove_dir_all(&sdk).unwrap();
    author.build();

    let check = author.run(&["check", "greeter.wasm"]);
    assert!(check.status.success(), "check: {}", check.stderr);
    assert!(
        check.stdout.contains("plugin:      greeter 0.1.0"),
        "{}",
        check.stdout
    );

    let call = author.run(&["call", "greeter.wasm", "GET", "/greeter/ada"]);
    assert!(call.status.success(), "call: {}", call.stderr);
    let (head, body) = call
        .stdout
        .split_once("\n\n")
        .expect("headers, a blank line, the body");
    assert!(head.starts_with("HTTP/1.1 200 OK"), "{head}");
    assert!(head.contains("content-type: application/json"), "{head}");
    let json: serde_json::Value = serde_json::from_str(body).unwrap();
    assert_eq!(json["message"], "hello, ada");

    // --as, --data, --config and the plugin's log line.
    let post = author.run(&[
        "call",
        "greeter.wasm",
        "POST",
        "/greeter/messages",
        "--as",
        "user",
        "-H",
        "content-type: application/json",
        "--data",
        r#"{"text": "hi"}"#,
    ]);
    assert!(post.status.success(), "{}", post.stderr);
    assert!(
        post.stdout.starts_with("HTTP/1.1 201 Created"),
        "{}",
        post.stdout
    );
    assert!(
        post.stderr.contains("log: INFO  greeter: kept message"),
        "{}",
        post.stderr
    );
    let anonymous = author.run(&[
        "call",
        "greeter.wasm",
        "POST",
        "/greeter/messages",
        "--data",
        "{}",
    ]);
    assert!(
        anonymous.status.success(),
        "a 4xx is not a failure of the command"
    );
    assert!(
        anonymous.stdout.starts_with("HTTP/1.1 401"),
        "{}",
        anonymous.stdout
    );
    let html = author.run(&[
        "call",
        "greeter.wasm",
        "GET",
        "/greeter/ada",
        "--accept",
        "html",
        "--config",
        "greeting=ahoy",
    ]);
    assert!(
        html.stdout.contains("<h1>ahoy, ada</h1>"),
        "{}",
        html.stdout
    );

    let cases = author.run(&["test", "greeter.wasm"]);
    assert!(
        cases.status.success(),
        "test: {}\n{}",
        cases.stdout,
        cases.stderr
    );
    assert!(
        cases.stdout.contains("ok: 5 passed, 0 failed"),
        "{}",
        cases.stdout
    );

    let started = Instant::now();
    let cargo_test = Command::new("cargo")
        .args(["test", "--quiet"])
        .current_dir(author.crate_dir())
        .env("CARGO_TARGET_DIR", repo_root().join("target/plugins-lint"))
        .output()
        .unwrap();
    eprintln!(
        "kit: cargo test took {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        cargo_test.status.success(),
        "cargo test in the new crate:\n{}\n{}",
        String::from_utf8_lossy(&cargo_test.stdout),
        String::from_utf8_lossy(&cargo_test.stderr)
    );
    assert!(
        String::from_utf8_lossy(&cargo_test.stdout).contains("4 passed"),
        "the generated tests ran"
    );

    // Beside the example plugins it loads; beside a copy of itself under another file name it clashes.
    let examples = example("hello").parent().unwrap().to_owned();
    let beside = author.run(&[
        "check",
        "greeter.wasm",
        "--with",
        examples.to_str().unwrap(),
    ]);
    assert!(beside.status.success(), "{}", beside.stderr);
    assert!(
        beside.stdout.contains("ok beside the 5 other plugin(s)"),
        "{}",
        beside.stdout
    );
    let clash_dir = author.work.path().join("deployed");
    std::fs::create_dir_all(&clash_dir).unwrap();
    std::fs::copy(author.component(), clash_dir.join("greeter-old.wasm")).unwrap();
    let clash = author.run(&[
        "check",
        "greeter.wasm",
        "--with",
        clash_dir.to_str().unwrap(),
    ]);
    assert!(
        !clash.status.success(),
        "a second plugin named greeter must be refused"
    );
    assert!(
        clash.stderr.contains("greeter-old.wasm"),
        "the clash names the other file: {}",
        clash.stderr
    );
    // The same file name is an upgrade, not a clash.
    std::fs::rename(
        clash_dir.join("greeter-old.wasm"),
        clash_dir.join("greeter.wasm"),
    )
    .unwrap();
    let upgrade = author.run(&[
        "check",
        "greeter.wasm",
        "--with",
        clash_dir.to_str().unwrap(),
    ]);
    assert!(upgrade.status.success(), "{}", upgrade.stderr);
}

#[test]
fn failing_cases_and_server_errors_fail_the_command() {
    let dir = tempfile::tempdir().unwrap();
    let cases = dir.path().join("cases.toml");
    std::fs::write(
        &cases,
        r#"
        [[case]]
        path = "/hello/ada"
        expect = { status = 200, json = { message = "hello, ada" } }
        [[case]]
        name = "wrong on purpose"
        path = "/hello/bob"
        expect = { status = 200, json = { message = "hello, ada" }, contains = "nobody" }
        "#,
    )
    .unwrap();
    let hello = example("hello");
    let out = run_host(
        &["test", hello.to_str().unwrap(), cases.to_str().unwrap()],
        LIMIT,
    );
    assert!(
        !out.status.success(),
        "a failing case fails the run:\n{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("ok    GET /hello/ada"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("FAIL  wrong on purpose"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains(r#".message is "hello, bob" (expected "hello, ada")"#),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains(r#"the body does not contain "nobody""#),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout.contains("FAILED: 1 passed, 1 failed"),
        "{}",
        out.stdout
    );

    let faults = fixture("faults.wasm");
    let panic = run_host(
        &["call", faults.to_str().unwrap(), "GET", "/faults/panic"],
        LIMIT,
    );
    assert!(
        !panic.status.success(),
        "a 5xx fails the command:\n{}",
        panic.stdout
    );
    assert!(panic.stdout.starts_with("HTTP/1.1 500"), "{}", panic.stdout);
    assert!(
        panic.stderr.contains("log: ERROR faults: plugin panicked"),
        "the panic's log line: {}",
        panic.stderr
    );
}

#[test]
fn a_panic_while_building_the_manifest_is_reported_with_its_message() {
    let file = fixture("panic-describe.wasm");
    let out = run_host(&["check", file.to_str().unwrap()], LIMIT);
    assert!(!out.status.success());
    assert!(
        out.stderr.contains("rejected:")
            && out.stderr.contains("summary/role/view must follow a route"),
        "the refusal says why the plugin panicked: {}",
        out.stderr
    );
}

/// `plugin-host dev` on a new crate: serves it, prints its log lines as they happen, rebuilds and
/// reloads on a saved change, and keeps serving the last good build when a change does not compile.
#[tokio::test(flavor = "multi_thread")]
async fn dev_rebuilds_and_reloads_on_a_change() {
    let author = Author::new("devdemo");
    let mut child = author
        .command(&author.crate_dir(), &["dev", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let lines = Lines::read(child.stdout.take().unwrap());
    let serving = lines.wait_for("dev: serving on http://", BUILD_LIMIT);
    let base = serving
        .trim_start_matches("dev: serving on ")
        .trim()
        .to_owned();
    let key = lines.wait_for("dev: an admin key for this session: ", LIMIT);
    let key = key.rsplit(' ').next().unwrap().to_owned();
    let client = reqwest::Client::new();
    let greeting = async |client: &reqwest::Client| -> String {
        let response = client
            .get(format!("{base}/devdemo/ada"))
            .send()
            .await
            .unwrap();
        let body: serde_json::Value = response.json().await.unwrap();
        body["message"].as_str().unwrap_or_default().to_owned()
    };
    assert_eq!(greeting(&client).await, "hello, ada");

    // A request's log line reaches stdout while dev runs.
    let posted = client
        .post(format!("{base}/devdemo/messages"))
        .header("x-api-key", &key)
        .header("content-type", "application/json")
        .body(r#"{"text":"hi"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(posted.status(), 201);
    lines.wait_for("devdemo: kept message", LIMIT);

    // A saved change is rebuilt and served.
    let lib = author.crate_dir().join("src/lib.rs");
    let source = std::fs::read_to_string(&lib).unwrap();
    std::fs::write(
        &lib,
        source.replace("\"hello\".to_owned()", "\"howdy\".to_owned()"),
    )
    .unwrap();
    lines.wait_for("dev: reloaded", BUILD_LIMIT);
    assert_eq!(greeting(&client).await, "howdy, ada");

    // A change that does not compile keeps the last good build serving.
    std::fs::write(&lib, source.replace("fn greet(", "fn greet(oops ")).unwrap();
    lines.wait_for("dev: build failed", BUILD_LIMIT);
    assert_eq!(greeting(&client).await, "howdy, ada");
    let _ = child.kill();
    let _ = child.wait();
}

/// A child's stdout, line by line, from a reader thread.
struct Lines(mpsc::Receiver<String>, std::cell::RefCell<Vec<String>>);

impl Lines {
    fn read(stdout: std::process::ChildStdout) -> Self {
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Self(rx, Default::default())
    }

    /// The first line from now on that holds `text`; panics with everything seen after `limit`.
    fn wait_for(&self, text: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.0.recv_timeout(left) {
                Ok(line) => {
                    self.1.borrow_mut().push(line.clone());
                    if line.contains(text) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line holding {text:?} within {limit:?}; dev printed:\n{}",
                    self.1.borrow().join("\n")
                ),
            }
        }
    }
}
