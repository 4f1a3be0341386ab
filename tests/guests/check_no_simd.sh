#!/bin/sh
# Usage: check_no_simd.sh OBJDUMP FILE...
# Fails (exit 1) if the disassembly of any FILE (x86-64) contains an SSE/AVX/MMX/x87
# instruction or register: vmrr's CPU does not advertise them and test guests must not use
# them (boot contract, tests/guests/README.md). Exit 2 on usage or objdump errors.
set -u
if [ $# -lt 2 ]; then
  echo "usage: $0 OBJDUMP FILE..." >&2
  exit 2
fi
objdump=$1
shift
status=0
for f in "$@"; do
  if ! dis=$("$objdump" -d --no-show-raw-insn -M x86-64 -m i386:x86-64 "$f" 2>&1); then
    echo "$f: objdump failed: $dis" >&2
    exit 2
  fi
  # Instruction lines look like "  100000:\tmnemonic operands". x87 mnemonics all start
  # with f (no integer instruction does); SSE/AVX/MMX show up as their registers or as the
  # state, control and fence instructions below.
  bad=$(printf '%s\n' "$dis" | grep -E '^ +[0-9a-f]+:' |
        grep -E '%[xyz]mm[0-9]|%mm[0-7]|%st(\(|\b)|:\s+f[a-z0-9]+(\s|$)|(ld|st)mxcsr|fxsave|fxrstor|xsave|xrstor|[lsm]fence|emms|movnti|clflush|prefetch' || true)
  if [ -n "$bad" ]; then
    echo "$f: forbidden instruction(s):" >&2
    printf '%s\n' "$bad" | head -20 >&2
    echo "forbidden instruction in $f"
    status=1
  fi
done
exit $status
