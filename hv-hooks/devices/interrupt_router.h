// The interrupt router: devices drive numbered lines (ISA IRQ 0-15 reach both the 8259 pair
// and the I/O APIC pin of the same number; GSIs 16-23 reach only the I/O APIC), and the CPU
// sees one INTR line and one acknowledge cycle. The local APIC has priority when it is enabled;
// the 8259 output reaches the CPU when the local APIC is software-disabled (the power-on
// state, so PIC-only guests work without touching the APIC) or its LINT0 is an unmasked
// ExtINT entry (virtual wire mode, as firmware sets it up).
#pragma once

#include <cstdint>
#include <functional>

#include "hv-hooks/devices/irq.h"
#include "hv-hooks/devices/local_apic.h"
#include "hv-hooks/devices/pic8259.h"

namespace vmrr {

class InterruptRouter : public IrqSink, public IntrListener {
 public:
  InterruptRouter(PicPair& pic, IoApic& ioapic, LocalApic& lapic);

  // IrqSink: a device's line changed level.
  void SetIrq(unsigned line, bool asserted) override;

  // Called with the new level whenever the CPU's INTR line changes (CPU::SetIntrLine).
  void SetIntrLineCallback(std::function<void(bool)> callback);
  // An interrupt is pending for the CPU (it still checks RFLAGS.IF itself).
  bool InterruptPending() const;
  // The CPU's interrupt acknowledge: the vector to deliver.
  uint8_t Acknowledge();

  // IntrListener: a controller's output may have changed.
  void InterruptStateChanged() override;

 private:
  bool PicRoutedToCpu() const;

  PicPair& pic_;
  IoApic& ioapic_;
  LocalApic& lapic_;
  std::function<void(bool)> intr_callback_;
  bool intr_ = false;
};

}  // namespace vmrr
