#!/usr/bin/env bash
# `vmrr inspect` end to end: a complete log reads and verifies; a missing file, a non-log,
# a truncated, a damaged and a newer-version log each give one error line naming the
# problem and their own exit status.
set -u
vmrr="$1"; make_log="$2"
dir="$(mktemp -d)"; trap 'rm -rf "$dir"' EXIT
"$make_log" "$dir" >/dev/null || { echo "FAIL: cannot make test logs"; exit 1; }
fails=0
expect() {  # expect NAME STATUS PATTERN -- ARGS...
  local name="$1" want="$2" pattern="$3"; shift 4
  "$vmrr" "$@" >"$dir/out" 2>"$dir/err"; local got=$?
  local lines; lines=$(wc -l <"$dir/err")
  if [ "$got" -ne "$want" ]; then echo "FAIL $name: exit $got, want $want"; cat "$dir/err"; fails=$((fails+1)); return; fi
  if ! grep -qE -e "$pattern" "$dir/err" "$dir/out"; then echo "FAIL $name: no /$pattern/ in output"; cat "$dir/out" "$dir/err"; fails=$((fails+1)); return; fi
  if [ "$want" -ne 0 ] && [ "$lines" -ne 1 ]; then echo "FAIL $name: $lines error lines, want 1"; cat "$dir/err"; fails=$((fails+1)); return; fi
  echo "ok   $name"
}
expect complete        0 "state +complete"                -- inspect "$dir/complete.vlog"
expect verify          0 "verify +every frame checksum"   -- inspect --verify "$dir/complete.vlog"
expect records         0 "ConsoleIn +bytes=2 data=7879"    -- inspect --records "$dir/complete.vlog"
expect json            0 '"state": "complete"'            -- inspect --json "$dir/complete.vlog"
expect missing         3 "cannot open: No such file"      -- inspect "$dir/nope.vlog"
expect not-a-log       4 "not a vmrr log"                 -- inspect "$dir/not-a-log.vlog"
expect newer           5 "newer than this vmrr reads"     -- inspect "$dir/newer.vlog"
expect truncated       6 "ends at offset [0-9]+ inside (the header of )?frame [0-9]+" -- inspect "$dir/truncated.vlog"
expect damaged         7 "frame [0-9]+ at offset [0-9]+: payload checksum mismatch" -- inspect --verify "$dir/damaged.vlog"
expect bad-option      2 "--frobnicate"                   -- inspect --frobnicate "$dir/complete.vlog"
# JSON is parseable and its counts agree with the log the generator wrote (1000 samples).
if "$vmrr" inspect --json "$dir/complete.vlog" | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["kinds"]["TimeSample"]["count"]==1000, j["kinds"]; assert j["checkpoints"]==1'; then
  echo "ok   json-counts"; else echo "FAIL json-counts"; fails=$((fails+1)); fi
[ "$fails" -eq 0 ] || { echo "$fails inspect checks failed"; exit 1; }
