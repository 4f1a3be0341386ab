#!/bin/bash
# fwcfg_probe (tests/guests/qemu/): a kernel written for QEMU's -kernel (Multiboot 1, its one
# segment at 0x8000) that reads fw_cfg through the ports and DMA and exits through
# isa-debug-exit with 2 * (32 * cpus + MiB / 16) + 1. Checks, at --memory 64M and 48M:
# `vmrr run` prints exactly the lines this script derives from the memory size, one CPU and
# "QEMU", and exits with the status derived the same way; `vmrr record` prints the same and
# `vmrr replay` of its log matches the whole log with the same console output. When
# qemu-system-x86_64 is installed, the same image under QEMU (-kernel, -nographic,
# isa-debug-exit at 0xf4, the same -m) prints the same lines after its firmware's banner and
# exits with the same status; otherwise that part is skipped (CI does not install QEMU).
# Usage: fwcfg_probe_test.sh VMRR FWCFG_PROBE_IMAGE
set -u
vmrr=$1
img=$2
source "$(dirname "$0")/lib.sh"

# The image really is what QEMU -kernel takes at a low address: ELF32, one PT_LOAD at 0x8000.
python3 - "$img" <<'EOF' || fail "fwcfg_probe: not an ELF32 image loading at 0x8000"
import struct, sys
b = open(sys.argv[1], "rb").read()
assert b[:4] == b"\x7fELF" and b[4] == 1, "not ELF32"
phoff, = struct.unpack_from("<I", b, 28)
phentsize, phnum = struct.unpack_from("<HH", b, 42)
loads = [struct.unpack_from("<8I", b, phoff + i * phentsize) for i in range(phnum)]
loads = [p for p in loads if p[0] == 1]
assert len(loads) == 1 and loads[0][3] == 0x8000, loads
assert b.find(struct.pack("<I", 0x1BADB002)) < 8192, "no Multiboot header in the first 8 KiB"
EOF

expected() {  # MIB: the lines the probe must print on a machine with MIB MiB and one CPU
  local mib=$1 bytes=$(($1 << 20)) v=$((32 + $1 / 16))
  printf 'fwcfg-probe: start\nsignature QEMU\nid 3\n'
  printf 'ram_size 0x%016x (%d MiB)\n' "$bytes" "$mib"
  printf 'nb_cpus 1 max_cpus 1\nunknown-key 0\netc/boot-fail-wait 0xffffffff\n'
  printf 'dma ram_size 0x%016x ok\n' "$bytes"
  printf 'RESULT fwcfg-probe %d\n' "$v"
}

for mib in 64 48; do
  expected "$mib" > "$tmp/want$mib"
  want_status=$(( 2 * (32 + mib / 16) + 1 ))
  timeout 60 "$vmrr" run --memory "${mib}M" "$img" < /dev/null > "$tmp/run$mib" 2> "$tmp/run$mib.err"
  st=$?
  [ $st -eq "$want_status" ] || { fail "run ${mib}M: status $st, want $want_status"; cat "$tmp/run$mib.err" >&2; }
  cmp -s "$tmp/want$mib" "$tmp/run$mib" || { fail "run ${mib}M: output differs"; diff "$tmp/want$mib" "$tmp/run$mib" >&2; }

  timeout 60 "$vmrr" record --memory "${mib}M" -o "$tmp/probe$mib.vlog" "$img" \
    < /dev/null > "$tmp/rec$mib" 2> "$tmp/rec$mib.err"
  st=$?
  [ $st -eq "$want_status" ] || { fail "record ${mib}M: status $st, want $want_status"; cat "$tmp/rec$mib.err" >&2; }
  cmp -s "$tmp/want$mib" "$tmp/rec$mib" || fail "record ${mib}M: output differs"
  timeout 60 "$vmrr" replay --console-out "$tmp/rep$mib" "$tmp/probe$mib.vlog" > "$tmp/rep$mib.sum" 2>&1
  st=$?
  [ $st -eq 0 ] || { fail "replay ${mib}M: status $st"; cat "$tmp/rep$mib.sum" >&2; }
  grep -q '^replay: matched the whole log' "$tmp/rep$mib.sum" || fail "replay ${mib}M: not matched"
  cmp -s "$tmp/want$mib" "$tmp/rep$mib" || fail "replay ${mib}M: console output differs"
done

if command -v qemu-system-x86_64 > /dev/null; then
  for mib in 64 48; do
    timeout 120 qemu-system-x86_64 -kernel "$img" -m "${mib}M" -nographic -no-reboot -net none \
      -device isa-debug-exit,iobase=0xf4,iosize=0x04 < /dev/null > "$tmp/qemu$mib.raw" 2> "$tmp/qemu$mib.err"
    st=$?
    want_status=$(( 2 * (32 + mib / 16) + 1 ))
    [ $st -eq "$want_status" ] || { fail "qemu ${mib}M: status $st, want $want_status"; cat "$tmp/qemu$mib.err" >&2; }
    # SeaBIOS's banner comes first, on the line the probe's first line continues.
    sed -n '/fwcfg-probe: start/,$p' "$tmp/qemu$mib.raw" | sed '1s/.*fwcfg-probe: start/fwcfg-probe: start/' > "$tmp/qemu$mib"
    if cmp -s "$tmp/run$mib" "$tmp/qemu$mib"; then
      echo "ok   qemu ${mib}M: the same output and status $st as vmrr"
    else
      fail "qemu ${mib}M: output differs from vmrr's"; diff "$tmp/run$mib" "$tmp/qemu$mib" >&2
    fi
  done
else
  echo "skip qemu-system-x86_64 not installed: the comparison with QEMU is not run"
fi

[ $failures -eq 0 ] && echo "fwcfg_probe: vmrr run/record/replay at 64M and 48M print what fw_cfg must report"
[ $failures -eq 0 ]
