#!/usr/bin/env python3
"""Builds the test root filesystem for the stock Debian initrd: an ext4 image (mkfs.ext4 -d,
e2fsprogs) holding a static busybox with its applet links in /bin and an /sbin/init that does
the Linux tests' work (make_initramfs.py's WORKLOAD: markers VMRR-LINUX: ... on the console,
the network when there is one) and powers off. The initrd's /init mounts it (root=/dev/vda)
read-only and runs /sbin/init.

Usage: make_rootfs.py BUSYBOX OUTPUT [--size MIB] [--file SRC:DEST]...

The file system's UUID is fixed (root=UUID=6d9e7d9a-8f3c-4a51-9b0e-766d7272726f works too); its
time stamps are the build's (mke2fs 1.47.0 has no fixed-time option), so each build hashes
differently and a recording names the image it ran on by hash.
"""
import argparse
import os
import subprocess
import sys
import tempfile

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from make_initramfs import WORKLOAD  # noqa: E402

INIT = r"""#!/bin/sh
export PATH=/bin
# The initrd moved /dev, /proc, /sys and /run here; the root is read-only, /tmp a tmpfs.
mount -t tmpfs tmp /tmp
echo "VMRR-LINUX: userspace up, kernel $(uname -r)"
echo "VMRR-LINUX: root $(awk '$2 == "/" { print $1, $3, substr($4, 1, 2) }' /proc/mounts)"
echo "VMRR-LINUX: modules $(cut -d' ' -f1 /proc/modules | grep -x -E 'virtio_mmio|virtio_blk|virtio_net|ext4' | sort | tr '\n' ' ')"
for f in /data/*; do
  [ -f "$f" ] && echo "VMRR-LINUX: file $f $(sha256sum < "$f" | cut -c1-16)"
done
""" + WORKLOAD + "poweroff -f\n"

UUID = "6d9e7d9a-8f3c-4a51-9b0e-766d7272726f"


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("busybox")
    ap.add_argument("output")
    ap.add_argument("--size", type=int, default=8, help="image size in MiB (default 8)")
    ap.add_argument("--file", action="append", default=[],
                    help="SRC:DEST, a host file to put at /DEST (repeatable; /data/* are hashed)")
    a = ap.parse_args()
    with open(a.busybox, "rb") as f:
        busybox = f.read()
    if busybox[:4] != b"\x7fELF":
        sys.exit(f"{a.busybox}: not an ELF executable")
    applets = subprocess.run([a.busybox, "--list"], check=True, capture_output=True,
                             text=True).stdout.split()
    with tempfile.TemporaryDirectory() as root:
        for d in ("bin", "sbin", "dev", "proc", "sys", "run", "tmp", "root", "data"):
            os.mkdir(os.path.join(root, d), 0o755)
        with open(os.path.join(root, "bin/busybox"), "wb") as f:
            f.write(busybox)
        os.chmod(os.path.join(root, "bin/busybox"), 0o755)
        for name in applets:
            if name != "busybox" and "/" not in name:
                os.symlink("busybox", os.path.join(root, "bin", name))
        with open(os.path.join(root, "sbin/init"), "w") as f:
            f.write(INIT)
        os.chmod(os.path.join(root, "sbin/init"), 0o755)
        for spec in a.file:
            src, _, dest = spec.partition(":")
            if not dest:
                sys.exit(f"--file {spec}: want SRC:DEST")
            path = os.path.join(root, dest.lstrip("/"))
            os.makedirs(os.path.dirname(path), exist_ok=True)
            with open(src, "rb") as i, open(path, "wb") as o:
                o.write(i.read())
            os.chmod(path, 0o644)
        tmp = a.output + ".tmp"
        with open(tmp, "wb") as f:  # mkfs.ext4 would say "Creating regular file"
            f.truncate(a.size << 20)
        subprocess.run(["mkfs.ext4", "-q", "-F", "-L", "vmrr-root", "-U", UUID,
                        "-E", f"hash_seed={UUID},root_owner=0:0", "-d", root, tmp,
                        f"{a.size}M"], check=True)
    os.replace(tmp, a.output)


if __name__ == "__main__":
    main()
