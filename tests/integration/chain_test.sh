#!/bin/bash
# Fault tolerance (issue 14), onward replication: a shadow that goes live replicates onward, so
# a new shadow can join. A chain primary A -> shadow B (--replicate to C, --live-log) -> shadow C,
# all three sharing one console file, the links alternately over shm and TCP:
#   A is killed (SIGKILL) at a random moment of the timer guest's run; B takes over, records the
#   guest from there and streams that log to C, holding output until C acknowledges it; then B is
#   killed at a random moment and C takes over from B's log. After each run the console file
#   equals one uninterrupted `vmrr run` of the guest byte for byte, the last primary exits with
#   the guest's status, and the log of the last shadow to go live replays.
#   Without kills: A finishes, B follows it to the end and says goodbye to C, which had nothing
#   to follow: all three exit 0 (A with the guest's status) and the console is complete.
# Usage: chain_test.sh VMRR GUEST_DIR
# VMRR_CHAIN_RUNS (default 6): runs with two kills.
set -u
vmrr=$(realpath "$1")
guests=$(realpath "$2")
runs=${VMRR_CHAIN_RUNS:-6}
source "$(dirname "$0")/lib.sh"
guest="$guests/timer.elf"
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$tmp/key"
"$vmrr" run "$guest" < /dev/null > "$tmp/expected"
total=$(stat -c %s "$tmp/expected")

url_for() { if [ $(($1 % 2)) -eq 0 ]; then echo "shm:vmrr_chain_$$_$1"; else echo "tcp:127.0.0.1:0"; fi; }

# start_chain RUN: C, then B (replicating to C), then A (replicating to B); 64-byte output
# buffers, so that no node runs far ahead of what the next one acknowledged.
start_chain() {
  : > "$tmp/console"
  rm -f "$tmp/b.vlog" "$tmp/c.vlog"
  local url_b url_c
  url_c=$(url_for $((2 * $1)))
  url_b=$(url_for $((2 * $1 + 1)))
  "$vmrr" shadow --listen "$url_c" --key-file "$tmp/key" --console-out "$tmp/console" --live-log "$tmp/c.vlog" \
    < /dev/null > /dev/null 2> "$tmp/c.err" &
  c=$!
  pids+=("$c")
  wait_for "$tmp/c.err" "listening on" 30 || fail "run $1: C did not start"
  url_c=$(listening_url "$tmp/c.err")
  "$vmrr" shadow --listen "$url_b" --key-file "$tmp/key" --console-out "$tmp/console" --live-log "$tmp/b.vlog" \
    --replicate "$url_c" --output-buffer 64 < /dev/null > /dev/null 2> "$tmp/b.err" &
  b=$!
  pids+=("$b")
  wait_for "$tmp/b.err" "listening on" 30 || fail "run $1: B did not start"
  url_b=$(listening_url "$tmp/b.err")
  "$vmrr" record -o "$tmp/a.vlog" --replicate "$url_b" --key-file "$tmp/key" --console-out "$tmp/console" \
    --output-buffer 64 "$guest" < /dev/null > /dev/null 2> "$tmp/a.err" &
  a=$!
  pids+=("$a")
}

took_over_twice=0
for i in $(seq 1 "$runs"); do
  start_chain "$i"
  for _ in $(seq 1 1000); do [ -s "$tmp/console" ] && break; sleep 0.01; done
  sleep "$(printf '0.%03d' $((RANDOM % 100)))"
  kill -KILL "$a" 2> /dev/null
  wait "$a" 2> /dev/null
  if wait_for "$tmp/b.err" "recording the guest from icount" 10; then
    sleep "$(printf '0.%03d' $((RANDOM % 100)))"
    kill -KILL "$b" 2> /dev/null
  fi
  wait "$b" 2> /dev/null
  bst=$?
  for _ in $(seq 1 3000); do kill -0 "$c" 2> /dev/null || break; sleep 0.01; done
  kill -0 "$c" 2> /dev/null && { fail "run $i: C did not end"; kill -KILL "$c"; cat "$tmp/c.err" >&2; }
  wait "$c"
  cst=$?
  if grep -q "taking over" "$tmp/c.err"; then
    took_over_twice=$((took_over_twice + 1))
    [ "$cst" -eq 1 ] || { fail "run $i: C, the last primary, exited $cst, the guest's status is 1"; cat "$tmp/c.err" >&2; }
    grep -q "following .* from icount [1-9]" "$tmp/c.err" ||
      fail "run $i: C did not follow B's log from B's takeover icount"
    "$vmrr" replay "$tmp/c.vlog" > "$tmp/replay.out" 2>&1 ||
      { fail "run $i: C's live log does not replay"; cat "$tmp/replay.out" >&2; }
  else
    # B finished the guest before its kill came: C replayed B's log to its end.
    [ "$bst" -eq 1 ] || fail "run $i: B finished with status $bst, the guest's is 1"
    [ "$cst" -eq 0 ] || { fail "run $i: C followed B to its end but exited $cst"; cat "$tmp/c.err" >&2; }
    "$vmrr" replay "$tmp/b.vlog" > "$tmp/replay.out" 2>&1 ||
      { fail "run $i: B's live log does not replay"; cat "$tmp/replay.out" >&2; }
  fi
  cmp -s "$tmp/console" "$tmp/expected" ||
    { fail "run $i: the console file ($(stat -c %s "$tmp/console") of $total bytes) differs from one uninterrupted run"
      cat "$tmp/b.err" "$tmp/c.err" >&2; }
done
echo "chain: C took over in $took_over_twice of $runs runs"
[ "$took_over_twice" -ge $((runs / 3)) ] || fail "C took over in only $took_over_twice of $runs runs"

# No kill: the chain ends with the guest.
start_chain 50
wait "$a"
ast=$?
wait "$b"
bst=$?
wait "$c"
cst=$?
[ "$ast" -eq 1 ] || fail "no kill: A exited $ast, the guest's status is 1"
[ "$bst" -eq 0 ] || { fail "no kill: B exited $bst"; cat "$tmp/b.err" >&2; }
[ "$cst" -eq 0 ] || { fail "no kill: C exited $cst"; cat "$tmp/c.err" >&2; }
grep -q "nothing to follow" "$tmp/c.err" || fail "no kill: C did not say it had nothing to follow"
cmp -s "$tmp/console" "$tmp/expected" || fail "no kill: the console file differs from one uninterrupted run"

# Usage errors.
"$vmrr" shadow --listen shm:x --key-file "$tmp/key" --replicate shm:y < /dev/null > /dev/null 2>&1
[ "$?" -eq 2 ] || fail "--replicate without --live-log was not refused as a usage error"
"$vmrr" shadow --listen shm:x --key-file "$tmp/key" --replicate shm:x --live-log "$tmp/x.vlog" < /dev/null > /dev/null 2>&1
[ "$?" -eq 2 ] || fail "--replicate to the shadow's own --listen link was not refused"
"$vmrr" shadow --listen shm:x --key-file "$tmp/key" --replicate "shm:vmrr_chain_$$_none" --live-log "$tmp/x.vlog" \
  --accept-timeout 100 < /dev/null > /dev/null 2> "$tmp/x.err"
[ "$?" -eq 3 ] || fail "--replicate to a shadow that is not there: not status 3"

echo "chain: $failures failures"
exit $((failures > 0))
