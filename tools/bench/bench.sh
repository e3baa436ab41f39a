#!/usr/bin/env bash
# One run on loopback (127.0.3.1): a sink backend per column, then the same measurements
# straight to a sink ("direct"), through snigated in each relay mode, through nginx (stream,
# ssl_preread) and HAProxy (tcp mode, req.ssl_sni), and through "floor" (floor_relay.c: the
# least a userspace relay does, no SNI read; a floor on system calls and relay CPU per
# connection, not a ceiling on connections/s), printed side by side with the ratio to direct.
# Every client connection opens with a TLS ClientHello, so each relay but floor routes it by SNI.
# Usage: tools/bench/bench.sh [BUILD_DIR]   (env: MODES (default "sockmap splice copy auto"),
# PEERS (default "nginx haproxy floor"), REPEAT, SECONDS_EACH, IDLE_CONNS (default 5000),
# IDLE_EXCHANGES (default 20: the 64-byte exchanges each idle connection makes before it holds,
# as HTTP/2 and WebSocket clients do; enough to hand it to the kernel under relay = "sockmap"
# and "auto"; 0 for connections that never sent a byte past the ClientHello),
# ONLY_IDLE=1 (the idle-memory row alone), SNIGATED_WORKERS ([daemon] workers; default 1, like
# nginx's one worker and HAProxy's one thread), SOCKMAP_QUEUE_LIMIT: snigated's [daemon]
# sockmap_queue_limit, e.g. 1099511627776 to measure the kernel path alone,
# SOCKMAP_HANDOFF_AFTER: its sockmap_handoff_after, e.g. 0 to hand every connection off;
# SINK_ADDRESSES (default 4): how many loopback addresses each sink listens on, all of which
# every relay balances over (round robin), so that no relay runs out of ports towards its sink
# (below); DEFER_ACCEPT (default 1): 1 defers accept until the first bytes, snigated's default
# `defer_accept`, HAProxy's `defer-accept` and floor's (nginx's stream module has no
# `deferred`); 0: none; WORKLOADS (default "up1 up8 echo1 echo8"): the throughput rows to run,
# "" for none;
# THROUGHPUT_ONLY=1 skips idle memory, latency, connections/s, system calls and perf: a quicker
# run of the throughput rows alone).
# The idle row holds IDLE_CONNS connections open through each column in turn, each on a
# process that has served nothing before, and counts only connections still open at the end.
# Every relay runs for the whole bench and the rounds visit the columns in turn (starting one
# column later each round), so a burst of other load on this noisy machine lands on all
# columns rather than on one; the table shows the median of REPEAT rounds. Upload throughput
# counts a byte once the sink has it, two-way echo once it is back at the client.
# CPU per GiB is the whole machine's busy time from /proc/stat (kernel work included, which is
# where sockmap and splice spend it) during the run, per GiB moved; the "relay CPU" rows
# subtract the direct run's, leaving what the relay adds. Other load on the machine shows up
# there too: run it on a quiet machine, or compare medians of several runs.
set -euo pipefail
build=${1:-build}
load=$build/tools/bench/snigate-load
snigated=$build/userspace/daemon/snigated
modes=${MODES:-sockmap splice copy auto}
floor=$build/tools/bench/floor-relay
peers=${PEERS-nginx haproxy floor}  # PEERS="" runs no peer
repeat=${REPEAT:-3}
secs=${SECONDS_EACH:-3}
idle_conns=${IDLE_CONNS:-5000}
idle_exchanges=${IDLE_EXCHANGES:-20}
defer=${DEFER_ACCEPT:-1}
ip=127.0.3.1
for bin in "$load" "$snigated"; do
  [[ -x $bin ]] || { echo "missing $bin: build it first (tools/build.sh)" >&2; exit 1; }
done
# Idle connections need a descriptor each in the client and the sink and two in the relay;
# under splice, sockmap and auto snigated's budget also keeps 2 per pipe of its pool, a
# quarter pipe per connection by default, and a sixteenth of the limit for the rest
# (daemon/fd_budget.h):
# raise the hard limit where allowed (root), else say that the idle row may be refused.
need_fds=$((3 * idle_conns + 4096))
if (( $(ulimit -Hn) < need_fds )) && ! ulimit -Hn "$need_fds" 2>/dev/null; then
  echo "note: descriptor hard limit $(ulimit -Hn) < $need_fds: snigated may refuse part of" \
    "the $idle_conns idle connections (its budget), which the idle row then reports as failed" >&2
fi
ulimit -n "$(ulimit -Hn)"

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
trap cleanup EXIT
trap 'exit 1' INT TERM  # through the EXIT trap, rather than on to the next run

# Waits (5 s at most) for a line matching $2 in file $1 and prints the first capture.
wait_for() {
  for _ in $(seq 100); do
    if v=$(sed -nE "s/.*$2.*/\\1/p" "$1" | head -1) && [[ -n $v ]]; then echo "$v"; return; fi
    sleep 0.05
  done
  echo "timed out waiting for '$2' in $1:" >&2; cat "$1" >&2; exit 1
}

# A port nobody listens on, for the peers (nginx and HAProxy cannot report one they chose).
free_port() {
  for _ in $(seq 50); do
    local p=$((20000 + RANDOM % 30000))
    if [[ -z $(ss -Htln "sport = :$p") ]]; then echo "$p"; return; fi
  done
  echo "no free port found in 50 tries" >&2; exit 1
}

# wait_listening PORT PID LOG: 0 once PORT listens (5 s at most), 1 (showing LOG) if PID died
# or it never did.
wait_listening() {
  for _ in $(seq 100); do
    [[ -n $(ss -Htln "sport = :$1") ]] && return 0
    kill -0 "$2" 2>/dev/null || break
    sleep 0.05
  done
  echo "nothing listens on port $1; its log:" >&2; cat "$3" >&2
  return 1
}

declare -A port mem_pid  # per column: where clients connect, whose RSS is the idle memory
columns=()
notes=()

# sink COLUMN: starts a sink of COLUMN's own, its port in sink_port[COLUMN], listening on the
# SINK_ADDRESSES addresses in sink_ips. A relay passes a client's FIN on, so its end towards the
# sink sits in TIME_WAIT; towards one address, tcp_tw_reuse hands a port out again only after
# 1 s, and connect(2) then caps a relay at about half the ephemeral range per second (14,100
# here) while the kernel's table of TIME_WAIT sockets (tcp_max_tw_buckets) has room, and not at
# all once it is full: a FIN row's column hit that cap or not by what earlier runs had left.
# Spread over 4 addresses, the cap lies far above what any column reaches. One sink per column,
# so no column's TIME_WAIT ends crowd another's port space.
sink_addresses=${SINK_ADDRESSES:-4}
sink_ips=()
for ((k = 0; k < sink_addresses; k++)); do sink_ips+=("${ip%.*}.$((${ip##*.} + k))"); done
declare -A sink_pid sink_port
sink() {
  "$load" sink --ip "$ip" --addresses "$sink_addresses" >"$work/$1.sink.log" 2>&1 &
  pids+=("$!")
  sink_pid[$1]=$!
  sink_port[$1]=$(wait_for "$work/$1.sink.log" 'sink port=([0-9]+)')
}
sink direct
notes+=("each sink listens on ${#sink_ips[@]} addresses, which every relay balances over")
port[direct]=${sink_port[direct]}
mem_pid[direct]=${sink_pid[direct]}
columns+=(direct)

# Heap allocations per connection: snigated runs with a counting allocator preloaded
# (tools/bench/alloc_count.c), whose counter the cps runs below read.
alloc_lib=$build/tools/bench/snigate-alloc-count.so
preload=
if [[ -f $alloc_lib ]]; then
  preload="LD_PRELOAD=$(realpath "$alloc_lib")"
else
  echo "note: $alloc_lib not built: no heap allocation row" >&2
fi
for mode in $modes; do
  sink "$mode"
  cat >"$work/$mode.toml" <<TOML
[daemon]
relay = "$mode"
workers = ${SNIGATED_WORKERS:-1}
${SOCKMAP_QUEUE_LIMIT:+sockmap_queue_limit = $SOCKMAP_QUEUE_LIMIT}
${SOCKMAP_HANDOFF_AFTER:+sockmap_handoff_after = $SOCKMAP_HANDOFF_AFTER}
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
listen = "$ip:0"
protocol = "tls"
table = "t"
defer_accept = $([[ $defer == 1 ]] && echo true || echo false)
[table.t]
"*.bench.test" = "sink"
default = "sink"
[backend.sink]
servers = [$(printf '"%s:'"${sink_port[$mode]}"'", ' "${sink_ips[@]}" | sed 's/, $//')]
TOML
  # shellcheck disable=SC2086  # $preload is empty or one VAR=value word
  env $preload SNIGATE_ALLOC_COUNT_FILE="$work/$mode.allocs" \
    "$snigated" -c "$work/$mode.toml" --log-level info >"$work/$mode.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  p=$(wait_for "$work/$mode.log" "listener bench bound to $ip:([0-9]+)")
  got=$(wait_for "$work/$mode.log" 'relay: ([a-z]+) ')
  workers=$(wait_for "$work/$mode.log" 'listener bench bound to .*, ([0-9]+) worker')
  if [[ $mode == auto ]]; then
    notes+=("auto chose $got")
  elif [[ $got != "$mode" ]]; then
    echo "relay $mode not available here (snigated chose $got); column skipped" >&2
    kill "$pid"; wait "$pid" 2>/dev/null || true
    continue
  fi
  port[$mode]=$p
  mem_pid[$mode]=$pid
  columns+=("$mode")
done
[[ -z ${workers:-} ]] || notes+=("snigated $workers worker(s)")

start_nginx() {
  local dir=$work/nginx p; p=$(free_port)
  sink nginx
  mkdir -p "$dir"
  # Its own prefix, pid, lock and log files: never the system's config or paths. No http block,
  # so no temp paths either.
  cat >"$dir/nginx.conf" <<CONF
load_module /usr/lib/nginx/modules/ngx_stream_module.so;
daemon off;
worker_processes 1;
worker_rlimit_nofile $((4 * idle_conns + 1024));
pid $dir/nginx.pid;
lock_file $dir/nginx.lock;
error_log $dir/error.log warn;
events { worker_connections $((2 * idle_conns + 512)); }
stream {
  map \$ssl_preread_server_name \$upstream {
    hostnames;
    *.bench.test sink;
    default sink;
  }
  upstream sink { $(printf 'server %s:'"${sink_port[nginx]}"'; ' "${sink_ips[@]}")}
  server {
    listen $ip:$p;
    ssl_preread on;
    proxy_pass \$upstream;
    proxy_half_close on;
  }
}
CONF
  nginx -p "$dir" -c "$dir/nginx.conf" >"$dir/stdout.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_listening "$p" "$pid" "$dir/error.log" || return 1
  # The connections live in the worker, so its memory is the one that grows.
  local worker
  for _ in $(seq 100); do worker=$(pgrep -P "$pid" | head -1) && break; sleep 0.05; done
  [[ -n $worker ]] || { echo "nginx started no worker" >&2; return 1; }
  port[nginx]=$p
  mem_pid[nginx]=$worker
  notes+=("$(nginx -v 2>&1 | sed 's/.*: //') 1 worker")
}

start_haproxy() {
  local p; p=$(free_port)
  sink haproxy
  cat >"$work/haproxy.cfg" <<CONF
global
  nbthread 1
  maxconn $((idle_conns + 512))
defaults
  mode tcp
  maxconn $((idle_conns + 512))
  timeout connect 5s
  timeout client 60s
  timeout server 60s
frontend bench
  bind $ip:$p$([[ $defer == 1 ]] && echo " defer-accept")
  tcp-request inspect-delay 5s
  tcp-request content accept if { req.ssl_hello_type 1 }
  use_backend sink if { req.ssl_sni -m end .bench.test }
  default_backend sink
backend sink
$(for k in "${!sink_ips[@]}"; do echo "  server sink$k ${sink_ips[$k]}:${sink_port[haproxy]}"; done)
CONF
  haproxy -db -f "$work/haproxy.cfg" >"$work/haproxy.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  wait_listening "$p" "$pid" "$work/haproxy.log" || return 1
  port[haproxy]=$p
  mem_pid[haproxy]=$pid
  notes+=("HAProxy $(haproxy -v | sed -nE '1s/.*version ([^ ]+).*/\1/p') 1 thread")
}

start_floor() {
  [[ -x $floor ]] || { echo "missing $floor: build it first (tools/build.sh)" >&2; return 1; }
  sink floor
  "$floor" "$ip" "$(IFS=,; echo "${sink_ips[*]}")" "${sink_port[floor]}" "$defer" \
    >"$work/floor.log" 2>&1 &
  local pid=$!
  pids+=("$pid")
  port[floor]=$(wait_for "$work/floor.log" 'floor port=([0-9]+)') || return 1
  mem_pid[floor]=$pid
  notes+=("floor: tools/bench/floor_relay.c, no SNI read")
}

for peer in $peers; do
  # floor is built here, not installed.
  if [[ $peer != floor ]] && ! command -v "$peer" >/dev/null; then
    echo "$peer not installed (tools/install-deps.sh installs it); column skipped" >&2
  elif "start_$peer"; then
    columns+=("$peer")
  else
    echo "$peer did not start; column skipped" >&2
  fi
done

median() { sort -g | awk '{v[NR]=$1} END {print NR ? v[int((NR+1)/2)] : "fail"}'; }
field() { sed -nE "s/.* $1=([0-9.]+).*/\\1/p"; }

# usage PID: "CPU_NS SLEEPS" for all PID's threads so far, in one pass over /proc: CPU time
# (user and system) in ns from schedstat, whose line is numbers alone, and how many times they
# have gone to sleep (voluntary context switches: each ends in a wake-up, the hop a short
# connection's chain of wake-ups pays). A thread gone meanwhile is skipped (cat, not awk, opens
# the files: mawk stops at one it cannot open).
usage() {
  cat /proc/"$1"/task/*/schedstat /proc/"$1"/task/*/status 2>/dev/null |
    awk '$1 ~ /^[0-9]+$/ { cpu += $1 } $1 == "voluntary_ctxt_switches:" { s += $2 }
         END { print cpu + 0, s + 0 }'
}

# load_run COLUMN ARGS...: snigate-load's line, or nothing (and a note) when the run failed, so
# a failed run never counts as a result. Every run is bounded in time too (its own loops are
# bounded by --seconds or --count; this catches a stuck peer).
load_run() {
  local column=$1 out; shift
  if out=$(timeout 120 "$load" "$@" 2>>"$work/raw"); then
    echo "$out" | tee -a "$work/raw"
  else
    echo "$column: snigate-load $* failed: ${out:-no output}" | tee -a "$work/raw" >&2
  fi
}

label_width=42 cell_width=15  # each cell also gets a leading space, so wide ones stay apart
row() {  # row LABEL FILE-SUFFIX: each column's value, with its ratio to direct's
  printf "%-${label_width}s" "$1"
  local base; base=$(cat "$work/direct.$2")
  for c in "${columns[@]}"; do
    local v; v=$(cat "$work/$c.$2")
    if [[ $c == direct || $v == fail ]]; then
      printf " %${cell_width}s" "$v"
    else
      local ratio
      ratio=$(awk -v a="$v" -v b="$base" 'BEGIN { if (b > 0) printf "%.2fx", a / b; else print "-" }')
      printf " %${cell_width}s" "$v ($ratio)"
    fi
  done
  echo
}
plain_row() {  # plain_row LABEL FILE-SUFFIX: each column's value alone ("-" where it has none)
  printf "%-${label_width}s" "$1"
  for c in "${columns[@]}"; do printf " %${cell_width}s" "$(cat "$work/$c.$2" 2>/dev/null || echo -)"; done
  echo
}
# What each relay adds to the direct run's CPU per GiB (the relay's own cost).
cost_row() {  # cost_row LABEL FILE-SUFFIX
  printf "%-${label_width}s" "$1"
  local base; base=$(cat "$work/direct.$2")
  for c in "${columns[@]}"; do
    local v; v=$(cat "$work/$c.$2")
    if [[ $c == direct || $v == fail || $base == fail ]]; then
      printf " %${cell_width}s" "-"
    else
      printf " %${cell_width}s" "$(awk -v a="$v" -v b="$base" 'BEGIN { printf "%+.3f", a - b }')"
    fi
  done
  echo
}

# Idle memory first, on processes that have served nothing yet: after the other runs an
# allocator reuses their freed memory and the RSS growth reads too low (0 was seen).
[[ -n ${THROUGHPUT_ONLY:-} ]] ||
for c in "${columns[@]}"; do
  load_run "$c" idle --port "${port[$c]}" --conns "$idle_conns" --pid "${mem_pid[$c]}" \
    --exchanges "$idle_exchanges" |
    field bytes_per_conn | median >"$work/$c.idle"
done
title() {
  echo
  echo "snigate bench, $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), load before: $load_before"
  echo "$1"
  local notes_line; notes_line=$(IFS=';'; echo "${notes[*]}")
  echo "${notes_line//;/; }"
  printf "%-${label_width}s" metric; for c in "${columns[@]}"; do printf " %${cell_width}s" "$c"; done; echo
}
idle_label="memory per idle conn (B, $idle_conns x $idle_exchanges exch.)"
if [[ ${ONLY_IDLE:-} == 1 ]]; then
  title "idle row alone: $idle_conns connections held per column, each on a fresh process"
  row "$idle_label" idle
  exit 0
fi

read -ra workloads <<<"${WORKLOADS-up1 up8 echo1 echo8}"
if [[ $defer == 1 ]]; then
  deferring="snigated, HAProxy (defer-accept) and floor"
  notes+=("accept deferred to the first bytes by $deferring, not nginx (stream has no deferred)")
else
  notes+=("no deferred accept (snigated defer_accept = false)")
fi
declare -A workload_args=(
  [up1]="throughput --conns 1" [up8]="throughput --conns 8"
  [echo1]="echo --conns 1" [echo8]="echo --conns 8"
)
n=${#columns[@]}
for round in $(seq "$repeat"); do
  order=("${columns[@]:round % n}" "${columns[@]:0:round % n}")
  for w in "${workloads[@]}"; do
    for c in "${order[@]}"; do
      # shellcheck disable=SC2086  # the subcommand and its options are separate words
      load_run "$c" ${workload_args[$w]} --port "${port[$c]}" --seconds "$secs" >>"$work/$c.$w.runs"
    done
  done
  [[ -n ${THROUGHPUT_ONLY:-} ]] && continue
  for c in "${order[@]}"; do
    load_run "$c" latency --port "${port[$c]}" --count 5000 >>"$work/$c.lat.runs"
    load_run "$c" cps --close fin --port "${port[$c]}" --seconds "$secs" >>"$work/$c.cps.runs"
    # The same connections ended by a reset, as issue 17's clients did: no end in TIME_WAIT.
    load_run "$c" cps --close rst --port "${port[$c]}" --seconds "$secs" >>"$work/$c.cpsrst.runs"
    # And with issue 17's 8 clients: there the relay's one thread, not the clients' turns, sets
    # the pace. The relaying process's own CPU per connection is measured over this run: on a
    # 2-core machine the client, relay and backend share the cores, so connections/s alone
    # mixes in how the others fare; and no TIME_WAIT end adds a port search to it.
    read -r cpu0 sleeps0 <<<"$([[ $c == direct ]] || usage "${mem_pid[$c]}")"
    out=$(load_run "$c" cps --close rst --parallel 8 --port "${port[$c]}" --seconds "$secs")
    read -r cpu1 sleeps1 <<<"$([[ $c == direct ]] || usage "${mem_pid[$c]}")"
    conns=$(field conns <<<"$out")
    echo "$out" >>"$work/$c.cpsrst8.runs"
    awk -v a="${cpu0:-0}" -v b="${cpu1:-0}" -v n="${conns:-0}" -v c="$c" \
      'BEGIN { if (c != "direct" && n > 0) printf "%.1f\n", (b - a) / n / 1000 }' >>"$work/$c.cpucps.runs"
    awk -v a="${sleeps0:-0}" -v b="${sleeps1:-0}" -v n="${conns:-0}" -v c="$c" \
      'BEGIN { if (c != "direct" && n > 0) printf "%.2f\n", (b - a) / n }' >>"$work/$c.wakecps.runs"
  done
done
# alloc_count COLUMN: the counting allocator's total so far in COLUMN's snigated, or "-".
alloc_count() {
  local f=$work/$1.allocs
  if [[ -n $preload && -s $f ]]; then od -An -t u8 -N8 "$f" | tr -d ' '; else echo "-"; fi
}
echo "-" >"$work/direct.allocs-per-conn"
# System calls per relayed connection: one cps run per column with strace counting every call
# of the relaying process (all its threads), divided by the connections served. strace slows
# the process, so this run's rate is not reported; the count per connection does not depend
# on it. direct has no relay process.
echo "-" >"$work/direct.syscalls"
for c in "${columns[@]}"; do
  [[ $c == direct || -n ${THROUGHPUT_ONLY:-} ]] && continue
  if ! command -v strace >/dev/null; then echo "-" >"$work/$c.syscalls"; continue; fi
  strace -c -f -q -p "${mem_pid[$c]}" -o "$work/$c.strace" &
  tracer=$!
  sleep 0.5  # attached
  allocs_before=$(alloc_count "$c")
  served=$(load_run "$c" cps --port "${port[$c]}" --seconds 2 | field conns)
  allocs_after=$(alloc_count "$c")
  kill -INT "$tracer"; wait "$tracer" 2>/dev/null || true
  awk -v a="$allocs_before" -v b="$allocs_after" -v n="${served:-0}" \
    'BEGIN { if (n > 0 && a != "-" && b != "-") printf "%.1f\n", (b - a) / n; else print "-" }' \
    >"$work/$c.allocs-per-conn"
  calls=$(awk '$NF == "total" { print $4 }' "$work/$c.strace")  # % s us/call calls [errors] total
  awk -v calls="${calls:-0}" -v n="${served:-0}" \
    'BEGIN { if (n > 0) printf "%.1f\n", calls / n; else print "fail" }' >"$work/$c.syscalls"
  # The five most frequent calls per connection, for the notes under the table.
  top=$(awk -v n="${served:-0}" 'n > 0 && $NF != "total" && $4 ~ /^[0-9]+$/ {
          printf "%s %.1f\n", $NF, $4 / n }' "$work/$c.strace" | sort -k2 -gr | head -5 | paste -sd' ')
  echo "$c syscalls per connection: $top" >>"$work/syscall-notes"
done

# Where snigated spends a cps run: perf's five hottest symbols per snigated column (kernel and
# userspace alike), one line each under the table.
if [[ -n ${THROUGHPUT_ONLY:-} ]]; then
  true  # the table stops before these notes
elif command -v perf >/dev/null && perf record -q -o "$work/perf.probe" -- true 2>/dev/null; then
  for c in "${columns[@]}"; do
    [[ -n ${port[$c]:-} && -f $work/$c.toml ]] || continue
    perf record -q -F 2000 -p "${mem_pid[$c]}" -o "$work/$c.perf" 2>/dev/null &
    recorder=$!
    sleep 0.5  # attached
    load_run "$c" cps --port "${port[$c]}" --seconds 2 >/dev/null
    kill -INT "$recorder"; wait "$recorder" 2>/dev/null || true
    # awk takes the five itself: a head(1) that quits early would fail the pipeline (pipefail).
    top=$(perf report -i "$work/$c.perf" --stdio --sort sym 2>/dev/null |
          awk '!/^#/ && NF >= 3 && n < 5 { $2 = ""; print; n++ }' | paste -sd';' | sed 's/  */ /g')
    echo "$c perf top 5 (cps): ${top:-none recorded}" >>"$work/perf-notes"
  done
else
  echo "perf top 5: SKIPPED, perf missing or not permitted here" >>"$work/perf-notes"
fi

for c in "${columns[@]}"; do
  for w in "${workloads[@]}"; do
    field gbit_s <"$work/$c.$w.runs" | median >"$work/$c.$w.tput"
    field cpu_s_per_gib <"$work/$c.$w.runs" | median >"$work/$c.$w.cpu"
  done
  [[ -n ${THROUGHPUT_ONLY:-} ]] && continue
  field p50_us <"$work/$c.lat.runs" | median >"$work/$c.p50"
  field p99_us <"$work/$c.lat.runs" | median >"$work/$c.p99"
  field conns_s <"$work/$c.cps.runs" | median >"$work/$c.cps"
  field conns_s <"$work/$c.cpsrst.runs" | median >"$work/$c.cpsrst"
  field conns_s <"$work/$c.cpsrst8.runs" | median >"$work/$c.cpsrst8"
  for f in cpucps wakecps; do
    if [[ $c == direct ]]; then echo "-"; else median <"$work/$c.$f.runs"; fi >"$work/$c.$f"
  done
done

title "median of $repeat interleaved rounds of ${secs}s; (ratio) = value / direct"
declare -A workload_label=(
  [up1]="upload 1 conn" [up8]="upload 8 conns" [echo1]="two-way echo 1 conn" [echo8]="two-way echo 8 conns"
)
for w in "${workloads[@]}"; do
  row "${workload_label[$w]} (Gbit/s)" "$w.tput"
  row "${workload_label[$w]} (CPU s/GiB)" "$w.cpu"
  cost_row "${workload_label[$w]} (relay CPU s/GiB)" "$w.cpu"
done
# Which relay moved each snigated column's connections, from its access log's relay= (auto
# and sockmap start each on copy): those of 1 MiB or more either way (the throughput rows)
# apart from the rest.
relay_split() {
  local c
  for c in "${columns[@]}"; do
    [[ -f $work/$c.access.log ]] || continue
    awk -v c="$c" '{
        big = 0
        for (i = 1; i <= NF; i++) {
          split($i, kv, "=")
          if ((kv[1] == "in" || kv[1] == "out") && kv[2] + 0 >= 1048576) big = 1
          if (kv[1] == "relay") relay = kv[2]
        }
        n[(big ? "1 MiB or more" : "shorter") ": " relay]++
      }
      END {
        line = c " connections by relay:"
        for (k in n) line = line " " k " " n[k] ";"
        print line
      }' "$work/$c.access.log"
  done
}
if [[ -n ${THROUGHPUT_ONLY:-} ]]; then
  relay_split
  exit 0
fi
row "latency p50 (us, 64 B echo)" p50
row "latency p99 (us, 64 B echo)" p99
row "connections/s (4 parallel, FIN)" cps
row "connections/s (4 parallel, RST)" cpsrst
row "connections/s (8 parallel, RST)" cpsrst8
plain_row "relay CPU per connection (us, 8 RST)" cpucps
plain_row "relay wake-ups per connection (8 RST)" wakecps
row "$idle_label" idle
plain_row "system calls per connection (cps)" syscalls
plain_row "heap allocations per connection (cps)" allocs-per-conn
[[ -f $work/syscall-notes ]] && cat "$work/syscall-notes"
[[ -f $work/perf-notes ]] && cat "$work/perf-notes"
relay_split
