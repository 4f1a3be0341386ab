#!/bin/bash
# Replay "on another host": logs recorded here are copied to another directory and replayed
# from there with an emptied environment, another working directory, another time zone and
# locale, address-space randomisation off (setarch -R) and on, while other processes load
# the CPUs. Every replay must match its recording exactly (status 0, same console output).
# Usage: replay_elsewhere_test.sh VMRR GUEST_DIR [LOG_TAMPER]
set -u
vmrr=$(readlink -f "$1")
guests=$(readlink -f "$2")
source "$(dirname "$0")/lib.sh"

mkdir -p "$tmp/here" "$tmp/there/sub"
head -c 65536 /dev/urandom > "$tmp/here/disk.img"
cd "$tmp/here" || exit 1
for g in timer stress clock; do
  "$vmrr" record --clock host -o "$g.log" "$guests/$g.elf" < /dev/null > "$g.rec" 2> /dev/null
done
"$vmrr" record --clock host -o disk.log --disk disk.img "$guests/disk.elf" < /dev/null > disk.rec 2> /dev/null
cp ./*.log ./*.rec "$tmp/there/"
cp disk.img "$tmp/there/sub/moved.img"
rm disk.img  # the recorded path no longer exists

# CPU load on both cores for the duration of the replays.
for _ in 1 2; do
  (while :; do :; done) &
  pids+=($!)
done

cd "$tmp/there/sub" || exit 1
setarch_r=()
if command -v setarch > /dev/null && setarch "$(uname -m)" -R true 2> /dev/null; then
  setarch_r=(setarch "$(uname -m)" -R)
fi
for mode in plain norandom; do
  prefix=()
  [ "$mode" = norandom ] && prefix=("${setarch_r[@]}")
  for g in timer stress clock disk; do
    extra=()
    [ "$g" = disk ] && extra=(--disk moved.img)
    env -i PATH=/usr/bin:/bin TZ=Pacific/Kiritimati LANG=C LC_ALL=C HOME=/nonexistent \
      "${prefix[@]}" "$vmrr" replay "../$g.log" --console-out "$g.$mode.out" "${extra[@]}" \
      > "$g.$mode.sum" 2>&1
    st=$?
    [ "$st" -eq 0 ] || { fail "$g ($mode): replay status $st"; cat "$g.$mode.sum" >&2; }
    cmp -s "../$g.rec" "$g.$mode.out" || fail "$g ($mode): console output differs from the recording"
  done
done
# Without --disk the recorded (now missing) image path is refused with status 12.
"$vmrr" replay ../disk.log > /dev/null 2>&1
[ $? -eq 12 ] || fail "disk: missing recorded image not refused with 12"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "replay elsewhere: all checks passed (setarch -R: ${setarch_r[*]:-unavailable})"
