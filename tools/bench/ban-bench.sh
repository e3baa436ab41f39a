#!/usr/bin/env bash
# Ban benchmark, one run (root): XDP drop rate with 100,000 bans loaded against a SYN flood
# from a client namespace, compared with the same flood from an unbanned source (handled by
# the stack), the XDP program's own cost per packet, and the accept-time ban check in ns.
# Usage: tools/bench/ban-bench.sh [--bans N] [--packets N] [--seconds S] [--runs N]
# BUILD_DIR (default build) must hold a build; the target is built if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
if [[ $(id -u) -ne 0 ]]; then echo "ban-bench: needs root (BPF, network namespaces)" >&2; exit 2; fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
[[ -f $build/build.ninja || -f $build/Makefile ]] || cmake -S . -B "$build" -G Ninja >/dev/null
cmake --build "$build" --target ban-bench -j 2 >/dev/null
echo "ban-bench: $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
out=$(timeout 600 "$build/tools/bench/ban-bench/ban-bench" --bans 100000 --packets 2000000 \
      --seconds 5 --runs 5 "$@")
echo "$out"
# Ratio of the two floods: how much more the edge absorbs when the program drops than when
# the stack has to answer.
awk '/^flood banned/   { for (i = 1; i <= NF; i++) if ($i == "drops/s") d = $(i - 1) }
     /^flood unbanned/ { for (i = 1; i <= NF; i++) if ($i == "saw") s = $(i + 1); t = $0 }
     END { if (d && s) {
             match(t, /in [0-9.]+ s/); secs = substr(t, RSTART + 3, RLENGTH - 5)
             printf "ratio: XDP drops %.0f pps vs stack %.0f pps = %.2fx\n", d, s / secs, d / (s / secs) } }' <<<"$out"
