#!/usr/bin/env bash
# `vmrr inspect` end to end: a complete log reads and verifies; a missing file, a non-log,
# a truncated, a damaged and a newer-version log each give one error line naming the
# problem and their own exit status.
set -u
vmrr="$1"; make_log="$2"
source "$(dirname "$0")/lib.sh"
"$make_log" "$tmp" >/dev/null || { echo "FAIL: cannot make test logs" >&2; exit 1; }
expect() {  # expect NAME STATUS PATTERN -- ARGS...
  local name="$1" want="$2" pattern="$3"; shift 4
  "$vmrr" "$@" >"$tmp/out" 2>"$tmp/err"; local got=$?
  local lines; lines=$(wc -l <"$tmp/err")
  if [ "$got" -ne "$want" ]; then fail "$name: exit $got, want $want"; cat "$tmp/err" >&2; return; fi
  if ! grep -qE -e "$pattern" "$tmp/err" "$tmp/out"; then fail "$name: no /$pattern/ in output"; cat "$tmp/out" "$tmp/err" >&2; return; fi
  if [ "$want" -ne 0 ] && [ "$lines" -ne 1 ]; then fail "$name: $lines error lines, want 1"; cat "$tmp/err" >&2; return; fi
  echo "ok   $name"
}
expect complete        0 "state +complete"                -- inspect "$tmp/complete.vlog"
expect verify          0 "verify +every frame checksum"   -- inspect --verify "$tmp/complete.vlog"
expect records         0 "ConsoleIn +bytes=2 data=7879"    -- inspect --records "$tmp/complete.vlog"
expect json            0 '"state": "complete"'            -- inspect --json "$tmp/complete.vlog"
expect missing         3 "cannot open: No such file"      -- inspect "$tmp/nope.vlog"
expect not-a-log       4 "not a vmrr log"                 -- inspect "$tmp/not-a-log.vlog"
expect newer           5 "newer than this vmrr reads"     -- inspect "$tmp/newer.vlog"
expect truncated       6 "ends at offset [0-9]+ inside (the header of )?frame [0-9]+" -- inspect "$tmp/truncated.vlog"
expect damaged         7 "frame [0-9]+ at offset [0-9]+: payload checksum mismatch" -- inspect --verify "$tmp/damaged.vlog"
expect bad-option      2 "--frobnicate"                   -- inspect --frobnicate "$tmp/complete.vlog"
# JSON is parseable and its counts agree with the log the generator wrote (1000 samples).
if "$vmrr" inspect --json "$tmp/complete.vlog" | python3 -c 'import json,sys; j=json.load(sys.stdin); assert j["kinds"]["TimeSample"]["count"]==1000, j["kinds"]; assert j["checkpoints"]==1'; then
  echo "ok   json-counts"; else fail "json-counts"; fi
[ "$failures" -eq 0 ] || { echo "$failures inspect checks failed" >&2; exit 1; }
