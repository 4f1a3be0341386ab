#!/bin/bash
# vmrr record / vmrr replay over the test guests: every guest recorded and replayed in both
# clock modes with the same console output and the recording's exit status equal to `vmrr
# run`'s; nondeterministic guests recorded many times in host-clock mode (their outputs must
# differ among recordings, every replay must match); --until, --no-irq-records; and the
# logs a replay must refuse up front (newer format, damaged frame, other disk image, cut
# before the first snapshot) with one line and a distinct status.
# Usage: record_replay_test.sh VMRR GUEST_DIR LOG_TAMPER
# VMRR_FIDELITY_RUNS (default 20): recordings per nondeterministic guest.
set -u
vmrr=$1
guests=$2
runs=${VMRR_FIDELITY_RUNS:-20}
source "$(dirname "$0")/lib.sh"

# record NAME GUEST ARGS...: records into $tmp/NAME.log, console in $tmp/NAME.rec; $rec_status
record() {
  local name=$1 guest=$2
  shift 2
  timeout 120 "$vmrr" record -o "$tmp/$name.log" "$@" "$guests/$guest.elf" < /dev/null \
    > "$tmp/$name.rec" 2> "$tmp/$name.rec.err"
  rec_status=$?
}
# replay NAME ARGS...: console in $tmp/NAME.rep, summary in $tmp/NAME.sum; $rep_status
replay() {
  local name=$1
  shift
  timeout 120 "$vmrr" replay "$tmp/$name.log" --console-out "$tmp/$name.rep" "$@" \
    > "$tmp/$name.sum" 2> "$tmp/$name.rep.err"
  rep_status=$?
}
expect_match() {  # NAME [quiet]: replay exit 0, whole log matched, same console output
  local name=$1 quiet=${2:-}
  [ "$rep_status" -eq 0 ] || { fail "$name: replay status $rep_status"; cat "$tmp/$name.sum" "$tmp/$name.rep.err" >&2; }
  grep -q "^replay: matched the whole log" "$tmp/$name.sum" || fail "$name: summary does not say matched"
  cmp -s "$tmp/$name.rec" "$tmp/$name.rep" || fail "$name: replayed console output differs from the recording's"
  [ -n "$quiet" ] || [ -s "$tmp/$name.rec" ] || fail "$name: the recording printed nothing"
}

head -c 65536 /dev/urandom > "$tmp/disk.img"

# 1. Every guest, icount mode: replay matches; status as vmrr run's.
for g in hello timer clock stress smc crash disk; do  # clock: host entropy differs run to run
  extra=()
  [ "$g" = disk ] && extra=(--disk "$tmp/disk.img")
  timeout 120 "$vmrr" run "${extra[@]}" "$guests/$g.elf" < /dev/null > "$tmp/run.out" 2> /dev/null
  run_status=$?
  record "i-$g" "$g" "${extra[@]}"
  [ "$rec_status" -eq "$run_status" ] || fail "$g: record status $rec_status, run status $run_status"
  if [ "$g" != clock ]; then  # clock prints host entropy, different in every run
    cmp -s "$tmp/run.out" "$tmp/i-$g.rec" || fail "$g: record's console differs from run's (icount mode)"
  fi
  replay "i-$g"
  expect_match "i-$g"
done
# The crash guest ends in a triple fault: the replay reproduces the shutdown.
grep -q "end: shutdown" "$tmp/i-crash.sum" || fail "crash: replay summary lacks 'end: shutdown'"

# 2. Host clock: nondeterministic guests recorded $runs times each.
for g in timer stress clock; do
  for i in $(seq 1 "$runs"); do
    record "h-$g-$i" "$g" --clock host
    [ "$rec_status" -eq 1 ] || fail "$g host run $i: record status $rec_status"
    replay "h-$g-$i"
    expect_match "h-$g-$i"
  done
  distinct=$(for f in "$tmp"/h-"$g"-*.rec; do md5sum < "$f"; done | sort -u | wc -l)
  [ "$distinct" -ge 2 ] || fail "$g: all $runs host-clock recordings printed the same output"
  echo "$g: $distinct distinct outputs in $runs host-clock recordings, all replayed"
done

# 2b. Network and console inputs at random moments, $runs recordings each in host-clock mode:
# the net guest echoes frames that a UDP peer sends after random pauses; the console guest
# echoes bytes typed after random pauses. Both print the guest time at which their input
# ended, so their live outputs differ; every replay needs neither the peer nor the input and
# must match.
if command -v python3 > /dev/null; then
  for i in $(seq 1 "$runs"); do
    peer=$((20000 + (($$ + i * 7) % 20000) * 2 + 1))
    timeout 60 "$vmrr" record --clock host --net "udp:127.0.0.1:$peer" -o "$tmp/net-$i.log" \
      "$guests/net.elf" < /dev/null > "$tmp/net-$i.rec" 2> /dev/null &
    rec_pid=$!
    for _ in $(seq 100); do
      grep -q '^net: echoing' "$tmp/net-$i.rec" && break
      sleep 0.1
    done
    python3 - "$peer" "$((peer + 1))" "$i" > "$tmp/peer-$i.out" 2>&1 <<'PY'
import random, socket, sys, time
peer, local, seed = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(seed * 7919 + int(time.time() * 1000))
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", peer))
s.settimeout(10)
guest, me = bytes.fromhex("525400123456"), bytes.fromhex("020000000001")
ok = 0
for n in range(5):
    time.sleep(rng.uniform(0, 0.03))
    payload = bytes([n]) * (50 + 100 * n)
    if n == 4:  # the last one: the guest stops after echoing it
        payload = b"QUIT" + payload[4:]
    frame = guest + me + b"\x88\xb5" + payload
    s.sendto(frame, ("127.0.0.1", local))
    echo, _ = s.recvfrom(4096)
    ok += echo == me + guest + frame[12:]
print("echoed", ok)
PY
    wait "$rec_pid"
    rec_status=$?
    [ "$rec_status" -eq 1 ] || fail "net $i: record status $rec_status"
    grep -q "echoed 5" "$tmp/peer-$i.out" || fail "net $i: peer got $(cat "$tmp/peer-$i.out")"
    replay "net-$i"
    expect_match "net-$i"
    grep -Eq "inputs [5-9]|inputs [1-9][0-9]" "$tmp/net-$i.sum" || fail "net $i: replay consumed too few inputs"
  done
  distinct=$(for f in "$tmp"/net-*.rec; do md5sum < "$f"; done | sort -u | wc -l)
  [ "$distinct" -ge 2 ] || fail "net: all $runs host-clock recordings printed the same output"
  echo "net: $distinct distinct outputs in $runs host-clock recordings, all replayed"
else
  echo "net: skipped (no python3)" >&2
fi
# typed KEYS...: each key after a random pause of 0-29 ms, then 'q'.
typed() {
  for k in "$@"; do
    sleep "0.0$((RANDOM % 3))$((RANDOM % 10))"
    printf '%s' "$k"
  done
  printf 'q'
}
for i in $(seq 1 "$runs"); do
  typed a b c $'\r' d e f ' ' | timeout 60 "$vmrr" record --clock host -o "$tmp/con-$i.log" \
    "$guests/console.elf" > "$tmp/con-$i.rec" 2> /dev/null
  rec_status=$?
  [ "$rec_status" -eq 1 ] || fail "console $i: record status $rec_status"
  replay "con-$i"
  expect_match "con-$i"
  grep -q "^RESULT console 8 " "$tmp/con-$i.rep" || fail "console $i: replayed output lacks the RESULT line"
done
distinct=$(for f in "$tmp"/con-*.rec; do md5sum < "$f"; done | sort -u | wc -l)
[ "$distinct" -ge 2 ] || fail "console: all $runs host-clock recordings printed the same output"
echo "console: $distinct distinct outputs in $runs host-clock recordings, all replayed"
# Console input in icount mode too (all bytes at once).
printf 'abc\rdef q' | timeout 60 "$vmrr" record --clock icount -o "$tmp/con-icount.log" \
  "$guests/console.elf" > "$tmp/con-icount.rec" 2> /dev/null
[ $? -eq 1 ] || fail "console (icount): record status"
replay con-icount
expect_match con-icount

# 3. Options: --until stops early and matches; --no-irq-records logs replay too; dense digests.
replay "h-stress-1" --until 1000000
[ "$rep_status" -eq 0 ] || fail "--until: status $rep_status"
grep -q "matched up to --until" "$tmp/h-stress-1.sum" || fail "--until: summary"
grep -q "instructions: 1000000$" "$tmp/h-stress-1.sum" || fail "--until: did not stop at 1000000"
record noirq stress --clock host --no-irq-records
replay noirq
expect_match noirq
grep -q "interrupts 0," "$tmp/noirq.sum" || fail "--no-irq-records: interrupts were still checked"
grep -q "interrupts [1-9]" "$tmp/h-timer-1.sum" || fail "interrupt records were not checked"
record dense timer --clock host --memory 8M --digest-interval 10000 --machine-digest-interval 10000 \
  --checkpoint-interval 5000000
replay dense
expect_match dense

# Instruction limit (status 10) and a stop by SIGINT while running or idle (status 130):
# the log ends there and replays exactly.
record limit stress --clock host --max-instructions 5000000
[ "$rec_status" -eq 10 ] || fail "--max-instructions: record status $rec_status"
replay limit
expect_match limit quiet
grep -q "end: instruction-limit" "$tmp/limit.sum" || fail "--max-instructions: end reason"
for g in stress console; do
  "$vmrr" record --clock host -o "$tmp/int-$g.log" "$guests/$g.elf" < /dev/null > "$tmp/int-$g.rec" 2> /dev/null &
  pid=$!
  interrupt "$pid" "$tmp/int-$g.log"
  if [ "$st" -eq 130 ]; then
    replay "int-$g"
    expect_match "int-$g" quiet
    grep -q "end: stopped" "$tmp/int-$g.sum" || fail "SIGINT $g: end reason"
  elif [ "$g" = console ] || [ "$st" -ne 1 ]; then  # stress may finish first
    fail "SIGINT $g: record status $st, want 130"
  fi
done
# Ctrl-A x on a terminal (a pty) stops a recording as it stops `vmrr run`, with status 130;
# Ctrl-A Ctrl-A reaches the guest as one Ctrl-A. The escape is filtered below the recorder:
# the log ends with End reason stopped and replays to the same console output.
if ! python3 - "$vmrr" "$guests/console.elf" "$tmp" <<'PY'; then
import os, pty, select, subprocess, sys, time, tty
vmrr, guest, tmp = sys.argv[1:4]
master, slave = pty.openpty()
tty.setraw(slave)  # raw from the start: no line-discipline echo before vmrr sets it raw
with open(f"{tmp}/esc.rec.err", "wb") as err:
    p = subprocess.Popen([vmrr, "record", "--clock", "host", "-o", f"{tmp}/esc.log", guest],
                         stdin=slave, stdout=slave, stderr=err, start_new_session=True)
os.close(slave)
out = b""
def read_until(done, secs):
    global out
    end = time.time() + secs
    while not done() and time.time() < end:
        if select.select([master], [], [], 0.1)[0]:
            try:
                chunk = os.read(master, 4096)
            except OSError:  # EIO: the recorder exited and closed the pty
                return
            if not chunk:
                return
            out += chunk
os.write(master, b"ab\x01\x01")
read_until(lambda: b"ab\x01" in out, 60)
os.write(master, b"\x01x")
try:
    status = p.wait(timeout=60)
except subprocess.TimeoutExpired:
    p.kill()
    sys.exit("Ctrl-A x: vmrr record still running 60 s after Ctrl-A x")
read_until(lambda: False, 0.5)
open(f"{tmp}/esc.rec", "wb").write(out)
if status != 130:
    sys.exit(f"Ctrl-A x: record status {status}, want 130")
if not out.endswith(b"\nab\x01"):
    sys.exit(f"Ctrl-A x: console output {out!r}, want the banner line and the echo b'ab\\x01'")
PY
  fail "Ctrl-A x: recording through a pty (stderr: $(cat "$tmp/esc.rec.err"))"
fi
replay esc
expect_match esc
grep -q "end: stopped" "$tmp/esc.sum" || fail "Ctrl-A x: replay summary lacks 'end: stopped'"

# 4. Refusals: one line on stderr, distinct status.
# Flips every bit of the byte at offset $2 of file $1 (writing a fixed byte would leave the
# file unchanged whenever it already held that byte: 1 run in 256 on random data).
flip_byte() {
  local b
  b=$(od -An -tu1 -j "$2" -N1 "$1" | tr -d ' ')
  printf "\\$(printf '%03o' $((b ^ 255)))" | dd of="$1" bs=1 seek="$2" conv=notrunc status=none
}
refused() {  # what, log, want_status, regex, extra args...
  local what=$1 log=$2 want=$3 re=$4
  shift 4
  timeout 60 "$vmrr" replay "$log" "$@" > "$tmp/ref.out" 2> "$tmp/ref.err"
  local st=$?
  [ "$st" -eq "$want" ] || fail "$what: status $st, want $want"
  grep -Eq "$re" "$tmp/ref.err" || { fail "$what: stderr lacks '$re'"; cat "$tmp/ref.err" >&2; }
  [ "$(wc -l < "$tmp/ref.err")" -eq 1 ] || fail "$what: want one line on stderr"
  [ ! -s "$tmp/ref.out" ] || fail "$what: wrote to stdout"
}
cp "$tmp/i-timer.log" "$tmp/newer.log"
printf '\x02' | dd of="$tmp/newer.log" bs=1 seek=8 conv=notrunc status=none
refused "newer format" "$tmp/newer.log" 5 "newer"
cp "$tmp/i-timer.log" "$tmp/damaged.log"
size=$(stat -c %s "$tmp/damaged.log")
flip_byte "$tmp/damaged.log" $((size / 3))
refused "damaged frame" "$tmp/damaged.log" 7 "frame [0-9]+"
cp "$tmp/disk.img" "$tmp/other.img"
flip_byte "$tmp/other.img" 4096
cmp -s "$tmp/disk.img" "$tmp/other.img" && fail "other disk image: the copy was not changed"

refused "other disk image" "$tmp/i-disk.log" 12 "not the one recorded" --disk "$tmp/other.img"
refused "missing disk image" "$tmp/i-disk.log" 12 "cannot open" --disk "$tmp/nonexistent.img"
cp "$tmp/disk.img" "$tmp/copy.img"
replay i-disk --disk "$tmp/copy.img"
expect_match i-disk
head -c 300 "$tmp/i-timer.log" > "$tmp/early.log"
refused "cut before the first snapshot" "$tmp/early.log" 6 "no starting snapshot"
echo "not a log" > "$tmp/text.log"
refused "not a log" "$tmp/text.log" 4 "."

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "record/replay: all checks passed"
