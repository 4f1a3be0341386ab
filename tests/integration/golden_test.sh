#!/usr/bin/env bash
# Golden logs (tests/data/golden, see its README.md): logs written by an earlier vmrr that this
# one must still read and replay exactly. For each: `vmrr inspect --verify` accepts it, the
# header, record counts per kind, frames, checkpoints, icount range and End record equal the
# known answers below, and `vmrr replay` replays it to the end (exit 0, every digest checked)
# printing byte for byte the console output in NAME.console. A change to the encoder and the
# decoder together passes every round-trip test but fails here. A failure means the format or
# the machine's semantics changed: that needs a version bump and a conscious decision, never a
# regenerated golden log.
# Usage: golden_test.sh VMRR GOLDEN_DIR
set -u
vmrr="$1"; golden="$2"
source "$(dirname "$0")/lib.sh"

# What this version wrote, and what any later version must read from the same bytes. Per log:
#   records per kind | frames | checkpoints | last icount | End final digest | digests a replay checks
declare -A kinds frames checkpoints last_icount final_digest digests
# Session configuration version 2 logs (CPU state v3): still inspected, replay refused.
kinds[2:hello]="Checkpoint=1 Digest=5 End=1 Marker=1 Output=6 SnapshotChunk=1"
frames[2:hello]=3; checkpoints[2:hello]=1; last_icount[2:hello]=4343
final_digest[2:hello]=4d5b6d3d7e4b3ea6; digests[2:hello]=5
kinds[2:clock]="Checkpoint=2 Digest=10 End=1 Entropy=7 Marker=1 Output=9 SnapshotChunk=2"
frames[2:clock]=5; checkpoints[2:clock]=2; last_icount[2:clock]=651032
final_digest[2:clock]=efc87314ce00048d; digests[2:clock]=11
kinds[2:timer]="Checkpoint=1 Digest=22 End=1 IrqDelivered=89 Marker=1 Output=6 SnapshotChunk=1"
frames[2:timer]=4; checkpoints[2:timer]=1; last_icount[2:timer]=21282557
final_digest[2:timer]=7b89ac7e2d8c5920; digests[2:timer]=22
kinds[2:console]="Checkpoint=1 ConsoleIn=1 Digest=7 End=1 IdleWake=1 IrqDelivered=1 Marker=1 Output=7 SnapshotChunk=1"
frames[2:console]=3; checkpoints[2:console]=1; last_icount[2:console]=6813
final_digest[2:console]=f16e6c74efa234ad; digests[2:console]=7
kinds[2:timer-host]="Checkpoint=1 Digest=13 End=1 IrqDelivered=89 Marker=1 Output=6 SnapshotChunk=1 TimeSample=67"
frames[2:timer-host]=6; checkpoints[2:timer-host]=1; last_icount[2:timer-host]=12544602
final_digest[2:timer-host]=e66fbe283e2b11c4; digests[2:timer-host]=13

# Session configuration version 3 logs (CPU state v4, x87/SSE registers), in v3/: still
# inspected, replay refused since version 4.
kinds[3:hello]="Checkpoint=1 Digest=5 End=1 Marker=1 Output=6 SnapshotChunk=1"
frames[3:hello]=3; checkpoints[3:hello]=1; last_icount[3:hello]=4343
final_digest[3:hello]=ef95e0115bb4b67e; digests[3:hello]=5
kinds[3:clock]="Checkpoint=2 Digest=10 End=1 Entropy=7 Marker=1 Output=9 SnapshotChunk=2"
frames[3:clock]=5; checkpoints[3:clock]=2; last_icount[3:clock]=651042
final_digest[3:clock]=4d01a7149911bf53; digests[3:clock]=11
kinds[3:timer]="Checkpoint=1 Digest=22 End=1 IrqDelivered=89 Marker=1 Output=6 SnapshotChunk=1"
frames[3:timer]=4; checkpoints[3:timer]=1; last_icount[3:timer]=21282557
final_digest[3:timer]=e363309dbb2f47cb; digests[3:timer]=22
kinds[3:console]="Checkpoint=1 ConsoleIn=1 Digest=7 End=1 IdleWake=1 IrqDelivered=1 Marker=1 Output=7 SnapshotChunk=1"
frames[3:console]=3; checkpoints[3:console]=1; last_icount[3:console]=6813
final_digest[3:console]=e02a1a99ad318536; digests[3:console]=7
kinds[3:timer-host]="Checkpoint=1 Digest=13 End=1 IrqDelivered=89 Marker=1 Output=6 SnapshotChunk=1 TimeSample=67"
frames[3:timer-host]=6; checkpoints[3:timer-host]=1; last_icount[3:timer-host]=12128504
final_digest[3:timer-host]=339ba462ae5ae346; digests[3:timer-host]=13

# Session configuration version 4 logs (the ACPI power registers, CPUID with x87/SSE, format
# 1.2), in v4/: still inspected, replay refused since version 5.
kinds[4:hello]="Checkpoint=1 Digest=5 End=1 Marker=1 Output=6 SnapshotChunk=1"
frames[4:hello]=3; checkpoints[4:hello]=1; last_icount[4:hello]=4345
final_digest[4:hello]=64e8d950eb57b826; digests[4:hello]=5
kinds[4:clock]="Checkpoint=2 Digest=10 End=1 Entropy=7 Marker=1 Output=9 SnapshotChunk=2"
frames[4:clock]=5; checkpoints[4:clock]=2; last_icount[4:clock]=651034
final_digest[4:clock]=b295bb10d82fb872; digests[4:clock]=11
kinds[4:timer]="Checkpoint=1 Digest=22 End=1 IrqDelivered=89 Marker=1 Output=6 SnapshotChunk=1"
frames[4:timer]=4; checkpoints[4:timer]=1; last_icount[4:timer]=21282559
final_digest[4:timer]=bcdc4d7e41553bd7; digests[4:timer]=22
kinds[4:console]="Checkpoint=1 ConsoleIn=1 Digest=7 End=1 IdleWake=1 IrqDelivered=1 Marker=1 Output=7 SnapshotChunk=1"
frames[4:console]=3; checkpoints[4:console]=1; last_icount[4:console]=6815
final_digest[4:console]=4de75210a65b854b; digests[4:console]=7
kinds[4:timer-host]="Checkpoint=1 Digest=12 End=1 IrqDelivered=89 Marker=1 Output=6 SnapshotChunk=1 TimeSample=66"
frames[4:timer-host]=6; checkpoints[4:timer-host]=1; last_icount[4:timer-host]=11707734
final_digest[4:timer-host]=87b75074ad9eaf87; digests[4:timer-host]=12

# Session configuration version 5 logs (QEMU's fw_cfg device, format 1.2), in v5/.
kinds[5:hello]="Checkpoint=1 Digest=5 End=1 Marker=1 Output=6 SnapshotChunk=1"
frames[5:hello]=3; checkpoints[5:hello]=1; last_icount[5:hello]=4345
final_digest[5:hello]=8ab4d174b5b1b903; digests[5:hello]=5
kinds[5:clock]="Checkpoint=2 Digest=10 End=1 Entropy=7 Marker=1 Output=9 SnapshotChunk=2"
frames[5:clock]=5; checkpoints[5:clock]=2; last_icount[5:clock]=651044
final_digest[5:clock]=ead4633f5ed300b2; digests[5:clock]=11
kinds[5:timer]="Checkpoint=1 Digest=22 End=1 IrqDelivered=89 Marker=1 Output=6 SnapshotChunk=1"
frames[5:timer]=3; checkpoints[5:timer]=1; last_icount[5:timer]=21282559
final_digest[5:timer]=0e5b6f530505fc8b; digests[5:timer]=22
kinds[5:console]="Checkpoint=1 ConsoleIn=1 Digest=7 End=1 IdleWake=1 IrqDelivered=1 Marker=1 Output=7 SnapshotChunk=1"
frames[5:console]=3; checkpoints[5:console]=1; last_icount[5:console]=6815
final_digest[5:console]=4cf4b857bbc364b0; digests[5:console]=7
kinds[5:timer-host]="Checkpoint=1 Digest=13 End=1 IrqDelivered=89 Marker=1 Output=6 SnapshotChunk=1 TimeSample=66"
frames[5:timer-host]=6; checkpoints[5:timer-host]=1; last_icount[5:timer-host]=12022555
final_digest[5:timer-host]=810db76e234f6ad3; digests[5:timer-host]=13

for key in 2:hello 2:clock 2:timer 2:console 2:timer-host 3:hello 3:clock 3:timer 3:console 3:timer-host \
           4:hello 4:clock 4:timer 4:console 4:timer-host 5:hello 5:clock 5:timer 5:console 5:timer-host; do
  version=${key%%:*}; name=${key#*:}
  dir="$golden"; [ "$version" != 2 ] && dir="$golden/v$version"
  minor=1; [ "$version" -ge 4 ] && minor=2
  log="$dir/$name.vlog"
  [ -f "$log" ] || { fail "v$version $name: $log missing"; continue; }
  # inspect --verify: every frame checksum, record and snapshot valid, the log complete.
  if "$vmrr" inspect --verify "$log" > "$tmp/$version-$name.verify" 2>&1 &&
     grep -q "^verify  *every frame checksum, record and snapshot is valid" "$tmp/$version-$name.verify"; then
    echo "ok   v$version $name: inspect --verify"
  else
    fail "v$version $name: inspect --verify"; cat "$tmp/$version-$name.verify" >&2
  fi
  # The decoded header, counts and End record against the known answers.
  if ! "$vmrr" inspect --json --records "$log" > "$tmp/$version-$name.json" 2> "$tmp/$version-$name.json.err"; then
    fail "v$version $name: inspect --json"; cat "$tmp/$version-$name.json.err" >&2
  elif python3 - "$tmp/$version-$name.json" "${kinds[$key]}" "${frames[$key]}" "${checkpoints[$key]}" \
       "${last_icount[$key]}" "${final_digest[$key]}" "$minor" <<'EOF'
import json, sys
path, kinds, frames, checkpoints, last_icount, final_digest, minor = sys.argv[1:]
j = json.load(open(path))
want = dict((k, int(v)) for k, v in (kv.split("=") for kv in kinds.split()))
got = {k: v["count"] for k, v in j["kinds"].items()}
errors = []
def check(what, g, w):
    if g != w: errors.append(f"{what}: got {g!r}, want {w!r}")
check("state", j["state"], "complete")
check("format", j["format"], {"major": 1, "minor": int(minor)})
check("engine version", j["engine_version"], "0.1.0")
check("records per kind", got, want)
check("records", j["records"], sum(want.values()))
check("frames", j["frames"], int(frames))
check("checkpoints", j["checkpoints"], int(checkpoints))
check("icount", j["icount"], {"first": 0, "last": int(last_icount)})
ends = [r for r in j["record_list"] if r["kind"] == "End"]
check("End records", len(ends), 1)
if ends:
    check("End icount", ends[0]["icount"], int(last_icount))
    f = ends[0]["fields"]
    check("End", {k: f.get(k) for k in ("reason", "exit_code", "final_digest")},
          {"reason": "guest-exit", "exit_code": 0, "final_digest": final_digest})
for e in errors: print(e, file=sys.stderr)
sys.exit(1 if errors else 0)
EOF
  then
    echo "ok   v$version $name: header, records per kind, frames, End"
  else
    fail "v$version $name: inspect --json differs from the known answers"
  fi
  # Replay to the end: every digest verified, the same console bytes.
  if [ "$version" -lt 5 ]; then
    if "$vmrr" replay "$log" > "$tmp/$version-$name.sum" 2>&1; then
      fail "$name (v$version): replay accepted a session configuration version $version log"
    elif grep -q "version is $version, older than the 5 this build needs" "$tmp/$version-$name.sum"; then
      echo "ok   $name (v$version): replay refused with the version message"
    else
      fail "$name (v$version): replay failed without the version message"; cat "$tmp/$version-$name.sum" >&2
    fi
    continue
  fi
  "$vmrr" replay --console-out "$tmp/$version-$name.console" "$log" > "$tmp/$version-$name.sum" 2> "$tmp/$version-$name.err"
  status=$?
  if [ "$status" -ne 0 ]; then
    fail "v$version $name: replay exit $status"; cat "$tmp/$version-$name.sum" "$tmp/$version-$name.err" >&2
  elif ! grep -q "^replay: matched the whole log" "$tmp/$version-$name.sum" ||
       ! grep -q "^  instructions: ${last_icount[$key]}$" "$tmp/$version-$name.sum" ||
       ! grep -q "^  digests checked: ${digests[$key]}$" "$tmp/$version-$name.sum" ||
       ! grep -q "^  end: guest-exit, exit code 0$" "$tmp/$version-$name.sum"; then
    fail "v$version $name: replay summary differs from the known answers"; cat "$tmp/$version-$name.sum" >&2
  elif ! cmp "$dir/$name.console" "$tmp/$version-$name.console" >&2; then
    fail "v$version $name: replayed console output differs from $name.console"
  else
    echo "ok   v$version $name: replay matched, ${digests[$key]} digests, console output"
  fi
done
[ "$failures" -eq 0 ] || { echo "$failures golden-log checks failed" >&2; exit 1; }
