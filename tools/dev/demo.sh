#!/usr/bin/env bash
# The demo: snigated on its embedded default configuration (TLS on 127.0.0.1:9443, HTTP on
# 127.0.0.1:9080, everything to 127.0.0.1:8443) in front of a local `openssl s_server` on
# 127.0.0.1:8443 with a throw-away certificate. No config file, no root. Ctrl-C stops both.
# Usage: tools/dev/demo.sh BUILD_DIR   (tools/run-demo.sh passes it)
set -euo pipefail
build=${1:-build}
snigated=$build/userspace/daemon/snigated
[[ -x $snigated ]] || { echo "no $snigated: build first (tools/build.sh)" >&2; exit 1; }

work=$(mktemp -d /tmp/snigate-demo.XXXXXX)
backend_pid=
daemon_pid=
cleanup() {
  trap - EXIT INT TERM
  set +e  # a peer that already went (Ctrl-C reaches all of them) must not stop the clean-up
  if [[ -n $daemon_pid ]]; then kill -TERM "$daemon_pid" 2>/dev/null; wait "$daemon_pid" 2>/dev/null; fi
  if [[ -n $backend_pid ]]; then kill "$backend_pid" 2>/dev/null; wait "$backend_pid" 2>/dev/null; fi
  rm -rf "$work"
  echo "demo stopped"
}
trap cleanup EXIT
trap 'exit 0' INT TERM

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
  -subj /CN=demo.snigate.test -keyout "$work/key.pem" -out "$work/cert.pem" 2>/dev/null
openssl s_server -accept 127.0.0.1:8443 -cert "$work/cert.pem" -key "$work/key.pem" -www \
  >"$work/backend.log" 2>&1 &
backend_pid=$!
for _ in $(seq 50); do grep -q ACCEPT "$work/backend.log" && break; sleep 0.1; done
grep -q ACCEPT "$work/backend.log" || { cat "$work/backend.log" >&2; exit 1; }

# Its log goes to this terminal and to a file, where the script sees when it is ready.
"$snigated" > >(tee "$work/snigated.log") 2>&1 &
daemon_pid=$!
for _ in $(seq 100); do
  grep -q "snigated ready" "$work/snigated.log" && break
  kill -0 "$daemon_pid" 2>/dev/null || break
  sleep 0.1
done
grep -q "snigated ready" "$work/snigated.log" || { echo "snigated did not start (see above)" >&2; exit 1; }
cat <<TXT

snigated is running on its embedded default (\`$snigated --check\` prints it).
Try, from another terminal (each connection prints one access-log line here):

  curl -k --resolve demo.snigate.test:9443:127.0.0.1 https://demo.snigate.test:9443/
  openssl s_client -connect 127.0.0.1:9443 -servername anything.example </dev/null
  curl http://127.0.0.1:9080/          # HTTP listener, routed by Host (the backend speaks TLS,
                                       # so this one shows a refused HTTP request in the log)

The backend is openssl s_server on 127.0.0.1:8443 (certificate CN=demo.snigate.test).
Ctrl-C stops both.
TXT
wait "$daemon_pid"
