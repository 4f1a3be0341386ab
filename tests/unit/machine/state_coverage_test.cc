// State coverage of every stateful device and of the virtual clock (see state_coverage.h):
// each piece of live state, changed through the public interface one at a time, must reach
// SaveState's bytes, and a component loaded from those bytes must behave like the original
// under the same further inputs (register reads, time running to the next deadlines,
// interrupt acknowledges, virtqueue requests with guest memory buffers, environment I/O).
#include <unistd.h>

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "hv-hooks/devices/acpi_pm.h"
#include "hv-hooks/devices/debug_exit.h"
#include "hv-hooks/devices/interrupt_router.h"
#include "hv-hooks/devices/local_apic.h"
#include "hv-hooks/devices/pci_host.h"
#include "hv-hooks/devices/pic8259.h"
#include "hv-hooks/devices/pit8254.h"
#include "hv-hooks/devices/rtc_cmos.h"
#include "hv-hooks/devices/uart16550.h"
#include "hv-hooks/devices/virtio/virtio_blk.h"
#include "hv-hooks/host/file_disk_backend.h"
#include "hv-hooks/devices/virtio/virtio_net.h"
#include "hv-hooks/devices/virtio/virtio_rng.h"
#include "tests/unit/devices/test_support.h"
#include "tests/unit/machine/state_coverage.h"

namespace vmrr::coverage {
namespace {

// What a device stands on: icount (1 ns of guest time per instruction in icount mode), the
// clock, and optionally guest memory. The snapshot carries all of it.
struct Snapshot {
  uint64_t icount = 0;
  std::vector<uint8_t> clock;
  std::vector<std::vector<uint8_t>> parts;
  std::vector<uint8_t> memory;
};

class RigBase {
 public:
  RigBase() : clock(ic, VirtualClock::Mode::kIcount), irqs(&trace) {
    clock.Reset(VirtualClock::kDefaultIcountEpochNs);
  }
  virtual ~RigBase() = default;
  // The component under test first, then the ones it stands on (restored with it).
  virtual std::vector<Stateful*> parts() = 0;
  virtual GuestMemory* memory() { return nullptr; }

  virtual std::vector<uint8_t> Save() { return SaveToBytes(*parts()[0]); }
  Snapshot Snap() {
    Snapshot s;
    s.icount = ic.value;
    s.clock = SaveToBytes(clock);
    for (Stateful* p : parts()) s.parts.push_back(SaveToBytes(*p));
    if (GuestMemory* m = memory()) s.memory.assign(m->data(), m->data() + m->size());
    return s;
  }
  void Restore(const Snapshot& s) {
    ic.value = s.icount;
    LoadFromBytes(clock, s.clock);
    std::vector<Stateful*> ps = parts();
    for (size_t i = 0; i < ps.size(); ++i) LoadFromBytes(*ps[i], s.parts[i]);
    if (GuestMemory* m = memory()) m->Write(0, s.memory.data(), s.memory.size());
  }
  void Advance(uint64_t ns) { ic.value += ns; }

  test::FakeIcount ic;
  VirtualClock clock;
  Trace trace;
  TracingIrqs irqs;
};

// Runs time forward to a device's next deadlines the way the machine's run loop does,
// recording each deadline.
template <class Device>
void RunDeadlines(RigBase& r, Device& dev, int count, const std::string& what) {
  for (int i = 0; i < count; ++i) {
    const uint64_t d = dev.NextDeadlineNs();
    r.trace(what + " next deadline", d);
    if (d == kNoDeadline) return;
    r.ic.value = r.clock.IcountForDeadline(d);
    dev.RunTimers();
  }
}

uint64_t Fnv(const uint8_t* p, size_t n) {
  uint64_t h = 1469598103934665603ull;
  for (size_t i = 0; i < n; ++i) h = (h ^ p[i]) * 1099511628211ull;
  return h;
}

// ---- virtual clock ----------------------------------------------------------------------

struct ClockRig : RigBase {
  // The clock under test is a second one, in host mode, so that samples move it.
  VirtualClock host{ic, VirtualClock::Mode::kHost, 1000};
  ClockRig() { host.Reset(5'000'000); }
  std::vector<Stateful*> parts() override { return {&host}; }
  Trace Probe() {
    trace.clear();
    for (int step = 0; step < 4; ++step) {
      trace("now", host.NowNs());
      trace("wall", static_cast<uint64_t>(host.WallClockNs()));
      trace("icount for now+300", host.IcountForDeadline(host.NowNs() + 300));
      trace("host time for 10000", static_cast<uint64_t>(host.HostTimeForDeadline(10000)));
      trace("next input point", host.NextInputPointIcount());
      Advance(250);
      if (step == 1) host.Sample(5'000'000 + 100);  // behind guest time: ignored
      if (step == 2) host.Sample(5'000'000 + 90'000);
    }
    host.MarkInputPoint();
    trace("next input point after mark", host.NextInputPointIcount());
    return trace;
  }
};

TEST(StateCoverage, VirtualClock) {
  std::vector<Piece<ClockRig>> pieces = {
      {"epoch", {}, [](ClockRig& r) { r.host.Reset(7'000'000); }},
      {"anchor (icount and ns)", [](ClockRig& r) { r.Advance(100); },
       [](ClockRig& r) { r.host.Sample(5'000'000 + 40'000); }},
      {"anchor ns (idle jump)", {}, [](ClockRig& r) { r.host.AdvanceIdleTo(3000); }},
      {"last input point", [](ClockRig& r) { r.Advance(400); },
       [](ClockRig& r) { r.host.MarkInputPoint(); }},
  };
  CheckPieces("VirtualClock", pieces);
}

// ---- 8259A PIC pair ---------------------------------------------------------------------

struct PicRig : RigBase {
  PicPair pic;
  std::vector<Stateful*> parts() override { return {&pic}; }
  BusDevice& io(int chip) { return chip ? pic.slave_io() : pic.master_io(); }
  void Cmd(int chip, uint8_t v) { io(chip).Write(0, 1, v); }
  void Data(int chip, uint8_t v) { io(chip).Write(1, 1, v); }
  uint8_t Rd(int chip, unsigned port) { return static_cast<uint8_t>(io(chip).Read(port, 1)); }
  void Init(int chip, uint8_t icw1, uint8_t base, uint8_t icw4) {
    Cmd(chip, icw1);
    Data(chip, base);
    if (!(icw1 & 2)) Data(chip, chip ? 2 : 4);
    if (icw1 & 1) Data(chip, icw4);
  }
  void InitBoth() {
    Init(0, 0x11, 0x20, 1);
    Init(1, 0x11, 0x28, 1);
  }
  void Pulse(unsigned irq) {
    pic.SetIrq(irq, true);
    pic.SetIrq(irq, false);
  }
  void Regs(const std::string& when) {
    for (int c = 0; c < 2; ++c) {
      const std::string n = when + (c ? " slave " : " master ");
      Cmd(c, 0x0a);
      trace(n + "IRR", Rd(c, 0));
      Cmd(c, 0x0b);
      trace(n + "ISR", Rd(c, 0));
      trace(n + "IMR", Rd(c, 1));
    }
    trace(when + " INT", pic.OutputPending());
  }
  void Drain(const std::string& when) {
    for (int i = 0; i < 8; ++i) {
      Ack(when + " drain " + std::to_string(i));
      Cmd(0, 0x20);
      Cmd(1, 0x20);
    }
  }
  void Ack(const std::string& when) {
    trace(when + " INT", pic.OutputPending());
    trace(when + " vector", pic.Acknowledge());
  }
  Trace Probe() {
    trace.clear();
    // As found: the first reads show the OCW3 read select, a pending poll, the mask, ELCR.
    for (int c = 0; c < 2; ++c) {
      trace("first port 0 read", Rd(c, 0));
      trace("first port 1 read", Rd(c, 1));
      trace("ELCR", pic.elcr_io().Read(c, 1));
    }
    trace("INT", pic.OutputPending());
    // Data writes: OCW1 when initialised, the next ICW when an initialisation is under way.
    for (int c = 0; c < 2; ++c) {
      Data(c, static_cast<uint8_t>(0x40 + 8 * c));
      Data(c, 0x03);
      Data(c, 0x10);  // masks IRQ4 / IRQ12
    }
    Regs("after data writes");
    // Whatever is pending, taken and ended; then IRQ3/IRQ11 raised: an edge only if low.
    for (int i = 0; i < 4; ++i) {
      Ack("pending " + std::to_string(i));
      Cmd(0, 0x20);
      Cmd(1, 0x20);
    }
    pic.SetIrq(3, true);
    pic.SetIrq(11, true);
    Regs("raised 3 and 11");
    // Requests, nesting, EOIs, rotation, special masks, cascade.
    for (unsigned irq : {5u, 3u, 9u, 1u}) pic.SetIrq(irq, true);
    Regs("raised 5 3 9 1");
    for (int i = 0; i < 3; ++i) Ack("nested ack " + std::to_string(i));
    Regs("nested");
    Cmd(0, 0x20);
    Cmd(1, 0x20);
    Ack("after one EOI");
    for (unsigned irq : {5u, 3u, 9u, 1u}) pic.SetIrq(irq, false);
    Drain("before special mask");
    Data(0, 0x00);
    Data(1, 0x00);
    Pulse(4);
    Ack("IRQ4");
    Data(0, 0x10);  // IRQ4 in service and masked: special mask mode lets lower lines in
    Pulse(6);
    Ack("IRQ6 below masked IRQ4");
    Drain("after master special mask");
    Data(0, 0x00);
    Pulse(12);
    Ack("IRQ12");
    Cmd(0, 0x20);
    Data(1, 0x10);  // the same on the slave: IRQ12 in service and masked, IRQ14 below it
    Pulse(14);
    Ack("IRQ14 below masked IRQ12");
    Drain("after slave special mask");
    Data(1, 0x00);
    // Nesting through the cascade: IRQ9 while IRQ12 is in service.
    Pulse(12);
    Ack("IRQ12 again");
    Pulse(9);
    Ack("IRQ9 over IRQ12 in service");
    Regs("cascade");
    Drain("after cascade");
    // Rotation in automatic EOI mode: 9 and 13 together, then 9 again while 13 waits.
    Pulse(9);
    Pulse(13);
    Ack("slave round 0");
    Cmd(0, 0x20);
    Pulse(9);
    Ack("slave round 1");
    Cmd(0, 0x20);
    Cmd(1, 0x20);
    Ack("slave round 2");
    Drain("after slave rounds");
    Pulse(1);
    Pulse(5);
    Ack("1 and 5 together, first");
    Ack("1 and 5 together, second");
    Regs("after priority round");
    pic.SetIrq(3, true);  // an edge only if the line was low
    Regs("raised 3 again");
    Pulse(7);
    Cmd(0, 0x0c);
    trace("poll", Rd(0, 0));
    Cmd(0, 0xc4);  // IRQ4 lowest priority
    Pulse(1);
    Pulse(6);
    Ack("rotated, first");
    // Polls act as an INTA on one chip: the slave's priorities without the cascade.
    for (int i = 0; i < 3; ++i) {
      Pulse(9);
      Pulse(13);
      Cmd(1, 0x0c);
      trace("slave poll", Rd(1, 0));
    }
    // Re-initialisation keeps ELCR and asserted level requests.
    InitBoth();
    Regs("re-initialised");
    return trace;
  }
};

std::vector<Piece<PicRig>> PicPieces(int c) {
  const std::string chip = c ? "slave " : "master ";
  const unsigned line = 8u * c + 3u;  // IRQ3 / IRQ11
  auto init = [](PicRig& r) { r.InitBoth(); };
  auto init_with = [c](uint8_t icw1, uint8_t base, uint8_t icw4) {
    return [=](PicRig& r) {
      r.InitBoth();
      r.Init(c, icw1, base, icw4);
    };
  };
  const uint8_t base = c ? 0x28 : 0x20;
  std::vector<Piece<PicRig>> p = {
      {chip + "imr", init, [c](PicRig& r) { r.Data(c, 0x5a); }},
      {chip + "irr", init, [line](PicRig& r) { r.Pulse(line); }},
      {chip + "last_irr (input level)", [=](PicRig& r) { r.InitBoth(); r.Pulse(line); },
       [line](PicRig& r) { r.pic.SetIrq(line, true); }},
      {chip + "isr", [=](PicRig& r) {
         r.InitBoth();
         r.pic.elcr_io().Write(c, 1, 0x08);
         r.pic.SetIrq(line, true);
       },
       [](PicRig& r) { r.pic.Acknowledge(); }},
      {chip + "priority_add", init, [c](PicRig& r) { r.Cmd(c, 0xc2); }},
      {chip + "irq_base", init, init_with(0x11, static_cast<uint8_t>(base + 0x40), 1)},
      {chip + "read_reg_select", [line](PicRig& r) { r.InitBoth(); r.pic.SetIrq(line, true); },
       [c](PicRig& r) { r.Cmd(c, 0x0b); }},
      {chip + "poll", [line](PicRig& r) { r.InitBoth(); r.pic.SetIrq(line, true); },
       [c](PicRig& r) { r.Cmd(c, 0x0c); }},
      {chip + "special_mask", init, [c](PicRig& r) { r.Cmd(c, 0x68); }},
      {chip + "init_state (ICW1 written)", init, [c](PicRig& r) { r.Cmd(c, 0x11); }},
      {chip + "auto_eoi", init, init_with(0x11, base, 3)},
      {chip + "rotate_on_auto_eoi", init_with(0x11, base, 3), [c](PicRig& r) { r.Cmd(c, 0x80); }},
      {chip + "init4 (mid-initialisation)", [c](PicRig& r) { r.InitBoth(); r.Cmd(c, 0x11); },
       [c](PicRig& r) { r.Cmd(c, 0x10); }},
      {chip + "single_mode (mid-initialisation)", [c](PicRig& r) { r.InitBoth(); r.Cmd(c, 0x11); },
       [c](PicRig& r) { r.Cmd(c, 0x13); }},
      {chip + "elcr", init, [c](PicRig& r) { r.pic.elcr_io().Write(c, 1, c ? 0x08 : 0x20); }},
  };
  // Special fully nested mode changes only the master's arbitration.
  Piece<PicRig> sfnm{chip + "special_fully_nested", init, init_with(0x11, base, 0x11)};
  if (c == 1) sfnm.name += " (stored, ignored by a slave)", sfnm.observable = false;
  p.push_back(sfnm);
  return p;
}

TEST(StateCoverage, PicMaster) { CheckPieces("PIC", PicPieces(0)); }
TEST(StateCoverage, PicSlave) { CheckPieces("PIC", PicPieces(1)); }

// ---- 8254 PIT ---------------------------------------------------------------------------

struct PitRig : RigBase {
  Pit8254 pit{clock, IrqLine(&irqs, 0)};
  std::vector<Stateful*> parts() override { return {&pit}; }
  void Ctl(uint8_t v) { pit.Write(3, 1, v); }
  void W(int n, uint8_t v) { pit.Write(static_cast<uint64_t>(n), 1, v); }
  uint8_t R(int n) { return static_cast<uint8_t>(pit.Read(static_cast<uint64_t>(n), 1)); }
  void State(const std::string& when) {
    for (int n = 0; n < 3; ++n) trace(when + " OUT" + std::to_string(n), pit.Out(n));
    trace(when + " port 0x61", pit.port61().Read(0, 1));
    trace(when + " deadline", pit.NextDeadlineNs());
  }
  Trace Probe() {
    trace.clear();
    pit.RunTimers();  // an edge due now and not yet signalled shows here
    State("as found");
    Advance(2500);  // so that a held count latch differs from the live count
    // Reads as found: pending status/count latches, the byte order of word reads.
    for (int n = 0; n < 3; ++n) {
      for (int k = 0; k < 3; ++k) trace("counter " + std::to_string(n) + " read", R(n));
    }
    // A byte written without a new control word lands where the access state says.
    for (int n = 0; n < 3; ++n) W(n, 0x07);
    State("after byte writes");
    Advance(3000);
    for (int n = 0; n < 3; ++n) trace("counter read later", R(n));
    RunDeadlines(*this, pit, 4, "PIT");
    // Read-back of count and status of all counters, then every byte.
    Ctl(0xce);
    for (int n = 0; n < 3; ++n) {
      for (int k = 0; k < 3; ++k) trace("read-back " + std::to_string(n), R(n));
    }
    // Counter 2 through port 0x61: gate up, time, gate down, time.
    pit.port61().Write(0, 1, 0x01);
    Advance(5000);
    State("gate 2 up");
    pit.port61().Write(0, 1, 0x00);
    Advance(5000);
    State("gate 2 down");
    Ctl(0x80);
    trace("counter 2 latched lsb", R(2));
    trace("counter 2 latched msb", R(2));
    RunDeadlines(*this, pit, 4, "PIT");
    return trace;
  }
};

TEST(StateCoverage, Pit) {
  std::vector<Piece<PitRig>> p;
  for (int n = 0; n < 3; ++n) {
    const std::string c = "counter " + std::to_string(n) + " ";
    const uint8_t sel = static_cast<uint8_t>(n << 6);
    auto gate = [n](PitRig& r) {
      if (n == 2) r.pit.port61().Write(0, 1, 0x01);
    };
    p.push_back({c + "count", [=](PitRig& r) { gate(r); r.Ctl(sel | 0x14); r.W(n, 100); },
                 [n](PitRig& r) { r.W(n, 200); }});
    p.push_back({c + "resume_ns (count restarted later)",
                 [=](PitRig& r) { gate(r); r.Ctl(sel | 0x14); r.W(n, 100); r.Advance(5000); },
                 [n](PitRig& r) { r.W(n, 100); }});
    p.push_back({c + "count latch (latched, count_latched)",
                 [=](PitRig& r) { gate(r); r.Ctl(sel | 0x34); r.W(n, 0x34); r.W(n, 0x12); r.Advance(7000); },
                 [sel](PitRig& r) { r.Ctl(sel); }});
    p.push_back({c + "status latch (status, status_latched)",
                 [=](PitRig& r) { gate(r); r.Ctl(sel | 0x34); r.W(n, 0x34); r.W(n, 0x12); },
                 [n](PitRig& r) { r.Ctl(static_cast<uint8_t>(0xe0 | (2u << n))); }});
    p.push_back({c + "read_state (word read half done)",
                 [=](PitRig& r) { gate(r); r.Ctl(sel | 0x34); r.W(n, 0x34); r.W(n, 0x12); },
                 [n](PitRig& r) { r.R(n); }});
    p.push_back({c + "write_state, write_latch (word write half done)",
                 [=](PitRig& r) { gate(r); r.Ctl(sel | 0x34); r.W(n, 0x34); r.W(n, 0x12); },
                 [n](PitRig& r) { r.W(n, 0x56); }});
    p.push_back({c + "mode", [=](PitRig& r) { gate(r); r.Ctl(sel | 0x34); },
                 [sel](PitRig& r) { r.Ctl(sel | 0x36); }});
    p.push_back({c + "bcd", [=](PitRig& r) { gate(r); r.Ctl(sel | 0x34); },
                 [sel](PitRig& r) { r.Ctl(sel | 0x35); }});
    p.push_back({c + "access mode (rw_mode)", [=](PitRig& r) { gate(r); r.Ctl(sel | 0x34); },
                 [sel](PitRig& r) { r.Ctl(sel | 0x24); }});
    p.push_back({c + "counting (mode 0 stopped by a first byte)",
                 [=](PitRig& r) { gate(r); r.Ctl(sel | 0x30); r.W(n, 0x00); r.W(n, 0x10); },
                 [n](PitRig& r) { r.W(n, 0x00); }});
  }
  p.push_back({"counter 0 OUT/period bookkeeping (out_seen, period_seen)",
               [](PitRig& r) { r.Ctl(0x34); r.W(0, 100); r.W(0, 0); r.Advance(90'000); },
               [](PitRig& r) { r.pit.RunTimers(); }});
  p.push_back({"counter 2 gate", {}, [](PitRig& r) { r.pit.port61().Write(0, 1, 0x01); }});
  p.push_back({"counter 2 paused in mode 0 (gate low, paused ticks)",
               [](PitRig& r) {
                 r.pit.port61().Write(0, 1, 0x01);
                 r.Ctl(0xb0);
                 r.W(2, 0x00);
                 r.W(2, 0x40);
                 r.Advance(20'000);
               },
               [](PitRig& r) { r.pit.port61().Write(0, 1, 0x00); }});
  p.push_back({"counter 2 resumed in mode 0 (paused ticks, resume time)",
               [](PitRig& r) {
                 r.pit.port61().Write(0, 1, 0x01);
                 r.Ctl(0xb0);
                 r.W(2, 0x00);
                 r.W(2, 0x40);
                 r.Advance(20'000);
                 r.pit.port61().Write(0, 1, 0x00);
                 r.Advance(20'000);
               },
               [](PitRig& r) { r.pit.port61().Write(0, 1, 0x01); }});
  p.push_back({"counter 1 loaded (mode 1 waits for a gate edge)", [](PitRig& r) { r.Ctl(0x52); },
               [](PitRig& r) { r.W(1, 50); }});
  p.push_back({"speaker enable", {}, [](PitRig& r) { r.pit.port61().Write(0, 1, 0x02); }});
  CheckPieces("PIT", p);
}

// ---- CMOS RTC ---------------------------------------------------------------------------

struct RtcRig : RigBase {
  RtcCmos rtc{clock, IrqLine(&irqs, 8)};
  std::vector<Stateful*> parts() override { return {&rtc}; }
  uint8_t Rd(uint8_t i) {
    rtc.Write(0, 1, i);
    return static_cast<uint8_t>(rtc.Read(1, 1));
  }
  void Wr(uint8_t i, uint8_t v) {
    rtc.Write(0, 1, i);
    rtc.Write(1, 1, v);
  }
  void Time(const std::string& when) {
    for (uint8_t i : {0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32, 0x0a, 0x0b}) {
      trace(when + " reg " + std::to_string(i), Rd(i));
    }
  }
  Trace Probe() {
    trace.clear();
    trace("data read at the current index", rtc.Read(1, 1));
    trace("register C first", Rd(0x0c));
    Time("as found");
    for (unsigned i = 0x0e; i < 0x80; ++i) {
      if (i != 0x32) trace("RAM " + std::to_string(i), Rd(static_cast<uint8_t>(i)));
    }
    for (uint8_t i : {0x01, 0x03, 0x05}) trace("alarm " + std::to_string(i), Rd(i));
    RunDeadlines(*this, rtc, 3, "RTC");
    trace("register C", Rd(0x0c));
    // Every interrupt source on, a periodic rate, time through seconds.
    Wr(0x0a, 0x2d);
    Wr(0x0b, static_cast<uint8_t>((Rd(0x0b) & 0x0f) | 0x70));
    for (int i = 0; i < 6; ++i) {
      RunDeadlines(*this, rtc, 1, "RTC");
      trace("register C", Rd(0x0c));
    }
    Advance(1'700'000'000);
    trace("register C after 1.7 s", Rd(0x0c));
    Time("1.7 s later");
    return trace;
  }
};

TEST(StateCoverage, Rtc) {
  std::vector<Piece<RtcRig>> p = {
      {"CMOS RAM", {}, [](RtcRig& r) { r.Wr(0x40, 0x5a); }},
      {"index register", [](RtcRig& r) { r.Wr(0x41, 0x77); r.rtc.Write(0, 1, 0); },
       [](RtcRig& r) { r.rtc.Write(0, 1, 0x41); }},
      {"register A (rate, divider)", {}, [](RtcRig& r) { r.Wr(0x0a, 0x23); }},
      {"register B (data mode, enables)", {}, [](RtcRig& r) { r.Wr(0x0b, 0x06); }},
      {"alarm registers", {}, [](RtcRig& r) { r.Wr(0x01, 0x30); r.Wr(0x03, 0xc0); r.Wr(0x05, 0xc0); }},
      {"time offset (seconds written)", {}, [](RtcRig& r) { r.Wr(0x00, 0x42); }},
      {"date offset (year written)", {}, [](RtcRig& r) { r.Wr(0x09, 0x31); }},
      {"frozen time (SET)", [](RtcRig& r) { r.Wr(0x0b, 0x82); }, [](RtcRig& r) { r.Wr(0x02, 0x17); }},
      {"second phase (leaving SET mid-second)",
       [](RtcRig& r) { r.Advance(300'000'000); r.Wr(0x0b, 0x82); },
       [](RtcRig& r) { r.Wr(0x0b, 0x02); }},
      // Register C's flags are computed lazily from checked_ns: catching up early or late
      // gives the same flags, so they are covered together.
      {"flags computed up to (checked_ns) and register C", [](RtcRig& r) { r.Advance(1'500'000'000); },
       [](RtcRig& r) { r.rtc.RunTimers(); r.Rd(0x0c); }},
      {"IRQ8 level", [](RtcRig& r) { r.Wr(0x0b, 0x12); r.Advance(1'500'000'000); },
       [](RtcRig& r) { r.rtc.RunTimers(); }},
  };
  CheckPieces("RTC", p);
}

// ---- 16550A UART ------------------------------------------------------------------------

struct UartRig : RigBase {
  test::FakeEnvironment env;
  Uart16550 uart{env, ic, IrqLine(&irqs, 4)};
  std::vector<Stateful*> parts() override { return {&uart}; }
  uint8_t R(unsigned reg) { return static_cast<uint8_t>(uart.Read(reg, 1)); }
  void W(unsigned reg, uint8_t v) { uart.Write(reg, 1, v); }
  void Type(const std::string& s) {
    env.console_in.insert(env.console_in.end(), s.begin(), s.end());
    uart.PollInput();
  }
  Trace Probe() {
    trace.clear();
    env.console_out.clear();
    env.console_in.clear();  // bytes the environment still holds are not UART state
    // Registers as found (LCR first: DLAB decides what offsets 0 and 1 are).
    trace("LCR", R(3));
    trace("MCR", R(4));
    trace("SCR", R(7));
    trace("IIR", R(2));
    trace("MSR", R(6));
    trace("LSR", R(5));
    trace("offset 1 as found", R(1));
    trace("wants input", uart.WantsInput());
    W(3, 0x83);
    trace("DLL", R(0));
    trace("DLM", R(1));
    W(3, 0x03);
    trace("IER", R(1));
    for (int i = 0; i < 18; ++i) {
      trace("LSR", R(5));
      trace("RBR", R(0));
    }
    // Input, output and interrupts through OUT2.
    W(4, 0x0b);
    W(1, 0x0f);
    Type("0123456789abcdefXY");
    trace("IIR after input", R(2));
    trace("LSR after input", R(5));
    for (int i = 0; i < 4; ++i) trace("RBR", R(0));
    W(0, 'Q');
    trace("IIR after THR write", R(2));
    trace("IIR again", R(2));
    W(4, 0x1f);  // loopback
    W(0, 'L');
    trace("RBR loopback", R(0));
    trace("MSR loopback", R(6));
    W(4, 0x0b);
    W(2, 0x07);
    trace("IIR after FIFO reset", R(2));
    trace("console out", Fnv(env.console_out.data(), env.console_out.size()));
    trace("console out bytes", env.console_out.size());
    return trace;
  }
};

TEST(StateCoverage, Uart) {
  auto fifo = [](UartRig& r) { r.W(2, 0x01); };
  std::vector<Piece<UartRig>> p = {
      {"receive FIFO contents and count", fifo, [](UartRig& r) { r.Type("hello"); }},
      {"receive FIFO head (bytes consumed)", [](UartRig& r) { r.W(2, 0x01); r.Type("hello"); },
       [](UartRig& r) { r.R(0); r.R(0); }},
      {"IER", {}, [](UartRig& r) { r.W(1, 0x05); }},
      {"FCR (FIFO enable, trigger level)", {}, [](UartRig& r) { r.W(2, 0x81); }},
      {"LCR", {}, [](UartRig& r) { r.W(3, 0x1b); }},
      {"MCR", {}, [](UartRig& r) { r.W(4, 0x03); }},
      {"LSR overrun (loopback into a full receiver)", [](UartRig& r) { r.W(4, 0x10); },
       [](UartRig& r) { r.W(0, 'a'); r.W(0, 'b'); }},
      {"MSR delta bits", {}, [](UartRig& r) { r.W(4, 0x10); r.W(4, 0x00); }},
      {"scratch", {}, [](UartRig& r) { r.W(7, 0x99); }},
      {"divisor latch low", {}, [](UartRig& r) { r.W(3, 0x80); r.W(0, 0x01); r.W(3, 0x00); }},
      {"divisor latch high", {}, [](UartRig& r) { r.W(3, 0x80); r.W(1, 0x02); r.W(3, 0x00); }},
      {"THR-empty interrupt pending", [](UartRig& r) { r.W(1, 0x02); r.R(2); },
       [](UartRig& r) { r.W(7, 0); r.W(0, 'x'); }},
      {"IRQ line level", [](UartRig& r) { r.W(1, 0x01); r.Type("z"); },
       [](UartRig& r) { r.W(4, 0x08); }},
  };
  CheckPieces("UART", p);
}

// ---- local APIC and I/O APIC ------------------------------------------------------------

struct ApicRig : RigBase {
  LocalApic lapic{clock};
  IoApic ioapic{lapic};
  struct Intr : IntrListener {
    int changes = 0;
    void InterruptStateChanged() override { ++changes; }
  } listener;
  bool ioapic_first = false;
  ApicRig() {
    lapic.SetIoApic(&ioapic);
    lapic.SetListener(&listener);
  }
  std::vector<Stateful*> parts() override {
    if (ioapic_first) return {&ioapic, &lapic};
    return {&lapic, &ioapic};
  }
  void L(unsigned reg, uint32_t v) { lapic.Write(reg, 4, v); }
  uint32_t LR(unsigned reg) { return static_cast<uint32_t>(lapic.Read(reg, 4)); }
  void Redir(unsigned pin, uint64_t e) {
    ioapic.Write(0, 4, 0x10 + 2 * pin);
    ioapic.Write(0x10, 4, e & 0xffffffff);
    ioapic.Write(0, 4, 0x11 + 2 * pin);
    ioapic.Write(0x10, 4, e >> 32);
  }
  uint32_t IoR(unsigned reg) {
    ioapic.Write(0, 4, reg);
    return static_cast<uint32_t>(ioapic.Read(0x10, 4));
  }
  void LapicRegs(const std::string& when) {
    for (unsigned reg = 0x20; reg <= 0x3e0; reg += 0x10) {
      trace(when + " LAPIC " + std::to_string(reg), LR(reg));
    }
    trace(when + " deliverable", lapic.HasDeliverable());
    trace(when + " enabled", lapic.Enabled());
    trace(when + " ExtINT", lapic.AcceptsExtInt());
    trace(when + " apic base", lapic.apic_base_msr());
    trace(when + " tsc deadline", lapic.tsc_deadline());
    trace(when + " deadline", lapic.NextDeadlineNs());
  }
  void Drain(const std::string& when) {
    for (int i = 0; i < 4; ++i) {
      trace(when + " ack", lapic.Acknowledge());
      L(0xb0, 0);
    }
  }
  Trace Probe() {
    trace.clear();
    trace("IOREGSEL as found", ioapic.Read(0, 4));
    trace("IOWIN as found", ioapic.Read(0x10, 4));
    trace("IOAPIC id", IoR(0));
    for (unsigned pin = 0; pin < IoApic::kPins; ++pin) {
      trace("redir lo " + std::to_string(pin), IoR(0x10 + 2 * pin));
      trace("redir hi " + std::to_string(pin), IoR(0x11 + 2 * pin));
    }
    LapicRegs("as found");
    L(0x280, 0);  // ESR write: the errors collected since the last one become visible
    trace("ESR after write", LR(0x280));
    // Enable everything and look at what is pending and what the timer does.
    lapic.set_apic_base_msr(LocalApic::kApicBaseMsrDefault);
    L(0xf0, 0x1ff);
    LapicRegs("enabled");
    Drain("pending");
    RunDeadlines(*this, lapic, 3, "LAPIC");
    Drain("after timers");
    // Lines through the I/O APIC: unmask every pin as level-triggered vector 0x40+pin...
    for (unsigned pin = 0; pin < IoApic::kPins; ++pin) {
      uint64_t e = ioapic.redirection(pin);
      trace("unmask " + std::to_string(pin), e);
      Redir(pin, (e & ~(uint64_t{1} << 16)) | 0x8000 | (0x40 + pin));
    }
    LapicRegs("pins unmasked");
    Drain("pin requests");
    // ...then edge-triggered, each line toggled.
    for (unsigned pin = 0; pin < IoApic::kPins; ++pin) {
      Redir(pin, 0x60 + pin);
      ioapic.SetIrq(pin, pin % 3 != 0);
    }
    LapicRegs("edges");
    Drain("edges");
    L(0x320, 0x20055);  // periodic timer
    L(0x380, 1000);
    RunDeadlines(*this, lapic, 3, "LAPIC periodic");
    Drain("periodic");
    return trace;
  }
};

TEST(StateCoverage, LocalApic) {
  auto on = [](ApicRig& r) { r.L(0xf0, 0x1ff); };
  std::vector<Piece<ApicRig>> p = {
      {"APIC base MSR (hardware enable)", {}, [](ApicRig& r) { r.lapic.set_apic_base_msr(0xfee00100); }},
      {"ID", on, [](ApicRig& r) { r.L(0x20, 0x05000000); }},
      {"TPR", on, [](ApicRig& r) { r.L(0x80, 0x50); }},
      {"LDR", on, [](ApicRig& r) { r.L(0xd0, 0x03000000); }},
      {"DFR", on, [](ApicRig& r) { r.L(0xe0, 0x0fffffff); }},
      {"SVR", {}, [](ApicRig& r) { r.L(0xf0, 0x1ff); }},
      {"IRR", on, [](ApicRig& r) { r.lapic.AcceptInterrupt(0x61, false); }},
      {"ISR", [](ApicRig& r) { r.L(0xf0, 0x1ff); r.lapic.AcceptInterrupt(0x61, false); },
       [](ApicRig& r) { r.lapic.Acknowledge(); }},
      {"TMR", [](ApicRig& r) { r.L(0xf0, 0x1ff); r.lapic.AcceptInterrupt(0x61, false); r.lapic.Acknowledge(); },
       [](ApicRig& r) { r.lapic.AcceptInterrupt(0x71, true); r.lapic.Acknowledge(); r.L(0xb0, 0); r.lapic.AcceptInterrupt(0x71, false); r.lapic.AcceptInterrupt(0x71, true); }},
      {"ESR pending errors", on, [](ApicRig& r) { r.lapic.AcceptInterrupt(5, false); }},
      {"ESR", [](ApicRig& r) { r.L(0xf0, 0x1ff); r.lapic.AcceptInterrupt(5, false); },
       [](ApicRig& r) { r.L(0x280, 0); }},
      {"ICR low", on, [](ApicRig& r) { r.L(0x300, 0x000c4500); }},
      {"ICR high", on, [](ApicRig& r) { r.L(0x310, 0x07000000); }},
      {"LVT CMCI", on, [](ApicRig& r) { r.L(0x2f0, 0x42); }},
      {"LVT timer", on, [](ApicRig& r) { r.L(0x320, 0x43); }},
      {"LVT thermal", on, [](ApicRig& r) { r.L(0x330, 0x44); }},
      {"LVT perf", on, [](ApicRig& r) { r.L(0x340, 0x45); }},
      {"LVT LINT0", on, [](ApicRig& r) { r.L(0x350, 0x700); }},
      {"LVT LINT1", on, [](ApicRig& r) { r.L(0x360, 0x46); }},
      {"LVT error", on, [](ApicRig& r) { r.L(0x370, 0x47); }},
      {"timer initial count and expiry", [](ApicRig& r) { r.L(0xf0, 0x1ff); r.L(0x320, 0x50); },
       [](ApicRig& r) { r.L(0x380, 5000); }},
      {"timer divide configuration", [](ApicRig& r) { r.L(0xf0, 0x1ff); r.L(0x320, 0x50); },
       [](ApicRig& r) { r.L(0x3e0, 0x3); }},
      {"timer restarted later (start, expiry)",
       [](ApicRig& r) { r.L(0xf0, 0x1ff); r.L(0x320, 0x50); r.L(0x380, 5000); r.Advance(1000); },
       [](ApicRig& r) { r.L(0x380, 5000); }},
      {"TSC deadline", [](ApicRig& r) { r.L(0xf0, 0x1ff); r.L(0x320, 0x40050); },
       [](ApicRig& r) { r.lapic.set_tsc_deadline(77'000); }},
  };
  CheckPieces("local APIC", p);
}

struct IoApicRig : ApicRig {
  IoApicRig() {
    ioapic_first = true;
    L(0xf0, 0x1ff);
  }
};

TEST(StateCoverage, IoApic) {
  std::vector<Piece<IoApicRig>> p = {
      {"IOREGSEL", {}, [](IoApicRig& r) { r.ioapic.Write(0, 4, 0x12); }},
      {"ID", {}, [](IoApicRig& r) { r.ioapic.Write(0, 4, 0); r.ioapic.Write(0x10, 4, 0x03000000); }},
      {"pin requests (edge latched while masked)", {}, [](IoApicRig& r) { r.ioapic.SetIrq(5, true); r.ioapic.SetIrq(5, false); }},
      {"pin levels", [](IoApicRig& r) { r.Redir(6, 0x10036); r.ioapic.SetIrq(6, true); r.Redir(6, 0x36); },
       [](IoApicRig& r) { r.ioapic.SetIrq(6, false); }},
      {"remote IRR", [](IoApicRig& r) { r.Redir(9, 0x18039); },
       [](IoApicRig& r) { r.ioapic.SetIrq(9, true); r.Redir(9, 0x8039); }},
  };
  for (unsigned pin : {0u, 7u, 23u}) {
    const std::string n = "redirection entry " + std::to_string(pin);
    p.push_back({n + " vector/mode", {}, [pin](IoApicRig& r) { r.Redir(pin, 0x10000 | 0x155); }});
    p.push_back({n + " mask", {}, [pin](IoApicRig& r) { r.Redir(pin, 0x00); }});
    p.push_back({n + " trigger/polarity", {}, [pin](IoApicRig& r) { r.Redir(pin, 0x1a000); }});
    p.push_back({n + " destination", {}, [pin](IoApicRig& r) { r.Redir(pin, 0x0300000000010000ull); }});
  }
  CheckPieces("I/O APIC", p);
}

// ---- interrupt router (derived state: its INTR level must follow a restore) -------------

struct RouterRig : RigBase {
  PicPair pic;
  LocalApic lapic{clock};
  IoApic ioapic{lapic};
  InterruptRouter router{pic, ioapic, lapic};
  bool intr = false;
  RouterRig() {
    router.SetIntrLineCallback([this](bool level) { intr = level; });
    for (auto [io, v] : {std::pair{&pic.master_io(), std::array<uint8_t, 4>{0x11, 0x20, 4, 1}},
                         std::pair{&pic.slave_io(), std::array<uint8_t, 4>{0x11, 0x28, 2, 1}}}) {
      io->Write(0, 1, v[0]);
      for (int i = 1; i < 4; ++i) io->Write(1, 1, v[i]);
    }
  }
  std::vector<Stateful*> parts() override { return {&pic, &lapic, &ioapic}; }
  std::vector<uint8_t> Save() override {
    std::vector<uint8_t> all;
    for (Stateful* p : parts()) {
      std::vector<uint8_t> b = SaveToBytes(*p);
      all.insert(all.end(), b.begin(), b.end());
    }
    return all;
  }
  Trace Probe() {
    trace.clear();
    for (int i = 0; i < 4; ++i) {
      trace("INTR", intr);
      trace("pending", router.InterruptPending());
      if (!intr) break;
      trace("vector", router.Acknowledge());
    }
    router.SetIrq(4, true);
    trace("INTR after IRQ4", intr);
    return trace;
  }
};

TEST(StateCoverage, InterruptRouter) {
  std::vector<Piece<RouterRig>> p = {
      {"PIC request reaches INTR", {}, [](RouterRig& r) { r.router.SetIrq(3, true); }},
      {"LAPIC request reaches INTR", [](RouterRig& r) { r.lapic.Write(0xf0, 4, 0x1ff); },
       [](RouterRig& r) { r.lapic.AcceptInterrupt(0x55, false); }},
      {"virtual wire (LINT0 ExtINT)",
       [](RouterRig& r) { r.lapic.Write(0xf0, 4, 0x1ff); r.router.SetIrq(3, true); },
       [](RouterRig& r) { r.lapic.Write(0x350, 4, 0x700); }},
  };
  CheckPieces("interrupt router", p);
}

// ---- debug exit and PCI host ------------------------------------------------------------

struct DebugExitRig : RigBase {
  DebugExit dev;
  std::vector<Stateful*> parts() override { return {&dev}; }
  Trace Probe() {
    trace.clear();
    trace("requested", dev.exit_requested());
    trace("status", static_cast<uint64_t>(dev.exit_status()));
    return trace;
  }
};

TEST(StateCoverage, DebugExit) {
  std::vector<Piece<DebugExitRig>> p = {
      {"exit requested", {}, [](DebugExitRig& r) { r.dev.Write(0, 1, 0); }},
      {"exit status", [](DebugExitRig& r) { r.dev.Write(0, 1, 3); },
       [](DebugExitRig& r) { r.dev.Write(0, 1, 5); }},
  };
  CheckPieces("debug exit", p);
}

struct AcpiPmRig : RigBase {
  AcpiPm dev{5, 1};
  std::vector<Stateful*> parts() override { return {&dev}; }
  Trace Probe() {
    trace.clear();
    trace("request", static_cast<uint64_t>(dev.request()));
    return trace;
  }
};

TEST(StateCoverage, AcpiPm) {
  std::vector<Piece<AcpiPmRig>> p = {
      {"power-off requested", {}, [](AcpiPmRig& r) { r.dev.Write(0, 1, (5 << 2) | 0x20); }},
      {"reset requested", {}, [](AcpiPmRig& r) { r.dev.Write(2, 1, 1); }},
  };
  CheckPieces("acpi pm", p);
}

struct PciRig : RigBase {
  PciHostBridge pci;
  std::vector<Stateful*> parts() override { return {&pci}; }
  Trace Probe() {
    trace.clear();
    trace("CONFIG_ADDRESS", pci.Read(0, 4));
    for (unsigned off = 4; off < 8; ++off) trace("CONFIG_DATA byte", pci.Read(off, 1));
    pci.Write(0, 4, 0x80000004);
    trace("command/status", pci.Read(4, 4));
    return trace;
  }
};

TEST(StateCoverage, PciHost) {
  std::vector<Piece<PciRig>> p = {
      {"CONFIG_ADDRESS", {}, [](PciRig& r) { r.pci.Write(0, 4, 0x80000008); }},
      {"command register", {}, [](PciRig& r) { r.pci.Write(0, 4, 0x80000004); r.pci.Write(4, 2, 0x7); r.pci.Write(0, 4, 0); }},
  };
  CheckPieces("PCI host bridge", p);
}

// ---- virtio-mmio devices ----------------------------------------------------------------

// A guest driver on guest RAM: queue q's rings at 0x10000*(q+1), buffers from 0x80000.
class Driver {
 public:
  static constexpr uint16_t kSize = 16;
  static constexpr uint16_t kNext = 1, kWrite = 2;
  Driver(GuestMemory& mem, VirtioMmioDevice& dev) : mem_(mem), dev_(dev) {}
  void W(uint64_t reg, uint32_t v) { dev_.Write(reg, 4, v); }
  uint32_t R(uint64_t reg) { return static_cast<uint32_t>(dev_.Read(reg, 4)); }
  static uint64_t Desc(unsigned q) { return 0x10000 * (q + 1); }
  static uint64_t Avail(unsigned q) { return Desc(q) + 0x1000; }
  static uint64_t Used(unsigned q) { return Desc(q) + 0x2000; }
  void Features() {
    W(0x70, 1);
    W(0x70, 3);
    W(0x24, 1);
    W(0x20, 1);
    W(0x70, 0x0b);
  }
  void Queue(unsigned q) {
    W(0x30, q);
    W(0x38, kSize);
    W(0x80, static_cast<uint32_t>(Desc(q)));
    W(0x90, static_cast<uint32_t>(Avail(q)));
    W(0xa0, static_cast<uint32_t>(Used(q)));
    W(0x44, 1);
  }
  void Init(unsigned queues) {
    Features();
    for (unsigned q = 0; q < queues; ++q) Queue(q);
    W(0x70, 0x0f);
  }
  void SetDesc(unsigned q, uint16_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next) {
    uint8_t d[16];
    std::memcpy(d, &addr, 8);
    std::memcpy(d + 8, &len, 4);
    std::memcpy(d + 12, &flags, 2);
    std::memcpy(d + 14, &next, 2);
    mem_.Write(Desc(q) + 16ull * i, d, 16);
  }
  // The avail index lives in guest memory, so a restored driver continues from it.
  uint16_t AvailIdx(unsigned q) {
    uint16_t v = 0;
    mem_.Read(Avail(q) + 2, &v, 2);
    return v;
  }
  void Publish(unsigned q, uint16_t head) {
    uint16_t idx = AvailIdx(q);
    mem_.Write(Avail(q) + 4 + 2ull * (idx % kSize), &head, 2);
    ++idx;
    mem_.Write(Avail(q) + 2, &idx, 2);
  }
  void Registers(Trace& t, const std::string& when, unsigned queues) {
    for (uint64_t reg : {0x060u, 0x070u}) t(when + " reg " + std::to_string(reg), R(reg));
    // Selectors as found, before the probe changes them.
    t(when + " features at selector", R(0x010));
    t(when + " queue num max at selector", R(0x034));
    t(when + " queue num at selector", R(0x038));
    for (unsigned q = 0; q < queues; ++q) {
      W(0x30, q);
      for (uint64_t reg : {0x038u, 0x044u, 0x080u, 0x084u, 0x090u, 0x094u, 0x0a0u, 0x0a4u}) {
        t(when + " queue " + std::to_string(q) + " reg " + std::to_string(reg), R(reg));
      }
    }
  }
  void UsedRing(Trace& t, unsigned q) {
    uint8_t ring[4 + 8 * kSize];
    mem_.Read(Used(q), ring, sizeof ring);
    t("used ring " + std::to_string(q), Fnv(ring, sizeof ring));
  }

 private:
  GuestMemory& mem_;
  VirtioMmioDevice& dev_;
};

template <class Dev>
struct VirtioRig : RigBase {
  GuestMemory mem{1 << 20};
  test::FakeEnvironment env;
  std::unique_ptr<Dev> dev;
  std::unique_ptr<Driver> drv;
  std::vector<Stateful*> parts() override { return {dev.get()}; }
  GuestMemory* memory() override { return &mem; }
  void Make(std::unique_ptr<Dev> d) {
    dev = std::move(d);
    drv = std::make_unique<Driver>(mem, *dev);
  }
  void Common(const std::string& when, unsigned queues) {
    trace(when + " broken reason", Fnv(reinterpret_cast<const uint8_t*>(dev->broken_reason().data()),
                                       dev->broken_reason().size()));
    drv->Registers(trace, when, queues);
    for (unsigned q = 0; q < queues; ++q) drv->UsedRing(trace, q);
  }
  // Features as the driver would set them again: shows what was written before FEATURES_OK.
  void Renegotiate() {
    drv->W(0x70, 0x03);
    drv->W(0x70, 0x0b);
    trace("FEATURES_OK with the features as found", drv->R(0x70));
    drv->W(0x70, 0x03);
    drv->W(0x20, 1);  // VERSION_1 if the selector is 1, an unoffered feature bit if 0
    drv->W(0x70, 0x0b);
    trace("FEATURES_OK after a write at the selector", drv->R(0x70));
    drv->W(0x24, 1);
    drv->W(0x20, 1);
    drv->W(0x24, 0);
    drv->W(0x20, 0);
    drv->W(0x70, 0x0b);
    drv->W(0x70, 0x0f);
  }
  uint64_t Buffer(uint64_t addr, uint64_t len) { return Fnv(mem.data() + addr, len); }
};

struct RngRig : VirtioRig<VirtioRng> {
  RngRig() { Make(std::make_unique<VirtioRng>(mem, clock, IrqLine(&irqs, 5), env)); }
  Trace Probe() {
    trace.clear();
    env.next_entropy = 0;  // the environment's own counters are not device state
    env.entropy_calls = 0;
    Common("as found", 1);
    Renegotiate();
    drv->W(0x64, 3);
    // Two entropy requests through whatever queue state there is.
    for (uint16_t i = 0; i < 2; ++i) {
      const uint16_t head = static_cast<uint16_t>(8 + i);
      drv->SetDesc(0, head, 0x80000 + 0x100 * i, 64, Driver::kWrite, 0);
      drv->Publish(0, head);
      drv->W(0x50, 0);
      drv->UsedRing(trace, 0);
      trace("interrupt status", drv->R(0x60));
      drv->W(0x64, 1);
    }
    trace("entropy buffers", Buffer(0x80000, 0x200));
    trace("entropy calls", env.entropy_calls);
    Common("after requests", 1);
    return trace;
  }
};

template <class R>
std::vector<Piece<R>> TransportPieces(unsigned queues) {
  std::vector<Piece<R>> p = {
      {"device status", {}, [](R& r) { r.drv->W(0x70, 1); }},
      {"device features selector", {}, [](R& r) { r.drv->W(0x14, 1); }},
      {"driver features selector", {}, [](R& r) { r.drv->W(0x24, 1); }},
      {"driver features", [](R& r) { r.drv->W(0x70, 3); r.drv->W(0x24, 1); },
       [](R& r) { r.drv->W(0x20, 1); }},
      {"queue selector", [](R& r) { r.drv->W(0x38, 8); }, [](R& r) { r.drv->W(0x30, 1); }},
      {"queue size", {}, [](R& r) { r.drv->W(0x38, 8); }},
      {"queue descriptor address", {}, [](R& r) { r.drv->W(0x80, 0x20000); }},
      {"queue driver (avail) address", {}, [](R& r) { r.drv->W(0x90, 0x21000); }},
      {"queue device (used) address", {}, [](R& r) { r.drv->W(0xa0, 0x22000); }},
      {"queue ready", [](R& r) { r.drv->Features(); r.drv->Queue(0); r.drv->W(0x44, 0); },
       [](R& r) { r.drv->W(0x44, 1); }},
      {"NEEDS_RESET and its reason",
       [queues](R& r) { r.drv->Init(queues); },
       [queues](R& r) {
         const unsigned q = queues - 1;  // rng/blk: the request queue; net: transmit
         uint16_t idx = 200;
         r.mem.Write(Driver::Avail(q) + 2, &idx, 2);
         r.drv->W(0x50, q);
       }},
  };
  return p;
}

TEST(StateCoverage, VirtioRng) {
  std::vector<Piece<RngRig>> p = TransportPieces<RngRig>(1);
  p.push_back({"queue progress (next avail/used)",
               [](RngRig& r) { r.drv->Init(1); },
               [](RngRig& r) {
                 r.drv->SetDesc(0, 2, 0x90000, 16, Driver::kWrite, 0);
                 r.drv->Publish(0, 2);
                 r.drv->W(0x50, 0);
                 r.drv->W(0x64, 1);
               }});
  p.push_back({"interrupt status and line",
               [](RngRig& r) {
                 r.drv->Init(1);
                 r.drv->SetDesc(0, 2, 0x90000, 16, Driver::kWrite, 0);
                 r.drv->Publish(0, 2);
                 r.drv->W(0x50, 0);
               },
               [](RngRig& r) { r.drv->W(0x64, 1); }});
  CheckPieces("virtio-rng", p);
}

// A 64 KiB disk image with a fixed pattern, shared by every virtio-blk rig of this binary.
const std::string& DiskImage() {
  static const std::string path = [] {
    const char* dir = std::getenv("TMPDIR");
    std::string p = std::string(dir && *dir ? dir : "/tmp") + "/vmrr-state-coverage-" +
                    std::to_string(getpid()) + ".img";
    std::vector<uint8_t> data(64 * 1024);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + (i >> 9));
    FILE* f = std::fopen(p.c_str(), "wb");
    if (!f || std::fwrite(data.data(), 1, data.size(), f) != data.size()) std::abort();
    std::fclose(f);
    std::atexit([] { std::remove(DiskImage().c_str()); });
    return p;
  }();
  return path;
}

struct BlkRig : VirtioRig<VirtioBlock> {
  BlkRig() {
    Make(std::make_unique<VirtioBlock>(mem, clock, IrqLine(&irqs, 6), FileDiskBackend::Open(DiskImage(), false),
                                       VirtioBlock::Options{}));
  }
  // A request: header at 0x70000+0x100*slot, data at 0xa0000+0x1000*slot, status byte.
  void Request(uint16_t slot, uint32_t type, uint64_t sector, bool notify = true) {
    const uint64_t hdr = 0x70000 + 0x100 * slot, data = 0xa0000 + 0x1000 * slot;
    uint8_t h[16] = {};
    std::memcpy(h, &type, 4);
    std::memcpy(h + 8, &sector, 8);
    mem.Write(hdr, h, 16);
    if (type == 1) {
      std::vector<uint8_t> payload(512, static_cast<uint8_t>(0xc0 + slot));
      mem.Write(data, payload.data(), payload.size());
    }
    const uint16_t d = static_cast<uint16_t>(3 * slot);
    drv->SetDesc(0, d, hdr, 16, Driver::kNext, static_cast<uint16_t>(d + 1));
    drv->SetDesc(0, static_cast<uint16_t>(d + 1), data, 512,
                 static_cast<uint16_t>(Driver::kNext | (type == 0 ? Driver::kWrite : 0)),
                 static_cast<uint16_t>(d + 2));
    drv->SetDesc(0, static_cast<uint16_t>(d + 2), hdr + 0x80, 1, Driver::kWrite, 0);
    drv->Publish(0, d);
    if (notify) drv->W(0x50, 0);
  }
  Trace Probe() {
    trace.clear();
    Common("as found", 1);
    trace("overlay blocks", dev->overlay_blocks());
    RunDeadlines(*this, *dev, 3, "blk");
    drv->UsedRing(trace, 0);
    Renegotiate();
    drv->W(0x64, 3);
    // Read back the sectors pending writes or the overlay may hold, then finish them.
    for (uint16_t slot = 0; slot < 3; ++slot) Request(static_cast<uint16_t>(3 + slot), 0, slot * 9u);
    RunDeadlines(*this, *dev, 4, "blk");
    drv->UsedRing(trace, 0);
    trace("interrupt status", drv->R(0x60));
    for (uint16_t slot = 3; slot < 6; ++slot) {
      trace("read data", Buffer(0xa0000 + 0x1000 * slot, 512));
      trace("read status", mem.data()[0x70000 + 0x100 * slot + 0x80]);
    }
    Common("after requests", 1);
    return trace;
  }
};

TEST(StateCoverage, VirtioBlk) {
  std::vector<Piece<BlkRig>> p = TransportPieces<BlkRig>(1);
  p.push_back({"requests in flight (pending completions)",
               [](BlkRig& r) { r.drv->Init(1); },
               [](BlkRig& r) { r.Request(0, 0, 4); }});
  p.push_back({"overlay (blocks written)",
               [](BlkRig& r) { r.drv->Init(1); r.Request(0, 0, 2); },
               [](BlkRig& r) { r.Request(1, 1, 9); }});
  CheckPieces("virtio-blk", p);
}

struct NetRig : VirtioRig<VirtioNet> {
  NetRig() {
    Make(std::make_unique<VirtioNet>(mem, clock, IrqLine(&irqs, 7), env,
                                     std::array<uint8_t, 6>{2, 0, 0, 0, 0, 1}));
  }
  Trace Probe() {
    trace.clear();
    env.net_out.clear();
    Common("as found", 2);
    Renegotiate();
    drv->W(0x64, 3);
    // Receive: two posted buffers, three frames waiting.
    for (uint16_t i = 0; i < 2; ++i) {
      drv->SetDesc(0, static_cast<uint16_t>(4 + i), 0xb0000 + 0x800 * i, 0x800, Driver::kWrite, 0);
      drv->Publish(0, static_cast<uint16_t>(4 + i));
    }
    for (uint8_t f = 0; f < 3; ++f) env.net_in.push_back(std::vector<uint8_t>(60 + f, f));
    trace("wants input", dev->WantsInput());
    dev->PollInput();
    trace("frames left", env.net_in.size());
    trace("rx buffers", Buffer(0xb0000, 0x1000));
    drv->UsedRing(trace, 0);
    // Transmit one frame.
    std::vector<uint8_t> frame(12 + 64, 0xee);
    mem.Write(0xc0000, frame.data(), frame.size());
    drv->SetDesc(1, 6, 0xc0000, static_cast<uint32_t>(frame.size()), 0, 0);
    drv->Publish(1, 6);
    drv->W(0x50, 1);
    trace("frames sent", env.net_out.size());
    for (const auto& f : env.net_out) trace("sent frame", Fnv(f.data(), f.size()));
    Common("after traffic", 2);
    return trace;
  }
};

TEST(StateCoverage, VirtioNet) {
  std::vector<Piece<NetRig>> p = TransportPieces<NetRig>(2);
  p.push_back({"receive queue progress",
               [](NetRig& r) {
                 r.drv->Init(2);
                 r.drv->SetDesc(0, 1, 0xd0000, 0x800, Driver::kWrite, 0);
                 r.drv->Publish(0, 1);
               },
               [](NetRig& r) {
                 r.env.net_in.push_back(std::vector<uint8_t>(60, 0x42));
                 r.dev->PollInput();
                 r.drv->W(0x64, 1);
               }});
  p.push_back({"transmit queue progress",
               [](NetRig& r) { r.drv->Init(2); },
               [](NetRig& r) {
                 std::vector<uint8_t> frame(12 + 60, 0x17);
                 r.mem.Write(0xd8000, frame.data(), frame.size());
                 r.drv->SetDesc(1, 3, 0xd8000, static_cast<uint32_t>(frame.size()), 0, 0);
                 r.drv->Publish(1, 3);
                 r.drv->W(0x50, 1);
                 r.drv->W(0x64, 1);
               }});
  CheckPieces("virtio-net", p);
}

}  // namespace
}  // namespace vmrr::coverage
