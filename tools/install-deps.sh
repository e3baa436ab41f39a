#!/usr/bin/env bash
# Installs whatever snigate needs that this Debian 12 machine lacks; a no-op when all is there.
set -euo pipefail
packages=(
  build-essential cmake ninja-build pkg-config git
  clang llvm libclang-rt-14-dev           # BPF target, and libFuzzer for the fuzz targets
  libbpf-dev bpftool                      # BPF loading and skeleton generation
  libboost-dev libboost-system-dev        # Boost.Asio event loop
  libspdlog-dev libfmt-dev libcli11-dev libtomlplusplus-dev nlohmann-json3-dev
  libsqlite3-dev libpcre2-dev libc-ares-dev libssl-dev
  libsystemd-dev                          # sd_notify: readiness and reloads under systemd
  libcap-dev                              # dropping root to [daemon] user with a few capabilities
  debhelper lintian                       # tools/ci/package.sh builds and checks the .deb
  libgtest-dev libgmock-dev
  openssl curl iproute2 socat dnsmasq-base fail2ban procps psmisc
  logrotate                               # runs contrib/logrotate/snigate in a test
  nftables                                # the relay vm-tests' lossy link (nft numgen drop)
  nginx libnginx-mod-stream haproxy       # peers tools/bench/bench.sh compares against
  strace                                  # the bench counts system calls per connection
  sqlite3                                 # a CrowdSec vm-test edits LAPI's database behind its back
  prometheus                              # promtool and a real scrape of GET /metrics in a test
  ngtcp2-client ngtcp2-server             # gtlsclient/gtlsserver: real QUIC peers in the tests
)
# Installed for the bench and the tests only, which start them themselves on loopback with their
# own config: their packaged services must not start (they would take port 80 or 9090, or fail
# the install if it is taken) nor stay enabled.
bench_services=(nginx haproxy prometheus)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=(); [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  # policy-rc.d answering 101 keeps invoke-rc.d from starting any service the install brings;
  # one already there (containers ship one) is left as it is.
  policy=/usr/sbin/policy-rc.d
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' | "${sudo_cmd[@]}" tee "$policy" >/dev/null
    "${sudo_cmd[@]}" chmod 755 "$policy"
    trap '"${sudo_cmd[@]}" rm -f "$policy"' EXIT
  fi
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
  # Their postinst still enables the units; an nginx or haproxy that was there before is the
  # machine owner's and keeps its state.
  # (disable edits the unit links, so it works in a container without systemd running too).
  if command -v systemctl >/dev/null; then
    for s in "${bench_services[@]}"; do
      [[ " ${missing[*]} " == *" $s "* ]] || continue
      "${sudo_cmd[@]}" systemctl disable --quiet "$s" || true
      if [[ -d /run/systemd/system ]]; then "${sudo_cmd[@]}" systemctl stop "$s" || true; fi
    done
  fi
fi
# fail2ban is installed for its filter files only; its service must not run here.
if command -v systemctl >/dev/null && systemctl is-active --quiet fail2ban 2>/dev/null; then
  systemctl stop fail2ban || true
fi
# CrowdSec's crowdsec and cscli for the LAPI vm-tests (vm-tests/lib/local_api.h), unpacked and
# never installed: the package's postinst registers with CrowdSec's online service, fails with
# no network and leaves the package half configured. The tests start it with a config of their
# own (loopback, SQLite in a temporary directory, no online API).
crowdsec_root=${SNIGATE_CROWDSEC_ROOT:-/var/cache/snigate/crowdsec}
if [[ ! -x $crowdsec_root/usr/bin/crowdsec ]]; then
  echo "install-deps: unpacking Debian's crowdsec package into $crowdsec_root (not installed)"
  download=$(mktemp -d)
  chown _apt "$download" 2>/dev/null || true  # else apt warns it downloads unsandboxed
  (cd "$download" && apt-get download -qq crowdsec)
  mkdir -p "$crowdsec_root"
  dpkg-deb -x "$download"/crowdsec_*.deb "$crowdsec_root"
  rm -rf "$download"
fi
