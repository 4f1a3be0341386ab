#!/usr/bin/env bash
# The stock Debian kernel (build/kernel/vmlinuz-*, fetched by .ci/setup) with the test
# initramfs (make_initramfs.py: static busybox, an /init that computes, reads /dev/urandom,
# sleeps through the timer, prints VMRR-LINUX markers and runs `poweroff -f`):
#   1. (VMRR_LINUX_RUN=1) vmrr run (icount clock) boots it to userspace, status 0 at power-off;
#   2. host-clock recordings, whose live output differs run to run (urandom, timing), with a
#      random virtio disk, virtio-net to a UDP peer on the host (udp_peer.py) and the kernel's
#      own virtio modules (build/kernel/modules): the markers in order, virtio-blk, virtio-rng
#      and virtio-net found through ACPI, the disk read back with the host's hash, a TFTP
#      upload to the peer and a download of its reply with the payloads checked both ways;
#      each replays bit-exact (the received frames come from the log): "matched the whole
#      log", every digest checked, end power-off, the replayed console byte for byte the
#      recorded one.
# Usage: linux_test.sh VMRR KERNEL_DIR SOURCE_DIR
# VMRR_LINUX_RUNS (default 3): host-clock recordings. With integration.linux_stock_initrd's and
# integration.linux_forensics' that makes five per CI run. Recordings after the first boot
# with cryptomgr.notests (the kernel's crypto self-tests are 0.7 G of its 1.9 G instructions;
# the first recording keeps them as a check of the CPU). VMRR_LINUX_RUN=1 adds a plain
# `vmrr run`. The default takes about 3 minutes on 2 cores.
# Exit 77 (skipped) when the kernel or busybox is not on this machine.
set -u
vmrr=$1; kdir=$2; src=$3
runs=${VMRR_LINUX_RUNS:-3}
source "$src/tests/integration/lib.sh"
source "$src/tests/linux/lib.sh"
kernel=$(ls "$kdir"/vmlinuz-* 2> /dev/null | head -1)
busybox=$(command -v busybox || true)
if [ -z "$kernel" ] || [ -z "$busybox" ]; then
  echo "SKIP: needs the Debian kernel in $kdir and busybox-static (.ci/setup installs both)"
  exit 77
fi
python3 "$src/tests/linux/make_initramfs.py" "$busybox" "$tmp/initramfs.gz" || { echo "FAIL: initramfs"; exit 1; }  # for `run`
cmdline="console=ttyS0 loglevel=3"

# 1. vmrr run, icount clock (VMRR_LINUX_RUN=1; `record` below runs the guest the same way and
#    ends with the same status, so CI skips this to stay within its time).
if [ "${VMRR_LINUX_RUN:-0}" = 1 ]; then
  start=$(date +%s)
  timeout 600 "$vmrr" run --memory 256M --initrd "$tmp/initramfs.gz" --append "$cmdline" "$kernel" \
    < /dev/null > "$tmp/run.out" 2> "$tmp/run.err"
  st=$?
  [ "$st" -eq 0 ] || { fail "run: status $st, want 0 (power-off)"; tail -20 "$tmp/run.out" "$tmp/run.err" >&2; }
  check_markers "$tmp/run.out" "run"
  echo "ok   run: booted to userspace and powered off in $(( $(date +%s) - start )) s"
fi

# 2. host-clock recordings (with the virtio disk and network and the kernel's virtio modules)
#    and their replays.
mods="$kdir/modules"
modargs=()
for m in virtio virtio_ring virtio_mmio virtio_blk virtio-rng failover net_failover virtio_net; do
  [ -f "$mods/$m.ko" ] || { fail "no $mods/$m.ko (.ci/setup extracts the virtio modules)"; break; }
  modargs+=(--module "$mods/$m.ko")
done
python3 "$src/tests/linux/make_initramfs.py" "$busybox" "$tmp/virtio.gz" "${modargs[@]}" || fail "initramfs with modules"
head -c $((1 << 20)) /dev/urandom > "$tmp/disk.img"
want=$(sha256sum "$tmp/disk.img" | cut -c1-16)
declare -A seen
for i in $(seq 1 "$runs"); do
  log="$tmp/linux-$i.vlog"
  start_peer "$tmp/peer-$i" || continue
  start=$(date +%s)
  timeout 900 "$vmrr" record --clock host --memory 256M --checkpoint-interval 1000000000 \
    --disk "$tmp/disk.img" --net "udp:127.0.0.1:$peer_port" --initrd "$tmp/virtio.gz" \
    --append "$cmdline$( [ "$i" -gt 1 ] && echo " cryptomgr.notests")" -o "$log" "$kernel" \
    < /dev/null > "$tmp/rec-$i.out" 2> "$tmp/rec-$i.err"
  st=$?
  [ "$st" -eq 0 ] || { fail "record $i: status $st, want 0 (power-off)"; tail -20 "$tmp/rec-$i.out" "$tmp/rec-$i.err" >&2; continue; }
  rec_s=$(( $(date +%s) - start ))
  check_markers "$tmp/rec-$i.out" "record $i"
  # virtio-blk (id 2), virtio-rng (id 4) and virtio-net (id 1) found through ACPI; the disk
  # read back whole; the network's payloads both ways.
  grep -q -F "VMRR-LINUX: vda $want" "$tmp/rec-$i.out" || fail "record $i: /dev/vda's hash is not the image's ($want)"
  grep -q -F "device 0x0002" "$tmp/rec-$i.out" || fail "record $i: no block device (id 2) on the virtio bus"
  grep -q -F "device 0x0004" "$tmp/rec-$i.out" || fail "record $i: no entropy device (id 4) on the virtio bus"
  grep -q -F "device 0x0001" "$tmp/rec-$i.out" || fail "record $i: no network device (id 1) on the virtio bus"
  grep -q -F "VMRR-LINUX: hwrng " "$tmp/rec-$i.out" || fail "record $i: /dev/hwrng not read"
  grep -q "insmod .* failed" "$tmp/rec-$i.out" && fail "record $i: a module did not load"
  check_net "$tmp/rec-$i.out" "$tmp/peer-$i" "record $i"
  # The replay needs no peer: the received frames are inputs in the log.
  replay_and_check "$log" "$tmp/rec-$i.out" "replay $i" --disk "$tmp/disk.img"
  netrx=$("$vmrr" inspect "$log" | awk '$1 == "NetRx" { print $2 }')
  [ "${netrx:-0}" -ge 5 ] || fail "record $i: only ${netrx:-0} received frames in the log"
  seen["$(grep -F "VMRR-LINUX: urandom" "$tmp/rec-$i.out")"]=1
  echo "ok   record $i (${rec_s} s) / replay $i (${replay_s} s): matched, $replay_digests digests, ${netrx:-0} received frames, $(stat -c %s "$log") log bytes"
  rm -f "$log"
done
# The recordings really differed live (entropy from the host), yet each replayed exactly.
if [ "$runs" -ge 2 ] && [ "${#seen[@]}" -lt 2 ]; then
  fail "every host-clock recording read the same /dev/urandom bytes"
fi
[ "$failures" -eq 0 ] || exit 1
echo "linux: all checks passed"
