#!/usr/bin/env bash
# The tools (snigatectl, snigate-watch) speak the control and remote protocols only: their
# link lines must not name libbpf, SQLite, the ban subsystem or the sockmap relay, which only
# the daemon needs (issue 16). Reads the link commands of the build in $1.
set -euo pipefail
build=${1:?usage: check-tool-deps.sh BUILD_DIR}
status=0
for tool in tools/snigatectl/snigatectl tools/snigate-watch/snigate-watch; do
  link=$(ninja -C "$build" -t commands "$tool" | tail -1)
  [[ -n $link ]] || { echo "check-tool-deps: no link command for $tool in $build" >&2; exit 1; }
  bad=$(tr ' ' '\n' <<<"$link" | grep -E 'bpf|sqlite|snigate_bans\.a|relay_sockmap' | sort -u |
        paste -sd' ' || true)
  if [[ -n $bad ]]; then
    echo "check-tool-deps: $tool links $bad" >&2
    status=1
  else
    echo "check-tool-deps: $tool links neither libbpf nor SQLite nor the ban subsystem"
  fi
done
# The daemon does link them: a check that found nothing anywhere would prove nothing.
ninja -C "$build" -t commands userspace/daemon/snigated | tail -1 | grep -q -- '-lbpf\|libbpf' ||
  { echo "check-tool-deps: snigated's link line names no libbpf: is this the right build?" >&2; exit 1; }
exit $status
