// InterruptRouter: line fan-out to the PIC and I/O APIC, and CPU-side arbitration.
#include "hv-hooks/devices/interrupt_router.h"

namespace vmrr {

InterruptRouter::InterruptRouter(PicPair& pic, IoApic& ioapic, LocalApic& lapic)
    : pic_(pic), ioapic_(ioapic), lapic_(lapic) {
  pic_.SetListener(this);
  lapic_.SetListener(this);
  lapic_.SetIoApic(&ioapic_);
}

void InterruptRouter::SetIrq(unsigned line, bool asserted) {
  if (line < 16) pic_.SetIrq(line, asserted);
  ioapic_.SetIrq(line, asserted);
  InterruptStateChanged();
}

bool InterruptRouter::PicRoutedToCpu() const {
  return !lapic_.Enabled() || lapic_.AcceptsExtInt();
}

bool InterruptRouter::InterruptPending() const {
  if (lapic_.Enabled() && lapic_.HasDeliverable()) return true;
  return PicRoutedToCpu() && pic_.OutputPending();
}

uint8_t InterruptRouter::Acknowledge() {
  uint8_t vector;
  if (lapic_.Enabled() && lapic_.HasDeliverable()) {
    vector = lapic_.Acknowledge();
  } else if (PicRoutedToCpu()) {
    vector = pic_.Acknowledge();  // spurious IRQ7 vector if the request went away
  } else {
    vector = lapic_.Acknowledge();  // spurious vector
  }
  InterruptStateChanged();
  return vector;
}

void InterruptRouter::SetIntrLineCallback(std::function<void(bool)> callback) {
  intr_callback_ = std::move(callback);
  intr_ = InterruptPending();
  if (intr_callback_) intr_callback_(intr_);
}

void InterruptRouter::InterruptStateChanged() {
  bool now = InterruptPending();
  if (now == intr_) return;
  intr_ = now;
  if (intr_callback_) intr_callback_(now);
}

}  // namespace vmrr
