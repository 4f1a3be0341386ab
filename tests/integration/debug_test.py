#!/usr/bin/env python3
"""`vmrr debug` driven by the real gdb in batch mode (and, for Ctrl-C, by the raw protocol).

Usage: debug_test.py VMRR GUESTS_DIR WRITE_TRACE

Every expected position comes from outside the code under test: a forward pass of gdb itself
(steps, breakpoint hits), the guest's own console output (which node the crash guest
corrupts), the guest ELF's symbols, and write_trace (a plain replay that single-steps around
every change of a memory location).
"""
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

vmrr, guests, write_trace = sys.argv[1:4]
tmp = tempfile.mkdtemp(prefix="vmrr-debug-test-")
failures = []


def fail(msg):
    print("FAIL: " + msg, file=sys.stderr)
    failures.append(msg)


def record(guest):
    log = os.path.join(tmp, guest + ".vmrr")
    p = subprocess.run([vmrr, "record", "-o", log, os.path.join(guests, guest + ".elf")],
                       capture_output=True, text=True, timeout=120)
    return log, p.stdout


def symbol(guest, name):
    out = subprocess.run(["nm", os.path.join(guests, guest + ".elf")], capture_output=True, text=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == name:
            return int(parts[0], 16)
    raise SystemExit(f"no symbol {name} in {guest}.elf")


def start_server(log):
    srv = subprocess.Popen([vmrr, "debug", log, "--server-only", "--port", "0"],
                           stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    line = srv.stderr.readline()
    m = re.search(r"gdb server on 127\.0\.0\.1:(\d+)", line)
    if not m:
        srv.kill()
        raise SystemExit(f"vmrr debug did not announce its port: {line!r}")
    return srv, int(m.group(1))


def gdb(log, guest, script, timeout=300):
    """Runs gdb -batch on guest's ELF against a server over log; returns gdb's output."""
    srv, port = start_server(log)
    path = os.path.join(tmp, "script.gdb")
    with open(path, "w") as f:
        f.write("set pagination off\nset confirm off\n")
        f.write(f"target remote 127.0.0.1:{port}\n")
        f.write(script)
    try:
        p = subprocess.run(["gdb", "-nx", "-batch", os.path.join(guests, guest + ".elf"), "-x", path],
                           capture_output=True, text=True, timeout=timeout)
    finally:
        try:
            srv.wait(timeout=30)
        except subprocess.TimeoutExpired:
            srv.kill()
            fail("vmrr debug still running 30 s after gdb exited")
    return p.stdout + p.stderr


PY_HELPERS = r"""
python
import gdb
REGS = ["rip", "rsp", "rbp", "rax", "rbx", "rcx", "rdx", "rsi", "rdi", "r8", "r9", "r10", "r11",
        "r12", "r13", "r14", "r15", "eflags", "cs", "ss", "cr3"]
def regs():
    f = gdb.selected_frame()
    return tuple(int(f.read_register(r)) for r in REGS)
def icount():
    return int(gdb.execute("monitor icount", to_string=True).split()[1])
def position():
    return (icount(), regs())
end
"""

crash_log, crash_out = record("crash")
stress_log, stress_out = record("stress")

# 1. stepi N times across an interrupt delivery, then reverse-stepi N times: every step back
#    lands on the registers (and icount) the forward pass saw there.
out = gdb(crash_log, "crash", PY_HELPERS + r"""
python
gdb.execute("break pit_irq")
gdb.execute("continue")
x = icount()
gdb.execute("delete")
gdb.execute("monitor goto %d" % (x - 150))
gdb.execute("maint flush register-cache")
N = 400
fwd = []
for i in range(N):
    fwd.append(position())
    gdb.execute("stepi", to_string=True)
fwd.append(position())
bad = 0
for i in reversed(range(N)):
    gdb.execute("reverse-stepi", to_string=True)
    if position() != fwd[i]:
        bad += 1
        if bad < 5: print("MISMATCH step %d: %s vs %s" % (i, position(), fwd[i]))
print("STEPS %d BAD %d FROM %d DELIVERY %d" % (N, bad, fwd[0][0], x))
end
""")
m = re.search(r"STEPS (\d+) BAD (\d+) FROM (\d+) DELIVERY (\d+)", out)
if not m:
    fail("stepi/reverse-stepi: no result\n" + out[-3000:])
elif m.group(2) != "0":
    fail("stepi/reverse-stepi: %s mismatches\n%s" % (m.group(2), out[-3000:]))
elif not int(m.group(3)) < int(m.group(4)) < int(m.group(3)) + 400:
    fail("stepi/reverse-stepi: the steps did not cross the interrupt delivery")

# 2. break on a function (symbols from the guest's ELF), continue three hits, reverse-continue:
#    back at the second hit, icount and registers exact.
out = gdb(crash_log, "crash", PY_HELPERS + r"""
python
gdb.execute("break pit_irq")
hits = []
for k in range(3):
    gdb.execute("continue")
    hits.append(position())
gdb.execute("reverse-continue")
back = position()
print("HITS %s" % [h[0] for h in hits])
print("BACK-AT-SECOND %s" % (back == hits[1]))
print("PC-IS-FUNCTION %s" % (all(h[1][0] == int(gdb.parse_and_eval("(long)pit_irq")) for h in hits)))
end
""")
if "BACK-AT-SECOND True" not in out or "PC-IS-FUNCTION True" not in out:
    fail("break/continue/reverse-continue:\n" + out[-3000:])
else:
    hits = [int(x) for x in re.search(r"HITS \[([\d, ]+)\]", out).group(1).split(",")]
    if not hits[0] < hits[1] < hits[2]:
        fail(f"break: hits not in order: {hits}")

# 3. The crash guest: continue to the fault at the end of the recording, watch the corrupted
#    pointer, reverse-continue: gdb stops on the instruction that wrote it; write_trace says
#    which instruction that is.
node = int(re.search(r"RESULT crash node (\d+)", crash_out).group(1))
target = symbol("crash", "nodes") + 16 * node
trace = subprocess.run([write_trace, crash_log, hex(target), "8"], capture_output=True, text=True, timeout=300)
writes = [tuple(int(v, 0) for v in l.split()) for l in trace.stdout.split("\n") if l.strip()]
if not writes:
    fail(f"write_trace found no write to {target:#x}: {trace.stderr}")
else:
    out = gdb(crash_log, "crash", PY_HELPERS + f"""
continue
python print("END-AT %d" % icount())
watch -l nodes[{node}].next
reverse-continue
python print("WRITER %d %#x" % (icount(), int(gdb.parse_and_eval("$pc"))))
x/i $pc
""")
    m = re.search(r"WRITER (\d+) (0x[0-9a-f]+)", out)
    end = re.search(r"recording: \d+ \.\. (\d+)", subprocess.run(
        [vmrr, "inspect", crash_log], capture_output=True, text=True).stdout)
    want = writes[-1]
    if not m:
        fail("crash watchpoint: no stop\n" + out[-3000:])
    elif (int(m.group(1)), int(m.group(2), 16)) != want:
        fail(f"crash watchpoint: stopped at icount {m.group(1)} pc {m.group(2)}, the trace says "
             f"icount {want[0]} pc {want[1]:#x}\n" + out[-3000:])
    if "END-AT" not in out:
        fail("crash: continue did not reach the end\n" + out[-2000:])

# 4. A watchpoint on a counter of the stress guest (the tick count its scheduler increments),
#    reverse-continue repeatedly from the end: each stop is the previous write of the trace.
ticks = symbol("stress", "ticks")
trace = subprocess.run([write_trace, stress_log, hex(ticks), "8"], capture_output=True, text=True, timeout=600)
writes = [tuple(int(v, 0) for v in l.split()) for l in trace.stdout.split("\n") if l.strip()]
K = 6
if len(writes) < K + 1:
    fail(f"write_trace: only {len(writes)} writes to ticks")
else:
    out = gdb(stress_log, "stress", PY_HELPERS + f"""
continue
watch -l ticks
python
for k in range({K}):
    gdb.execute("reverse-continue")
    print("STOP %d %#x" % (icount(), int(gdb.parse_and_eval("$pc"))))
end
""")
    stops = [(int(a), int(b, 16)) for a, b in re.findall(r"STOP (\d+) (0x[0-9a-f]+)", out)]
    want = list(reversed(writes[-K:]))
    if stops != want:
        fail(f"stress watchpoint: stops {stops}, the trace says {want}\n" + out[-3000:])

# 5. Ctrl-C (0x03) during a long reverse-continue returns control within 100 ms. Raw protocol:
#    a breakpoint never hit makes the reverse-continue search the whole recording.


def packet(payload):
    return ("$%s#%02x" % (payload, sum(payload.encode()) & 0xff)).encode()


def read_reply(s, timeout):
    s.settimeout(timeout)
    buf = b""
    while True:
        m = re.search(rb"\$([^#]*)#[0-9a-f]{2}", buf)
        if m:
            return m.group(1).decode()
        chunk = s.recv(4096)
        if not chunk:
            raise EOFError("server closed the connection")
        buf += chunk


srv, port = start_server(stress_log)
try:
    s = socket.create_connection(("127.0.0.1", port))
    s.sendall(packet("QStartNoAckMode"))
    if read_reply(s, 30) != "OK":
        fail("QStartNoAckMode not accepted")
    s.sendall(packet("Z0,1,1"))
    read_reply(s, 30)
    s.sendall(packet("c"))
    r = read_reply(s, 120)
    if "replaylog:end" not in r:
        fail(f"continue to the end: reply {r!r}")
    # How long the whole search takes uninterrupted (it ends at the beginning), so that the
    # interrupt lands inside it on a host of any speed: a quarter of the way in.
    t0 = time.monotonic()
    s.sendall(packet("bc"))
    r = read_reply(s, 120)
    search_s = time.monotonic() - t0
    print(f"reverse-continue over the whole recording: {search_s * 1000:.0f} ms")
    if "replaylog:begin" not in r:
        fail(f"reverse-continue to the beginning: reply {r!r}")
    if search_s < 0.02:
        fail(f"the reverse search took {search_s * 1000:.1f} ms: too short to interrupt it")
    s.sendall(packet("c"))
    r = read_reply(s, 120)
    if "replaylog:end" not in r:
        fail(f"continue to the end again: reply {r!r}")
    s.sendall(packet("bc"))
    time.sleep(min(0.15, search_s / 4))
    t0 = time.monotonic()
    s.sendall(b"\x03")
    r = read_reply(s, 30)
    dt = time.monotonic() - t0
    print(f"Ctrl-C during reverse-continue: reply {r!r} after {dt * 1000:.1f} ms")
    if not r.startswith("T02"):
        fail(f"Ctrl-C: reply {r!r}, want T02 (the search ended before the interrupt?)")
    elif dt > 0.1:
        fail(f"Ctrl-C: control returned after {dt * 1000:.0f} ms, want <= 100 ms")
    # A write is refused with a message; an unmapped address is an error reply.
    s.sendall(packet("M1000,1:00"))
    r = read_reply(s, 30)
    if not r.startswith("E.") or "cannot be changed" not in r:
        fail(f"memory write: reply {r!r}")
    s.sendall(packet("mdead000000000000,8"))
    r = read_reply(s, 30)
    if not r.startswith("E"):
        fail(f"read of an unmapped address: reply {r!r}")
    s.sendall(packet("k"))
    s.close()
finally:
    try:
        srv.wait(timeout=30)
    except subprocess.TimeoutExpired:
        srv.kill()
        fail("vmrr debug did not exit after k")

# 6. The default mode: vmrr debug starts gdb itself (here a wrapper that adds batch commands
#    after the ones vmrr passes: the symbols file and `target remote`).
wrapper = os.path.join(tmp, "gdb-wrapper.sh")
with open(wrapper, "w") as f:
    f.write("#!/bin/sh\nexec gdb -nx -batch \"$@\" -ex 'break pit_irq' -ex continue "
            "-ex 'monitor icount' -ex 'reverse-stepi' -ex 'monitor icount'\n")
os.chmod(wrapper, 0o755)
p = subprocess.run([vmrr, "debug", crash_log, "--symbols", os.path.join(guests, "crash.elf"), "--gdb", wrapper],
                   capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
icounts = [int(x) for x in re.findall(r"^icount (\d+) \(recording", p.stdout + p.stderr, re.M)]
if p.returncode != 0 or len(icounts) != 2 or icounts[1] != icounts[0] - 1 or "pit_irq" not in p.stdout:
    fail(f"vmrr debug starting gdb: status {p.returncode}, icounts {icounts}\n{p.stdout[-2000:]}{p.stderr[-1000:]}")

# 7. Bad input: one line on stderr and a distinct status.
p = subprocess.run([vmrr, "debug", os.path.join(tmp, "missing.vmrr"), "--server-only"],
                   capture_output=True, text=True, timeout=30)
if p.returncode not in (3, 4) or len(p.stderr.strip().splitlines()) != 1:
    fail(f"missing log: status {p.returncode}, stderr {p.stderr!r}")
p = subprocess.run([vmrr, "debug", crash_log, "--server-only", "--port", "70000"],
                   capture_output=True, text=True, timeout=30)
if p.returncode != 2:
    fail(f"--port 70000: status {p.returncode}, want 2")
p = subprocess.run([vmrr, "debug", crash_log, "--server-only", "--checkpoint-memory", "lots"],
                   capture_output=True, text=True, timeout=30)
if p.returncode != 2:
    fail(f"--checkpoint-memory lots: status {p.returncode}, want 2")

if failures:
    print(f"{len(failures)} failure(s)", file=sys.stderr)
    sys.exit(1)
print("debug: all checks passed")
