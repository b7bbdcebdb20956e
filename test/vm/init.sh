#!/bin/busybox sh
# Stage 1, /init of the initramfs (busybox). Loads the modules to reach the host, builds the guest's root — the host's
# own / over virtio-9p, read-only, under an overlay with a tmpfs upper layer — mounts the project directory and the
# runner's control directory read-write, the kernel's module tree where modprobe looks, and hands over to guest.sh.
# Arguments (after `--` on the kernel command line): PROJECT_DIR MODULE_TREE KERNEL_VERSION.
# Its own messages go to /dev/console (the serial log the runner prints on failure); the command's output to hvc0.
/bin/busybox mkdir -p /proc /sys /dev
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev

fail() {
  echo "mvt-vm init: $*"
  # Nothing is written to the control directory: the runner reports a guest that never ran the command.
  poweroff -f
}

project=$1
modtree=$2
kver=$3
[ -n "$kver" ] || fail "missing arguments (project, module tree, kernel version): $*"

for m in /modules/*.ko; do
  insmod "$m" || fail "insmod $m"
done

p9='trans=virtio,version=9p2000.L,msize=512000,cache=loose'
mkdir -p /mnt/host /mnt/rw /newroot
mount -t 9p -o "$p9,ro" hostroot /mnt/host || fail "mount host root (9p)"
mount -t tmpfs -o mode=0755 tmpfs /mnt/rw
mkdir /mnt/rw/upper /mnt/rw/work
mount -t overlay -o lowerdir=/mnt/host,upperdir=/mnt/rw/upper,workdir=/mnt/rw/work overlay /newroot || fail "mount overlay"
# A private /tmp first, then the project: the project may itself live under the host's /tmp (a CI clone does), and
# a /tmp mounted after it would hide it.
mount -t tmpfs -o mode=1777 tmpfs /newroot/tmp || fail "mount /tmp"
mkdir -p "/newroot$project"
mount -t 9p -o "$p9" project "/newroot$project" || fail "mount project (9p, rw)"
mkdir -p "/newroot/usr/lib/modules/$kver"
mount --bind "/newroot$modtree" "/newroot/usr/lib/modules/$kver" || fail "bind module tree"
mount -t tmpfs -o mode=0755 tmpfs /newroot/run
mkdir /newroot/run/vmctl
mount -t 9p -o "$p9" vmctl /newroot/run/vmctl || fail "mount control directory (9p, rw)"

# virtio_console announces its ports asynchronously: wait (bounded) for the node.
i=0
while [ ! -e /dev/hvc0 ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i + 1)); done
[ -e /dev/hvc0 ] || fail "no /dev/hvc0"

mount --move /dev /newroot/dev
mount --move /proc /newroot/proc
mount --move /sys /newroot/sys
exec switch_root /newroot /bin/bash "$project/test/vm/guest.sh" "$project"
