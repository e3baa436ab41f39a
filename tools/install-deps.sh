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
  libgtest-dev libgmock-dev
  openssl curl iproute2 socat dnsmasq-base fail2ban procps psmisc
)
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "install-deps: installing ${missing[*]}"
  sudo_cmd=(); [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
# fail2ban is installed for its filter files only; its service must not run here.
if command -v systemctl >/dev/null && systemctl is-active --quiet fail2ban 2>/dev/null; then
  systemctl stop fail2ban || true
fi
