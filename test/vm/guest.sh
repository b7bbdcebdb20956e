#!/bin/bash
# Stage 2, PID 1 of the guest after switch_root: the host's own userland (bash, node, ip, modprobe) on the second
# kernel. Runs /run/vmctl/cmd.sh (written by the runner) in the project directory with /run/vmctl/env exported, its
# output on hvc0, then records the exit status and timestamps in /run/vmctl and powers off.
# PID 1 keeps hvc0 open for the whole run, so the `stty -opost` below holds (reopened, the tty would reset and
# every line would gain a \r).
exec </dev/hvc0 >/dev/hvc0 2>&1
stty -opost

mount -t devpts -o gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts 2>/dev/null || { mkdir -p /dev/pts && mount -t devpts devpts /dev/pts; }
mkdir -p /dev/shm && mount -t tmpfs -o mode=1777 tmpfs /dev/shm
# /tmp is already a private tmpfs (init.sh mounts it before the project, which may live under the host's /tmp).
# Device nodes of modules not loaded yet (/dev/net/tun, /dev/vhost-net, …), as systemd's kmod-static-nodes makes
# them at boot: opening one makes the kernel load its module (char-major-M-N).
while read -r mod dev spec; do
  case $mod in '#'* | '') continue ;; esac
  mm=${spec:1}
  mkdir -p "/dev/$(dirname "$dev")"
  [ -e "/dev/$dev" ] || mknod -m 0600 "/dev/$dev" "${spec:0:1}" "${mm%%:*}" "${mm##*:}"
done < "/lib/modules/$(uname -r)/modules.devname"
# `ip netns` bind-mounts into /run/netns and /sys; mount namespaces of test tools must see it.
mount --make-rshared /
hostname mvt-vm
ip link set lo up

cd "$1" || exit 1
set -a
. /run/vmctl/env
set +a
cut -d' ' -f1 /proc/uptime > /run/vmctl/started
if [ "$MVT_VM_PIPE" = 1 ]; then
  unset MVT_VM_PIPE
  bash /run/vmctl/cmd.sh 2>&1 | cat
  rc=${PIPESTATUS[0]}
else
  bash /run/vmctl/cmd.sh
  rc=$?
fi
cut -d' ' -f1 /proc/uptime > /run/vmctl/finished
echo "$rc" > /run/vmctl/exit-code
sync
# sysrq 'o' powers off at once; should it not, PID 1 exits, the kernel panics (panic=-1) and QEMU (-no-reboot) quits.
echo o > /proc/sysrq-trigger
sleep 20
exit "$rc"
