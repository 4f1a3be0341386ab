#!/bin/bash
# Fault tolerance (issue 14): a primary (`vmrr record --replicate`) and its shadow (`vmrr
# shadow`) share one console file. The primary is sent SIGKILL at random moments while it runs
# the timer guest in icount mode; after each kill the shadow takes over, and the console file
# must equal, byte for byte, the console output of one uninterrupted `vmrr run` of the guest:
# nothing lost (the shadow writes what the primary had not released), nothing repeated or
# garbled (the file is written at absolute offsets). Alternates the shared-memory ring and
# TCP on loopback. Also: an uninterrupted replicated run (the shadow's copy of the log is the
# primary's, byte for byte, and replays), a wrong key refused at the handshake, and a forged
# stream refused by the shadow.
# Usage: failover_test.sh VMRR GUEST_DIR
# VMRR_FAILOVER_RUNS (default 24): primaries killed; the soak is VMRR_FAILOVER_RUNS=100.
set -u
vmrr=$(realpath "$1")
guests=$(realpath "$2")
runs=${VMRR_FAILOVER_RUNS:-24}
source "$(dirname "$0")/lib.sh"
guest="$guests/timer.elf"
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$tmp/key"
"$vmrr" run "$guest" < /dev/null > "$tmp/expected"
[ "$?" -eq 1 ] || fail "vmrr run of the guest did not exit with status 1"
total=$(stat -c %s "$tmp/expected")
[ "$total" -gt 500 ] || fail "the guest printed only $total bytes"

# start_shadow URL [OPTION...]: a shadow in the background ($shadow_pid), stderr in
# $tmp/shadow.err; $url is then where it listens (tcp:HOST:0 asks for a free port, named in
# the shadow's "listening on" line).
start_shadow() {
  : > "$tmp/console"
  : > "$tmp/shadow.err"
  url=$1
  shift
  "$vmrr" shadow --listen "$url" --key-file "$tmp/key" --console-out "$tmp/console" --log "$tmp/shadow.vlog" \
    --takeover-timeout 400 "$@" < /dev/null > /dev/null 2> "$tmp/shadow.err" &
  shadow_pid=$!
  pids+=("$shadow_pid")
  wait_for "$tmp/shadow.err" "listening on" 30 || fail "$url: the shadow did not start listening"
  url=$(listening_url "$tmp/shadow.err")
}

# 1. Uninterrupted: the shadow follows to the end; the logs are equal; the shadow's replays.
start_shadow "shm:vmrr_ft_$$_0"
"$vmrr" record -o "$tmp/primary.vlog" --replicate "shm:vmrr_ft_$$_0" --key-file "$tmp/key" \
  --console-out "$tmp/console" "$guest" < /dev/null > /dev/null 2> "$tmp/primary.err"
st=$?
[ "$st" -eq 1 ] || { fail "replicated record: status $st"; cat "$tmp/primary.err" >&2; }
wait "$shadow_pid"
st=$?
[ "$st" -eq 0 ] || { fail "shadow of a finished primary: status $st"; cat "$tmp/shadow.err" >&2; }
grep -q "the primary finished; replayed" "$tmp/shadow.err" || fail "the shadow did not follow to the end"
cmp -s "$tmp/console" "$tmp/expected" || fail "uninterrupted: console file differs from vmrr run's output"
cmp -s "$tmp/primary.vlog" "$tmp/shadow.vlog" || fail "the shadow's copy of the log differs from the primary's"
"$vmrr" replay "$tmp/shadow.vlog" > /dev/null 2>&1 || fail "the shadow's log does not replay"
start_shadow "tcp:127.0.0.1:0"
"$vmrr" record -o "$tmp/primary.vlog" --replicate "$url" --key-file "$tmp/key" \
  --console-out "$tmp/console" "$guest" < /dev/null > /dev/null 2> "$tmp/primary.err" &
first=$!
# How long a replicated run lasts here from the moment the shadow follows (where the kills
# below start counting), measured the same way: the kills are spread over it.
wait_for "$tmp/shadow.err" "following" 10 || fail "uninterrupted: the shadow never started following"
start_ns=$(date +%s%N)
wait "$first"
wait "$shadow_pid"
span_ms=$((($(date +%s%N) - start_ns) / 1000000))
cmp -s "$tmp/console" "$tmp/expected" || fail "uninterrupted over TCP: console file differs"
echo "failover: a replicated run takes ${span_ms} ms once the shadow follows"

# 2. SIGKILL at random moments.
takeovers=0
mid_output=0
for i in $(seq 1 "$runs"); do
  if [ $((i % 2)) -eq 0 ]; then url="shm:vmrr_ft_$$_$i"; else url="tcp:127.0.0.1:0"; fi
  start_shadow "$url"
  "$vmrr" record -o "$tmp/primary.vlog" --replicate "$url" --key-file "$tmp/key" --console-out "$tmp/console" \
    "$guest" < /dev/null > /dev/null 2> "$tmp/primary.err" &
  primary=$!
  pids+=("$primary")
  # Killed once the shadow holds the starting snapshot (before, there is nothing to take over
  # and nothing was released), at a random moment of the run or after its end.
  wait_for "$tmp/shadow.err" "following" 10 || fail "run $i ($url): the shadow never started following"
  # Over the first half of the measured span: mostly during the run, now and then after its
  # end (one measured run on a loaded machine can take twice as long as the next).
  delay=$((RANDOM % (span_ms / 2 + 1)))
  sleep "$((delay / 1000)).$(printf '%03d' $((delay % 1000)))"
  kill -KILL "$primary" 2> /dev/null
  wait "$primary" 2> /dev/null
  for _ in $(seq 1 3000); do kill -0 "$shadow_pid" 2> /dev/null || break; sleep 0.01; done
  kill -0 "$shadow_pid" 2> /dev/null && { fail "run $i: the shadow did not finish"; kill -KILL "$shadow_pid"; }
  wait "$shadow_pid"
  st=$?
  if grep -q "taking over" "$tmp/shadow.err"; then
    takeovers=$((takeovers + 1))
    released=$(sed -n 's/.*the primary had released \([0-9]*\) console bytes.*/\1/p' "$tmp/shadow.err")
    if [ -n "$released" ] && [ "$released" -gt 0 ] && [ "$released" -lt "$total" ]; then mid_output=$((mid_output + 1)); fi
    [ "$st" -eq 1 ] || fail "run $i ($url): the new primary's status is $st, the guest's is 1"
  elif ! grep -q "primary finished\|went silent after finishing" "$tmp/shadow.err"; then
    fail "run $i ($url): the shadow neither took over nor saw the end (status $st)"
  fi
  if ! cmp -s "$tmp/console" "$tmp/expected"; then
    fail "run $i ($url, killed after ${delay} ms): the console file differs from one uninterrupted run"
    cat "$tmp/shadow.err" >&2
    cmp "$tmp/console" "$tmp/expected" >&2
  fi
done
echo "failover: $runs primaries killed: $takeovers takeovers, $mid_output of them with the primary's output partly released"
[ "$takeovers" -ge $((runs / 3)) ] || fail "only $takeovers of $runs kills led to a takeover: the kills come too late"
[ "$mid_output" -ge 1 ] || fail "no kill landed while the primary's output was partly released"

# 3. A wrong key: refused at the handshake, on both sides.
start_shadow "shm:vmrr_ft_$$_key"
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$tmp/otherkey"
"$vmrr" record -o "$tmp/primary.vlog" --replicate "shm:vmrr_ft_$$_key" --key-file "$tmp/otherkey" "$guest" \
  < /dev/null > /dev/null 2> "$tmp/primary.err"
st=$?
[ "$st" -eq 3 ] || fail "wrong key: record status $st, expected 3"
grep -q "MAC does not verify" "$tmp/primary.err" || { fail "wrong key: no refusal on the primary"; cat "$tmp/primary.err" >&2; }
kill -TERM "$shadow_pid"; wait "$shadow_pid"
grep -q "refused primary message.*MAC does not verify" "$tmp/shadow.err" || fail "wrong key: no refusal on the shadow"

# 4. A forged stream (no key) to a TCP shadow: refused and reported, and it takes nothing over.
start_shadow "tcp:127.0.0.1:0"
port=${url##*:}
{ printf 'VLNK\001\004\000\000'; head -c 100 /dev/urandom; } > "$tmp/forged"
exec 3<> "/dev/tcp/127.0.0.1/$port" && cat "$tmp/forged" >&3
sleep 0.5
exec 3>&-
wait "$shadow_pid"
st=$?
grep -q "refused primary message" "$tmp/shadow.err" || fail "forged stream: no refusal reported"
grep -q "taking over" "$tmp/shadow.err" && fail "forged stream: the shadow took over"
[ "$st" -ne 0 ] || fail "forged stream: the shadow exited 0"
[ -s "$tmp/console" ] && fail "forged stream: console output appeared"

# 5. Disks: the shadow opens the primary's base image, checked by hash; another image at the
# recorded (relative) path is refused, and the primary then releases nothing.
head -c 1048576 /dev/urandom > "$tmp/disk.img"
mkdir -p "$tmp/elsewhere" && head -c 1048576 /dev/urandom > "$tmp/elsewhere/disk.img"
start_shadow "shm:vmrr_ft_$$_disk"
(cd "$tmp" && "$vmrr" record -o primary.vlog --replicate "shm:vmrr_ft_$$_disk" --key-file key --console-out console \
  --disk "$tmp/disk.img" "$guests/disk.elf" < /dev/null > /dev/null 2> primary.err)
st=$?
[ "$st" -eq 1 ] || fail "disk guest replicated: status $st"
wait "$shadow_pid" || fail "disk guest: the shadow did not follow to the end"
grep -q "RESULT disk" "$tmp/console" || fail "disk guest: no result in the console file"
: > "$tmp/console"
(cd "$tmp/elsewhere" && exec "$vmrr" shadow --listen "shm:vmrr_ft_$$_disk2" --key-file ../key --console-out ../console \
  < /dev/null > /dev/null 2> ../shadow.err) &
shadow_pid=$!
pids+=("$shadow_pid")
wait_for "$tmp/shadow.err" "listening on" 10 || fail "disk: the second shadow did not start"
(cd "$tmp" && "$vmrr" record -o primary.vlog --replicate "shm:vmrr_ft_$$_disk2" --key-file key --console-out console \
  --shadow-timeout 200 --disk disk.img "$guests/disk.elf" < /dev/null > /dev/null 2> primary.err)
st=$?
[ "$st" -eq 3 ] || fail "disk image mismatch: the primary's status is $st, expected 3 (output not released)"
wait "$shadow_pid"
st=$?
[ "$st" -eq 12 ] || fail "disk image mismatch: the shadow's status is $st, expected 12"
grep -q "not the primary's base image" "$tmp/shadow.err" || fail "disk image mismatch: not reported"
[ -s "$tmp/console" ] && fail "disk image mismatch: console output was released"

# 6. The disk the guest leaves (--disk-out: the base image with the guest's writes, which vmrr
# keeps in an overlay): after a takeover the new primary's equals one uninterrupted run's, and
# so does a replay's of the primary's log.
"$vmrr" run --disk "$tmp/disk.img" --disk-out "$tmp/run_disk.img" "$guests/disk.elf" < /dev/null \
  > "$tmp/disk_expected" 2> /dev/null
[ "$?" -eq 1 ] || fail "disk guest: vmrr run did not exit with status 1"
cmp -s "$tmp/run_disk.img" "$tmp/disk.img" && fail "disk guest: --disk-out equals the base image (no write seen)"
"$vmrr" run --disk-out "$tmp/x.img" "$guests/disk.elf" < /dev/null > /dev/null 2>&1
[ "$?" -eq 2 ] || fail "--disk-out without --disk: not a usage error"
disk_takeovers=0
mkfifo "$tmp/never" && exec 5<> "$tmp/never"
for i in 1 2 3 4 5 6; do
  if [ $((i % 2)) -eq 0 ]; then url="shm:vmrr_ft_$$_d$i"; else url="tcp:127.0.0.1:0"; fi
  rm -f "$tmp/shadow_disk.img" "$tmp/primary.vlog" "$tmp/shadow.vlog"
  start_shadow "$url" --disk-out "$tmp/shadow_disk.img"
  "$vmrr" record -o "$tmp/primary.vlog" --replicate "$url" --key-file "$tmp/key" --console-out "$tmp/console" \
    --output-buffer 1 --disk "$tmp/disk.img" "$guests/disk.elf" < /dev/null > /dev/null 2> "$tmp/primary.err" &
  primary=$!
  pids+=("$primary")
  # The guest is a 0.2 M-instruction run of 4 console writes: once the shadow follows, it ends
  # within a few milliseconds, before a kill timed from outside (stop 19's CI: 6 kills, 0
  # takeovers). So the shadow is stopped (SIGSTOP) as soon as the link is up (its copy of the
  # log has the header): it acknowledges nothing more, and with --output-buffer 1 the guest
  # waits at a console write. Once the primary has written its first frame (the snapshot,
  # most of its log) it is killed and the shadow continued: it takes over from what it holds.
  # The wait polls without starting a process (bash's read on a FIFO nobody writes to sleeps):
  # under load, a `sleep` per poll let the whole run slip by.
  for _ in $(seq 1 10000); do
    [ -s "$tmp/shadow.vlog" ] && break
    read -r -t 0.001 -u 5
  done
  kill -STOP "$shadow_pid"
  for _ in $(seq 1 2000); do
    [ "$(stat -c %s "$tmp/primary.vlog" 2> /dev/null || echo 0)" -gt 4096 ] && break
    kill -0 "$primary" 2> /dev/null || break
    sleep 0.005
  done
  sleep "0.00$((RANDOM % 10))"
  kill -KILL "$primary" 2> /dev/null
  wait "$primary" 2> /dev/null
  kill -CONT "$shadow_pid"
  for _ in $(seq 1 3000); do kill -0 "$shadow_pid" 2> /dev/null || break; sleep 0.01; done
  wait "$shadow_pid"
  st=$?
  # A takeover ends with the guest's status (1), as does a shadow whose primary finished and
  # died before its goodbye; a shadow that saw the goodbye, with 0.
  want=1
  if grep -q "taking over" "$tmp/shadow.err"; then
    disk_takeovers=$((disk_takeovers + 1))
  else
    echo "failover: disk run $i ($url) ended without a takeover:" >&2
    tail -n +2 "$tmp/shadow.err" >&2
  fi
  grep -q "the primary finished; replayed" "$tmp/shadow.err" && want=0
  [ "$st" -eq "$want" ] || fail "disk run $i ($url): the shadow's status is $st, expected $want"
  cmp -s "$tmp/shadow_disk.img" "$tmp/run_disk.img" ||
    { fail "disk run $i ($url): the disk the shadow left differs from one uninterrupted run's"; cat "$tmp/shadow.err" >&2; }
  cmp -s "$tmp/console" "$tmp/disk_expected" || fail "disk run $i ($url): the console file differs"
done
[ "$disk_takeovers" -ge 4 ] || fail "only $disk_takeovers of 6 kills of the disk guest's primary led to a takeover"
"$vmrr" record -o "$tmp/plain.vlog" --disk "$tmp/disk.img" --disk-out "$tmp/rec_disk.img" "$guests/disk.elf" \
  < /dev/null > /dev/null 2>&1
"$vmrr" replay "$tmp/plain.vlog" --disk-out "$tmp/replay_disk.img" > /dev/null 2>&1 || fail "disk guest: replay failed"
cmp -s "$tmp/rec_disk.img" "$tmp/run_disk.img" || fail "disk guest: record's --disk-out differs from run's"
cmp -s "$tmp/replay_disk.img" "$tmp/run_disk.img" || fail "disk guest: replay's --disk-out differs from run's"
echo "failover: the disk guest's primary killed 6 times ($disk_takeovers takeovers): the disk left equals one run's"

echo "failover: $failures failures"
exit $((failures > 0))
