# Shared by the Linux test scripts (sourced after tests/integration/lib.sh, with $vmrr and $src
# set): the workload's markers and their check, the UDP peer on the host (udp_peer.py) and the
# check of what the guest and the peer exchanged, and the replay of a recording with its checks.

# The markers of make_initramfs.py's WORKLOAD, in order. The arithmetic and dd values are known
# answers: sum((i*i) % 7919 for i < 3000) in Python, and the first 16 hex digits of sha256sum
# over 1 MiB of zeros on the host.
markers=("userspace up" "arithmetic 11545461" "dd 30e14955ebf13522" "urandom " "slept from" "done")

# console_value CONSOLE PREFIX: the rest of the first console line "VMRR-LINUX: PREFIX...".
console_value() {
  tr -d '\r' < "$1" | sed -n "s|^VMRR-LINUX: $2||p" | head -1
}

# check_markers CONSOLE WHAT: every marker, in order, then the power-off message.
check_markers() {
  local at=0 m line
  for m in "${markers[@]}"; do
    line=$(grep -n -F "VMRR-LINUX: $m" "$1" | head -1 | cut -d: -f1)
    if [ -z "$line" ] || [ "$line" -le "$at" ]; then
      fail "$2: marker '$m' missing or out of order"; tail -20 "$1" >&2; return
    fi
    at=$line
  done
  grep -q "reboot: Power down" "$1" || fail "$2: no power-off"
}

# start_peer REPORT: starts udp_peer.py in the background (killed on exit) and sets $peer_port
# to the port to give `--net udp:127.0.0.1:PORT`, once it listens.
start_peer() {
  rm -f "$1.port"
  python3 "$src/tests/linux/udp_peer.py" "$1" --port-file "$1.port" --timeout 900 \
    > "$1.log" 2>&1 &
  peer_pid=$!
  pids+=("$peer_pid")
  peer_port=
  for _ in $(seq 100); do
    [ -s "$1.port" ] && { peer_port=$(cat "$1.port"); return 0; }
    sleep 0.1
  done
  fail "udp_peer.py did not start: $(cat "$1.log")"
  return 1
}

# check_net CONSOLE REPORT WHAT: after the run, the peer got the bytes the guest says it sent
# (their hash) and the guest printed the reply the peer made of them and of its own token.
check_net() {
  local sent received up reply
  # The peer lingers a second after the guest's last ACK; it has reported by then anyway.
  for _ in $(seq 30); do kill -0 "$peer_pid" 2> /dev/null || break; sleep 0.1; done
  kill "$peer_pid" 2> /dev/null
  wait "$peer_pid" 2> /dev/null
  sent=$(console_value "$1" "net [a-z0-9]* sends ")
  received=$(console_value "$1" "net received ")
  up=$(sed -n 's/^upload upload //p' "$2" 2> /dev/null)
  reply=$(sed -n 's/^reply //p' "$2" 2> /dev/null)
  if [ -z "$sent" ]; then
    fail "$3: the guest sent nothing on the network"; grep -a "VMRR-LINUX: net" "$1" >&2; return
  fi
  [ "$up" = "$sent" ] || fail "$3: the peer received bytes hashing to '$up', the guest sent '$sent'"
  [ -n "$reply" ] && [ "$received" = "$reply" ] ||
    fail "$3: the guest received '$received', the peer replied '$reply'"
  case "$reply" in *" $sent "*) ;; *) fail "$3: the peer's reply '$reply' does not name '$sent'" ;; esac
}

# replay_and_check LOG RECORDED_CONSOLE WHAT [REPLAY OPTIONS...]: the replay matches the whole
# log, checks at least 100 digests, ends in power-off and prints the recorded console byte for
# byte. Sets $replay_s (wall seconds) and $replay_digests.
replay_and_check() {
  local log=$1 recorded=$2 what=$3 start st
  shift 3
  start=$(date +%s)
  timeout 900 "$vmrr" replay "$@" --console-out "$log.console" "$log" > "$log.sum" 2> "$log.err"
  st=$?
  replay_s=$(( $(date +%s) - start ))
  if [ "$st" -ne 0 ]; then
    fail "$what: replay status $st"; cat "$log.sum" "$log.err" >&2; return
  fi
  grep -q "^replay: matched the whole log" "$log.sum" || fail "$what: replay not matched"
  grep -q "^  end: power-off, exit code 0$" "$log.sum" || fail "$what: replay's end is not power-off"
  replay_digests=$(sed -n 's/^  digests checked: //p' "$log.sum")
  [ "${replay_digests:-0}" -ge 100 ] || fail "$what: only ${replay_digests:-0} digests checked"
  cmp -s "$recorded" "$log.console" || fail "$what: replayed console differs from the recording's"
}
