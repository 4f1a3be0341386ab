// The 8254 programmable interval timer at ports 0x40-0x43: three counters clocked at
// 1.193182 MHz of guest time, modes 0-5 (0, 2 and 3 exact; 1 and 5 need a gate edge that a PC
// never gives counters 0/1, 4 is a one-tick strobe), binary/BCD, LSB/MSB/word access, counter
// latch and read-back (count and status), GATE (hard-wired high for counters 0 and 1; counter 2's
// through system control port B at 0x61, which also shows counter 2's OUT). Counter 0's OUT
// drives ISA IRQ0.
#pragma once

#include <cstdint>

#include "hv-hooks/devices/device.h"
#include "hv-hooks/devices/irq.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/state_io.h"
#include "hv-hooks/substrate/virtual_clock.h"

namespace vmrr {

class Pit8254 : public BusDevice, public Device {
 public:
  static constexpr uint64_t kFrequencyHz = 1193182;

  Pit8254(const VirtualClock& clock, IrqLine irq0);

  std::string_view name() const override { return "pit8254"; }

  // offsets 0..2 counters, 3 control word (byte accesses only).
  uint64_t Read(uint64_t offset, unsigned size) override;
  void Write(uint64_t offset, unsigned size, uint64_t value) override;

  // Guest time of the next change of counter 0's OUT (kNoDeadline if none), and processing of
  // every change up to now. The run loop calls RunTimers when the deadline's icount is reached.
  uint64_t NextDeadlineNs() const override;
  void RunTimers() override;

  // Counter OUT pin level now.
  bool Out(unsigned counter) const;
  // GATE input of a counter (the platform drives counter 2's through port 0x61).
  void SetGate(unsigned counter, bool level);
  // System control port B (0x61), one byte.
  BusDevice& port61() { return port61_; }

  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

 private:
  struct Counter {
    uint32_t count = 0x10000;   // initial count in ticks (0 programmed = 65536 / 10000 BCD)
    uint64_t resume_ns = 0;      // guest time counting last (re)started
    uint64_t paused_ticks = 0;   // ticks counted before resume_ns (modes 0/4 with GATE low)
    uint8_t gate = 1;
    uint8_t loaded = 0;          // a count was written since the control word
    uint16_t latched = 0;
    uint8_t count_latched = 0;   // access state of a pending count latch, 0 = none
    uint8_t status_latched = 0;
    uint8_t status = 0;
    uint8_t read_state = 0;
    uint8_t write_state = 0;
    uint8_t write_latch = 0;
    uint8_t rw_mode = 0;
    uint8_t mode = 0;
    uint8_t bcd = 0;
    uint8_t counting = 0;        // a count has been loaded since the control word
    uint8_t out_seen = 0;        // counter 0: OUT level last driven onto IRQ0 (see ctor)
    uint64_t period_seen = 0;    // counter 0: periods (modes 2/3) already signalled
  };

  uint64_t Ticks(const Counter& c) const;
  uint64_t TickToNs(const Counter& c, uint64_t tick) const;
  uint16_t CurrentCount(const Counter& c) const;
  bool OutAt(const Counter& c, uint64_t ticks) const;
  void LoadCount(int n, uint32_t value);
  void Latch(int n);
  void Control(uint8_t v);

  class Port61 : public BusDevice {
   public:
    explicit Port61(Pit8254* pit) : pit_(pit) {}
    uint64_t Read(uint64_t offset, unsigned size) override;
    void Write(uint64_t offset, unsigned size, uint64_t value) override;

   private:
    Pit8254* pit_;
  };

  const VirtualClock& clock_;
  IrqLine irq0_;
  Counter counters_[3];
  uint8_t speaker_enable_ = 0;  // port 0x61 bit 1
  Port61 port61_{this};
};

}  // namespace vmrr
