#!/usr/bin/env bash
# Runs one command as root inside a qemu guest booted on a Debian kernel package, so the
# vm-tests can run under the kernels users have (Debian 12's 6.1 by default), not only the
# machine's own. The way virtme-ng and little-vm-helper do it, with Debian 12's packages only:
# the package is unpacked into a cache (never installed, so this machine's boot is untouched),
# a small busybox initramfs mounts this machine's root read-only over 9p under a tmpfs overlay
# (init), and guest.sh runs the command. Its output streams to this console; its status is ours.
#
#   tools/vm-kernel/run.sh [--kernel PKG|FILE.deb] [--rw DIR]... -- COMMAND [ARG]...
#
# --kernel  a Debian kernel image package, or a downloaded .deb (default linux-image-amd64).
# --rw DIR  shared read-write (writes reach this machine); the project directory always is.
# The command runs in the current directory; the guest's /tmp, /run and /var/tmp are its own.
# Exit status: the command's; 77 if the guest did not boot; 125 if it died during the command.
# SNIGATE_VM_MEM sets the guest's memory (3G), SNIGATE_VM_ACCEL forces kvm or tcg.
set -euo pipefail

project=$(cd "$(dirname "$0")/../.." && pwd)
here=$project/tools/vm-kernel
kernel=linux-image-amd64
rw_dirs=("$project")
while (($#)); do
  case $1 in
    --kernel) kernel=$2; shift 2 ;;
    --rw) rw_dirs+=("$(cd "$2" && pwd)"); shift 2 ;;
    --) shift; break ;;
    *) echo "vm-kernel: unknown option '$1'; usage: $0 [--kernel PKG] [--rw DIR]... -- COMMAND" >&2
       exit 2 ;;
  esac
done
(($#)) || { echo "vm-kernel: no command given; usage: $0 [--kernel PKG] -- COMMAND" >&2; exit 2; }

# KVM needs the CPU's own virtualisation (vmx/svm). A /dev/kvm without it (a PVM host, as in
# some cloud sandboxes) fails to emulate what a stock kernel does (cmpxchg16b, xrstor), so the
# guest runs on qemu's emulator instead: a few times slower, the same kernel semantics.
accel=${SNIGATE_VM_ACCEL:-}
if [[ -z $accel ]]; then
  if [[ -r /dev/kvm && -w /dev/kvm ]] && grep -qwE 'vmx|svm' /proc/cpuinfo; then
    accel=kvm
  else
    accel=tcg
    echo "vm-kernel: NO HARDWARE VIRTUALISATION for $(id -un) (no usable /dev/kvm with vmx/svm):" \
         "emulating the guest with TCG, expect it to run several times slower" >&2
  fi
fi
case $accel in
  kvm) machine=(-machine q35 -accel kvm -cpu host) ;;
  tcg) machine=(-machine q35 -accel tcg,thread=multi -cpu max) ;;
  *) echo "vm-kernel: SNIGATE_VM_ACCEL must be kvm or tcg, not '$accel'" >&2; exit 2 ;;
esac

sudo_cmd=(); [[ $(id -u) -eq 0 ]] || sudo_cmd=(sudo)
missing=()
for p in qemu-system-x86 busybox-static kmod xz-utils; do  # guest, initramfs, depmod, vmlinux
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "vm-kernel: installing ${missing[*]}" >&2
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >&2
fi

# The unpacked kernel: CACHE/<package>_<version>/{boot,lib/modules/KVER}, depmod already run.
cache=${SNIGATE_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/snigate-vm}
mkdir -p "$cache"
if [[ $kernel == *.deb ]]; then
  deb=$(cd "$(dirname "$kernel")" && pwd)/$(basename "$kernel")
  name=$(dpkg-deb -f "$deb" Package)_$(dpkg-deb -f "$deb" Version)
else
  # linux-image-amd64 is a metapackage: follow it to the versioned image it depends on.
  info=$(apt-cache show --no-all-versions "$kernel" 2>/dev/null) ||
    { echo "vm-kernel: no Debian package '$kernel' (apt-get update?)" >&2; exit 2; }
  name=$(sed -n 's/^Depends: .*\(linux-image-[0-9][^ ,]*\) (= \([^)]*\)).*/\1_\2/p' <<<"$info")
  name=${name:-${kernel}_$(sed -n 's/^Version: //p' <<<"$info")}
fi
unpacked=$cache/${name//[:\/]/_}
if [[ ! -e $unpacked/.done ]]; then
  tmp=$(mktemp -d "$cache/.unpack.XXXXXX")
  if [[ -z ${deb:-} ]]; then
    echo "vm-kernel: fetching ${name%_*} ${name#*_} into $cache" >&2
    (cd "$tmp" && apt-get download -qq "${name%_*}=${name#*_}" 2>/dev/null) ||
      { echo "vm-kernel: cannot download ${name%_*} ${name#*_} (apt-get update?)" >&2; exit 2; }
    deb=$(echo "$tmp"/*.deb)
  fi
  dpkg-deb -x "$deb" "$tmp/root"
  kver=$(basename "$tmp"/root/lib/modules/*)
  depmod -b "$tmp/root" "$kver"
  # Debian's kernels are xz-compressed bzImages; the ELF inside boots through its PVH entry,
  # which skips decompressing in the guest: most of the boot time under TCG.
  off=$(LC_ALL=C grep -m1 -aboP '\xfd7zXZ\x00' "$tmp/root/boot/vmlinuz-$kver" | cut -d: -f1)
  if [[ -n $off ]]; then
    xz -dc --single-stream <(tail -c +$((off + 1)) "$tmp/root/boot/vmlinuz-$kver") \
      >"$tmp/root/boot/vmlinux-$kver" 2>/dev/null || rm -f "$tmp/root/boot/vmlinux-$kver"
  fi
  rm -rf "$unpacked" && mv "$tmp/root" "$unpacked" && rm -rf "$tmp"
  touch "$unpacked/.done"
fi
kver=$(basename "$unpacked"/lib/modules/*)
image=$unpacked/boot/vmlinux-$kver
[[ -s $image ]] || image=$unpacked/boot/vmlinuz-$kver

# Per run: the initramfs, and the directory shared as /run/snigate-vm (command in, status out).
run=$(mktemp -d "${TMPDIR:-/tmp}/snigate-vm.XXXXXX")
trap 'rm -rf "$run"' EXIT
mkdir -p "$run"/initrd/{bin,modules,proc,sys,dev} "$run/share"
cp /bin/busybox "$run/initrd/bin/busybox"
cp "$here/init" "$run/initrd/init"
for m in virtio_pci 9pnet_virtio 9p overlay; do
  modprobe -d "$unpacked" -S "$kver" --show-depends "$m" | sed -n 's/^insmod \([^ ]*\).*/\1/p'
done | awk '!seen[$0]++' | while read -r ko; do
  cp "$ko" "$run/initrd/modules/" && echo "/modules/$(basename "$ko")" >>"$run/initrd/modules/order"
done
(cd "$run/initrd" && find . | busybox cpio -o -H newc 2>/dev/null | gzip -1) >"$run/initrd.gz"

cp "$here/guest.sh" "$run/share/guest.sh"
{ printf 'cd %q || exit 2\n' "$PWD"; printf '%q ' "$@"; echo; } >"$run/share/command"
shares=(-fsdev "local,id=root,path=/,security_model=none,multidevs=remap,readonly=on"
        -device virtio-9p-pci,fsdev=root,mount_tag=root
        -fsdev "local,id=modules,path=$unpacked/lib/modules/$kver,security_model=none,readonly=on"
        -device virtio-9p-pci,fsdev=modules,mount_tag=modules
        -fsdev "local,id=run,path=$run/share,security_model=none"
        -device virtio-9p-pci,fsdev=run,mount_tag=run)
for i in "${!rw_dirs[@]}"; do
  shares+=(-fsdev "local,id=rw$i,path=${rw_dirs[$i]},security_model=none,multidevs=remap"
           -device "virtio-9p-pci,fsdev=rw$i,mount_tag=rw$i")
  echo "rw$i ${rw_dirs[$i]}" >>"$run/share/mounts"
done

echo "vm-kernel: booting $name (kernel $kver), 2 vCPUs, $accel" >&2
qemu-system-x86_64 -nodefaults -no-user-config -display none -no-reboot \
  "${machine[@]}" -smp 2 -m "${SNIGATE_VM_MEM:-3G}" \
  -kernel "$image" -initrd "$run/initrd.gz" \
  -append "console=ttyS0 quiet loglevel=4 panic=-1" \
  -serial stdio "${shares[@]}" </dev/null || true
if [[ ! -e $run/share/booted ]]; then
  echo "vm-kernel: THE GUEST DID NOT BOOT: $kver never reached guest.sh (see the console above)" >&2
  exit 77
elif [[ ! -s $run/share/status ]]; then
  echo "vm-kernel: the guest on $kver died while running the command (see the console above)" >&2
  exit 125
fi
exit "$(cat "$run/share/status")"
