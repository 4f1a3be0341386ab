#!/usr/bin/env bash
# The stock Debian kernel (build/kernel/vmlinuz-*, fetched by .ci/setup) with the test
# initramfs (make_initramfs.py: static busybox, an /init that computes, reads /dev/urandom,
# sleeps through the timer, prints VMRR-LINUX markers and runs `poweroff -f`):
#   1. (VMRR_LINUX_RUN=1) vmrr run (icount clock) boots it to userspace, status 0 at power-off;
#   2. host-clock recordings, whose live output differs run to run (urandom, timing), with a
#      random virtio disk and the kernel's own virtio modules (build/kernel/modules): the
#      markers in order, virtio-blk and virtio-rng found through ACPI, the disk read back with
#      the host's hash; each replays bit-exact: "matched the whole log", every digest checked,
#      end power-off, the replayed console byte for byte the recorded one.
# Usage: linux_test.sh VMRR KERNEL_DIR SOURCE_DIR
# VMRR_LINUX_RUNS (default 1, to fit CI's time; the issue asks for 5): host-clock recordings;
# VMRR_LINUX_RUN=1 adds a plain `vmrr run`. The default takes about 3 minutes on 2 cores.
# Exit 77 (skipped) when the kernel or busybox is not on this machine.
set -u
vmrr=$1; kdir=$2; src=$3
runs=${VMRR_LINUX_RUNS:-1}
source "$src/tests/integration/lib.sh"
kernel=$(ls "$kdir"/vmlinuz-* 2> /dev/null | head -1)
busybox=$(command -v busybox || true)
if [ -z "$kernel" ] || [ -z "$busybox" ]; then
  echo "SKIP: needs the Debian kernel in $kdir and busybox-static (.ci/setup installs both)"
  exit 77
fi
python3 "$src/tests/linux/make_initramfs.py" "$busybox" "$tmp/initramfs.gz" || { echo "FAIL: initramfs"; exit 1; }  # for `run`
cmdline="console=ttyS0 loglevel=3"
# The arithmetic and dd values are known answers: sum((i*i) % 7919 for i < 3000) in Python, and
# the first 16 hex digits of sha256sum over 1 MiB of zeros on the host.
markers=("userspace up" "arithmetic 11545461" "dd 30e14955ebf13522" "urandom " "slept from" "done")

# check_markers CONSOLE WHAT: every marker, in order, then the power-off message.
check_markers() {
  local at=0 m line
  for m in "${markers[@]}"; do
    line=$(grep -n -F "VMRR-LINUX: $m" "$1" | head -1 | cut -d: -f1)
    if [ -z "$line" ] || [ "$line" -le "$at" ]; then
      fail "$2: marker '$m' missing or out of order"; tail -20 "$1" >&2; return
    fi
    at=$line
  done
  grep -q "reboot: Power down" "$1" || fail "$2: no power-off"
}

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

# 2. host-clock recordings (with the virtio disk and the kernel's virtio modules) and their
#    replays.
mods="$kdir/modules"
modargs=()
for m in virtio virtio_ring virtio_mmio virtio_blk virtio-rng; do
  [ -f "$mods/$m.ko" ] || { fail "no $mods/$m.ko (.ci/setup extracts the virtio modules)"; break; }
  modargs+=(--module "$mods/$m.ko")
done
python3 "$src/tests/linux/make_initramfs.py" "$busybox" "$tmp/virtio.gz" "${modargs[@]}" || fail "initramfs with modules"
head -c $((1 << 20)) /dev/urandom > "$tmp/disk.img"
want=$(sha256sum "$tmp/disk.img" | cut -c1-16)
declare -A seen
for i in $(seq 1 "$runs"); do
  log="$tmp/linux-$i.vlog"
  start=$(date +%s)
  timeout 900 "$vmrr" record --clock host --memory 256M --checkpoint-interval 1000000000 \
    --disk "$tmp/disk.img" --initrd "$tmp/virtio.gz" --append "$cmdline" -o "$log" "$kernel" \
    < /dev/null > "$tmp/rec-$i.out" 2> "$tmp/rec-$i.err"
  st=$?
  [ "$st" -eq 0 ] || { fail "record $i: status $st, want 0 (power-off)"; tail -20 "$tmp/rec-$i.out" "$tmp/rec-$i.err" >&2; continue; }
  check_markers "$tmp/rec-$i.out" "record $i"
  # virtio-blk (id 2) and virtio-rng (id 4) found through ACPI; the disk read back whole.
  grep -q -F "VMRR-LINUX: vda $want" "$tmp/rec-$i.out" || fail "record $i: /dev/vda's hash is not the image's ($want)"
  grep -q -F "device 0x0002" "$tmp/rec-$i.out" || fail "record $i: no block device (id 2) on the virtio bus"
  grep -q -F "device 0x0004" "$tmp/rec-$i.out" || fail "record $i: no entropy device (id 4) on the virtio bus"
  grep -q -F "VMRR-LINUX: hwrng " "$tmp/rec-$i.out" || fail "record $i: /dev/hwrng not read"
  grep -q "insmod .* failed" "$tmp/rec-$i.out" && fail "record $i: a module did not load"
  rec_s=$(( $(date +%s) - start ))
  start=$(date +%s)
  timeout 900 "$vmrr" replay --disk "$tmp/disk.img" --console-out "$tmp/rep-$i.console" "$log" \
    > "$tmp/rep-$i.sum" 2> "$tmp/rep-$i.err"
  st=$?
  if [ "$st" -ne 0 ]; then
    fail "replay $i: status $st"; cat "$tmp/rep-$i.sum" "$tmp/rep-$i.err" >&2; continue
  fi
  grep -q "^replay: matched the whole log" "$tmp/rep-$i.sum" || fail "replay $i: not matched"
  grep -q "^  end: power-off, exit code 0$" "$tmp/rep-$i.sum" || fail "replay $i: end is not power-off"
  digests=$(sed -n 's/^  digests checked: //p' "$tmp/rep-$i.sum")
  [ "${digests:-0}" -ge 100 ] || fail "replay $i: only ${digests:-0} digests checked"
  cmp -s "$tmp/rec-$i.out" "$tmp/rep-$i.console" || fail "replay $i: console differs from the recording's"
  seen["$(grep -F "VMRR-LINUX: urandom" "$tmp/rec-$i.out")"]=1
  echo "ok   record $i (${rec_s} s) / replay $i ($(( $(date +%s) - start )) s): matched, $digests digests, $(stat -c %s "$log") log bytes"
  rm -f "$log"
done
# The recordings really differed live (entropy from the host), yet each replayed exactly.
if [ "$runs" -ge 2 ] && [ "${#seen[@]}" -lt 2 ]; then
  fail "every host-clock recording read the same /dev/urandom bytes"
fi
[ "$failures" -eq 0 ] || exit 1
echo "linux: all checks passed"
