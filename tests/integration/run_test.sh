#!/bin/bash
# `vmrr run` end to end: exit statuses, fault/limit reports, stop by signal, and every bad
# input (options, kernel, network port) failing with one clear line and nothing on stdout.
# Usage: run_test.sh VMRR MAKE_TEST_KERNELS
# Expected values come from the hand-assembled kernels (make_test_kernels.cc) and the boot
# contract's exit statuses, not from vmrr.
set -u
vmrr=$1
make_kernels=$2
source "$(dirname "$0")/lib.sh"

"$make_kernels" "$tmp" || { echo "FAIL: make_test_kernels" >&2; exit 1; }

# runs vmrr run ARGS..., stdout to $tmp/out, stderr to $tmp/err, status in $status
run() {
  timeout 60 "$vmrr" run "$@" < /dev/null > "$tmp/out" 2> "$tmp/err"
  status=$?
}
expect() {  # what, want_status
  [ "$status" -eq "$2" ] || { fail "$1: status $status, want $2"; sed 's/^/    /' "$tmp/err" >&2; }
}
expect_err() {  # what, regex (in stderr)
  grep -Eq "$2" "$tmp/err" || { fail "$1: stderr lacks '$2'"; sed 's/^/    /' "$tmp/err" >&2; }
}
expect_clean_error() {  # what, want_status, regex: one error line, empty stdout
  expect "$1" "$2"
  expect_err "$1" "$3"
  [ "$(wc -l < "$tmp/err")" -eq 1 ] || fail "$1: want exactly one line on stderr, got $(wc -l < "$tmp/err")"
  [ ! -s "$tmp/out" ] || fail "$1: wrote to stdout"
}

# ---- help -----------------------------------------------------------------------------------
"$vmrr" run --help > "$tmp/help" 2>&1 || fail "--help: non-zero status"
for word in --memory --clock --disk --net --max-instructions KERNEL "Exit status" 130 udp:; do
  grep -q -- "$word" "$tmp/help" || fail "--help does not mention $word"
done

# ---- guests ---------------------------------------------------------------------------------
run "$tmp/hello.elf"
expect hello 7
[ "$(cat "$tmp/out")" = "Hi" ] || fail "hello: console output '$(cat "$tmp/out")', want 'Hi'"
[ ! -s "$tmp/err" ] || fail "hello: unexpected stderr"

# A Multiboot image at 0x8000, where vmrr's own boot structures used to be: they move after it.
run "$tmp/mb_low.bin"
expect "Multiboot image at 0x8000" 7
[ "$(cat "$tmp/out")" = "Hi" ] || fail "mb_low: console output '$(cat "$tmp/out")', want 'Hi'"

run --memory 64M --clock icount "$tmp/timer.elf"
expect timer 1
[ "$(cat "$tmp/out")" = "TTTTT" ] || fail "timer: output '$(cat "$tmp/out")', want TTTTT"
run --clock host "$tmp/timer.elf"
expect "timer (host clock)" 1

run "$tmp/cli_hlt.elf"
expect "cli; hlt" 8
expect_err "cli; hlt" "halted forever"
expect_err "cli; hlt" "hlt"
expect_err "cli; hlt" "icount 2"

run "$tmp/ud2.elf"
expect ud2 8
expect_err ud2 "triple fault"
expect_err ud2 "at icount 1"
expect_err ud2 "ud2"
expect_err ud2 "rip 0000000000100001"

run --max-instructions 1000 "$tmp/spin.elf"
expect "--max-instructions" 10
expect_err "--max-instructions" "instruction limit .* at icount 1000$"
run --max-instructions 1001 "$tmp/spin.elf"
expect_err "--max-instructions odd" "at icount 1001$"

# ---- stop by signal -------------------------------------------------------------------------
"$vmrr" run "$tmp/spin.elf" < /dev/null > "$tmp/out" 2> "$tmp/err" &
pid=$!
pids+=("$pid")
sleep 0.5
interrupt "$pid" - 0  # spin prints nothing: the half second above is for the start-up
status=$st
expect "SIGINT while running" 130
expect_err "SIGINT while running" "stopped on request"

"$vmrr" run "$tmp/sti_hlt.elf" < /dev/null > "$tmp/out" 2> "$tmp/err" &
pid=$!
pids+=("$pid")
sleep 0.5
kill -TERM "$pid"
wait "$pid"
status=$?
expect "SIGTERM while idle in HLT" 130

# ---- bad inputs -----------------------------------------------------------------------------
run --memory 12X "$tmp/hello.elf"
expect_clean_error "--memory 12X" 2 "^vmrr run: error: --memory"
run --memory 1M "$tmp/hello.elf"
expect_clean_error "--memory 1M" 2 "^vmrr run: error: memory size"
run --memory 64G "$tmp/hello.elf"
expect_clean_error "--memory 64G" 2 "^vmrr run: error: memory size"
run --clock wall "$tmp/hello.elf"
expect "--clock wall" 2
run "$tmp/missing.elf"
expect "missing kernel" 2
expect_err "missing kernel" "missing.elf"
for k in junk.bin empty.bin truncated.elf; do
  run "$tmp/$k"
  expect_clean_error "kernel $k" 4 "^vmrr run: error: kernel '.*$k'"
done
run --memory 64M "$tmp/outside.elf"
expect_clean_error "kernel outside RAM" 4 "outside guest RAM"
run --disk "$tmp/missing.img" "$tmp/hello.elf"
expect "missing disk" 2
run --net udp:192.0.2.1:5000 "$tmp/hello.elf"
expect_clean_error "--net remote host" 2 "^vmrr run: error: --net"
run --net udp:127.0.0.1:99999 "$tmp/hello.elf"
expect_clean_error "--net bad port" 2 "^vmrr run: error: --net"

# Port in use: a first vmrr holds the local port while its guest idles; a second one fails.
port=$((20000 + RANDOM % 20000))
"$vmrr" run --net "udp:127.0.0.1:$((port + 1)):$port" "$tmp/sti_hlt.elf" < /dev/null > /dev/null 2> "$tmp/first.err" &
first=$!
pids+=("$first")
sleep 0.5
run --net "udp:127.0.0.1:$((port + 2)):$port" "$tmp/hello.elf"
expect_clean_error "port in use" 3 "^vmrr run: error: .*$port"
interrupt "$first" - 0
[ "$st" -eq 130 ] || fail "first vmrr (holding the port) did not stop with 130: $(cat "$tmp/first.err")"

if [ "$failures" -ne 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "all vmrr run checks passed"
