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
kinds[hello]="Checkpoint=1 Digest=5 End=1 Marker=1 Output=6 SnapshotChunk=1"
frames[hello]=3; checkpoints[hello]=1; last_icount[hello]=4343
final_digest[hello]=4d5b6d3d7e4b3ea6; digests[hello]=5
kinds[clock]="Checkpoint=2 Digest=10 End=1 Entropy=7 Marker=1 Output=9 SnapshotChunk=2"
frames[clock]=5; checkpoints[clock]=2; last_icount[clock]=651032
final_digest[clock]=efc87314ce00048d; digests[clock]=11
kinds[timer]="Checkpoint=1 Digest=22 End=1 IrqDelivered=89 Marker=1 Output=6 SnapshotChunk=1"
frames[timer]=4; checkpoints[timer]=1; last_icount[timer]=21282557
final_digest[timer]=7b89ac7e2d8c5920; digests[timer]=22
kinds[console]="Checkpoint=1 ConsoleIn=1 Digest=7 End=1 IdleWake=1 IrqDelivered=1 Marker=1 Output=7 SnapshotChunk=1"
frames[console]=3; checkpoints[console]=1; last_icount[console]=6813
final_digest[console]=f16e6c74efa234ad; digests[console]=7
kinds[timer-host]="Checkpoint=1 Digest=13 End=1 IrqDelivered=89 Marker=1 Output=6 SnapshotChunk=1 TimeSample=67"
frames[timer-host]=6; checkpoints[timer-host]=1; last_icount[timer-host]=12544602
final_digest[timer-host]=e66fbe283e2b11c4; digests[timer-host]=13

for name in hello clock timer console timer-host; do
  log="$golden/$name.vlog"
  [ -f "$log" ] || { fail "$name: $log missing"; continue; }
  # inspect --verify: every frame checksum, record and snapshot valid, the log complete.
  if "$vmrr" inspect --verify "$log" > "$tmp/$name.verify" 2>&1 &&
     grep -q "^verify  *every frame checksum, record and snapshot is valid" "$tmp/$name.verify"; then
    echo "ok   $name: inspect --verify"
  else
    fail "$name: inspect --verify"; cat "$tmp/$name.verify" >&2
  fi
  # The decoded header, counts and End record against the known answers.
  if ! "$vmrr" inspect --json --records "$log" > "$tmp/$name.json" 2> "$tmp/$name.json.err"; then
    fail "$name: inspect --json"; cat "$tmp/$name.json.err" >&2
  elif python3 - "$tmp/$name.json" "${kinds[$name]}" "${frames[$name]}" "${checkpoints[$name]}" \
       "${last_icount[$name]}" "${final_digest[$name]}" <<'EOF'
import json, sys
path, kinds, frames, checkpoints, last_icount, final_digest = sys.argv[1:]
j = json.load(open(path))
want = dict((k, int(v)) for k, v in (kv.split("=") for kv in kinds.split()))
got = {k: v["count"] for k, v in j["kinds"].items()}
errors = []
def check(what, g, w):
    if g != w: errors.append(f"{what}: got {g!r}, want {w!r}")
check("state", j["state"], "complete")
check("format", j["format"], {"major": 1, "minor": 1})
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
    echo "ok   $name: header, records per kind, frames, End"
  else
    fail "$name: inspect --json differs from the known answers"
  fi
  # Replay to the end: every digest verified, the same console bytes.
  "$vmrr" replay --console-out "$tmp/$name.console" "$log" > "$tmp/$name.sum" 2> "$tmp/$name.err"
  status=$?
  if [ "$status" -ne 0 ]; then
    fail "$name: replay exit $status"; cat "$tmp/$name.sum" "$tmp/$name.err" >&2
  elif ! grep -q "^replay: matched the whole log" "$tmp/$name.sum" ||
       ! grep -q "^  instructions: ${last_icount[$name]}$" "$tmp/$name.sum" ||
       ! grep -q "^  digests checked: ${digests[$name]}$" "$tmp/$name.sum" ||
       ! grep -q "^  end: guest-exit, exit code 0$" "$tmp/$name.sum"; then
    fail "$name: replay summary differs from the known answers"; cat "$tmp/$name.sum" >&2
  elif ! cmp "$golden/$name.console" "$tmp/$name.console" >&2; then
    fail "$name: replayed console output differs from $name.console"
  else
    echo "ok   $name: replay matched, ${digests[$name]} digests, console output"
  fi
done
[ "$failures" -eq 0 ] || { echo "$failures golden-log checks failed" >&2; exit 1; }
