#!/usr/bin/env bash
# Boots the guest build.sh made and mounts a 9P2000.L server with the Linux kernel's client.
# The 9P stream travels over a virtio-serial port; QEMU connects its host end to SERVER.
#
# Usage: run.sh SERVER ANAME [MOUNT_OPTIONS] [DIR]
#   SERVER: HOST:PORT or a unix socket path; MOUNT_OPTIONS are appended to the 9p mount's
#   (msize=..., cache=...). The serial console goes to standard output; lines starting with
#   "@@" are the guest's reports (MOUNT OK, guest-test.sh rc=N, UMOUNT OK).
set -euo pipefail
server=$1
aname=$2
extra=${3:-}
dir=${4:-${V9FS_GUEST:-/tmp/jetwire-v9fs-guest}}
"$(dirname "$0")/build.sh" "$dir"
if [[ $server == /* ]]; then
  chardev="socket,id=ninep,path=$server"
else
  chardev="socket,id=ninep,host=${server%:*},port=${server##*:}"
fi
options="version=9p2000.L,aname=$aname,msize=65536,access=client${extra:+,$extra}"
exec timeout "${V9FS_TIMEOUT:-240}" qemu-system-x86_64 -accel tcg -m 512 -smp 1 -nographic -no-reboot -nic none \
  -kernel "$dir/vmlinuz" -initrd "$dir/initrd.gz" \
  -append "console=ttyS0 quiet panic=-1 ninep=$options" \
  -chardev "$chardev" -device virtio-serial-pci -device "virtserialport,chardev=ninep,name=ninep"
