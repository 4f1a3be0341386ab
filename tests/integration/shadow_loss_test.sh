#!/bin/bash
# Fault tolerance (issue 14): a primary whose shadow dies (SIGKILL) mid-run does what
# `--on-shadow-loss` says, over the shared-memory ring (the loss is seen as silence) and TCP
# on loopback (the link closes).
#   hold (the default): the console file stops growing at what the shadow had acknowledged
#     (a prefix of the guest's output), the message comes once, the primary stays alive with
#     its guest blocked on the full output buffer (it writes no more log), stops on SIGTERM with status 3, and its log
#     is complete (it replays to its end).
#   continue:MS: a warning on stderr, then the held output is released and the run goes on:
#     the primary exits with the guest's status, the console file equals one uninterrupted
#     `vmrr run` of the guest byte for byte, and so does a replay of the primary's log.
# Usage: shadow_loss_test.sh VMRR GUEST_DIR
set -u
vmrr=$(realpath "$1")
guests=$(realpath "$2")
source "$(dirname "$0")/lib.sh"
guest="$guests/timer.elf"
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$tmp/key"
"$vmrr" run "$guest" < /dev/null > "$tmp/expected"
total=$(stat -c %s "$tmp/expected")

size() { stat -c %s "$1"; }

# run_case POLICY URL: a shadow and a primary (a 64-byte output buffer, so that the guest
# cannot run far ahead of the acknowledgements); the shadow is killed once the console file
# holds the first output. Leaves $primary running (or finished), its stderr in $tmp/primary.err.
run_case() {
  : > "$tmp/console"
  "$vmrr" shadow --listen "$2" --key-file "$tmp/key" --console-out "$tmp/console" \
    < /dev/null > /dev/null 2> "$tmp/shadow.err" &
  local shadow=$!
  pids+=("$shadow")
  wait_for "$tmp/shadow.err" "listening on" 30 || fail "$1 $2: the shadow did not start"
  "$vmrr" record -o "$tmp/primary.vlog" --replicate "$(listening_url "$tmp/shadow.err")" --key-file "$tmp/key" --console-out "$tmp/console" \
    --output-buffer 64 --shadow-timeout 200 --on-shadow-loss "$1" "$guest" < /dev/null > /dev/null \
    2> "$tmp/primary.err" &
  primary=$!
  pids+=("$primary")
  local i
  for i in $(seq 1 1000); do [ -s "$tmp/console" ] && break; sleep 0.01; done
  kill -KILL "$shadow"
  wait "$shadow" 2> /dev/null
  killed_at=$(size "$tmp/console")
  [ "$killed_at" -gt 0 ] && [ "$killed_at" -lt "$total" ] ||
    fail "$1 $2: the shadow was killed with $killed_at of $total console bytes out (not mid-run)"
}

for url in "shm:vmrr_loss_$$_h" "tcp:127.0.0.1:0"; do
  run_case hold "$url"
  wait_for "$tmp/primary.err" "shadow lost" 10 || fail "hold $url: the loss was not reported"
  grep -q "held from now on" "$tmp/primary.err" || fail "hold $url: no word that output is held"
  # The guest runs on until its next output fills the buffer; a phase of it without output
  # (16 M instructions of busy loop) can take seconds under a sanitizer on a loaded machine.
  # Blocked, it writes no more log: wait until the log stops growing (at most 60 s).
  for _ in $(seq 1 120); do
    before=$(size "$tmp/primary.vlog")
    sleep 0.5
    [ "$(size "$tmp/primary.vlog")" -eq "$before" ] && break
  done
  at_loss=$(size "$tmp/console")
  sleep 1
  kill -0 "$primary" 2> /dev/null || fail "hold $url: the primary did not stay alive"
  [ "$(size "$tmp/console")" -eq "$at_loss" ] || fail "hold $url: console output grew after the shadow was lost"
  [ "$at_loss" -lt "$total" ] || fail "hold $url: the whole output was released"
  cmp -s -n "$at_loss" "$tmp/console" "$tmp/expected" || fail "hold $url: the released output is not the guest's"
  [ "$(grep -c "shadow lost" "$tmp/primary.err")" -eq 1 ] || fail "hold $url: the loss was reported more than once"
  kill -TERM "$primary"
  for _ in $(seq 1 500); do kill -0 "$primary" 2> /dev/null || break; sleep 0.01; done
  kill -0 "$primary" 2> /dev/null && { fail "hold $url: SIGTERM did not stop the primary"; kill -KILL "$primary"; }
  wait "$primary"
  st=$?
  [ "$st" -eq 3 ] || { fail "hold $url: stopped primary's status $st, expected 3 (output held)"; cat "$tmp/primary.err" >&2; }
  grep -q "were not released" "$tmp/primary.err" || fail "hold $url: held bytes not reported at the end"
  "$vmrr" replay "$tmp/primary.vlog" > /dev/null 2>&1 || fail "hold $url: the primary's log does not replay"
  [ "$(size "$tmp/console")" -eq "$at_loss" ] || fail "hold $url: output released at the stop"
done

for url in "shm:vmrr_loss_$$_c" "tcp:127.0.0.1:0"; do
  run_case continue:100 "$url"
  wait "$primary"
  st=$?
  [ "$st" -eq 1 ] || { fail "continue $url: status $st, the guest's is 1"; cat "$tmp/primary.err" >&2; }
  grep -q "WARNING: console output will be released UNPROTECTED" "$tmp/primary.err" ||
    fail "continue $url: no warning at the loss"
  grep -q "releasing console output UNPROTECTED" "$tmp/primary.err" || fail "continue $url: no warning at the release"
  cmp -s "$tmp/console" "$tmp/expected" || fail "continue $url: the console file differs from one uninterrupted run"
  "$vmrr" replay --console-out "$tmp/replayed" "$tmp/primary.vlog" > /dev/null 2>&1 ||
    fail "continue $url: the primary's log does not replay"
  cmp -s "$tmp/replayed" "$tmp/expected" || fail "continue $url: the log's replay prints other output"
done

"$vmrr" record -o "$tmp/x.vlog" --replicate shm:x --key-file "$tmp/key" --on-shadow-loss continue:x "$guest" \
  < /dev/null > /dev/null 2>&1
[ "$?" -eq 2 ] || fail "--on-shadow-loss continue:x was not refused as a usage error"

echo "shadow_loss: $failures failures"
exit $((failures > 0))
