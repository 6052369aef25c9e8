#!/usr/bin/env bash
# Starts deploy/systemd/plugin-host.service for real, under systemd 252, on a machine whose PID 1 is not
# systemd (`make check-systemd`; not part of `make test`): boots a minimal Debian 12 tree made with
# debootstrap (Debian packages only; kept in target/nspawn/ between runs) in systemd-nspawn, installs the
# unit, the sample configuration, the sysusers entry, the built binary, the example plugins and the
# `faults` test fixture as docs/operations.md says, and checks that under the unit's hardening the host
# serves, that wasmtime's deadlines, memory caps and traps work, that `systemctl reload` reloads, and that
# `systemctl stop` drains a request in flight. Needs root and `make build`.
set -euo pipefail

root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
host=target/release/plugin-host
tree=$root/target/nspawn/bookworm
machine=plugin-host-check

fail() {
    echo "nspawn-check: FAILED: $*" >&2
    exit 1
}
step() {
    echo "== nspawn-check: $*"
}

[[ $(id -u) -eq 0 ]] || fail "needs root (debootstrap, systemd-nspawn)"
[[ -x $host && -f target/plugins/hello.wasm && -f target/fixtures/faults.wasm ]] || fail "run \`make build\` first"
if ! command -v systemd-nspawn >/dev/null || ! command -v debootstrap >/dev/null; then
    step "installing systemd-container and debootstrap (apt-get)"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq systemd-container debootstrap >/dev/null
fi

if [[ ! -f $tree/.complete ]]; then
    step "a minimal Debian 12 tree in ${tree#"$root"/} (debootstrap, once; a few minutes)"
    rm -rf "$tree"
    mkdir -p "$(dirname "$tree")"
    debootstrap --variant=minbase --include=systemd,systemd-sysv,dbus,procps bookworm "$tree" >/dev/null
    touch "$tree/.complete"
fi

# Two free loopback ports: the tree shares this machine's network.
read -r port admin_port < <(python3 -c '
import socket
s = [socket.socket() for _ in range(2)]
for x in s: x.bind(("127.0.0.1", 0))
print(*[x.getsockname()[1] for x in s])')

step "installing the unit as docs/operations.md says (ports $port and $admin_port on 127.0.0.1)"
rm -rf "$tree/var/lib/plugin-host" "$tree/etc/plugin-host" "$tree/etc/systemd/system/plugin-host.service.d"
install -m 0755 "$host" "$tree/usr/local/bin/plugin-host"
install -D -m 0644 deploy/systemd/plugin-host.sysusers "$tree/usr/lib/sysusers.d/plugin-host.conf"
install -d -m 0755 "$tree/etc/plugin-host"
sed -e "s|^listen = .*|listen = \"127.0.0.1:$port\"|" -e "s|^admin_listen = .*|admin_listen = \"127.0.0.1:$admin_port\"|" \
    deploy/systemd/config.toml >"$tree/etc/plugin-host/config.toml"
install -d -m 0750 "$tree/var/lib/plugin-host/plugins"
install -m 0640 target/plugins/*.wasm target/fixtures/faults.wasm "$tree/var/lib/plugin-host/plugins/"
install -m 0644 deploy/systemd/plugin-host.service "$tree/etc/systemd/system/plugin-host.service"
mkdir -p "$tree/etc/systemd/system/multi-user.target.wants"
ln -sf /etc/systemd/system/plugin-host.service "$tree/etc/systemd/system/multi-user.target.wants/"
if ! grep -q 'READY=1' "$host"; then
    # A host that does not notify would never become "started" under Type=notify.
    echo "nspawn-check: this plugin-host binary sends no READY=1: testing with Type=exec instead of notify"
    mkdir -p "$tree/etc/systemd/system/plugin-host.service.d"
    printf '[Service]\nType=exec\n' >"$tree/etc/systemd/system/plugin-host.service.d/exec.conf"
fi

step "booting the tree with systemd-nspawn"
systemd-nspawn -D "$tree" -b --console=passive --register=no --keep-unit -M "$machine" >target/nspawn/boot.log 2>&1 &
nspawn_pid=$!
init=
cleanup() {
    if [[ -n $init ]]; then
        nsenter -t "$init" -a systemctl poweroff >/dev/null 2>&1 || true
    fi
    if kill -0 "$nspawn_pid" 2>/dev/null; then
        for _ in $(seq 300); do kill -0 "$nspawn_pid" 2>/dev/null || break; sleep 0.1; done
        kill "$nspawn_pid" 2>/dev/null || true
    fi
    wait "$nspawn_pid" 2>/dev/null || true
}
trap cleanup EXIT

# The tree's PID 1, seen from here: systemd-nspawn's child.
deadline=$((SECONDS + 60))
while [[ -z $init ]]; do
    init=$(pgrep -P "$nspawn_pid" -x systemd || true)
    [[ -n $init ]] && break
    kill -0 "$nspawn_pid" 2>/dev/null || fail "systemd-nspawn exited:"$'\n'"$(cat target/nspawn/boot.log)"
    ((SECONDS < deadline)) || fail "no systemd in the tree after 60 s"
    sleep 0.1
done
inside() {
    nsenter -t "$init" -a "$@"
}
# Until its manager answers (the bus comes up a moment after PID 1), then until start-up is over.
state=
deadline=$((SECONDS + 120))
while [[ -z $state ]]; do
    state=$(inside systemctl is-system-running --wait 2>/dev/null || true)
    [[ -n $state ]] && break
    ((SECONDS < deadline)) || fail "the tree's systemd never answered"
    sleep 0.1
done
echo "systemd $(inside systemctl --version | head -1 | cut -d' ' -f2) in the tree: $state"

url=http://127.0.0.1:$port
admin=http://127.0.0.1:$admin_port
status_of() {
    curl -s -o /dev/null -w '%{http_code}' --max-time 30 "$1" || true
}
metric() {
    curl -s --max-time 5 "$admin/metrics" | sed -n "s/^$1 //p"
}

step "the service under its hardening"
inside systemctl is-active --quiet plugin-host ||
    fail "plugin-host is not active:"$'\n'"$(inside systemctl status plugin-host --no-pager -l || true)"
deadline=$((SECONDS + 120))
until [[ $(status_of "$url/readyz") == 200 ]]; do
    ((SECONDS < deadline)) || fail "/readyz never answered 200:"$'\n'"$(inside journalctl -u plugin-host --no-pager -n 30)"
    sleep 0.1
done
main_pid=$(inside systemctl show -p MainPID --value plugin-host)
# The main PID inside the tree's namespace; its status as the kernel reports it.
status=$(inside cat "/proc/$main_pid/status")
for want in "NoNewPrivs:	1" "Seccomp:	2" "CapEff:	0000000000000000" "CapBnd:	0000000000000000"; do
    grep -qF "$want" <<<"$status" || fail "the service process lacks '$want':"$'\n'"$status"
done
user=$(inside ps -o user= -p "$main_pid")
[[ $user == plugin-host ]] || fail "the service runs as $user, not plugin-host"
echo "running as $user: no capabilities, no new privileges, seccomp filter on"

step "plugins: hello, and the faults fixture's deadline, memory cap, stack overflow and panic"
expect() {
    local path=$1 want=$2 got
    got=$(status_of "$url$path")
    [[ $got == "$want" ]] || fail "GET $path answered $got, expected $want"
    echo "GET $path -> $got"
}
expect /hello/world 200
expect /faults/ok 200
expect /faults/loop 504
expect /faults/memory 500
expect /faults/recursion 500
expect /faults/panic 500

step "systemctl reload plugin-host (SIGHUP)"
before=$(metric 'plugin_host_reloads_total{result="ok"}')
inside systemctl reload plugin-host
deadline=$((SECONDS + 60))
until [[ $(metric 'plugin_host_reloads_total{result="ok"}') -gt $before ]]; do
    ((SECONDS < deadline)) || fail "no successful reload counted after systemctl reload"
    sleep 0.1
done
echo "reloads ok: $before -> $(metric 'plugin_host_reloads_total{result="ok"}'), generation $(metric plugin_host_current_generation)"

step "systemctl stop plugin-host with a request in flight (it runs to its 5 s deadline)"
curl -s -o target/nspawn/slow.out -w '%{http_code}' --max-time 60 "$url/faults/slow" >target/nspawn/slow.status &
slow=$!
deadline=$((SECONDS + 30))
until [[ $(metric plugin_host_in_flight_requests) == 1 ]]; do
    ((SECONDS < deadline)) || fail "the slow request never showed as in flight"
    sleep 0.05
done
started=$SECONDS
inside systemctl stop plugin-host
wait "$slow" || true
result=$(inside systemctl show -p Result --value plugin-host)
[[ $(cat target/nspawn/slow.status) == 504 ]] || fail "the request in flight got $(cat target/nspawn/slow.status), not its 504"
[[ $result == success ]] || fail "the service stopped with result $result"
echo "stopped after $((SECONDS - started)) s with result '$result'; the request in flight got its 504"
echo "nspawn-check: the unit starts, serves, reloads and drains under systemd"
