#!/usr/bin/env bash
# One run on loopback (127.0.3.1): a sink backend, then the same measurements straight to the
# sink ("direct") and through snigated in each relay mode, printed side by side with the ratio
# to direct. Usage: tools/bench/bench.sh [BUILD_DIR]   (env: MODES, REPEAT, SECONDS_EACH,
# IDLE_CONNS, SOCKMAP_QUEUE_LIMIT: snigated's [daemon] sockmap_queue_limit, e.g. 1099511627776
# to measure the kernel path alone). Throughput, CPU per GiB and connections/s are the median
# of REPEAT runs; throughput counts a byte once the sink has it.
# CPU per GiB is the whole machine's busy time from /proc/stat (kernel work included, which is
# where sockmap and splice spend it) during the 1-connection upload, per GiB moved; the
# "relay cost" row subtracts the direct run's, leaving what the relay adds. Other load on the
# machine shows up there too: run it on a quiet machine, or compare medians of several runs.
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

load_before=$(cut -d' ' -f1-3 /proc/loadavg)
# A host that takes back free guest memory makes every page the sender allocates afresh fault
# in the host (touching 8 GiB of fresh memory took 42 s here, 0.13 s the second time); relays
# keep more bytes in flight than a direct connection, so this skews their columns.
for features in /sys/bus/virtio/drivers/virtio_balloon/virtio*/features; do
  # Bit 5 is VIRTIO_BALLOON_F_REPORTING.
  if [[ -r $features && $(cut -c6 "$features") == 1 ]]; then
    echo "note: the balloon reports free pages to the host: fresh pages fault in the host," \
      "and relay columns include that cost" >&2
  fi
done
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

# Every snigate-load run is bounded in time too (its own loops are bounded by --seconds or
# --count; this catches a stuck peer).
load_run() { timeout 120 "$load" "$@" | tee -a "$work/raw"; }

# measure NAME PORT PID: one column of results in $work/NAME.*
measure() {
  local name=$1 port=$2 pid=$3 out=$work/$1
  # Idle memory first, on a process that has served nothing yet: after the other runs its
  # allocator reuses their freed memory and the RSS growth reads too low (0 was seen).
  load_run idle --port "$port" --conns "$idle_conns" --pid "$pid" |
    field bytes_per_conn >"$out.idle"
  for conns in 1 8; do
    : >"$out.tput$conns.runs"
    for _ in $(seq "$repeat"); do
      load_run throughput --port "$port" --conns "$conns" --seconds "$secs" >>"$out.tput$conns.runs"
    done
    field gbit_s <"$out.tput$conns.runs" | median >"$out.tput$conns"
    field cpu_s_per_gib <"$out.tput$conns.runs" | median >"$out.cpu$conns"
  done
  load_run latency --port "$port" --count 5000 >"$out.lat"
  field p50_us <"$out.lat" >"$out.p50"
  field p99_us <"$out.lat" >"$out.p99"
  for _ in $(seq "$repeat"); do
    load_run cps --port "$port" --seconds "$secs" | field conns_s
  done | median >"$out.cps"
}

columns=(direct)
measure direct "$sink_port" "$sink_pid"

for mode in $modes; do
  cat >"$work/$mode.toml" <<TOML
[daemon]
${SOCKMAP_QUEUE_LIMIT:+sockmap_queue_limit = $SOCKMAP_QUEUE_LIMIT}
access_log = "$work/$mode.access.log"
log_level = "warn"
control_socket = "$work/$mode.control.sock"
# Every bench connection comes from one loopback address: the per-client caps would refuse
# most of the idle and throughput connections.
max_connections_per_client = 0
max_prereads_per_client = 0
# Off so the bench never touches the machine's ban store, pins or control socket; the
# accept-time check it skips costs ~0.1 us (tools/bench/ban-bench.sh).
[bans]
enabled = false
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
  printf '%-36s' "$1"
  local base; base=$(cat "$work/direct.$2")
  for c in "${columns[@]}"; do
    local v; v=$(cat "$work/$c.$2")
    if [[ $c == direct ]]; then
      printf '%18s' "$v"
    else
      printf '%18s' "$v ($(awk -v a="$v" -v b="$base" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }'))"
    fi
  done
  echo
}
# What each relay adds to the direct run's CPU per GiB (the relay's own cost).
cost_row() {  # cost_row LABEL FILE-SUFFIX
  printf '%-36s' "$1"
  local base; base=$(cat "$work/direct.$2")
  for c in "${columns[@]}"; do
    if [[ $c == direct ]]; then
      printf '%18s' "-"
    else
      printf '%18s' "$(awk -v a="$(cat "$work/$c.$2")" -v b="$base" 'BEGIN { printf "%+.3f", a - b }')"
    fi
  done
  echo
}
echo
echo "snigate bench, $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), load before: $load_before"
echo "median of $repeat runs of ${secs}s; (ratio) = value / direct"
printf '%-36s' metric; for c in "${columns[@]}"; do printf '%18s' "$c"; done; echo
row "throughput 1 conn (Gbit/s)" tput1
row "throughput 8 conns (Gbit/s)" tput8
row "latency p50 (us, 64 B echo)" p50
row "latency p99 (us, 64 B echo)" p99
row "connections/s (4 parallel)" cps
row "memory per idle conn (B RSS)" idle
row "machine CPU s per GiB (1 conn)" cpu1
cost_row "relay cost CPU s/GiB (1 conn)" cpu1
row "machine CPU s per GiB (8 conns)" cpu8
cost_row "relay cost CPU s/GiB (8 conns)" cpu8
