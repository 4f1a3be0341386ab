#!/bin/bash
# Runs every test guest (tests/guests) through `vmrr run` and checks exit statuses, RESULT
# lines, determinism in icount mode and run-to-run variation in host mode.
# Usage: guests_test.sh VMRR GUEST_DIR
# Values checked come from outside vmrr: the guests' own self-checks (exit code 0), the disk
# checksum of the written pattern and the console byte count (both fixed by the guest
# program; de2a63c5 is also what the disk guest prints on QEMU), and comparisons between runs.
set -u
vmrr=$1
dir=$2
source "$(dirname "$0")/lib.sh"

# run NAME OUTFILE [vmrr run options...] : runs guest NAME, output to OUTFILE, sets $status.
run() {
  local name=$1 out=$2
  shift 2
  timeout 120 "$vmrr" run "$@" "$dir/$name.elf" < /dev/null > "$out" 2> "$out.err"
  status=$?
}

expect_status() {  # what, got, want
  if [ "$2" -ne "$3" ]; then
    fail "$1: exit status $2, want $3"
    sed 's/^/    /' "$4" "$4.err" | tail -20 >&2
  fi
}

expect_line() {  # what, file, extended regex
  grep -Eq "$3" "$2" || fail "$1: no line matching '$3' in output"
}

# hello, smc, clock: self-checking guests.
for g in hello smc clock; do
  run $g "$tmp/$g.out" --clock icount
  expect_status $g $status 1 "$tmp/$g.out"
  expect_line $g "$tmp/$g.out" "^RESULT $g "
done
expect_line smc "$tmp/smc.out" '^RESULT smc 137273651348$'
run clock "$tmp/clock2.out" --clock icount
diff <(grep '^tsc delta' "$tmp/clock.out") <(grep '^tsc delta' "$tmp/clock2.out") > /dev/null ||
  fail "clock: TSC deltas differ between two icount runs"

# timer and stress: identical in icount mode, different from run to run in host mode.
for g in timer stress; do
  for img in "$g.elf" "$g.mb.elf"; do
    name=${img%.elf}
    timeout 120 "$vmrr" run --clock icount "$dir/$img" < /dev/null > "$tmp/$name.a" 2> "$tmp/$name.a.err"
    expect_status "$name icount" $? 1 "$tmp/$name.a"
    timeout 120 "$vmrr" run --clock icount "$dir/$img" < /dev/null > "$tmp/$name.b" 2> "$tmp/$name.b.err"
    expect_status "$name icount" $? 1 "$tmp/$name.b"
    expect_line "$name" "$tmp/$name.a" "^RESULT $g "
    cmp -s "$tmp/$name.a" "$tmp/$name.b" || fail "$name: two icount runs printed different output"
  done
  differs=0
  for attempt in 1 2 3; do
    run $g "$tmp/$g.h1" --clock host
    expect_status "$g host" $status 1 "$tmp/$g.h1"
    run $g "$tmp/$g.h2" --clock host
    expect_status "$g host" $status 1 "$tmp/$g.h2"
    if ! cmp -s "$tmp/$g.h1" "$tmp/$g.h2"; then
      differs=1
      break
    fi
  done
  [ $differs -eq 1 ] || fail "$g: three pairs of host-clock runs printed identical output"
done

# crash: a triple fault (vmrr status 8) in both clock modes, after the corruption report.
for mode in icount host; do
  run crash "$tmp/crash.$mode" --clock $mode
  expect_status "crash $mode" $status 8 "$tmp/crash.$mode"
  expect_line "crash $mode" "$tmp/crash.$mode" '^RESULT crash node [0-9]+ step [0-9]+'
done

# disk: pattern written and read back through the overlay; the image file is unchanged.
head -c 1048576 /dev/urandom > "$tmp/disk.img"
cp "$tmp/disk.img" "$tmp/disk.orig"
run disk "$tmp/disk.out" --clock icount --disk "$tmp/disk.img"
expect_status disk $status 1 "$tmp/disk.out"
expect_line disk "$tmp/disk.out" '^DISK OK$'
expect_line disk "$tmp/disk.out" '^RESULT disk de2a63c5$'
cmp -s "$tmp/disk.img" "$tmp/disk.orig" || fail "disk: the base image was modified"
run disk "$tmp/nodisk.out" --clock icount
expect_status "disk without --disk" $status 7 "$tmp/nodisk.out"
expect_line "disk without --disk" "$tmp/nodisk.out" '^NO DISK$'

# console: interrupt-driven receive of piped input.
printf 'abc\rdef q' | timeout 60 "$vmrr" run --clock icount "$dir/console.elf" > "$tmp/console.out" 2> "$tmp/console.out.err"
expect_status console $? 1 "$tmp/console.out"
expect_line console "$tmp/console.out" '^RESULT console 8 '

# net: a UDP peer sends 5 Ethernet frames (the last a QUIT) and expects each back with the MACs
# swapped; the guest's checksum of what it received must equal the peer's checksum of what it
# sent.
if command -v python3 > /dev/null; then
  peer=$((20000 + ($$ % 20000) * 2))
  local_port=$((peer + 1))
  timeout 60 "$vmrr" run --clock host --net "udp:127.0.0.1:$peer:$local_port" "$dir/net.elf" \
    < /dev/null > "$tmp/net.out" 2> "$tmp/net.out.err" &
  vmrr_pid=$!
  for _ in $(seq 100); do
    grep -q '^net: echoing' "$tmp/net.out" && break
    sleep 0.1
  done
  python3 - "$peer" "$local_port" > "$tmp/peer.out" 2>&1 <<'PY'
import socket, sys
peer, local = int(sys.argv[1]), int(sys.argv[2])
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", peer))
s.settimeout(10)
guest = bytes.fromhex("525400123456")
me = bytes.fromhex("020000000001")
h, ok = 0x811c9dc5, 0
for i in range(5):
    payload = bytes([i]) * (50 + 100 * i)
    if i == 4:  # the last one: the guest stops after echoing it
        payload = b"QUIT" + payload[4:]
    frame = guest + me + b"\x88\xb5" + payload
    for b in frame:
        h = ((h ^ b) * 16777619) & 0xffffffff
    s.sendto(frame, ("127.0.0.1", local))
    echo, _ = s.recvfrom(4096)
    ok += echo == me + guest + frame[12:]
print("echoed %d fnv1a %08x" % (ok, h))
PY
  wait $vmrr_pid
  expect_status net $? 1 "$tmp/net.out"
  read -r _ echoed _ sum < "$tmp/peer.out"
  [ "${echoed:-0}" = 5 ] || fail "net: peer got $(cat "$tmp/peer.out")"
  expect_line net "$tmp/net.out" "^RESULT net 5 ${sum:-none}\$"
else
  echo "net: skipped (no python3)" >&2
fi

if [ $failures -ne 0 ]; then
  echo "$failures check(s) failed" >&2
  exit 1
fi
echo "all guest checks passed"
