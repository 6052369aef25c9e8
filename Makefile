# Plugin Host: the two commands a newcomer needs are `make run` and `make test` (see README.md).
# Everything builds in the release profile into one target directory, so `run`, `test` and the
# benchmarks share one build of wasmtime.

CARGO      ?= cargo
HOST_BIN   := target/release/plugin-host
# wasmtime captures a backtrace on some error paths when this is set; benchmarks run without it.
BENCH_ENV  := env -u RUST_BACKTRACE
# wasmtime-cli for the side-by-side benchmark's `wasmtime serve` (the wasmtime our host embeds), with its
# default features (they include `serve`). Installed into target/tools on first use, never committed.
WASMTIME_VERSION := 48.0.8
WASMTIME   := target/tools/bin/wasmtime

.PHONY: all build host plugins test-deps run test check-deploy check-systemd test-repeat lint fmt bench bench-side bench-cluster cluster soak fuzz

# Python tools the tests run (schemathesis, the OpenAPI and manifest validators, yamllint), from PyPI into
# a virtualenv under target/, rebuilt when tests/python/requirements.txt changes.
VENV       := target/venv

all: build

## build: the host binary and every plugin component (release).
build: host plugins

# The whole workspace with its test targets, not just the binary: cargo resolves features per build, and
# building only plugin-host would compile wasmtime with other features than `cargo test` does, so a
# fresh clone would build it twice.
host:
	$(CARGO) build --release --locked --workspace --bins --tests

## plugins: guests -> target/plugins/*.wasm (examples) and target/fixtures/*.wasm (test fixtures).
## Installs Debian's Rust toolchain for wasm on first use when rustup has no wasm32 target.
plugins: host
	plugins/build.sh $(HOST_BIN)

## run: serve the example plugins on the embedded default configuration (127.0.0.1:8080).
run: build
	$(HOST_BIN) serve

## test-deps: the Debian packages the tests start for real, installed when missing (apt-get; sudo when not
## root): Chromium and chromedriver (the admin UI's browser test), PostgreSQL (every accounts, keys, kv and
## audit test runs on SQLite and on a private PostgreSQL server; the cluster tests) and haproxy (the
## cluster tests' load balancer), and for `check-deploy` promtool (package prometheus) and systemd-analyze.
## Nothing is downloaded from elsewhere.
test-deps:
	@missing=""; \
	command -v chromium >/dev/null || missing="$$missing chromium"; \
	command -v chromedriver >/dev/null || missing="$$missing chromium-driver"; \
	ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || missing="$$missing postgresql"; \
	command -v haproxy >/dev/null || [ -x /usr/sbin/haproxy ] || missing="$$missing haproxy"; \
	command -v promtool >/dev/null || missing="$$missing prometheus"; \
	command -v systemd-analyze >/dev/null || missing="$$missing systemd"; \
	if [ -n "$$missing" ]; then \
		SUDO=$$( [ "$$(id -u)" -eq 0 ] || echo sudo ); \
		echo "installing Debian packages for the tests:$$missing"; \
		$$SUDO apt-get update -qq && \
		DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq $$missing >/dev/null; \
	fi

## test: everything the tests need, then every test (unit and integration, real server, real HTTP, the
## admin UI in headless Chromium with screenshots in target/test-output/admin, and the plugin author's
## kit on a new crate outside the repository), then the native unit tests of the plugin SDK and of the
## notes example, built for the host like `lint` builds them. First the deploy/ checks (check-deploy).
test: build test-deps $(VENV)/ok check-deploy
	$(CARGO) test --release --locked --workspace
	$(CARGO) test --locked --manifest-path plugins/Cargo.toml -p plugin-sdk -p notes -p weather --target-dir target/plugins-lint

## check-deploy: the packaging under deploy/ (systemd unit, container file, Kubernetes manifests, Grafana
## dashboard) linted and checked against the built host and its real /metrics (deploy/check.sh).
check-deploy: build test-deps $(VENV)/ok
	deploy/check.sh

## check-systemd: the systemd unit started for real, on machines whose PID 1 is not systemd: a minimal Debian
## 12 tree (debootstrap, kept in target/nspawn/) booted with systemd-nspawn, the unit installed as
## docs/operations.md says, then serve, faults, reload and drain under its hardening. Root; not in `test`.
check-systemd: build
	deploy/systemd/nspawn-check.sh

$(VENV)/ok: tests/python/requirements.txt
	rm -rf $(VENV)
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check -r tests/python/requirements.txt
	touch $@

## test-repeat: the whole suite N times in a row (default 10); prints how many runs failed and which
## tests failed in which run (logs in target/test-repeat/). ARGS="-- browser::" repeats one test.
N ?= 10
test-repeat: build test-deps $(VENV)/ok
	tests/repeat.sh $(N) $(ARGS)

## lint: rustfmt check and clippy with warnings as errors, for the host workspace and for plugins/.
lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --manifest-path plugins/Cargo.toml --all -- --check
	$(CARGO) clippy --release --locked --workspace --all-targets -- -D warnings
	$(CARGO) clippy --locked --manifest-path plugins/Cargo.toml --workspace --all-targets --target-dir target/plugins-lint -- -D warnings

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --manifest-path plugins/Cargo.toml --all

## bench: one fresh-instance call (criterion) and wasmtime's own floor under it, one outbound HTTP
## call against native reqwest, the reload cost of 20 plugins (warm and cold cache), hello's req/s
## with deadlines on and off, the HTML view against JSON, instance reuse N = 1/16/128, what accounts
## and the database cost (kv writes with synchronous FULL vs NORMAL, key lookups, argon2id), and the
## side-by-side run (wrk; apt-get install wrk). `--workspace` keeps feature unification identical to
## `make build`, so benches reuse its wasmtime build.
bench: build $(WASMTIME)
	$(BENCH_ENV) $(CARGO) bench --locked --workspace --bench instantiate
	$(BENCH_ENV) $(CARGO) bench --locked --workspace --bench floor
	$(BENCH_ENV) $(CARGO) bench --locked --workspace --bench reload
	$(BENCH_ENV) $(CARGO) bench --locked --workspace --bench deadline
	$(BENCH_ENV) $(CARGO) bench --locked --workspace --bench views
	$(BENCH_ENV) $(CARGO) bench --locked --workspace --bench render
	$(BENCH_ENV) $(CARGO) bench --locked --workspace --bench reuse
	$(BENCH_ENV) $(CARGO) bench --locked --workspace --bench accounts
	$(BENCH_ENV) $(CARGO) bench --locked --workspace --bench routes
	$(BENCH_ENV) $(CARGO) bench --locked --workspace --bench outbound
	$(BENCH_ENV) target/release/side-by-side $(SIDE_ARGS)

## bench-side: native axum, Plugin Host (JSON and HTML on fresh instances, JSON with instance reuse 128)
## and `wasmtime serve` (its defaults, and reuse 128) answering the same hello at c16/64/256, server on
## CPU 0 and wrk on CPU 1, memory syscalls counted with perf; then the unpinned seed-shape cell (/status
## as HTML, wrk -t2 -c16). Tables in target/bench/side-by-side.md, chart in docs/img/side-by-side.svg.
## About seven minutes; SIDE_ARGS="--seconds 2 --warmup 1" for a quick run, "--only json,native
## --no-seed" for some rows.
bench-side: build $(WASMTIME)
	$(BENCH_ENV) target/release/side-by-side $(SIDE_ARGS)

## bench-otel: what OpenTelemetry traces cost per request: hello with span export off and on, with and
## without an incoming traceparent, and sampled out; host on CPU 0, wrk and the OTLP sink on CPU 1, five
## alternating rounds, medians. About five minutes; OTEL_ARGS="--rounds 1 --seconds 2" for a quick run.
.PHONY: bench-otel
bench-otel: build
	$(BENCH_ENV) taskset -c 1 target/release/otel-cost $(OTEL_ARGS)

## cluster: a local cluster to try: PostgreSQL, three nodes and haproxy on 127.0.0.1:8080, the example
## plugins pushed, an admin and a key made, URLs printed; Ctrl-C stops everything it started.
cluster: build test-deps
	target/release/cluster-demo

## bench-cluster: cluster mode on this machine: convergence from a change on one node to all three
## (p50/p99 over 100 changes, with notifications and by polling alone), and hello through haproxy with
## 1, 2 and 3 nodes with CPU per request. A private PostgreSQL and haproxy (make test-deps); ~6 minutes.
bench-cluster: build test-deps
	$(BENCH_ENV) target/release/cluster-bench $(CLUSTER_ARGS)

# Heavy (~15 min on two cores): only when missing. `cargo install` builds in a temporary directory.
$(WASMTIME):
	$(CARGO) install wasmtime-cli --version $(WASMTIME_VERSION) --locked --root target/tools

## soak: the release host under load with a reload every 1,000 requests, alternating two builds of a
## plugin (compile cache off, so each reload compiles); RSS, malloc's heap and live generations sampled,
## the RSS slope over the second half in bytes per request and per reload, CSV + SVG in target/soak/.
## About two minutes; flags scale it (target/release/soak --help). `build` builds the soak tool too.
soak: build
	$(BENCH_ENV) target/release/soak $(SOAK_ARGS)

## soak-reloads: no traffic, 20,000 reloads by the admin API (an audit row each), then 20,000 by SIGHUP;
## each run fails if RSS grows more than 10 bytes per reload over its second half (least squares).
## About five minutes; SOAK_ARGS go to both runs ("--reloads 5000 --warmup 500" for a quick one).
.PHONY: soak-reloads
soak-reloads: build
	$(BENCH_ENV) target/release/soak --mode reload --via api $(SOAK_ARGS)
	$(BENCH_ENV) target/release/soak --mode reload --via sighup $(SOAK_ARGS)

# `make fuzz`: libFuzzer through bolero (a dev-dependency), on the stable toolchain: the coverage
# instrumentation cargo-bolero 0.13 uses, without a sanitizer (those need -Z flags). cargo-bolero itself
# cannot build this package (it has no --lib, and the binary's test executable does not link libFuzzer),
# so these are its two steps: build the library's tests instrumented, then run one test with libFuzzer's
# arguments in BOLERO_LIBFUZZER_ARGS. The build has its own target directory (~25 minutes the first time).
FUZZ_SECONDS ?= 60
FUZZ_TRIPLE  := ${shell rustc -vV | sed -n 's/^host: //p'}
FUZZ_FLAGS   := --cfg fuzzing -Cpasses=sancov-module --cfg fuzzing_libfuzzer \
	-Cllvm-args=-sanitizer-coverage-inline-8bit-counters -Cllvm-args=-sanitizer-coverage-level=4 \
	-Cllvm-args=-sanitizer-coverage-pc-table -Cllvm-args=-sanitizer-coverage-trace-compares \
	-Cllvm-args=-sanitizer-coverage-stack-depth
# The fuzz targets: the functions of host/src/fuzz.rs that call check!().
FUZZ_TARGETS := ${shell awk '/^fn [a-z0-9_]+\(\)/ { name = substr($$2, 1, index($$2, "(") - 1) } /check!\(\)/ { print name }' host/src/fuzz.rs}

## fuzz: each property target of host/src/fuzz.rs under libFuzzer for FUZZ_SECONDS (default 60), or one
## with TARGET=name. The corpus grows in target/fuzz/corpus/NAME (kept between runs, never committed);
## host/src/__fuzz__/fuzz__NAME/corpus holds the committed seeds (read, not written) and crashes/ the
## inputs that failed, which `make test` replays. Stops at the first failure. Not part of CI.
fuzz:
	@exe=$$(BOLERO_FUZZER=libfuzzer RUSTFLAGS="$(FUZZ_FLAGS)" $(CARGO) test --release --locked \
		-p plugin-host --lib --no-run --target $(FUZZ_TRIPLE) --target-dir target/fuzz/build \
		--message-format=json-render-diagnostics \
		| sed -n 's/.*"executable":"\([^"]*\)".*/\1/p' | tail -n 1); \
	[ -n "$$exe" ] || { echo "make fuzz: the instrumented build failed" >&2; exit 1; }; \
	for t in $(or $(TARGET),$(FUZZ_TARGETS)); do \
		seeds=host/src/__fuzz__/fuzz__$$t; \
		mkdir -p target/fuzz/corpus/$$t $$seeds/corpus $$seeds/crashes || exit 1; \
		echo "== fuzz::$$t for $(FUZZ_SECONDS) s"; \
		BOLERO_LIBFUZZER_ARGS="target/fuzz/corpus/$$t $$seeds/corpus $$seeds/crashes -artifact_prefix=$$seeds/crashes/ -max_total_time=$(FUZZ_SECONDS) -timeout=10 -print_final_stats=1" \
			$$exe fuzz::$$t --exact --nocapture --test-threads 1 || exit 1; \
	done
