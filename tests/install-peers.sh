#!/usr/bin/env bash
# Installs the third-party code the tests check jetwire against (Debian packages), only what is
# missing: the 9P2000.L peers diod, nfs-ganesha and tshark; what tests/p9/guest/ needs to boot the
# Linux kernel's 9P client under QEMU (qemu-system-x86, busybox-static, cpio; the kernel package is
# fetched by its build.sh; gcc and libc6-dev build the guest's static lock tool, guest/lk.c); Go
# and Serf's coordinate package for tests/cluster.
# Where they cannot be installed (not Debian/Ubuntu, no root and no sudo) it says so and succeeds:
# the tests that need a peer then skip, naming the package; under CI=true a missing peer fails.
set -euo pipefail

packages=(diod nfs-ganesha nfs-ganesha-vfs tshark golang-go golang-github-hashicorp-serf-dev
          qemu-system-x86 busybox-static cpio gcc libc6-dev)
missing=()
if command -v dpkg-query > /dev/null; then
  for pkg in "${packages[@]}"; do
    [ "$(dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null)" = 'install ok installed' ] || missing+=("$pkg")
  done
else
  missing=("${packages[@]}")
fi
((${#missing[@]})) || exit 0

cannot() {
  echo "tests/install-peers.sh: cannot install ${missing[*]} ($1); the tests that need them will skip" >&2
  [ -z "${CI:-}" ] || { echo "CI=true: every peer is required" >&2; exit 1; }
  exit 0
}
command -v apt-get > /dev/null || cannot "no apt-get: install the equivalent packages by hand"
sudo=()
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo > /dev/null || cannot "not root and no sudo"
  sudo=(sudo)
fi

echo "installing ${missing[*]}" >&2
# policy-rc.d exit 101 keeps the packages' services (ganesha) from starting; ours is removed
# afterwards even on failure, and an existing one (as in Docker images) is left alone.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
  trap '"${sudo[@]}" rm -f "$policy"' EXIT
  trap 'exit 1' HUP INT TERM
  printf '#!/bin/sh\nexit 101\n' | "${sudo[@]}" tee "$policy" > /dev/null
  "${sudo[@]}" chmod 755 "$policy"
fi
"${sudo[@]}" apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
