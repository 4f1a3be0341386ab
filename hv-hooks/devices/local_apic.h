// The local APIC of the single vCPU (xAPIC MMIO at 0xfee00000): ID, version, TPR/APR/PPR,
// EOI (with EOI broadcast to the I/O APIC for level-triggered vectors), LDR/DFR, SVR software
// enable, ISR/TMR/IRR, ESR, ICR (fixed-mode self IPIs), the LVT, and the timer in one-shot,
// periodic and TSC-deadline modes. Timer and TSC run at 1 GHz of guest time (one tick per
// guest ns), so TSC = VirtualClock::NowNs().
#pragma once

#include <cstdint>

#include "hv-hooks/devices/device.h"
#include "hv-hooks/devices/irq.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/state_io.h"
#include "hv-hooks/substrate/virtual_clock.h"

namespace vmrr {

class IoApic;

class LocalApic : public BusDevice, public Device {
 public:
  static constexpr uint64_t kApicBaseMsrDefault = 0xfee00000 | (1u << 11) | (1u << 8);

  explicit LocalApic(const VirtualClock& clock);

  std::string_view name() const override { return "local-apic"; }

  void SetListener(IntrListener* listener) { listener_ = listener; }
  void SetIoApic(IoApic* ioapic) { ioapic_ = ioapic; }

  uint64_t Read(uint64_t offset, unsigned size) override;
  void Write(uint64_t offset, unsigned size, uint64_t value) override;

  // Interrupt message from the I/O APIC (or a self IPI): vector into IRR.
  void AcceptInterrupt(uint8_t vector, bool level_triggered);
  // A vector is in IRR with a priority class above PPR.
  bool HasDeliverable() const;
  // INTA: highest IRR vector moves to ISR; the spurious vector if none is deliverable.
  uint8_t Acknowledge();
  // Software-enabled (SVR bit 8) and hardware-enabled (IA32_APIC_BASE bit 11).
  bool Enabled() const;
  // LINT0 programmed as ExtINT and unmasked: the 8259 output reaches the CPU through here.
  bool AcceptsExtInt() const;

  // MSRs and CR8, reached through the CPU.
  uint64_t apic_base_msr() const { return s_.apic_base; }
  void set_apic_base_msr(uint64_t value);
  uint64_t tsc_deadline() const { return s_.tsc_deadline; }
  void set_tsc_deadline(uint64_t tsc);
  uint8_t tpr() const { return s_.tpr; }
  void set_tpr(uint8_t tpr);

  uint64_t NextDeadlineNs() const override;
  void RunTimers() override;

  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

 private:
  enum Lvt { kLvtCmci, kLvtTimer, kLvtThermal, kLvtPerf, kLvtLint0, kLvtLint1, kLvtError,
             kLvtCount };
  struct State {
    uint64_t apic_base = kApicBaseMsrDefault;
    uint32_t id = 0;
    uint8_t tpr = 0;
    uint32_t ldr = 0;
    uint32_t dfr = 0xffffffff;
    uint32_t svr = 0xff;
    uint32_t isr[8] = {}, tmr[8] = {}, irr[8] = {};
    uint32_t esr = 0, esr_pending = 0;
    uint32_t icr_lo = 0, icr_hi = 0;
    uint32_t lvt[kLvtCount] = {};
    uint32_t initial_count = 0;
    uint32_t divide_config = 0;
    uint64_t timer_start_ns = 0;
    uint64_t timer_expiry_ns = kNoDeadline;  // one-shot/periodic: next expiry
    uint64_t tsc_deadline = 0;
  };
  static int Highest(const uint32_t bits[8]);
  uint8_t Ppr() const;
  unsigned DivideShift() const;
  unsigned TimerMode() const { return (s_.lvt[kLvtTimer] >> 17) & 3; }
  uint32_t CurrentCount() const;
  void StartTimer();
  void FireTimer();
  void Eoi();
  void Changed();
  void WriteRegister(unsigned reg, uint32_t v);
  uint32_t ReadRegister(unsigned reg) const;

  const VirtualClock& clock_;
  IntrListener* listener_ = nullptr;
  IoApic* ioapic_ = nullptr;
  State s_;
};

class IoApic : public BusDevice, public Device {
 public:
  static constexpr unsigned kPins = 24;

  explicit IoApic(LocalApic& lapic);

  std::string_view name() const override { return "io-apic"; }

  // IOREGSEL at offset 0x00, IOWIN at 0x10 (32-bit accesses).
  uint64_t Read(uint64_t offset, unsigned size) override;
  void Write(uint64_t offset, unsigned size, uint64_t value) override;

  void SetIrq(unsigned pin, bool asserted);
  // EOI broadcast from the local APIC: clears Remote IRR of level pins with this vector.
  void EndOfInterrupt(uint8_t vector);

  uint64_t redirection(unsigned pin) const { return redir_[pin]; }

  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

 private:
  void Service();

  LocalApic& lapic_;
  uint32_t select_ = 0;
  uint32_t id_ = 0;
  uint32_t irr_ = 0;    // pin requests (edge: latched; level: current level)
  uint32_t level_ = 0;  // current asserted levels
  uint64_t redir_[kPins] = {};
};

}  // namespace vmrr
