#!/usr/bin/env bash
# How long a control request waits while the expiry sweep lifts a mass of bans (root: the
# ban maps are pinned BPF maps). snigated gets N bans (default 100,000) over its control
# socket, all timed to expire within the same second; from 5 s before that second to 15 s
# after, a client makes one `ban` request every 20 ms on the control socket (what
# `snigatectl ban` sends, without its process start) and times each answer. Printed: p50,
# p99 and max of the requests before the expiry and of those during the sweep.
# Usage: tools/bench/sweep-latency.sh [BANS]   BUILD_DIR (default build) must hold a build.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
bans=${1:-100000}
if [[ $(id -u) -ne 0 ]]; then echo "sweep-latency: needs root (pinned BPF ban maps)" >&2; exit 2; fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
cmake --build "$build" --target snigated -j 2 >/dev/null

work=$(mktemp -d /tmp/snigate-sweep-latency.XXXXXX)
pins=/sys/fs/bpf/snigate-sweep-latency-$$
pid=
cleanup() {
  [[ -n $pid ]] && { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; }
  rm -rf "$work" "$pins"
}
trap cleanup EXIT

cat >"$work/snigated.toml" <<EOF
[daemon]
workers = 1
control_socket = "$work/control.sock"
access_log = "$work/access.log"
[[listener]]
name = "edge"
listen = "127.0.9.2:0"
protocol = "http"
table = "t"
[table.t]
default = "nowhere"
[backend.nowhere]
servers = ["127.0.9.2:9"]
[bans]
store = "$work/bans.db"
pin_dir = "$pins"
EOF
"$build/userspace/daemon/snigated" -c "$work/snigated.toml" >"$work/snigated.log" 2>&1 &
pid=$!

python3 - "$work" "$bans" <<'PY'
import json, math, socket, sys, time
work, n = sys.argv[1], int(sys.argv[2])

class Control:
    def __init__(self):
        self.s = socket.socket(socket.AF_UNIX)
        self.s.settimeout(60)
        self.s.connect(work + "/control.sock")
        self.buf = b""
    def send(self, lines):
        self.s.sendall("".join(json.dumps(l) + "\n" for l in lines).encode())
    def replies(self, count):
        out = []
        while len(out) < count:
            while b"\n" not in self.buf:
                chunk = self.s.recv(1 << 20)
                if not chunk:
                    sys.exit("sweep-latency: snigated closed the control socket; see " + work)
                self.buf += chunk
            line, self.buf = self.buf.split(b"\n", 1)
            out.append(json.loads(line))
        return out

for _ in range(600):
    try:
        Control().send([]); break
    except OSError:
        time.sleep(0.05)

# Every ban expires at `target`, a whole second fixed before the first is made and far
# enough ahead for all to be made (~10,000/s here) and for 5 s of requests before it.
ctl = Control()
t0 = time.time()
target = math.ceil(t0 + n / 2500 + 10)
made, chunk = 0, 1000
while made < n:
    lines = [{"cmd": "ban", "prefix": "10.%d.%d.%d" % (i >> 16, (i >> 8) & 255, i & 255),
              "duration": max(1, round(target - time.time()))}
             for i in range(made, min(n, made + chunk))]
    ctl.send(lines)
    for r in ctl.replies(len(lines)):
        if not r.get("ok"):
            sys.exit("sweep-latency: ban refused: %s" % r)
    made += len(lines)
if time.time() > target - 5:
    sys.exit("sweep-latency: making the bans took %.1f s, past the 5 s before they expire"
             % (time.time() - t0))
print("sweep-latency: %d bans made in %.1f s, all to expire at %.0f (in %.1f s)"
      % (n, time.time() - t0, target, target - time.time()))

def stats():
    c = Control(); c.send([{"cmd": "stats"}]); return c.replies(1)[0]["stats"]["bans"]["active"]

probe = Control()
before, during = [], []
k = 0
end = target + 15
while time.time() < target - 5:
    time.sleep(0.1)
while time.time() < end:
    t = time.monotonic()
    probe.send([{"cmd": "ban", "prefix": "192.0.2.%d" % (k % 250 + 1), "duration": 600}])
    r = probe.replies(1)[0]
    took = (time.monotonic() - t) * 1000
    k += 1
    if not r.get("ok"):
        sys.exit("sweep-latency: probe ban refused: %s" % r)
    (before if time.time() < target else during).append(took)
    time.sleep(0.02)
left = stats()

def show(name, xs):
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * len(xs)))]
    print("  %-28s %4d requests  p50 %7.2f ms  p99 %7.2f ms  max %7.2f ms"
          % (name, len(xs), q(0.5), q(0.99), xs[-1]))
print("sweep-latency: control `ban` round trips, one every 20 ms:")
show("before the expiry (5 s)", before)
show("during the sweep (15 s)", during)
print("sweep-latency: bans in force 15 s after the expiry: %d (the probes' 250 at most)" % left)
PY
grep -E "expired and lifted" "$work/snigated.log" | head -5 || true
echo "sweep-latency: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
