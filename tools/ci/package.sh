#!/usr/bin/env bash
# Builds the Debian package from the committed HEAD (a clone of its own, so nothing uncommitted
# or built in the tree gets in, and the results stay out of the tree's parent), checks it with
# lintian (an error fails), installs it with dpkg -i, runs the installed snigated --check on the
# shipped configuration and systemd-analyze verify on the installed unit, then purges it.
# Root only (dpkg -i), and never over a snigate the machine has installed. ccache is used when
# present: the clone is always at the same path, so a second build hits.
set -euo pipefail
repo=$(cd "$(dirname "$0")/../.." && pwd)
work=${SNIGATE_PACKAGE_DIR:-/tmp/snigate-package}
[[ $(id -u) -eq 0 ]] || { echo "package: SKIPPED LOUDLY, dpkg -i needs root"; exit 0; }
if dpkg-query -W -f='${Status}' snigate 2>/dev/null | grep -q "install ok installed"; then
  echo "package: FAILED, a snigate package is installed on this machine; not replacing it" >&2
  exit 1
fi
start=$SECONDS
rm -rf "$work" && mkdir -p "$work"
git clone --quiet --no-checkout "$repo" "$work/snigate"
git -C "$work/snigate" checkout --quiet "$(git -C "$repo" rev-parse HEAD)"

extra=()
if command -v ccache >/dev/null; then
  extra=(-DCMAKE_C_COMPILER_LAUNCHER=ccache -DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
fi
(cd "$work/snigate" &&
  DEB_BUILD_OPTIONS="parallel=${SNIGATE_PACKAGE_JOBS:-2}" SNIGATE_CMAKE_EXTRA="${extra[*]}" \
    dpkg-buildpackage -b -us -uc >"$work/build.log" 2>&1) ||
  { tail -n 60 "$work/build.log"; echo "package: FAILED, dpkg-buildpackage (log above)" >&2; exit 1; }
deb=$(ls "$work"/snigate_*.deb)
echo "package: built $(basename "$deb") in $((SECONDS - start)) s"

lintian --fail-on error "$deb"
echo "package: lintian found no error"

purge() { dpkg --purge snigate >/dev/null 2>&1 || true; }
trap purge EXIT
dpkg -i "$deb" >/dev/null
echo "package: installed"
/usr/sbin/snigated --check -c /etc/snigate/snigated.toml >/dev/null
echo "package: the installed snigated --check passes on /etc/snigate/snigated.toml"
if command -v systemd-analyze >/dev/null; then
  out=$(systemd-analyze verify /lib/systemd/system/snigated.service 2>&1) && [[ -z $out ]] ||
    { echo "$out"; echo "package: FAILED, systemd-analyze verify on the installed unit" >&2; exit 1; }
  echo "package: systemd-analyze verify passes on the installed unit, man pages included"
else
  echo "package: systemd-analyze verify SKIPPED LOUDLY, systemd-analyze is not installed"
fi
[[ $(stat -c %U /var/lib/snigate) == snigate && $(stat -c %U /var/log/snigate) == snigate ]] ||
  { echo "package: FAILED, no snigate user owning /var/lib/snigate and /var/log/snigate" >&2; exit 1; }
dpkg-query -W -f='${Conffiles}' snigate | grep -q ' /etc/snigate/snigated.toml ' ||
  { echo "package: FAILED, /etc/snigate/snigated.toml is not a conffile" >&2; exit 1; }
echo "package: user snigate owns its directories; the configuration is a conffile"
dpkg --purge snigate >/dev/null
trap - EXIT
[[ ! -e /etc/snigate/snigated.toml && ! -e /usr/sbin/snigated ]] ||
  { echo "package: FAILED, files left after the purge" >&2; exit 1; }
echo "package: purged; passed in $((SECONDS - start)) s"
