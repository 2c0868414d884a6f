#!/bin/busybox sh
# The guest's /init: load the modules, mount the 9P server QEMU connects to the virtio-serial
# port named "ninep", run ./guest-test.sh from the mount if the export holds one, power off.
# The console lines starting with "@@" are what the host reads.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
while read -r module; do
  insmod "/modules/$module" || echo "@@ insmod $module failed"
done < /modules/order
options=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^ninep=//p')
port=
for try in 1 2 3 4 5 6 7 8 9 10; do
  for named in /sys/class/virtio-ports/*/name; do
    [ "$(cat "$named" 2>/dev/null)" = ninep ] && port=/dev/$(basename "$(dirname "$named")")
  done
  [ -n "$port" ] && [ -e "$port" ] && break
  sleep 0.2
done
[ -n "$port" ] || { echo "@@ MOUNT FAILED: no virtio port"; poweroff -f; }
# trans=fd needs descriptors it can read and write; the virtio console cannot be written by the
# 9p transport directly, so two relays copy between the port and a pair of FIFOs.
mkfifo /tmp/in /tmp/out
exec 7<>"$port"
cat <&7 > /tmp/in &
cat /tmp/out >&7 &
if mount -t 9p -o "trans=fd,rfdno=5,wfdno=6,$options" ninep /mnt 5<>/tmp/in 6<>/tmp/out; then
  echo "@@ MOUNT OK"
  if [ -x /mnt/guest-test.sh ]; then
    (cd /mnt && ./guest-test.sh)
    echo "@@ guest-test.sh rc=$?"
  fi
  cd /
  umount /mnt && echo "@@ UMOUNT OK"
else
  echo "@@ MOUNT FAILED"
  dmesg | tail -n 8
fi
poweroff -f
