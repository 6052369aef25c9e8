#!/usr/bin/env bash
# Checks the packaging and operator assets under deploy/ (`make check-deploy`, part of `make test`): the
# systemd unit (systemd-analyze verify, its security exposure score, the sysusers entry), every shipped
# configuration file parsed by the real host, the Kubernetes manifests (yamllint, both kustomizations
# rendered and validated against the Kubernetes schemas, the drain timing), the container file, and the
# Grafana dashboard against the /metrics of a real host (every metric it queries is served, and promtool
# accepts the exposition). Needs `make build` (the host and target/plugins), the test virtualenv
# (target/venv: yamllint, kubernetes-validate, dockerfile-parse) and promtool (`make test-deps`).
# Nothing here needs a container engine, a cluster or systemd as PID 1; docs/operations.md says what was
# not run.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

host=target/release/plugin-host
venv=target/venv/bin
k8s_version=1.37.0
# `systemd-analyze security` exposure of the unit, in tenths (1.1 when this was written): a change that
# weakens the hardening fails here; one that strengthens it may lower this.
max_exposure=11

fail() {
    echo "deploy/check.sh: FAILED: $*" >&2
    exit 1
}
step() {
    echo "== deploy: $*"
}

for tool in "$host" "$venv/python" "$venv/yamllint" "$venv/kubernetes-validate"; do
    [[ -x $tool ]] || fail "$tool is missing: run \`make build\` and \`make test\`'s prerequisites (or \`make check-deploy\`)"
done
[[ -f target/plugins/hello.wasm ]] || fail "target/plugins/hello.wasm is missing: run \`make build\`"
for tool in systemd-analyze systemd-sysusers promtool; do
    command -v "$tool" >/dev/null || fail "$tool is not installed (\`make test-deps\` installs it)"
done

tmp=$(mktemp -d)
server_pid=
cleanup() {
    if [[ -n $server_pid ]] && kill -0 "$server_pid" 2>/dev/null; then
        kill "$server_pid" 2>/dev/null || true
        wait "$server_pid" 2>/dev/null || true
    fi
    rm -rf "$tmp"
}
trap cleanup EXIT

# --- systemd ------------------------------------------------------------------------------------------
unit=deploy/systemd/plugin-host.service
step "systemd-analyze verify $unit (ExecStart pointed at $host)"
# verify insists that ExecStart's binary exists: check a copy that runs the one just built.
grep -q '^ExecStart=/usr/local/bin/plugin-host ' "$unit" || fail "$unit: ExecStart no longer starts /usr/local/bin/plugin-host"
sed "s|^ExecStart=/usr/local/bin/plugin-host |ExecStart=$root/$host |" "$unit" >"$tmp/plugin-host.service"
if ! out=$(systemd-analyze verify "$tmp/plugin-host.service" 2>&1) || [[ -n $out ]]; then
    fail "systemd-analyze verify $unit:"$'\n'"$out"
fi
echo "verify: no errors or warnings"

step "systemd-analyze security --offline=yes $unit (at most $((max_exposure / 10)).$((max_exposure % 10)))"
if ! out=$(systemd-analyze security --offline=yes --no-pager --threshold="$max_exposure" "$unit" 2>&1); then
    echo "$out" | grep -E '✗|Overall' >&2 || echo "$out" >&2
    fail "the unit's exposure is above $((max_exposure / 10)).$((max_exposure % 10)): a hardening option was weakened"
fi
echo "$out" | grep -F 'Overall exposure level'

step "systemd-sysusers --dry-run deploy/systemd/plugin-host.sysusers"
mkdir "$tmp/sysroot"
out=$(systemd-sysusers --dry-run --root="$tmp/sysroot" "$root/deploy/systemd/plugin-host.sysusers" 2>&1) ||
    fail "systemd-sysusers:"$'\n'"$out"
grep -q "Creating user 'plugin-host'" <<<"$out" || fail "the sysusers entry creates no plugin-host user:"$'\n'"$out"
echo "sysusers: creates the plugin-host user and group"

# --- the configuration files, as the host reads them ----------------------------------------------------
step "the shipped configuration files, loaded by the host (plugin-host check --config FILE hello.wasm)"
"$venv/python" deploy/check.py configmap-toml deploy/kubernetes/base/configmap.yaml "$tmp/configmap.toml"
for config in deploy/systemd/config.toml deploy/container/config.toml "$tmp/configmap.toml"; do
    out=$("$host" check --config "$config" target/plugins/hello.wasm 2>&1) || fail "$config:"$'\n'"$out"
    echo "$config: accepted"
done

# --- Kubernetes ---------------------------------------------------------------------------------------
step "yamllint --strict deploy/kubernetes"
"$venv/yamllint" --strict -c deploy/kubernetes/.yamllint deploy/kubernetes || fail "yamllint (above)"
echo "yamllint: clean"

for dir in base cluster; do
    step "kustomize deploy/kubernetes/$dir, then kubernetes-validate --strict against Kubernetes $k8s_version"
    "$venv/python" deploy/check.py kustomize "deploy/kubernetes/$dir" "$tmp/$dir.yaml" || fail "kustomize $dir (above)"
    out=$("$venv/kubernetes-validate" --strict --kubernetes-version "$k8s_version" "$tmp/$dir.yaml" 2>&1) ||
        fail "kubernetes-validate deploy/kubernetes/$dir:"$'\n'"$out"
    sed "s|$tmp/$dir.yaml|$dir|" <<<"$out"
    "$venv/python" deploy/check.py timing "$unit" deploy/systemd/config.toml "$tmp/$dir.yaml" || fail "drain timing (above)"
done

# --- the container file -------------------------------------------------------------------------------
step "deploy/container/Containerfile (parsed with dockerfile-parse)"
"$venv/python" deploy/check.py containerfile deploy/container/Containerfile "$root" || fail "Containerfile (above)"

# --- the dashboard against a real /metrics ------------------------------------------------------------
step "a host on 127.0.0.1 (the example plugins) for its /metrics"
mkdir "$tmp/data"
cat >"$tmp/serve.toml" <<EOF
listen = "127.0.0.1:0"
plugins_dir = "$root/target/plugins"
templates_dir = "$root/templates"
data_dir = "$tmp/data"
log = "warn"
EOF
"$host" serve --config "$tmp/serve.toml" >"$tmp/serve.out" 2>"$tmp/serve.err" &
server_pid=$!
# Wait for the line the host prints once it serves (or for it to exit), at most two minutes.
addr=
deadline=$((SECONDS + 120))
while [[ -z $addr ]]; do
    addr=$(sed -n 's|^plugin-host listening on http://||p' "$tmp/serve.out")
    [[ -n $addr ]] && break
    kill -0 "$server_pid" 2>/dev/null || fail "the host exited before listening:"$'\n'"$(cat "$tmp/serve.err")"
    ((SECONDS < deadline)) || fail "the host printed no 'listening' line within 120 s:"$'\n'"$(cat "$tmp/serve.err")"
    sleep 0.05
done
echo "host: http://$addr"
# One plugin request first, so the per-plugin families have samples; then the exposition.
"$venv/python" - "http://$addr" "$tmp/metrics.txt" <<'EOF'
import sys, urllib.request
base, out = sys.argv[1], sys.argv[2]
with urllib.request.urlopen(base + "/hello/x", timeout=30) as r:
    assert r.status == 200, f"/hello/x answered {r.status}"
with urllib.request.urlopen(base + "/metrics", timeout=30) as r:
    open(out, "wb").write(r.read())
EOF
grep -q '^plugin_host_requests_total{plugin="hello"' "$tmp/metrics.txt" ||
    fail "/metrics has no plugin_host_requests_total sample for hello after GET /hello/x"
echo "/metrics: $(grep -c '^# TYPE' "$tmp/metrics.txt") families, $(grep -vc '^#' "$tmp/metrics.txt") samples"

step "promtool check metrics (the host's /metrics)"
if ! out=$(promtool check metrics <"$tmp/metrics.txt" 2>&1); then
    fail "promtool check metrics found problems in the host's /metrics:"$'\n'"$out"
fi
echo "promtool: no problems${out:+ ($out)}"

step "deploy/grafana/plugin-host.json against that /metrics"
"$venv/python" deploy/check.py dashboard deploy/grafana/plugin-host.json "$tmp/metrics.txt" || fail "dashboard (above)"

echo "deploy/check.sh: all deploy checks passed"
