#!/bin/bash
# The fault-tolerance soak (issue 14): the failover, network failover, relocation and chain
# tests with many more kills and relocations than CI runs. Every check of each test applies to
# every run (the console file equals one uninterrupted run after each kill, ...).
# Usage: bash tests/integration/soak_ft.sh [VMRR] [GUEST_DIR]   (defaults: build/release)
# Kills: VMRR_FAILOVER_RUNS (default 100), VMRR_FAILOVER_NET_RUNS (30), relocations:
# VMRR_RELOCATE_RUNS (40), chains: VMRR_CHAIN_RUNS (24).
set -u
here=$(dirname "$0")
vmrr=${1:-build/release/vmrr}
guests=${2:-build/release/tests/guests}
status=0
run() {
  local name=$1
  shift
  echo "== $name"
  "$@" || { echo "soak: $name FAILED" >&2; status=1; }
}
run failover env VMRR_FAILOVER_RUNS="${VMRR_FAILOVER_RUNS:-100}" bash "$here/failover_test.sh" "$vmrr" "$guests"
run failover_net env VMRR_FAILOVER_NET_RUNS="${VMRR_FAILOVER_NET_RUNS:-30}" bash "$here/failover_net_test.sh" "$vmrr" "$guests"
run relocate env VMRR_RELOCATE_RUNS="${VMRR_RELOCATE_RUNS:-40}" bash "$here/relocate_test.sh" "$vmrr" "$guests"
run chain env VMRR_CHAIN_RUNS="${VMRR_CHAIN_RUNS:-24}" bash "$here/chain_test.sh" "$vmrr" "$guests"
[ "$status" -eq 0 ] && echo "soak: all passed"
exit "$status"
