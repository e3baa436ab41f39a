#!/usr/bin/env bash
# CrowdSec bouncer benchmark, one run (root): 100,000 decisions at startup and 1,000 deltas
# from a real Local API into the pinned tries and the store, each step timed (see
# tools/bench/crowdsec-bench/main.cpp). Needs tools/install-deps.sh's CrowdSec binaries.
# Usage: tools/bench/crowdsec-bench.sh [DECISIONS [DELTAS]]
# BUILD_DIR (default build) must hold a build; the target is built if missing.
set -euo pipefail
cd "$(dirname "$0")/../.."
build=${BUILD_DIR:-build}
if [[ $(id -u) -ne 0 ]]; then echo "crowdsec-bench: needs root (BPF, network namespaces)" >&2; exit 2; fi
mountpoint -q /sys/fs/bpf || mount -t bpf bpf /sys/fs/bpf
[[ -f $build/build.ninja || -f $build/Makefile ]] || cmake -S . -B "$build" -G Ninja >/dev/null
cmake --build "$build" --target crowdsec-bench -j 2 >/dev/null
echo "crowdsec-bench: $(nproc) cores, kernel $(uname -r), load $(cut -d' ' -f1-3 /proc/loadavg)"
timeout 900 "$build/tools/bench/crowdsec-bench/crowdsec-bench" "$@"
