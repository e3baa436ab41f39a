#!/usr/bin/env bash
# Installs what is missing, builds with warnings as errors, and runs every test: unit tests,
# fuzzers for a bounded time, loopback integration tests and, as root, the vm-tests
# (real BPF in network namespaces). One CTest run, so one summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
BUILD_DIR=${BUILD_DIR:-build} tools/build.sh -DSNIGATE_WERROR=ON
if [[ $(id -u) -eq 0 ]] && ! mountpoint -q /sys/fs/bpf; then
  mkdir -p /sys/fs/bpf && mount -t bpf bpf /sys/fs/bpf
fi
ctest --test-dir "${BUILD_DIR:-build}" --output-on-failure --timeout 900 "$@"
