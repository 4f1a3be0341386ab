// AcpiPm: power-off and reset request latch.
#include "hv-hooks/devices/acpi_pm.h"

namespace vmrr {

uint64_t AcpiPm::Read(uint64_t offset, unsigned size) {
  if (offset == kSleepStatus || offset == kSleepControl) return 0;
  return AllOnes(size);
}

void AcpiPm::Write(uint64_t offset, unsigned, uint64_t value) {
  const uint8_t v = static_cast<uint8_t>(value);
  if (offset == kSleepControl) {
    if ((v & kSlpEn) && ((v >> kSlpTypShift) & kSlpTypMask) == s5_sleep_type_) {
      Latch(Request::kPowerOff);
    }
  } else if (offset == kReset) {
    if (v == reset_value_) Latch(Request::kReset);
  }
}

void AcpiPm::Latch(Request r) {
  if (request_ != Request::kNone) return;  // the first request wins; the run is ending
  request_ = r;
  if (handler_) handler_();
}

void AcpiPm::SaveState(StateWriter& out) const {
  out.Begin("APMR", 1);
  out.U8(static_cast<uint8_t>(request_));
}

void AcpiPm::LoadState(StateReader& in) {
  in.Begin("APMR", 1);
  request_ = static_cast<Request>(in.Bounded(in.U8(), 2, "acpi-pm request"));
}

}  // namespace vmrr
