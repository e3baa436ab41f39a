#!/usr/bin/env bash
# Installs what is missing, builds, and runs snigated on its embedded default configuration:
# TLS on 127.0.0.1:9443 and HTTP on 127.0.0.1:9080, everything routed to a local TLS backend
# on 127.0.0.1:8443, which this script starts with openssl s_server.
set -euo pipefail
cd "$(dirname "$0")/.."
tools/install-deps.sh
tools/build.sh
exec tools/dev/demo.sh build
