#!/usr/bin/env bash
# One run on loopback (127.0.3.1): a sink backend, then the same measurements straight to the
# sink ("direct") and through snigated in each relay mode, printed side by side with the ratio
# to direct. Usage: tools/bench/bench.sh [BUILD_DIR]   (env: MODES, REPEAT, SECONDS_EACH,
# IDLE_CONNS). Throughput and connections/s are the median of REPEAT runs.
set -euo pipefail
build=${1:-build}
load=$build/tools/bench/snigate-load
snigated=$build/userspace/daemon/snigated
modes=${MODES:-sockmap splice copy}
repeat=${REPEAT:-3}
secs=${SECONDS_EACH:-3}
idle_conns=${IDLE_CONNS:-1000}
for bin in "$load" "$snigated"; do
  [[ -x $bin ]] || { echo "missing $bin: build it first (tools/build.sh)" >&2; exit 1; }
done
ulimit -n "$(ulimit -Hn)"  # idle connections need 4 descriptors each across the processes

work=$(mktemp -d /tmp/snigate-bench.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT INT TERM

# Waits (5 s at most) for a line matching $2 in file $1 and prints the first capture.
wait_for() {
  for _ in $(seq 100); do
    if v=$(sed -nE "s/.*$2.*/\\1/p" "$1" | head -1) && [[ -n $v ]]; then echo "$v"; return; fi
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; exit 1
}

"$load" sink --ip 127.0.3.1 >"$work/sink.log" 2>&1 &
sink_pid=$!
pids+=("$sink_pid")
sink_port=$(wait_for "$work/sink.log" 'sink port=([0-9]+)')

median() { sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
field() { sed -nE "s/.* $1=([0-9.]+).*/\\1/p"; }

# measure NAME PORT PID: one column of results in $work/NAME.
measure() {
  local name=$1 port=$2 pid=$3 out=$work/$1
  for conns in 1 8; do
    for _ in $(seq "$repeat"); do
      "$load" throughput --port "$port" --conns "$conns" --seconds "$secs" | tee -a "$work/raw" |
        field gbit_s
    done | median >"$out.tput$conns"
  done
  "$load" latency --port "$port" --count 5000 | tee -a "$work/raw" >"$out.lat"
  field p50_us <"$out.lat" >"$out.p50"
  field p99_us <"$out.lat" >"$out.p99"
  for _ in $(seq "$repeat"); do
    "$load" cps --port "$port" --seconds "$secs" | tee -a "$work/raw" | field conns_s
  done | median >"$out.cps"
  "$load" idle --port "$port" --conns "$idle_conns" --pid "$pid" | tee -a "$work/raw" |
    field bytes_per_conn >"$out.idle"
}

columns=(direct)
measure direct "$sink_port" "$sink_pid"

for mode in $modes; do
  cat >"$work/$mode.toml" <<TOML
[daemon]
access_log = "$work/$mode.access.log"
log_level = "warn"
[[listener]]
name = "bench"
listen = "127.0.3.1:0"
protocol = "http"
table = "t"
[table.t]
default = "sink"
[backend.sink]
servers = ["127.0.3.1:$sink_port"]
TOML
  "$snigated" -c "$work/$mode.toml" --relay "$mode" --log-level info >"$work/$mode.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  port=$(wait_for "$work/$mode.log" 'listener bench bound to 127.0.3.1:([0-9]+)')
  got=$(wait_for "$work/$mode.log" 'relay: ([a-z]+) ')
  if [[ $got != "$mode" ]]; then
    echo "relay $mode not available here (snigated chose $got); column skipped" >&2
    kill "$pid"; wait "$pid" 2>/dev/null || true
    continue
  fi
  measure "$mode" "$port" "$pid"
  kill "$pid"; wait "$pid" 2>/dev/null || true
  columns+=("$mode")
done

row() {  # row LABEL FILE-SUFFIX
  printf '%-34s' "$1"
  local base; base=$(cat "$work/direct.$2")
  for c in "${columns[@]}"; do
    local v; v=$(cat "$work/$c.$2")
    if [[ $c == direct ]]; then
      printf '%16s' "$v"
    else
      printf '%16s' "$v ($(awk -v a="$v" -v b="$base" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'))"
    fi
  done
  echo
}
echo
echo "snigate bench, $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r); ratio = value / direct"
printf '%-34s' metric; for c in "${columns[@]}"; do printf '%16s' "$c"; done; echo
row "throughput 1 conn (Gbit/s)" tput1
row "throughput 8 conns (Gbit/s)" tput8
row "latency p50 (us, 64 B echo)" p50
row "latency p99 (us, 64 B echo)" p99
row "connections/s (4 parallel)" cps
row "memory per idle conn (B RSS)" idle
