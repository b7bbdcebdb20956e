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
# A hang must say where it hangs: past MVT_VM_WATCHDOG seconds (set by the runner a little before its own timeout)
# dump every task's state and kernel stack, blocked tasks through sysrq-w, the JavaScript stacks of node processes
# (diagnostic reports on SIGUSR2), then end the command: 124 is recorded like a timeout and the guest still powers off.
watchdog() {
  sleep "$1"
  : > /tmp/mvt-watchdog-fired
  echo "mvt-vm guest: the command is still running after $1 s; what every user task is doing:"
  for p in $(pgrep -x node); do kill -USR2 "$p" 2>/dev/null; done
  ps --ppid 2 -p 2 --deselect -Lo pid,tid,stat,wchan:28,etime,comm,args | cut -c1-200
  sleep 3
  for f in /tmp/mvt-node-reports/*.json; do
    [ -e "$f" ] && node -e 'const r = require(process.argv[1]); const j = r.javascriptStack; console.log(`== node ${r.header.processId} ${r.header.commandLine.join(" ").slice(0, 160)}\n${j.message}\n${(j.stack || []).join("\n")}\nactive libuv handles: ${r.libuv.filter((h) => h.is_active).map((h) => h.type).join(" ")}`)' "$f"
  done
  # Kernel stacks of the threads not in an ordinary idle wait (their wait channel is in the table above).
  ps --ppid 2 -p 2 --deselect -Lo tid=,wchan:32=,comm= | while read -r tid wchan comm; do
    case $wchan in do_wait | do_epoll_wait | futex_wait_queue | pipe_read | hrtimer_nanosleep | -) continue ;; esac
    [ "$comm" = ps ] && continue
    echo "== thread $tid ($comm) in $wchan"
    cat "/proc/$tid/stack" 2>/dev/null
  done
  echo w > /proc/sysrq-trigger
  echo "mvt-vm guest: kernel log (last 60 lines):"
  dmesg | tail -60
  kill -TERM -- "-$2" 2>/dev/null
  sleep 10
  kill -KILL -- "-$2" 2>/dev/null
}
echo 1 > /proc/sys/kernel/sysrq
mkdir -p /tmp/mvt-node-reports
export NODE_OPTIONS="${NODE_OPTIONS:+$NODE_OPTIONS }--report-on-signal --report-signal=SIGUSR2 --report-directory=/tmp/mvt-node-reports"
# The command leads a session of its own (setsid does not fork: a background job is no group leader), so the
# watchdog can end it with everything it started.
if [ "$MVT_VM_PIPE" = 1 ]; then
  unset MVT_VM_PIPE
  setsid bash -c 'bash /run/vmctl/cmd.sh 2>&1 | cat; exit "${PIPESTATUS[0]}"' &
else
  setsid bash /run/vmctl/cmd.sh &
fi
cmd=$!
wd=
if [ -n "$MVT_VM_WATCHDOG" ]; then watchdog "$MVT_VM_WATCHDOG" "$cmd" & wd=$!; fi
wait "$cmd"
rc=$?
[ -n "$wd" ] && kill "$wd" 2>/dev/null
[ -e /tmp/mvt-watchdog-fired ] && rc=124
cut -d' ' -f1 /proc/uptime > /run/vmctl/finished
echo "$rc" > /run/vmctl/exit-code
sync
# sysrq 'o' powers off at once; should it not, PID 1 exits, the kernel panics (panic=-1) and QEMU (-no-reboot) quits.
echo o > /proc/sysrq-trigger
sleep 20
exit "$rc"
