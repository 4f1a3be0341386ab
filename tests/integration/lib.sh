# Shared by the integration test scripts (sourced): a scratch directory $tmp removed on exit,
# background processes whose ids a script appends to $pids killed on exit, and fail MESSAGE,
# which reports a failed check and counts it in $failures.
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2> /dev/null; done; rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
