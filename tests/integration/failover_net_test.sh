#!/bin/bash
# Fault tolerance over the network (issue 14): an external client talks to the `net` guest (an
# echo service) on a replicated primary (`vmrr record --replicate ... --net udp:...`); the
# primary is sent SIGKILL at a random moment of the exchange and the shadow (`vmrr shadow
# --net` with the same endpoint) takes over its UDP port. The client numbers its requests and
# retransmits an unanswered one every 40 ms, as TCP would. Network frames leave the primary only
# once the shadow holds the log that produced them, and the new primary sends again every frame
# the primary had not said it released, so: every request is answered, none is lost, and after
# dropping duplicates by sequence number the answers are in order, each the request it echoes.
# Alternately over shm and TCP; the console file is checked against the guest's own lines.
# Usage: failover_net_test.sh VMRR GUEST_DIR
# VMRR_FAILOVER_NET_RUNS (default 10): primaries killed.
set -u
vmrr=$(realpath "$1")
guests=$(realpath "$2")
runs=${VMRR_FAILOVER_NET_RUNS:-10}
source "$(dirname "$0")/lib.sh"
command -v python3 > /dev/null || { echo "failover_net: skipped (no python3)" >&2; exit 0; }
od -An -tx1 -N32 /dev/urandom | tr -d ' \n' > "$tmp/key"
base=$((21000 + ($$ * 7) % 20000))

# The client: N requests (the last a QUIT, after which the guest stops), one at a time, each
# sent again every 40 ms until its echo comes; pauses of 0-60 ms between requests so that the
# kill falls mid-exchange. Prints "answered A of N duplicates D" and fails on a wrong echo, an
# answer out of order or a request unanswered after 30 s.
cat > "$tmp/client.py" <<'PY'
import random, socket, sys, time
peer, guest_port, n, seed = (int(a) for a in sys.argv[1:5])
rng = random.Random(seed)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", peer))
guest, me = bytes.fromhex("525400123456"), bytes.fromhex("020000000001")
def request(i):
    body = (b"QUIT" if i == n - 1 else b"REQ ") + i.to_bytes(4, "big") + bytes([i]) * (20 + 37 * i)
    return guest + me + b"\x88\xb5" + body
def fnv1a(b):
    h = 0x811c9dc5
    for x in b:
        h = ((h ^ x) * 16777619) & 0xffffffff
    return h
with open(sys.argv[5], "w") as f:  # what the guest prints for each request it receives
    for i in range(n):
        f.write("%08x\n" % fnv1a(request(i)))
answered, dups, deadline = 0, 0, time.time() + 30
for i in range(n):
    time.sleep(rng.uniform(0, 0.06))
    want = me + guest + request(i)[12:]
    got = False
    while not got:
        if time.time() > deadline:
            sys.exit(f"request {i} unanswered after 30 s ({answered} answered, {dups} duplicates)")
        s.sendto(request(i), ("127.0.0.1", guest_port))
        end = time.time() + 0.04
        while time.time() < end:
            s.settimeout(max(end - time.time(), 0.001))
            try:
                echo, _ = s.recvfrom(4096)
            except socket.timeout:
                break
            seq = int.from_bytes(echo[18:22], "big") if len(echo) >= 22 else -1
            if seq < i:  # a duplicate of an answer already seen
                dups += 1
                continue
            if seq > i:
                sys.exit(f"answer {seq} came before the answer to request {i}")
            if echo != want:
                sys.exit(f"the answer to request {i} is not its echo")
            got = True
            answered += 1
            break
print(f"answered {answered} of {n} duplicates {dups}")
PY

# The TCP runs go through a link that delays the primary's bytes by 50 ms and dies with the
# primary (both killed at once), as a network does when the primary's host fails: what was in
# flight never reaches the shadow. An answer released before the shadow acknowledged its log
# would then be an answer the surviving guest never gave.
cat > "$tmp/slow_link.py" <<'PY'
import select, socket, sys, time
listen_port, shadow_port, delay = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])
ls = socket.socket()
ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
ls.bind(("127.0.0.1", listen_port))
ls.listen(1)
print("ready", flush=True)
a, _ = ls.accept()
b = socket.create_connection(("127.0.0.1", shadow_port))
queue = []  # (due time, bytes) from the primary
while True:
    now = time.time()
    while queue and queue[0][0] <= now:
        b.sendall(queue.pop(0)[1])
    timeout = max(queue[0][0] - now, 0) if queue else 0.1
    r, _, _ = select.select([a, b], [], [], timeout)
    if a in r:
        d = a.recv(65536)
        if not d:
            break
        queue.append((time.time() + delay, d))
    if b in r:
        d = b.recv(65536)
        if not d:
            break
        a.sendall(d)
PY

takeovers=0
for i in $(seq 1 "$runs"); do
  link=""
  if [ $((i % 2)) -eq 0 ]; then
    url="shm:vmrr_ftnet_$$_$i"
    purl=$url
  else
    url="tcp:127.0.0.1:$((base + 3 * i))"
    purl="tcp:127.0.0.1:$((base + 3 * i + 3))"  # the slow link; the next run (shm) uses no port there
  fi
  peer=$((base + 3 * i + 1))
  net="udp:127.0.0.1:$peer:$((peer + 1))"
  : > "$tmp/console"
  "$vmrr" shadow --listen "$url" --key-file "$tmp/key" --console-out "$tmp/console" --net "$net" \
    --takeover-timeout 400 < /dev/null > /dev/null 2> "$tmp/shadow.err" &
  shadow=$!
  pids+=("$shadow")
  wait_for "$tmp/shadow.err" "listening on" 10 || fail "run $i: the shadow did not start listening"
  if [ "$purl" != "$url" ]; then
    python3 "$tmp/slow_link.py" "${purl##*:}" "${url##*:}" 0.05 > "$tmp/link.out" 2>&1 &
    link=$!
    pids+=("$link")
    wait_for "$tmp/link.out" "ready" 10 || fail "run $i: the slow link did not start"
  fi
  "$vmrr" record -o "$tmp/primary.vlog" --replicate "$purl" --key-file "$tmp/key" --console-out "$tmp/console" \
    --net "$net" "$guests/net.elf" < /dev/null > /dev/null 2> "$tmp/primary.err" &
  primary=$!
  pids+=("$primary")
  wait_for "$tmp/shadow.err" "following" 10 || fail "run $i: the shadow never started following"
  wait_for "$tmp/console" "^net: echoing" 10 || fail "run $i: the guest never got to echoing"
  python3 "$tmp/client.py" "$peer" "$((peer + 1))" 12 "$i" "$tmp/sums" > "$tmp/client.out" 2>&1 &
  client=$!
  pids+=("$client")
  # Killed at a random moment of the exchange (12 requests over about 0.4 s, 1 s through the
  # slow link), the slow link with it.
  sleep "0.$(printf '%03d' $((RANDOM % 700)))"
  kill -KILL "$primary" $link 2> /dev/null
  wait "$primary" 2> /dev/null
  [ -z "$link" ] || wait "$link" 2> /dev/null
  wait "$client"
  cst=$?
  for _ in $(seq 1 3000); do kill -0 "$shadow" 2> /dev/null || break; sleep 0.01; done
  kill -0 "$shadow" 2> /dev/null && { fail "run $i: the shadow did not finish"; kill -KILL "$shadow"; }
  wait "$shadow"
  sst=$?
  grep -q "taking over" "$tmp/shadow.err" && takeovers=$((takeovers + 1))
  [ "$cst" -eq 0 ] || { fail "run $i ($url): the client: $(cat "$tmp/client.out")"; cat "$tmp/shadow.err" >&2; }
  grep -q "^answered 12 of 12 " "$tmp/client.out" || fail "run $i ($url): $(cat "$tmp/client.out")"
  [ "$sst" -eq 1 ] || [ "$sst" -eq 0 ] || { fail "run $i ($url): shadow status $sst"; cat "$tmp/shadow.err" >&2; }
  # The guest printed one line per frame it received; the file holds them once each, in order
  # (positional writes), ending with the guest's result line.
  grep -q "^RESULT net " "$tmp/console" || { fail "run $i ($url): the console file lacks the RESULT line"; cat "$tmp/console" >&2; }
  numbers=$(sed -n 's/^frame \([0-9]*\):.*/\1/p' "$tmp/console" | tr '\n' ' ')
  [ "$numbers" = "$(seq -s ' ' 1 "$(echo "$numbers" | wc -w)") " ] ||
    fail "run $i ($url): the frame lines are not 1..n once each: $numbers"
  # Output commit: an answer left only once the shadow held the log of the request's arrival,
  # so the surviving guest's history (the console file) has every request the client saw
  # answered. Frames sent before the shadow had that log could be answered by a primary that
  # then died, and the new primary would never see them again (no retransmission of answered
  # requests).
  while read -r sum; do
    grep -q " fnv1a $sum\$" "$tmp/console" || fail "run $i ($url): an answered request (fnv1a $sum) is not in the surviving guest's history"
  done < "$tmp/sums"
  echo "run $i ($url): $(cat "$tmp/client.out"), shadow $(grep -q "taking over" "$tmp/shadow.err" && echo took over || echo followed to the end)"
done
echo "failover_net: $takeovers takeovers in $runs runs"
[ "$takeovers" -ge $((runs / 2)) ] || fail "only $takeovers of $runs kills led to a takeover"

echo "failover_net: $failures failures"
exit $((failures > 0))
