#!/bin/bash
# Killed recorders: `vmrr record` is sent SIGKILL at random moments; the log it leaves
# replays up to its last whole frame with exit 0 (or is refused with status 6 if it was
# killed before the starting snapshot was written), and the console output of that replay
# is a prefix of what the recording printed. Also: a finished log cut at arbitrary byte
# offsets (mid-frame) replays the same way.
# Usage: crash_replay_test.sh VMRR GUEST_DIR [LOG_TAMPER]
# VMRR_CRASH_RUNS (default 12): recordings killed.
set -u
vmrr=$1
guests=$2
runs=${VMRR_CRASH_RUNS:-12}
source "$(dirname "$0")/lib.sh"
cut_replays=0
early_kills=0
# check LOG REC_CONSOLE what: the log replays (cut or whole) and its console is a prefix.
check() {
  local log=$1 rec=$2 what=$3
  timeout 120 "$vmrr" replay "$log" --console-out "$tmp/rep" > "$tmp/sum" 2> "$tmp/err"
  local st=$?
  # Killed before the log had its starting snapshot (or, on a loaded machine, before the
  # header was complete or even begun): refused with the status and message for that case.
  if [ "$st" -eq 6 ] && grep -q -e "no starting snapshot" -e "inside the log header" "$tmp/err"; then
    return
  fi
  if [ "$st" -eq 4 ] && grep -q "the file is empty" "$tmp/err"; then
    return
  fi
  if [ "$st" -ne 0 ]; then
    fail "$what: replay status $st"
    cat "$tmp/sum" "$tmp/err" >&2
    return
  fi
  if grep -q "matched up to the end of a cut log" "$tmp/sum"; then
    grep -q "note: the log is cut" "$tmp/err" || fail "$what: cut log replayed without saying so"
    cut_replays=$((cut_replays + 1))
  else
    grep -q "matched the whole log" "$tmp/sum" || fail "$what: summary"
  fi
  local n
  n=$(stat -c %s "$tmp/rep")
  cmp -s -n "$n" "$tmp/rep" "$rec" || fail "$what: replayed console is not a prefix of the recording's"
}

for i in $(seq 1 "$runs"); do
  if [ $((i % 2)) -eq 0 ]; then g=stress; else g=timer; fi
  delay=$(printf "0.%03d" $((20 + RANDOM % 330)))
  # The previous run's log must not stand in for this one's: a recorder killed before it
  # created its log (on a loaded machine, 20 ms can end before exec does) leaves none.
  rm -f "$tmp/k.log"
  "$vmrr" record --clock host -o "$tmp/k.log" "$guests/$g.elf" < /dev/null > "$tmp/k.rec" 2> /dev/null &
  pid=$!
  sleep "$delay"
  kill -KILL "$pid" 2> /dev/null
  wait "$pid" 2> /dev/null
  if [ ! -f "$tmp/k.log" ]; then
    # Killed before the log existed: then it printed nothing either.
    [ ! -s "$tmp/k.rec" ] || fail "run $i: no log, but the recording printed $(wc -c < "$tmp/k.rec") bytes"
    early_kills=$((early_kills + 1))
    continue
  fi
  check "$tmp/k.log" "$tmp/k.rec" "$g killed after ${delay}s"
done

# A whole log cut at byte offsets past its starting snapshot.
"$vmrr" record --clock host -o "$tmp/full.log" "$guests/stress.elf" < /dev/null > "$tmp/full.rec" 2> /dev/null
size=$(stat -c %s "$tmp/full.log")
for frac in 50 70 85 95 99; do
  head -c $((size * frac / 100)) "$tmp/full.log" > "$tmp/cut.log"
  check "$tmp/cut.log" "$tmp/full.rec" "cut at $frac%"
done
[ "$early_kills" -le $((runs / 2)) ] || fail "$early_kills of $runs recorders were killed before they created their log"
[ "$cut_replays" -ge 3 ] || fail "only $cut_replays cut logs replayed past their snapshot"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "crash replay: all checks passed ($cut_replays cut logs replayed)"
