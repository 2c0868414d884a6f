#!/usr/bin/env bash
# Builds a small QEMU guest for testing jetwire's 9P server with the Linux kernel's own client:
# Debian's packaged kernel, its 9p and virtio-console modules (with their dependencies, read
# from modules.dep), and busybox. The guest has no network: its /init opens a virtio-serial
# port that QEMU connects to the server's socket, and mounts 9P over that byte stream.
#
# Usage: build.sh [DIR]   writes DIR/vmlinuz and DIR/initrd.gz (DIR: $V9FS_GUEST or /tmp/jetwire-v9fs-guest)
# Needs qemu-system-x86, busybox-static and cpio (tests/install-peers.sh installs them) and
# network access to Debian's archive once, for the kernel package.
set -euo pipefail
out=${1:-${V9FS_GUEST:-/tmp/jetwire-v9fs-guest}}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
cd "$out"
[[ -f vmlinuz && -f initrd.gz && initrd.gz -nt "$here/guest-init.sh" ]] && exit 0

for tool in busybox cpio dpkg-deb apt-get; do
  command -v "$tool" > /dev/null || { echo "build.sh: $tool is missing (bash tests/install-peers.sh)" >&2; exit 1; }
done
busybox_bin=$(command -v busybox)
file -b "$busybox_bin" 2>/dev/null | grep -q 'statically linked' || [[ -f /bin/busybox ]] || {
  echo "build.sh: a static busybox is needed (Debian package busybox-static)" >&2; exit 1; }

# The kernel: whatever linux-image-amd64 points at on this Debian release, fetched once.
image=$(apt-cache depends linux-image-amd64 | sed -n 's/^ *Depends: \(linux-image-[0-9][^ ]*\)$/\1/p' | head -1)
[[ -n $image ]] || { echo "build.sh: apt-cache knows no linux-image-amd64 (apt-get update?)" >&2; exit 1; }
if [[ ! -f kernel.deb ]]; then
  rm -rf download && mkdir download
  (cd download && apt-get download "$image" > /dev/null)
  mv download/*.deb kernel.deb
  rmdir download
fi
rm -rf extracted staging
dpkg-deb -x kernel.deb extracted
version=$(ls extracted/lib/modules)
moddir=extracted/lib/modules/$version
cp "extracted/boot/vmlinuz-$version" vmlinuz

# Modules in load order, each one's dependencies first. The package has no modules.dep (depmod
# makes it at install time), so each module's own "depends=" field (.modinfo) is read instead.
mkdir -p staging/modules
declare -A seen=()
order=()
add_module() {  # $1: a module name as "depends=" spells it
  [[ -z $1 || -n ${seen[$1]:-} ]] && return
  seen[$1]=1
  local file
  file=$(find "$moddir" \( -name "$1.ko*" -o -name "${1//_/-}.ko*" \) | head -1)
  [[ -n $file ]] || { echo "build.sh: module $1 is not in kernel $version" >&2; exit 1; }
  case $file in
    *.xz) xz -dc "$file" > "staging/modules/$1.ko" ;;
    *.zst) zstd -qdc "$file" > "staging/modules/$1.ko" ;;
    *) cp "$file" "staging/modules/$1.ko" ;;
  esac
  local deps
  deps=$(tr '\0' '\n' < "staging/modules/$1.ko" | sed -n 's/^depends=//p' | head -1)
  for dep in ${deps//,/ }; do add_module "$dep"; done
  order+=("$1.ko")
}
for wanted in virtio_pci virtio_console 9pnet_fd 9p; do add_module "$wanted"; done

mkdir -p staging/{bin,dev,proc,sys,mnt,tmp}
cp "$busybox_bin" staging/bin/busybox
printf '%s\n' "${order[@]}" > staging/modules/order
cp "$here/guest-init.sh" staging/init
chmod 755 staging/init
(cd staging && find . | cpio --quiet -o -H newc | gzip -1 > ../initrd.gz)
rm -rf extracted staging
echo "build.sh: $out/vmlinuz ($version) and $out/initrd.gz" >&2
