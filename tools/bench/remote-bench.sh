#!/usr/bin/env bash
# Remote ban channel, end to end on loopback (root: the edge's ban maps are pinned BPF maps):
# N distinct offenders (default 10,000) written at once to a log that snigate-watch follows
# (nginx-http-auth, maxretry 1), pushed over the signed channel to a snigated edge; the
# figure is the time from the write until the edge reports them all in force
# (`bans.active` of its control socket's stats), polled every 50 ms.
# Usage: tools/bench/remote-bench.sh [OFFENDERS]   BUILD_DIR (default build) must hold a build;
# TLS=1 runs the channel over TLS with client certificates (made here by the openssl CLI).
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
offenders=${1:-10000}
if [[ $(id -u) -ne 0 ]]; then echo "remote-bench: needs root (pinned BPF ban maps)" >&2; exit 2; fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
cmake --build "$build" --target snigated snigate-watch -j 2 >/dev/null
snigated=$build/userspace/daemon/snigated
watch=$build/tools/snigate-watch/snigate-watch

work=$(mktemp -d /tmp/snigate-remote-bench.XXXXXX)
pins=/sys/fs/bpf/snigate-remote-bench-$$
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$work" "$pins"
}
trap cleanup EXIT

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.9.1",0)); print(s.getsockname()[1])')
openssl rand -hex 32 >"$work/token"
chmod 600 "$work/token"
: >"$work/error.log"
edge_tls= watch_tls=
if [[ ${TLS:-0} == 1 ]]; then
  ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
  for who in edge watcher; do
    (cd "$work" && openssl req -x509 $ec -keyout $who-ca.key -out $who-ca.pem -days 1 -subj /CN=$who-ca \
      && openssl req $ec -keyout $who.key -out $who.csr -subj /CN=$who \
      && printf 'subjectAltName=IP:127.0.9.1\n' >$who.ext \
      && openssl x509 -req -in $who.csr -CA $who-ca.pem -CAkey $who-ca.key -CAcreateserial -days 1 \
           -out $who.pem -extfile $who.ext) >/dev/null 2>&1
  done
  edge_tls="tls_cert = \"$work/edge.pem\"
tls_key = \"$work/edge.key\"
tls_client_ca = \"$work/watcher-ca.pem\""
  watch_tls="tls_cert = \"$work/watcher.pem\"
tls_key = \"$work/watcher.key\"
tls_ca = \"$work/edge-ca.pem\""
fi
cat >"$work/snigated.toml" <<EOF
[daemon]
workers = 1
control_socket = "$work/control.sock"
access_log = "$work/access.log"
[[listener]]
name = "edge"
listen = "127.0.9.1:0"
protocol = "http"
table = "t"
[table.t]
default = "nowhere"
[backend.nowhere]
servers = ["127.0.9.1:9"]
[bans]
store = "$work/bans.db"
pin_dir = "$pins"
[remote_ban]
listen = "127.0.9.1:$port"
name = "bench-edge"
token_files = ["$work/token"]
$edge_tls
EOF
cat >"$work/watch.toml" <<EOF
[edge]
endpoint = "127.0.9.1:$port"
name = "bench-edge"
token_file = "$work/token"
$watch_tls
[watch]
state_dir = "$work/state"
[[jail]]
name = "bench"
logpath = "$work/error.log"
filter = "nginx-http-auth"
maxretry = 1
bantime = "1h"
EOF

"$snigated" -c "$work/snigated.toml" >"$work/snigated.log" 2>&1 &
pids+=($!)
"$watch" -c "$work/watch.toml" >"$work/watch.log" 2>&1 &
pids+=($!)

python3 - "$work" "$offenders" <<'PY'
import json, socket, sys, time
work, n = sys.argv[1], int(sys.argv[2])

def stats():
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(5)
    s.connect(work + "/control.sock")
    s.sendall(b'{"cmd":"stats"}\n')
    data = b""
    while not data.endswith(b"\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    return json.loads(data)

def wait_for(what, pred, limit):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        try:
            if pred():
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    sys.exit("remote-bench: %s within %d s; see %s" % (what, limit, work))

wait_for("snigated did not answer", lambda: stats()["ok"], 30)
wait_for("snigate-watch did not start",
         lambda: "pushing bans to" in open(work + "/watch.log").read(), 30)
time.sleep(0.5)  # it starts following at the end of the log

stamp = time.strftime("%Y/%m/%d %H:%M:%S")
lines = "".join(
    '%s [error] 88#88: *3 user "root": password mismatch, client: 198.18.%d.%d, server: '
    'shop.example, request: "POST /login HTTP/1.1", host: "shop.example"\n'
    % (stamp, i // 250, i % 250 + 1) for i in range(n))
t0 = time.monotonic()
with open(work + "/error.log", "a") as f:
    f.write(lines)
active, limit = 0, max(60, n // 50)
while time.monotonic() - t0 < limit:
    active = stats()["stats"]["bans"]["active"]
    if active >= n:
        break
    time.sleep(0.05)
took = time.monotonic() - t0
print("remote-bench: %d offenders, snigate-watch -> snigated on loopback%s: %d in force after %.2f s"
      " (%.0f bans/s)" % (n, " over TLS" if "tls_ca" in open(work + "/watch.toml").read() else "",
                          active, took, active / took))
if active < n:
    sys.exit("remote-bench: only %d of %d bans in force after %d s" % (active, n, limit))
PY
echo "remote-bench: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
