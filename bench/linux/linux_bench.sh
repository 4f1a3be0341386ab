#!/usr/bin/env bash
# bench/linux: the stock Debian kernel with the test initramfs (tests/linux/make_initramfs.py:
# boot, shell arithmetic, dd | sha256sum, /dev/urandom, a 1 s sleep, power-off), side by side
# in one run: vmrr run, record (icount and host clock) and replay, and QEMU 7.2 plain (TCG), `-icount shift=auto,
# rr=record` and `rr=replay` (same memory, -M pc -cpu qemu64). Prints wall seconds, ratios,
# guest instructions (vmrr's icount; QEMU does not report its own), effective MIPS, CPU seconds and log
# bytes, like for like: vmrr's log holds the kernel and initrd in its starting snapshot (and
# RAM in each checkpoint), QEMU's does not, so vmrr's is also given without its snapshots.
# Usage: bash bench/linux/linux_bench.sh [VMRR] [KERNEL]
#   VMRR defaults to build/release/vmrr, KERNEL to build/kernel/vmlinuz-* (.ci/setup).
# Needs busybox-static; the QEMU columns need qemu-system-x86 (skipped without it).
set -u
cd "$(dirname "$0")/../.."
vmrr=$(readlink -f "${1:-build/release/vmrr}")
kernel=$(readlink -f "${2:-$(ls build/kernel/vmlinuz-* 2>/dev/null | head -1)}")
[ -x "$vmrr" ] && [ -f "$kernel" ] || { echo "linux_bench: need $vmrr and a kernel (bash .ci/setup release)" >&2; exit 2; }
command -v busybox >/dev/null || { echo "linux_bench: needs busybox-static" >&2; exit 2; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
python3 tests/linux/make_initramfs.py "$(command -v busybox)" "$tmp/initramfs.gz" || exit 1
append="console=ttyS0 loglevel=3"
mem=256M

# timed NAME CMD...: runs CMD (stdin empty, output to $tmp/NAME.out), sets secs[NAME] (wall),
# cpu[NAME] (the process's user + system seconds, its children's included) and status[NAME].
declare -A secs cpu status
timed() {
  local name=$1; shift
  local line
  line=$(python3 -c '
import resource, subprocess, sys, time
out, err = sys.argv[1], sys.argv[2]
t0 = time.monotonic()
with open(out, "wb") as o, open(err, "wb") as e:
    rc = subprocess.call(sys.argv[3:], stdin=subprocess.DEVNULL, stdout=o, stderr=e)
wall = time.monotonic() - t0
ru = resource.getrusage(resource.RUSAGE_CHILDREN)
print(f"{wall:.2f} {ru.ru_utime + ru.ru_stime:.2f} {rc}")' "$tmp/$name.out" "$tmp/$name.err" "$@")
  read -r secs[$name] cpu[$name] status[$name] <<< "$line"
  grep -q "VMRR-LINUX: done" "$tmp/$name.out" || [ "$name" = vmrr_replay ] || [ "$name" = qemu_replay ] ||
    echo "linux_bench: $name did not finish the workload (status ${status[$name]})" >&2
}

timed vmrr_run "$vmrr" run --memory "$mem" --initrd "$tmp/initramfs.gz" --append "$append" "$kernel"
timed vmrr_record "$vmrr" record --memory "$mem" --checkpoint-interval 1000000000 \
  --initrd "$tmp/initramfs.gz" --append "$append" -o "$tmp/linux.vlog" "$kernel"
# With --clock host the guest's idle time (the workload's 1 s sleep) passes in real time, as
# under QEMU's -icount shift=auto; vmrr's default icount clock skips it.
timed vmrr_record_host "$vmrr" record --clock host --memory "$mem" --checkpoint-interval 1000000000 \
  --initrd "$tmp/initramfs.gz" --append "$append" -o "$tmp/linux_host.vlog" "$kernel"
timed vmrr_replay "$vmrr" replay "$tmp/linux.vlog"
icount=$(sed -n 's/^  instructions: \([0-9]*\).*/\1/p' "$tmp/vmrr_replay.out")
grep -q "^replay: matched the whole log" "$tmp/vmrr_replay.out" || echo "linux_bench: the vmrr replay did not match" >&2
vlog=$(stat -c %s "$tmp/linux.vlog")
# The log's records but its snapshots (the starting one holds the kernel and initrd, later
# ones all RAM), in raw bytes: an upper bound of what they take stored.
events=$("$vmrr" inspect "$tmp/linux.vlog" | awk '$3 == "records" && $1 != "SnapshotChunk" && $1 != "Checkpoint" {n += $4} END {print n + 0}')

qemu=$(command -v qemu-system-x86_64 || true)
if [ -n "$qemu" ]; then
  q=("$qemu" -M pc -cpu qemu64 -m "$mem" -accel tcg -nographic -no-reboot -net none -monitor none
     -serial stdio -kernel "$kernel" -initrd "$tmp/initramfs.gz" -append "$append")
  timed qemu_plain "${q[@]}"
  timed qemu_record "${q[@]}" -icount shift=auto,rr=record,rrfile="$tmp/qemu.rr"
  timed qemu_replay "${q[@]}" -icount shift=auto,rr=replay,rrfile="$tmp/qemu.rr"
  qlog=$(stat -c %s "$tmp/qemu.rr" 2>/dev/null || echo 0)
fi

ratio() { python3 -c "a, b = float('$1'), float('$2'); print(f'{a / b:.2f}' if b > 0 else 'NA')"; }
mips() { python3 -c "print(f'{$icount / 1e6 / float($1):.1f}' if '$icount' else 'NA')"; }
echo "guest instructions (vmrr icount): ${icount:-NA}"
for n in vmrr_run vmrr_record vmrr_record_host vmrr_replay; do
  echo "case=$n wall_s=${secs[$n]} cpu_s=${cpu[$n]} status=${status[$n]} effective_mips=$(mips "${secs[$n]}")"
done
echo "ratio vmrr_replay/vmrr_record=$(ratio "${secs[vmrr_replay]}" "${secs[vmrr_record]}")  vmrr_record/vmrr_run=$(ratio "${secs[vmrr_record]}" "${secs[vmrr_run]}")"
echo "log vmrr_bytes=$vlog vmrr_event_bytes_without_snapshots=$events"
if [ -n "$qemu" ]; then
  for n in qemu_plain qemu_record qemu_replay; do
    echo "case=$n wall_s=${secs[$n]} cpu_s=${cpu[$n]} status=${status[$n]}"
  done
  echo "ratio vmrr_record/qemu_record=$(ratio "${secs[vmrr_record]}" "${secs[qemu_record]}")  vmrr_replay/qemu_replay=$(ratio "${secs[vmrr_replay]}" "${secs[qemu_replay]}")  vmrr_run/qemu_plain=$(ratio "${secs[vmrr_run]}" "${secs[qemu_plain]}")"
  echo "ratio vmrr_record_host/qemu_record=$(ratio "${secs[vmrr_record_host]}" "${secs[qemu_record]}")  cpu: vmrr_record/qemu_record=$(ratio "${cpu[vmrr_record]}" "${cpu[qemu_record]}") vmrr_record_host/qemu_record=$(ratio "${cpu[vmrr_record_host]}" "${cpu[qemu_record]}")"
  echo "log qemu_bytes=$qlog ratio vmrr_events/qemu=$(ratio "$events" "$qlog") vmrr_whole_log/qemu=$(ratio "$vlog" "$qlog")"
else
  echo "qemu: not installed (apt-get install qemu-system-x86 for the QEMU columns)"
fi
