#!/usr/bin/env python3
"""Builds the test initramfs for the stock Debian kernel: a gzip'ed newc cpio holding a static
busybox and an /init that does real work (shell arithmetic, dd | sha256sum, /dev/urandom,
sleeps through the timer; with the virtio modules given by --module, reads the virtio disk and
entropy device and talks to a UDP peer over virtio-net), prints VMRR-LINUX markers on the
console and powers off.

Usage: make_initramfs.py BUSYBOX OUTPUT [--init FILE] [--module FILE.ko]...

The archive is byte-for-byte reproducible (fixed inode numbers, mtimes and gzip header), so a
recording's initrd hash depends only on busybox and the /init script.
"""
import argparse
import gzip
import io
import os
import stat
import sys

# The work every Linux test guest does once its userland runs (shared with make_rootfs.py):
# VMRR-LINUX markers on the console, in this order.
WORKLOAD = r"""i=0; s=0
while [ $i -lt 3000 ]; do s=$((s + i * i % 7919)); i=$((i + 1)); done
echo "VMRR-LINUX: arithmetic $s"
echo "VMRR-LINUX: dd $(dd if=/dev/zero bs=4096 count=256 2>/dev/null | sha256sum | cut -c1-16)"
echo "VMRR-LINUX: urandom $(head -c 32 /dev/urandom | sha256sum | cut -c1-16)"
t0=$(cut -d' ' -f1 /proc/uptime)
sleep 1
t1=$(cut -d' ' -f1 /proc/uptime)
echo "VMRR-LINUX: slept from $t0 to $t1"
echo "VMRR-LINUX: timer interrupts $(grep -i -E 'LOC|timer' /proc/interrupts | tr -s ' ' | head -2 | tr '\n' ' ')"
for d in /sys/bus/virtio/devices/*; do
  [ -e "$d/device" ] && echo "VMRR-LINUX: virtio $(basename $d) device $(cat $d/device)"
done
# The disk's content (O_DIRECT: a mounted ext4 changes its metadata in the page cache).
[ -b /dev/vda ] && echo "VMRR-LINUX: vda $(dd if=/dev/vda bs=1M iflag=direct 2>/dev/null | sha256sum | cut -c1-16)"
# /dev/hwrng exists without a driver too (reads fail): only the virtio-rng module feeds it.
if [ -c /dev/hwrng ] && head -c 16 /dev/hwrng > /tmp/hwrng 2> /dev/null; then
  echo "VMRR-LINUX: hwrng $(sha256sum < /tmp/hwrng | cut -c1-16)"
fi
# The network, if there is an interface (virtio-net, vmrr --net): this guest is 10.0.2.15/24 and
# the UDP peer on the host (tests/linux/udp_peer.py) a TFTP server at 10.0.2.2. Upload random
# bytes, then download the peer's reply, which names the upload's hash and a token of its own.
net=
for n in /sys/class/net/*; do
  [ "${n##*/}" = lo ] || { net=${n##*/}; break; }
done
if [ -n "$net" ]; then
  ip link set "$net" up && ip addr add 10.0.2.15/24 dev "$net"
  head -c 1300 /dev/urandom > /tmp/upload
  echo "VMRR-LINUX: net $net sends $(sha256sum < /tmp/upload | cut -c1-16)"
  if tftp -p -l /tmp/upload -r upload 10.0.2.2 && tftp -g -l /tmp/reply -r reply 10.0.2.2; then
    echo "VMRR-LINUX: net received $(cat /tmp/reply)"
  else
    echo "VMRR-LINUX: net failed"
  fi
fi
echo "VMRR-LINUX: done"
"""

# The kernel modules /init loads if the archive has them (--module), in dependency order.
MODULES = "virtio_ring virtio virtio_mmio virtio_blk virtio-rng failover net_failover virtio_net"

DEFAULT_INIT = r"""#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "VMRR-LINUX: userspace up, kernel $(uname -r)"
# The kernel's virtio modules, if the archive has them (--module): they find the devices
# through the DSDT's LNRO0005 nodes.
for m in """ + MODULES + r"""; do
  [ -f /lib/modules/$m.ko ] || continue
  insmod /lib/modules/$m.ko || echo "VMRR-LINUX: insmod $m failed"
done
""" + WORKLOAD + "poweroff -f\n"


class Cpio:
    def __init__(self):
        self.out = io.BytesIO()
        self.ino = 1

    def _entry(self, name, mode, data=b"", rdev=(0, 0)):
        name_b = name.encode() + b"\0"
        fields = [self.ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name_b), 0]
        self.ino += 1
        self.out.write(b"070701" + b"".join(b"%08X" % f for f in fields))
        self.out.write(name_b)
        self._pad()
        self.out.write(data)
        self._pad()

    def _pad(self):
        self.out.write(b"\0" * (-self.out.tell() % 4))

    def dir(self, name):
        self._entry(name, stat.S_IFDIR | 0o755)

    def file(self, name, data, mode=0o755):
        self._entry(name, stat.S_IFREG | mode, data)

    def symlink(self, name, target):
        self._entry(name, stat.S_IFLNK | 0o777, target.encode())

    def chardev(self, name, major, minor):
        self._entry(name, stat.S_IFCHR | 0o600, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        return self.out.getvalue()


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("busybox")
    ap.add_argument("output")
    ap.add_argument("--init", help="use this file as /init instead of the built-in script")
    ap.add_argument("--module", action="append", default=[],
                    help="a kernel module to put in /lib/modules (repeatable; /init insmods them)")
    a = ap.parse_args()
    with open(a.busybox, "rb") as f:
        busybox = f.read()
    if busybox[:4] != b"\x7fELF":
        sys.exit(f"{a.busybox}: not an ELF executable")
    init = open(a.init, "rb").read() if a.init else DEFAULT_INIT.encode()
    c = Cpio()
    for d in ("bin", "dev", "proc", "sys", "tmp", "mnt", "lib", "lib/modules"):
        c.dir(d)
    for m in a.module:
        with open(m, "rb") as f:
            c.file("lib/modules/" + os.path.basename(m), f.read(), 0o644)
    c.chardev("dev/console", 5, 1)
    c.chardev("dev/null", 1, 3)
    c.file("bin/busybox", busybox)
    c.symlink("bin/sh", "busybox")
    c.file("init", init)
    raw = c.finish()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0, compresslevel=6) as gz:
        gz.write(raw)
    tmp = a.output + ".tmp"
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
    os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
