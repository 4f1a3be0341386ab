// DeviceRegistry: windows mapped and overlaps refused, timers in registration order, the
// deadline as the minimum, input polled, the manifest-checked all-or-nothing save/load, and a
// test-only device wired completely (mapped, timed, polled, saved) by its one registration line.
#include "hv-hooks/devices/device_registry.h"

#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "tests/unit/devices/test_support.h"

namespace vmrr {
namespace {

bool Contains(const char* text, const char* part) {
  return std::string(text).find(part) != std::string::npos;
}

// A periodic tick counter: port offset 0 reads the tick count, a byte written there starts
// ticking every 100 * byte ns; offset 1 reads the number of console bytes taken at input points. Its MMIO
// window (a separate BusDevice, as the PIT's port 0x61 is) reads the period.
class Metronome : public BusDevice, public Device {
 public:
  Metronome(const VirtualClock& clock, Environment& env) : clock_(clock), env_(env) {}

  std::string_view name() const override { return "metronome"; }
  uint64_t Read(uint64_t offset, unsigned) override { return offset == 0 ? ticks_ : inputs_; }
  void Write(uint64_t offset, unsigned, uint64_t value) override {
    if (offset != 0) return;
    period_ns_ = 100 * value;
    next_ns_ = value ? clock_.NowNs() + period_ns_ : kNoDeadline;
  }
  uint64_t NextDeadlineNs() const override { return next_ns_; }
  void RunTimers() override {
    while (next_ns_ <= clock_.NowNs()) {
      ++ticks_;
      next_ns_ += period_ns_;
    }
  }
  void PollInput() override { inputs_ += env_.PollConsoleInput(clock_.icount(), 4).size(); }

  void SaveState(StateWriter& out) const override {
    out.Begin("MTRN", 1);
    out.U64(ticks_);
    out.U64(period_ns_);
    out.U64(next_ns_);
    out.U64(inputs_);
  }
  void LoadState(StateReader& in) override {
    in.Begin("MTRN", 1);
    uint64_t ticks = in.U64(), period = in.U64(), next = in.U64(), inputs = in.U64();
    ticks_ = ticks;
    period_ns_ = period;
    next_ns_ = next;
    inputs_ = inputs;
  }

  BusDevice& period_io() { return period_io_; }
  uint64_t ticks() const { return ticks_; }

 private:
  struct PeriodIo : BusDevice {
    explicit PeriodIo(Metronome* m) : m_(m) {}
    uint64_t Read(uint64_t, unsigned) override { return m_->period_ns_; }
    void Write(uint64_t, unsigned, uint64_t) override {}
    Metronome* m_;
  };
  const VirtualClock& clock_;
  Environment& env_;
  uint64_t ticks_ = 0;
  uint64_t period_ns_ = 0;
  uint64_t next_ns_ = kNoDeadline;
  uint64_t inputs_ = 0;
  PeriodIo period_io_{this};
};

// A device with no bus interface of its own: a name, a settable deadline, a log of its timer
// runs, one byte of state, and a switch that makes it refuse any saved state.
class Probe : public Device {
 public:
  Probe(std::string name, std::vector<std::string>* log) : name_(std::move(name)), log_(log) {}
  std::string_view name() const override { return name_; }
  uint64_t NextDeadlineNs() const override { return deadline; }
  void RunTimers() override { log_->push_back(name_); }
  void SaveState(StateWriter& out) const override {
    out.Begin("PROB", 1);
    out.U8(value);
  }
  void LoadState(StateReader& in) override {
    in.Begin("PROB", 1);
    uint8_t v = in.U8();
    if (refuse_load) in.Fail(name_ + " refuses");
    value = v;
  }

  uint64_t deadline = kNoDeadline;
  uint8_t value = 0;
  bool refuse_load = false;

 private:
  std::string name_;
  std::vector<std::string>* log_;
};

struct Sink : BusDevice {
  uint64_t Read(uint64_t, unsigned) override { return 0x5a; }
  void Write(uint64_t, unsigned, uint64_t) override {}
};

class DeviceRegistryTest : public ::testing::Test {
 protected:
  DeviceRegistryTest() : clock(ic, VirtualClock::Mode::kIcount) {
    clock.Reset(VirtualClock::kDefaultIcountEpochNs);
  }
  test::FakeIcount ic;
  VirtualClock clock;
  test::FakeEnvironment env;
  std::vector<std::string> log;
  PortBus ports;
  MmioBus mmio;
};

TEST_F(DeviceRegistryTest, MapsEveryWindowOnItsBus) {
  Metronome m(clock, env);
  Sink sink;
  Probe p("probe", &log);
  DeviceRegistry r;
  r.Add(m, {Port(0x100, 2), Mmio(0x10000, 0x10, m.period_io())});
  r.Add(p, {Port(0x200, 1, sink)});
  r.MapInto(ports, mmio);
  ports.Write(0x100, 1, 7);
  EXPECT_EQ(mmio.Read(0x10008, 4), 700u) << "the MMIO window reaches the named BusDevice";
  EXPECT_EQ(ports.Read(0x100, 1), 0u) << "the port window reaches the device itself";
  EXPECT_EQ(ports.Read(0x200, 1), 0x5au);
  EXPECT_EQ(ports.Read(0x102, 1), 0xffu) << "nothing mapped beyond the window's length";
  EXPECT_EQ(mmio.Read(0x100, 1), 0xffu) << "a port window is not mapped on the MMIO bus";
  EXPECT_EQ(r.names(), (std::vector<std::string>{"metronome", "probe"}));
}

TEST_F(DeviceRegistryTest, RefusesOverlappingWindowsNamingBothDevices) {
  Metronome m(clock, env);
  Sink sink;
  Probe p("probe", &log), q("other", &log);
  DeviceRegistry r;
  r.Add(m, {Port(0x100, 4), Mmio(0x1000, 0x100, m.period_io())});
  try {
    r.Add(p, {Port(0x103, 2, sink)});
    FAIL() << "overlap accepted";
  } catch (const BusError& e) {
    EXPECT_TRUE(Contains(e.what(), "probe")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "metronome")) << e.what();
  }
  EXPECT_THROW(r.Add(p, {Mmio(0x10ff, 1, sink)}), BusError);
  EXPECT_THROW(r.Add(p, {Port(0x300, 2, sink), Port(0x301, 1, sink)}), BusError)
      << "a device's own windows overlap";
  EXPECT_THROW(r.Add(p, {Port(0x300, 0, sink)}), BusError) << "empty window";
  EXPECT_THROW(r.Add(p, {Mmio(~uint64_t{0}, 2, sink)}), BusError) << "wrapping window";
  EXPECT_EQ(r.size(), 1u) << "a refused registration registers nothing";
  // The same address in the other space is no overlap; a window without a target needs the
  // device itself to be a BusDevice; a name is registered once.
  r.Add(p, {Mmio(0x100, 4, sink)});
  EXPECT_THROW(r.Add(q, {Port(0x400, 1)}), std::logic_error);
  Probe again("probe", &log);
  EXPECT_THROW(r.Add(again), std::logic_error);
  EXPECT_EQ(r.size(), 2u);
  // Mapping onto a bus that already has something there names the device.
  ports.Insert(sink, 0x102, 1);
  try {
    r.MapInto(ports, mmio);
    FAIL() << "mapping over an occupied range accepted";
  } catch (const BusError& e) {
    EXPECT_TRUE(Contains(e.what(), "metronome")) << e.what();
  }
}

TEST_F(DeviceRegistryTest, RunsTimersInRegistrationOrderAndTheDeadlineIsTheMinimum) {
  Probe c("c", &log), a("a", &log), b("b", &log);
  DeviceRegistry r;
  EXPECT_EQ(r.NextDeadlineNs(), kNoDeadline) << "an empty registry has no deadline";
  r.Add(c);
  r.Add(a);
  r.Add(b);
  EXPECT_EQ(r.NextDeadlineNs(), kNoDeadline);
  c.deadline = 900;
  a.deadline = 300;
  b.deadline = 500;
  EXPECT_EQ(r.NextDeadlineNs(), 300u);
  a.deadline = kNoDeadline;
  EXPECT_EQ(r.NextDeadlineNs(), 500u) << "every device is asked, not only the first";
  r.RunTimers();
  EXPECT_EQ(log, (std::vector<std::string>{"c", "a", "b"}));
}

TEST_F(DeviceRegistryTest, LoadIntoADifferentDeviceSetFailsNamingItAndChangesNothing) {
  std::vector<std::string> unused;
  Probe a("alpha", &unused), b("beta", &unused), c("gamma", &unused);
  DeviceRegistry saved_from;
  saved_from.Add(a);
  saved_from.Add(b);
  saved_from.Add(c);
  a.value = 1;
  b.value = 2;
  c.value = 3;
  const std::vector<uint8_t> bytes = SaveToBytes(saved_from);

  Probe a2("alpha", &unused), b2("beta", &unused), d2("delta", &unused);
  a2.value = 11;
  b2.value = 12;
  d2.value = 14;
  DeviceRegistry other;
  other.Add(a2);
  other.Add(b2);
  other.Add(d2);
  try {
    LoadFromBytes(other, bytes);
    FAIL() << "a different device set loaded";
  } catch (const StateError& e) {
    EXPECT_TRUE(Contains(e.what(), "only in the saved state: gamma")) << e.what();
    EXPECT_TRUE(Contains(e.what(), "only in this machine: delta")) << e.what();
  }
  EXPECT_EQ(a2.value, 11);
  EXPECT_EQ(b2.value, 12);
  EXPECT_EQ(d2.value, 14);

  // Fewer devices, and the same devices in another order, are refused as well.
  DeviceRegistry fewer;
  fewer.Add(a2);
  fewer.Add(b2);
  EXPECT_THROW(LoadFromBytes(fewer, bytes), StateError);
  Probe c2("gamma", &unused);
  DeviceRegistry reordered;
  reordered.Add(c2);
  reordered.Add(a2);
  reordered.Add(b2);
  try {
    LoadFromBytes(reordered, bytes);
    FAIL() << "a reordered device set loaded";
  } catch (const StateError& e) {
    EXPECT_TRUE(Contains(e.what(), "another order")) << e.what();
  }
  EXPECT_EQ(a2.value, 11);
  EXPECT_EQ(c2.value, 0);

  // The same set loads.
  DeviceRegistry same;
  Probe c3("gamma", &unused);
  same.Add(a2);
  same.Add(b2);
  same.Add(c3);
  LoadFromBytes(same, bytes);
  EXPECT_EQ(a2.value, 1);
  EXPECT_EQ(b2.value, 2);
  EXPECT_EQ(c3.value, 3);
}

TEST_F(DeviceRegistryTest, ALaterDeviceRefusingItsBytesPutsTheEarlierOnesBack) {
  std::vector<std::string> unused;
  Probe a("alpha", &unused), b("beta", &unused), c("gamma", &unused);
  DeviceRegistry r;
  r.Add(a);
  r.Add(b);
  r.Add(c);
  a.value = b.value = c.value = 1;
  const std::vector<uint8_t> bytes = SaveToBytes(r);
  a.value = b.value = c.value = 2;
  c.refuse_load = true;
  EXPECT_THROW(LoadFromBytes(r, bytes), StateError);
  EXPECT_EQ(a.value, 2) << "alpha loaded before gamma refused and was not put back";
  EXPECT_EQ(b.value, 2);
  EXPECT_EQ(c.value, 2);
  c.refuse_load = false;
  test::ExpectSaveMutateRestore(r, [&] { b.value = 9; });
}

TEST_F(DeviceRegistryTest, OneRegistrationLineWiresADeviceCompletely) {
  Metronome m(clock, env);
  DeviceRegistry r;
  r.Add(m, {Port(0x100, 2), Mmio(0x10000, 0x10, m.period_io())});  // the one line
  r.MapInto(ports, mmio);

  // Mapped: the guest starts it through its port window.
  ports.Write(0x100, 1, 10);
  EXPECT_EQ(mmio.Read(0x10000, 4), 1000u);
  // Timed: its deadline is the registry's, and running the timers there ticks it.
  EXPECT_EQ(r.NextDeadlineNs(), clock.NowNs() + 1000);
  ic.value = clock.IcountForDeadline(r.NextDeadlineNs());
  r.RunTimers();
  EXPECT_EQ(ports.Read(0x100, 1), 1u);
  EXPECT_EQ(r.NextDeadlineNs(), clock.NowNs() + 1000);
  // Polled: input points reach it.
  env.console_in = {'a', 'b'};
  r.PollInputs();
  EXPECT_EQ(ports.Read(0x101, 1), 2u);
  // Saved: a snapshot taken now restores the tick count, the period and the deadline.
  const std::vector<uint8_t> snap = SaveToBytes(r);
  const uint64_t deadline = r.NextDeadlineNs();
  ic.value = clock.IcountForDeadline(r.NextDeadlineNs() + 2500);
  r.RunTimers();
  ports.Write(0x100, 1, 7);
  EXPECT_EQ(m.ticks(), 4u);
  LoadFromBytes(r, snap);
  EXPECT_EQ(ports.Read(0x100, 1), 1u);
  EXPECT_EQ(ports.Read(0x101, 1), 2u);
  EXPECT_EQ(mmio.Read(0x10000, 4), 1000u);
  EXPECT_EQ(r.NextDeadlineNs(), deadline);
  test::ExpectSaveMutateRestore(r, [&] { ports.Write(0x100, 1, 3); });
}

}  // namespace
}  // namespace vmrr
