#!/usr/bin/env bash
# What a Linux log must stand up to, on one host-clock recording of the stock Debian kernel
# with the test initramfs (make_initramfs.py's workload, no modules):
#   1. replayed "on another host": the log copied elsewhere and replayed from another
#      directory with an emptied environment, another time zone and locale, address-space
#      randomisation off, while both CPUs are loaded: matched, console byte for byte;
#   2. a tampered input (one logged time sample changed by log_tamper) is found at that
#      sample's icount (status 11, "first divergent icount: N");
#   3. a recorder killed with SIGKILL mid-boot leaves a log that replays to its last frame
#      (status 0, "matched up to the end of a cut log", console a prefix of the recording's).
#   4. `vmrr run` gives an interactive shell on a terminal: under tmux, a command typed at the
#      guest's shell prints its result, and Ctrl-A x ends the run with status 130. This boot
#      loads the uncompressed vmlinux (extract_vmlinux.py) through its PVH entry note.
# Usage: linux_forensics_test.sh VMRR KERNEL_DIR SOURCE_DIR LOG_TAMPER
# Exit 77 (skipped) when the kernel or busybox is not on this machine; part 4 is skipped
# (with a message) when tmux is not installed.
set -u
vmrr=$(readlink -f "$1"); kdir=$2; src=$3; tamper=$(readlink -f "$4")
source "$src/tests/integration/lib.sh"
kernel=$(ls "$kdir"/vmlinuz-* 2> /dev/null | head -1)
busybox=$(command -v busybox || true)
if [ -z "$kernel" ] || [ -z "$busybox" ]; then
  echo "SKIP: needs the Debian kernel in $kdir and busybox-static (.ci/setup installs both)"
  exit 77
fi
kernel=$(readlink -f "$kernel")
cmdline="console=ttyS0 loglevel=3 cryptomgr.notests"  # the self-tests: integration.linux
python3 "$src/tests/linux/make_initramfs.py" "$busybox" "$tmp/initramfs.gz" || { echo "FAIL: initramfs"; exit 1; }

# The recording everything else starts from, with a whole-machine digest (CPU, devices, clock,
# RAM) every million instructions: a logged input changes the machine at once, if not the CPU,
# so they pin a tampered one to its icount.
mkdir -p "$tmp/here" "$tmp/there/sub"
start=$(date +%s)
timeout 900 "$vmrr" record --clock host --memory 256M --checkpoint-interval 1000000000 \
  --machine-digest-interval 1000000 \
  --initrd "$tmp/initramfs.gz" --append "$cmdline" -o "$tmp/here/linux.vlog" "$kernel" \
  < /dev/null > "$tmp/here/rec.out" 2> "$tmp/here/rec.err"
st=$?
if [ "$st" -ne 0 ]; then
  fail "record: status $st, want 0 (power-off)"; tail -20 "$tmp/here/rec.out" "$tmp/here/rec.err" >&2
  exit 1
fi
grep -q "VMRR-LINUX: done" "$tmp/here/rec.out" || { fail "record: the workload did not finish"; exit 1; }
echo "ok   record: $(( $(date +%s) - start )) s, $(stat -c %s "$tmp/here/linux.vlog") log bytes"

# 1. Replay elsewhere. The kernel and initrd are in the log's starting snapshot: the replay
#    does not need the files (the initrd is moved away from its recorded path).
cp "$tmp/here/linux.vlog" "$tmp/here/rec.out" "$tmp/there/"
initrd=$tmp/moved-initrd.gz
mv "$tmp/initramfs.gz" "$initrd"
for _ in 1 2; do
  (while :; do :; done) &
  pids+=($!)
done
start=$(date +%s)
(cd "$tmp/there/sub" && env -i PATH=/usr/bin:/bin TZ=Pacific/Chatham LC_ALL=C.UTF-8 \
   setarch "$(uname -m)" -R timeout 900 "$vmrr" replay \
   --console-out ../elsewhere.console ../linux.vlog > ../elsewhere.sum 2> ../elsewhere.err)
st=$?
for p in "${pids[@]}"; do kill -KILL "$p" 2> /dev/null; done
pids=()
if [ "$st" -ne 0 ]; then
  fail "replay elsewhere: status $st"; cat "$tmp/there/elsewhere.sum" "$tmp/there/elsewhere.err" >&2
else
  grep -q "^replay: matched the whole log" "$tmp/there/elsewhere.sum" || fail "replay elsewhere: not matched"
  cmp -s "$tmp/there/rec.out" "$tmp/there/elsewhere.console" || fail "replay elsewhere: console differs"
  echo "ok   replay elsewhere (loaded CPUs, env -i, TZ, setarch -R): matched in $(( $(date +%s) - start )) s"
fi

# 2. A tampered time sample, found at its icount. Sample 400 lies early in the boot, so the
#    search replays little.
at=$("$tamper" "$tmp/here/linux.vlog" "$tmp/tampered.vlog" TimeSample 400)
if [ -z "$at" ]; then
  fail "log_tamper found no time sample 400 in the Linux log"
else
  start=$(date +%s)
  timeout 900 "$vmrr" replay "$tmp/tampered.vlog" > "$tmp/t.sum" 2> "$tmp/t.err"
  st=$?
  [ "$st" -eq 11 ] || { fail "tampered: status $st, want 11 (diverged)"; cat "$tmp/t.sum" "$tmp/t.err" >&2; }
  grep -q "first divergent icount: $at$" "$tmp/t.sum" ||
    { fail "tampered: first divergent icount is not the sample's ($at)"; cat "$tmp/t.sum" >&2; }
  echo "ok   tampered time sample at icount $at: found in $(( $(date +%s) - start )) s"
fi
rm -f "$tmp/tampered.vlog"

# 3. Killed mid-boot, 1 to 5 s after its log holds the starting snapshot and a first frame
#    (on a loaded machine writing the snapshot alone can take seconds), then replayed to its
#    last frame.
delay=$((1 + RANDOM % 5))
"$vmrr" record --clock host --memory 256M --initrd "$initrd" --append "$cmdline" \
  -o "$tmp/killed.vlog" "$kernel" < /dev/null > "$tmp/killed.out" 2> /dev/null &
pid=$!
for ((i = 0; i < 240; i++)); do
  "$vmrr" inspect "$tmp/killed.vlog" 2> /dev/null | grep -q "^icount *0 \.\. [1-9]" && break
  sleep 0.5
done
sleep "$delay"
kill -KILL "$pid" 2> /dev/null
wait "$pid" 2> /dev/null
timeout 600 "$vmrr" replay --console-out "$tmp/killed.console" "$tmp/killed.vlog" \
  > "$tmp/k.sum" 2> "$tmp/k.err"
st=$?
if [ "$st" -ne 0 ]; then
  fail "killed ${delay} s into the boot: replay status $st"; cat "$tmp/k.sum" "$tmp/k.err" >&2
else
  grep -q "matched up to the end of a cut log" "$tmp/k.sum" || { fail "killed: not replayed as a cut log"; cat "$tmp/k.sum" >&2; }
  grep -q "note: the log is cut" "$tmp/k.err" || fail "killed: the cut was not reported"
  n=$(stat -c %s "$tmp/killed.console")
  cmp -s -n "$n" "$tmp/killed.console" "$tmp/killed.out" || fail "killed: replayed console is not a prefix of the recording's"
  icount=$(sed -n 's/^  instructions: \([0-9]*\).*/\1/p' "$tmp/k.sum" | head -1)
  echo "ok   killed ${delay} s into the boot: replayed to its last frame (${icount:-?} instructions, $n console bytes)"
fi

# 4. An interactive shell on a terminal, under tmux.
if ! command -v tmux > /dev/null; then
  echo "SKIP part 4: tmux is not installed"
else
  cat > "$tmp/shell-init" <<'EOF'
#!/bin/sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t devtmpfs dev /dev 2>/dev/null
echo "VMRR-LINUX: shell ready"
exec /bin/sh
EOF
  python3 "$src/tests/linux/make_initramfs.py" "$busybox" "$tmp/shell.gz" --init "$tmp/shell-init" || fail "shell initramfs"
  python3 "$src/tests/linux/extract_vmlinux.py" "$kernel" "$tmp/vmlinux" || fail "extract vmlinux"
  sock="vmrr-test-$$"
  tmux -L "$sock" new-session -d -s vm -x 160 -y 50 \
    "'$vmrr' run --memory 256M --initrd '$tmp/shell.gz' --append '$cmdline' '$tmp/vmlinux'; echo \$? > '$tmp/run.status'; sleep 30"
  # wait_for TEXT SECONDS: until the pane shows TEXT.
  wait_for() {
    local i
    for ((i = 0; i < $2 * 2; i++)); do
      tmux -L "$sock" capture-pane -p -t vm -S -200 2> /dev/null | grep -q -F "$1" && return 0
      sleep 0.5
    done
    return 1
  }
  if ! wait_for "VMRR-LINUX: shell ready" 600; then
    fail "tty: the shell did not come up"; tmux -L "$sock" capture-pane -p -t vm >&2
  else
    sleep 1
    tmux -L "$sock" send-keys -t vm 'echo $((6 * 7))-from-the-guest' Enter
    wait_for "42-from-the-guest" 120 || { fail "tty: typed command's output not seen"; tmux -L "$sock" capture-pane -p -t vm >&2; }
    tmux -L "$sock" send-keys -t vm C-a x
    i=0
    while [ "$i" -lt 120 ] && [ ! -s "$tmp/run.status" ]; do sleep 0.5; i=$((i + 1)); done
    st=$(cat "$tmp/run.status" 2> /dev/null)
    [ "$st" = 130 ] || fail "tty: Ctrl-A x ended the run with status '${st:-none}', want 130"
    [ "$failures" -eq 0 ] && echo "ok   tty (vmlinux through its PVH entry): typed a command at the guest's shell under tmux, read its output; Ctrl-A x quit (130)"
  fi
  tmux -L "$sock" kill-server 2> /dev/null
fi

[ "$failures" -eq 0 ] || exit 1
echo "linux forensics: all checks passed"
