#!/bin/sh
# /init of the Linux virtio test (linux_test.sh): loads the stock kernel's virtio modules, which
# find their devices through the DSDT's LNRO0005 nodes, then reads the whole virtio disk and
# the virtio entropy device and prints what it saw.
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
for m in virtio_ring virtio virtio_mmio virtio_blk virtio-rng; do
  insmod /lib/modules/$m.ko || echo "VMRR-LINUX: insmod $m failed"
done
sleep 1
for d in /sys/bus/virtio/devices/*; do echo "VMRR-LINUX: virtio $(basename $d) device $(cat $d/device)"; done
echo "VMRR-LINUX: interrupts $(grep -c virtio /proc/interrupts)"
echo "VMRR-LINUX: vda $(dd if=/dev/vda bs=4096 2>/dev/null | sha256sum | cut -c1-16)"
echo "VMRR-LINUX: hwrng $(head -c 16 /dev/hwrng | sha256sum | cut -c1-16)"
echo "VMRR-LINUX: done"
poweroff -f
