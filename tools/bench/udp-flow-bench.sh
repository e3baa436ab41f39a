#!/usr/bin/env bash
# UDP flow benchmark, one run (root): datagrams/s and CPU per GiB of one routed QUIC flow of
# 1200-byte datagrams through snigated with the kernel path (bpf/udp_flow.bpf.c) and through
# snigated forwarding in userspace, against the direct path, plus the bench's own
# recvmmsg/sendmmsg loop for scale ("loop"), over loopback and over veth between namespaces;
# interleaved rounds (each starting one column later), medians, ratios to direct.
# CPU per GiB "path" counts the bench process (client, sink, loop), snigated and ksoftirqd;
# "machine" is /proc/stat's busy time, which other load on the machine inflates.
# Usage: tools/bench/udp-flow-bench.sh [--seconds S] [--rounds N] [--shapes loopback,veth]
# BUILD_DIR (default build) must hold a build; the target is built if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
if [[ $(id -u) -ne 0 ]]; then echo "udp-flow-bench: needs root (BPF, network namespaces)" >&2; exit 2; fi
[[ -f $build/build.ninja || -f $build/Makefile ]] || cmake -S . -B "$build" -G Ninja >/dev/null
cmake --build "$build" --target udp-flow-bench snigated -j 2 >/dev/null
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
raw=$(timeout 900 "$build/tools/bench/udp-flow-bench/udp-flow-bench" --seconds 3 --rounds 5 \
      --snigated "$build/userspace/daemon/snigated" \
      --initial tests/data/quic/rfc9001-a2-client-initial.bin "$@")
echo "$raw"
echo
echo "udp-flow-bench, $(date -u +%FT%TZ), $(nproc) CPUs, kernel $(uname -r), load before: $load_before"
echo "median of the rounds; (ratio) = value / direct; 1200-byte datagrams, one flow, one way;"
echo "kernel and userspace: snigated (1 worker) routing the flow on a real Initial; loop: the bench's own recvmmsg/sendmmsg loop"
grep '^shape=.* mode=' <<<"$raw" | awk '
  { for (i = 1; i <= NF; i++) { split($i, kv, "="); f[kv[1]] = kv[2] }
    key = f["shape"] SUBSEP f["mode"]
    n[key]++; rate[key, n[key]] = f["datagrams_s"]; cpu[key, n[key]] = f["cpu_s_per_gib"]
    mcpu[key, n[key]] = f["machine_cpu_s_per_gib"]
    if (!(f["shape"] in seen)) { seen[f["shape"]] = 1; shapes[++ns] = f["shape"] } }
  function median(arr, key, count,   v, i, j, t) {
    for (i = 1; i <= count; i++) v[i] = arr[key, i] + 0
    for (i = 1; i <= count; i++) for (j = i + 1; j <= count; j++) if (v[j] < v[i]) { t = v[i]; v[i] = v[j]; v[j] = t }
    return v[int((count + 1) / 2)]
  }
  END {
    printf "%-10s %-20s %16s %16s %16s %16s\n", "shape", "metric", "direct", "kernel", "userspace", "loop"
    for (s = 1; s <= ns; s++) {
      sh = shapes[s]
      for (m = 1; m <= 3; m++) {
        label = m == 1 ? "datagrams/s" : m == 2 ? "CPU s/GiB (path)" : "CPU s/GiB (machine)"
        base = 0
        printf "%-10s %-20s", sh, label
        split("direct kernel userspace loop", modes, " ")
        for (k = 1; k <= 4; k++) {
          key = sh SUBSEP modes[k]
          v = m == 1 ? median(rate, key, n[key]) : m == 2 ? median(cpu, key, n[key]) : median(mcpu, key, n[key])
          if (k == 1) { base = v; printf " %16s", sprintf(m == 1 ? "%.0f" : "%.2f", v) }
          else printf " %16s", sprintf(m == 1 ? "%.0f (%.2fx)" : "%.2f (%.2fx)", v, base > 0 ? v / base : 0)
        }
        printf "\n"
      }
    }
  }' <<<"$raw"
