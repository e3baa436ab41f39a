#!/bin/sh
# run-fuzzer.sh FUZZER WORKDIR DICT SEED... : fuzz for a bounded time from a fresh copy of the
# seeds (libFuzzer writes new inputs into its first corpus directory, never into the source
# tree). Exits non-zero on a crash, a sanitizer report or a broken invariant; the input that
# did it is saved under WORKDIR/artifacts/.
set -eu
fuzzer=$1 workdir=$2 dict=$3
shift 3
rm -rf "$workdir"
mkdir -p "$workdir/corpus" "$workdir/artifacts"
cp "$@" "$workdir/corpus/"
exec "$fuzzer" -max_total_time="${SNIGATE_FUZZ_SECONDS:-20}" -rss_limit_mb=1024 -timeout=10 \
  -dict="$dict" -artifact_prefix="$workdir/artifacts/" -print_final_stats=1 "$workdir/corpus"
