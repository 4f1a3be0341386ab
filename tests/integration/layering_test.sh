#!/usr/bin/env bash
# The layers DESIGN.md names, checked on every #include "..." of the sources: each folder may
# include only the folders below it (and itself). Fails naming each include that points up or
# sideways (a device model reaching the board, the replayer including the recorder, ...).
# Usage: layering_test.sh SOURCE_DIR
set -uo pipefail
src="$1"
source "$(dirname "$0")/lib.sh"

# folder => extended regex of the include paths it may use besides its own folder.
declare -A allowed=(
  [logformat]='^$'
  [hv-hooks/substrate]='^logformat/byte_order\.h$'
  [hv-hooks/cpu]='^hv-hooks/substrate/|^logformat/byte_order\.h$'
  [hv-hooks/devices]='^hv-hooks/substrate/|^hv-hooks/environment\.h$|^logformat/byte_order\.h$'
  [hv-hooks/host]='^hv-hooks/environment\.h$|^hv-hooks/devices/virtio/disk_backend\.h$'
  [hv-hooks/machine]='^hv-hooks/(substrate|cpu|devices|host)/|^hv-hooks/environment\.h$|^logformat/byte_order\.h$'
  [hv-hooks/session]='^hv-hooks/machine/machine_config\.h$|^hv-hooks/substrate/|^logformat/'
  [replication]='^logformat/byte_order\.h$'
  [recorder]='^hv-hooks/|^logformat/|^replication/'
  [replayer]='^hv-hooks/|^logformat/'
  [analysis]='^hv-hooks/|^logformat/|^replayer/'
)

checked=0
for dir in "${!allowed[@]}"; do
  while IFS= read -r line; do
    file="${line%%:*}"
    inc="$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"$line")"
    [[ "$inc" == "$dir/"* ]] && continue
    checked=$((checked + 1))
    if ! grep -Eq "${allowed[$dir]}" <<<"$inc"; then
      fail "${file#"$src"/} includes $inc: $dir may not depend on it"
    fi
  done < <(grep -rEn '^#include "' --include='*.h' --include='*.cc' "$src/$dir")
done
# hv-hooks/environment.h is the seam: it includes nothing of vmrr.
if grep -Eq '^#include "' "$src/hv-hooks/environment.h"; then fail "hv-hooks/environment.h includes vmrr headers"; fi
[ "$checked" -gt 50 ] || fail "only $checked cross-folder includes found: the check is not looking at the sources"
echo "layering: $checked cross-folder includes checked, $failures violations"
exit $((failures > 0))
