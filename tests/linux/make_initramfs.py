#!/usr/bin/env python3
"""Builds the test initramfs for the stock Debian kernel: a gzip'ed newc cpio holding a static
busybox and an /init that does real work (shell arithmetic, dd | sha256sum, /dev/urandom,
sleeps through the timer; with the virtio modules given by --module, reads the virtio disk and
entropy device), prints VMRR-LINUX markers on the console and powers off.

Usage: make_initramfs.py BUSYBOX OUTPUT [--init FILE]

The archive is byte-for-byte reproducible (fixed inode numbers, mtimes and gzip header), so a
recording's initrd hash depends only on busybox and the /init script.
"""
import argparse
import gzip
import io
import os
import stat
import sys

DEFAULT_INIT = r"""#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
echo "VMRR-LINUX: userspace up, kernel $(uname -r)"
# The kernel's virtio modules, if the archive has them (--module): they find the devices
# through the DSDT's LNRO0005 nodes.
for m in virtio_ring virtio virtio_mmio virtio_blk virtio-rng; do
  [ -f /lib/modules/$m.ko ] || continue
  insmod /lib/modules/$m.ko || echo "VMRR-LINUX: insmod $m failed"
done
i=0; s=0
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
[ -b /dev/vda ] && echo "VMRR-LINUX: vda $(dd if=/dev/vda bs=4096 2>/dev/null | sha256sum | cut -c1-16)"
[ -c /dev/hwrng ] && echo "VMRR-LINUX: hwrng $(head -c 16 /dev/hwrng | sha256sum | cut -c1-16)"
echo "VMRR-LINUX: done"
poweroff -f
"""


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
