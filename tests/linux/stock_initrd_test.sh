#!/usr/bin/env bash
# The stock Debian initrd (KERNEL_DIR/initrd.img-VERSION: initramfs-tools made it when .ci/setup
# installed the kernel package) boots a root file system from a virtio disk and the guest talks
# to a UDP peer on the host. make_rootfs.py builds the disk: ext4 (mkfs.ext4 -d) with busybox,
# an /sbin/init running the Linux tests' workload and a random data file. One host-clock
# recording with virtio-net to udp_peer.py: the initrd's udev loads virtio_mmio, virtio_blk,
# virtio_net and ext4 from the initrd's own modules, its /init mounts /dev/vda read-only and
# runs /sbin/init, which prints the markers in order, the root mount, the data file's and the
# whole disk's hashes (the host's), uploads random bytes to the peer by TFTP and downloads its
# reply (payloads checked both ways), and powers off: status 0. The replay (no peer, no initrd:
# the log holds them) matches the whole log, checks every digest, ends in power-off and prints
# the recorded console byte for byte; a disk image that is not the recorded one is refused.
# Usage: stock_initrd_test.sh VMRR KERNEL_DIR SOURCE_DIR
# About 5.2 G guest instructions; the recording and the replay take about 100 s each on CI's
# 2 cores, so there is one of each. Exit 77 (skipped) without the initrd, busybox or mkfs.ext4.
set -u
vmrr=$1; kdir=$2; src=$3
source "$src/tests/integration/lib.sh"
source "$src/tests/linux/lib.sh"
kernel=$(ls "$kdir"/vmlinuz-* 2> /dev/null | head -1)
initrd="$kdir/initrd.img-${kernel##*/vmlinuz-}"
busybox=$(command -v busybox || true)
if [ -z "$kernel" ] || [ ! -f "$initrd" ] || [ -z "$busybox" ] || ! command -v mkfs.ext4 > /dev/null; then
  echo "SKIP: needs the Debian kernel and its stock initrd in $kdir, busybox-static and e2fsprogs" \
       "(.ci/setup installs them)"
  exit 77
fi
head -c 200000 /dev/urandom > "$tmp/blob"
python3 "$src/tests/linux/make_rootfs.py" "$busybox" "$tmp/root.img" --file "$tmp/blob:data/blob" \
  || { echo "FAIL: root file system image"; exit 1; }
disk_hash=$(sha256sum < "$tmp/root.img" | cut -c1-16)
blob_hash=$(sha256sum < "$tmp/blob" | cut -c1-16)
cmdline="root=/dev/vda console=ttyS0 loglevel=3"
log="$tmp/stock.vlog"
start_peer "$tmp/peer" || exit 1
start=$(date +%s)
# One checkpoint (the initial snapshot): later ones would each hold the unpacked initrd again.
timeout 900 "$vmrr" record --clock host --memory 512M --checkpoint-interval 100000000000 \
  --disk "$tmp/root.img" --net "udp:127.0.0.1:$peer_port" --initrd "$initrd" --append "$cmdline" \
  -o "$log" "$kernel" < /dev/null > "$tmp/rec.out" 2> "$tmp/rec.err"
st=$?
rec_s=$(( $(date +%s) - start ))
if [ "$st" -ne 0 ]; then
  fail "record: status $st, want 0 (power-off)"; tail -30 "$tmp/rec.out" "$tmp/rec.err" >&2; exit 1
fi
check_markers "$tmp/rec.out" "record"
# initramfs-tools' /init mounted the disk as root and ran the disk's /sbin/init.
grep -q -F "Begin: Mounting root file system" "$tmp/rec.out" || fail "record: not initramfs-tools' /init"
root=$(console_value "$tmp/rec.out" "root ")
[ "$root" = "/dev/vda ext4 ro" ] || fail "record: the root file system is '$root', want '/dev/vda ext4 ro'"
mods=" $(console_value "$tmp/rec.out" "modules ")"
for m in virtio_mmio virtio_blk virtio_net ext4; do
  case "$mods" in *" $m "*) ;; *) fail "record: module $m not loaded (loaded:$mods)" ;; esac
done
[ "$(console_value "$tmp/rec.out" "file /data/blob ")" = "$blob_hash" ] ||
  fail "record: /data/blob does not hash to the host file's $blob_hash"
[ "$(console_value "$tmp/rec.out" "vda ")" = "$disk_hash" ] ||
  fail "record: /dev/vda does not hash to the image's $disk_hash"
check_net "$tmp/rec.out" "$tmp/peer" "record"

replay_and_check "$log" "$tmp/rec.out" "replay" --disk "$tmp/root.img"
instructions=$(sed -n 's/^  instructions: //p' "$log.sum")
# The log names the disk by hash: another image (one byte changed) is refused before running.
cp "$tmp/root.img" "$tmp/other.img"
printf 'X' | dd of="$tmp/other.img" bs=1 seek=$((3 << 20)) conv=notrunc 2> /dev/null
timeout 60 "$vmrr" replay --disk "$tmp/other.img" "$log" > "$tmp/other.sum" 2> "$tmp/other.err"
st=$?
[ "$st" -ne 0 ] && grep -q "is not the one recorded" "$tmp/other.err" ||
  fail "replay with another disk image: status $st, $(cat "$tmp/other.err")"
echo "ok   stock initrd: record ${rec_s} s, replay ${replay_s} s, ${instructions:-?} instructions," \
     "$replay_digests digests, $(stat -c %s "$log") log bytes"
[ "$failures" -eq 0 ] || exit 1
echo "linux stock initrd: all checks passed"
