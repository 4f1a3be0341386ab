# Shared by the integration test scripts (sourced): a scratch directory $tmp removed on exit,
# background processes whose ids a script appends to $pids killed on exit, fail MESSAGE,
# which reports a failed check and counts it in $failures, and the waits below.
tmp=$(mktemp -d)
pids=()
trap 'for p in "${pids[@]}"; do kill -KILL "$p" 2> /dev/null; done; rm -rf "$tmp"' EXIT
failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
# wait_for FILE PATTERN SECONDS: until a line of FILE matches PATTERN (status 0), at most
# SECONDS (status 1).
wait_for() {
  local i
  for i in $(seq 1 $(($3 * 100))); do
    grep -q "$2" "$1" 2> /dev/null && return 0
    sleep 0.01
  done
  return 1
}
# listening_url FILE: the link a `vmrr shadow` whose stderr is FILE listens on (its "listening
# on" line: the port it was given, or the one the system chose for tcp:HOST:0).
listening_url() {
  sed -n 's/^vmrr shadow: listening on //p' "$1" | head -n 1
}
# interrupt PID FILE [DELAY]: once FILE is not empty (vmrr is past its start-up: a background
# job of a script starts with SIGINT ignored, until vmrr installs its own handler; FILE "-":
# no such wait), waits DELAY seconds (default 0.15) and sends SIGINT; then waits for PID, at most 60 s (then SIGKILL and
# status 124). The exit status is left in $st.
interrupt() {
  local pid=$1 file=$2 delay=${3:-0.15} i
  for i in $(seq 1 1000); do
    [ "$file" = - ] || [ -s "$file" ] && break
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.01
  done
  sleep "$delay"
  kill -INT "$pid" 2> /dev/null
  for i in $(seq 1 600); do
    kill -0 "$pid" 2> /dev/null || break
    sleep 0.1
  done
  if kill -0 "$pid" 2> /dev/null; then
    kill -KILL "$pid" 2> /dev/null
    wait "$pid" 2> /dev/null
    st=124
    return
  fi
  wait "$pid"
  st=$?
}
