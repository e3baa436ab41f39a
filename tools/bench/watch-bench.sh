#!/usr/bin/env bash
# Lines per second of snigate-watch's filter against fail2ban-regex on the same generated
# 1,000,000-line nginx access log with the stock nginx-botsearch filter, in one run.
# Usage: tools/bench/watch-bench.sh [BUILD_DIR] [LINES]
set -euo pipefail
build=${1:-build}
lines=${2:-1000000}
watch_bin=$build/tools/snigate-watch/snigate-watch
[[ -x $watch_bin ]] || { echo "watch-bench: build snigate-watch first ($watch_bin)" >&2; exit 2; }
command -v fail2ban-regex >/dev/null || { echo "watch-bench: fail2ban-regex missing (tools/install-deps.sh)" >&2; exit 2; }

work=$(mktemp -d /tmp/snigate-watch-bench.XXXXXX)
trap 'rm -rf "$work"' EXIT
log=$work/access.log

# One line in ten is a bot probing a stock nginx-botsearch path (404), from many clients.
python3 - "$log" "$lines" <<'PY'
import sys, random, datetime
path, n = sys.argv[1], int(sys.argv[2])
random.seed(7)
t = datetime.datetime(2026, 11, 23, 8, 0, 0)
ok = ['/', '/index.html', '/static/app.js', '/api/items?page=2', '/favicon.ico']
bad = ['/wp-login.php', '/phpmyadmin/index.php', '/cgi-bin/test.cgi', '/mysqladmin/', '/webmail/']
with open(path, 'w') as f:
    for i in range(n):
        ip = '198.51.%d.%d' % (random.randrange(256), random.randrange(1, 255))
        ts = (t + datetime.timedelta(seconds=i // 50)).strftime('%d/%b/%Y:%H:%M:%S +0000')
        if i % 10 == 0:
            req, status = 'GET %s HTTP/1.1' % random.choice(bad), 404
        else:
            req, status = 'GET %s HTTP/1.1' % random.choice(ok), 200
        f.write('%s - - [%s] "%s" %d %d "-" "Mozilla/5.0 (X11; Linux x86_64)"\n'
                % (ip, ts, req, status, random.randrange(200, 9000)))
PY

# Wall and CPU time (user+sys) of each whole command, start-up included: on a shared 2-core
# machine the wall clock also measures the neighbours, CPU time only the command itself.
measure() {  # measure OUT_FILE CMD... -> prints "WALL CPU"
  python3 - "$@" <<'PY'
import resource, subprocess, sys, time
out_file, cmd = sys.argv[1], sys.argv[2:]
before = resource.getrusage(resource.RUSAGE_CHILDREN)
t0 = time.monotonic()
with open(out_file, 'w') as out:
    subprocess.run(cmd, stdout=out, stderr=subprocess.DEVNULL, check=True)
wall = time.monotonic() - t0
after = resource.getrusage(resource.RUSAGE_CHILDREN)
print('%.3f %.3f' % (wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)))
PY
}
ours=$(measure "$work/ours.txt" "$watch_bin" test nginx-botsearch "$log")
theirs=$(measure "$work/theirs.txt" fail2ban-regex "$log" nginx-botsearch)
ours_lines=$(grep '^Lines:' "$work/ours.txt")
theirs_lines=$(grep '^Lines:' "$work/theirs.txt")
echo "lines:          $lines (nginx access log, stock filter nginx-botsearch)"
echo "snigate-watch:  $ours_lines"
echo "fail2ban-regex: $theirs_lines"
python3 - "$lines" $ours $theirs <<'PY'
import sys
n = int(sys.argv[1])
ow, oc, tw, tc = map(float, sys.argv[2:6])
print("snigate-watch:  wall %.2f s (%.0f lines/s)  cpu %.2f s (%.0f lines/cpu-s)" % (ow, n / ow, oc, n / oc))
print("fail2ban-regex: wall %.2f s (%.0f lines/s)  cpu %.2f s (%.0f lines/cpu-s)" % (tw, n / tw, tc, n / tc))
print("ratio:          wall %.1fx  cpu %.1fx  (goal >= 20x)" % (tw / ow, tc / oc))
PY
if [[ $ours_lines != "$theirs_lines" ]]; then
  echo "watch-bench: the two disagree on the counts above" >&2
  exit 1
fi
