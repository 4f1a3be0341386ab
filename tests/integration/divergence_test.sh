#!/bin/bash
# Replay divergence reports. (1) A bit of guest memory flipped during replay (test-only
# --test-flip-bit): exit 11, the first divergent icount is the flip's, the memory difference
# names the flipped byte, and the first instruction whose CPU state differs comes after it.
# (2) A logged input changed in a log that is otherwise whole (log_tamper re-encodes the
# frames): exit 11 and the reported first divergent icount is the changed input's.
# Usage: divergence_test.sh VMRR GUEST_DIR LOG_TAMPER
set -u
vmrr=$1
guests=$2
tamper=$3
source "$(dirname "$0")/lib.sh"
replay() {  # LOG ARGS...: summary in $tmp/sum, status in $st
  local log=$1
  shift
  timeout 300 "$vmrr" replay "$log" "$@" > "$tmp/sum" 2> "$tmp/err"
  st=$?
}

# 1. Bit flip in the stress guest's `switches` counter (read only when it prints at the end).
"$vmrr" record -o "$tmp/stress.log" "$guests/stress.elf" < /dev/null > /dev/null 2>&1
addr=$(nm "$guests/stress.elf" | awk '$3 == "switches" { print $1 }')
[ -n "$addr" ] && addr=$(printf "0x%x" $((16#$addr)))
[ -n "$addr" ] || fail "no 'switches' symbol in stress.elf"
replay "$tmp/stress.log"
[ "$st" -eq 0 ] || fail "stress: clean replay status $st"
replay "$tmp/stress.log" --test-flip-bit "5000000:$addr:3"
[ "$st" -eq 11 ] || fail "flip: status $st, want 11"
grep -q "^replay: DIVERGED" "$tmp/sum" || fail "flip: summary lacks DIVERGED"
grep -q "first divergent icount: 5000000$" "$tmp/sum" || { fail "flip: first divergent icount is not 5000000"; cat "$tmp/sum" >&2; }
grep -q "memory gpa $addr: 0x0 (clean) vs 0x8 (diverged)" "$tmp/sum" || fail "flip: memory difference not named"
cpu_at=$(sed -n 's/.*first instruction whose CPU state differs: icount \([0-9]*\).*/\1/p' "$tmp/sum")
if [ -z "$cpu_at" ] || [ "$cpu_at" -le 5000000 ]; then
  fail "flip: no first CPU-divergent instruction after the flip (got '$cpu_at')"
fi
grep -q "register " "$tmp/sum" || fail "flip: no register difference listed"
replay "$tmp/stress.log" --test-flip-bit "5000000:$addr:3" --no-search
[ "$st" -eq 11 ] || fail "flip --no-search: status $st"
grep -q "first instruction whose" "$tmp/sum" && fail "flip --no-search: searched anyway"

# 2. Tampered inputs: entropy (clock guest) and time samples (timer guest, host clock).
"$vmrr" record -o "$tmp/clock.log" --memory 8M --digest-interval 1000 --machine-digest-interval 1000 \
  "$guests/clock.elf" < /dev/null > /dev/null 2>&1
for n in 0 2 5; do
  at=$("$tamper" "$tmp/clock.log" "$tmp/t.log" Entropy "$n") || { fail "tamper Entropy $n"; continue; }
  replay "$tmp/t.log"
  [ "$st" -eq 11 ] || fail "Entropy $n: status $st, want 11"
  grep -q "first divergent icount: $at$" "$tmp/sum" || { fail "Entropy $n: first divergent icount is not $at"; cat "$tmp/sum" >&2; }
done
"$vmrr" record -o "$tmp/timer.log" --clock host --memory 8M --digest-interval 10000 \
  --machine-digest-interval 10000 "$guests/timer.elf" < /dev/null > /dev/null 2>&1
for n in 1 3 7; do
  at=$("$tamper" "$tmp/timer.log" "$tmp/t.log" TimeSample "$n") || { fail "tamper TimeSample $n"; continue; }
  replay "$tmp/t.log"
  [ "$st" -eq 11 ] || fail "TimeSample $n: status $st, want 11"
  grep -q "first divergent icount: $at$" "$tmp/sum" || { fail "TimeSample $n: first divergent icount is not $at"; cat "$tmp/sum" >&2; }
done

# 3. Tampered verification records are reported where they are: a wrong interrupt vector at
# its icount (kind interrupt), a wrong output or state digest at its icount.
check_detect() {  # KIND N WANT_KIND
  local at
  at=$("$tamper" "$tmp/timer.log" "$tmp/t.log" "$1" "$2") || { fail "tamper $1 $2"; return; }
  replay "$tmp/t.log" --no-search
  [ "$st" -eq 11 ] || fail "$1 $2: status $st, want 11"
  grep -q "^divergence ($3) detected at icount $at:" "$tmp/sum" || { fail "$1 $2: not detected as $3 at $at"; cat "$tmp/sum" >&2; }
}
check_detect IrqDelivered 5 interrupt
check_detect Output 3 output
check_detect Digest 7 digest

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "divergence: all checks passed"
