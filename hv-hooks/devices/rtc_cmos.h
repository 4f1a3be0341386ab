// The MC146818-compatible CMOS RTC at 0x70 (index; bit 7 masks NMI) / 0x71 (data): time and
// date read from the virtual clock's wall time (plus the offset the guest set), BCD or binary,
// 12 or 24 hour, SET bit freezing updates, update-in-progress for the last 244 us of each
// second, periodic/alarm/update-ended flags in register C with IRQ8, register D valid-RAM,
// century at 0x32, and 114 bytes of battery-backed RAM.
#pragma once

#include <cstdint>

#include "hv-hooks/devices/device.h"
#include "hv-hooks/devices/irq.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/state_io.h"
#include "hv-hooks/substrate/virtual_clock.h"

namespace vmrr {

class RtcCmos : public BusDevice, public Device {
 public:
  RtcCmos(const VirtualClock& clock, IrqLine irq8);

  std::string_view name() const override { return "rtc-cmos"; }

  uint64_t Read(uint64_t offset, unsigned size) override;
  void Write(uint64_t offset, unsigned size, uint64_t value) override;

  uint64_t NextDeadlineNs() const override;
  void RunTimers() override;

  // Firmware-style setup of CMOS RAM (e.g. memory size bytes) before the guest starts.
  void SetCmosByte(uint8_t index, uint8_t value);

  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

  // Broken-down civil time (tests use it to check conversions).
  struct Fields {
    int64_t year = 1970;
    unsigned month = 1, day = 1, hour = 0, minute = 0, second = 0, weekday = 5;  // 1=Sunday
  };
  static Fields FieldsFromSeconds(int64_t seconds);
  static int64_t SecondsFromFields(const Fields& f);

 private:
  // RTC time = virtual wall time shifted by whole seconds (offset_s_) and by a sub-second
  // phase (phase_ns_, so that leaving SET starts a fresh second). Kept apart so that any
  // year 0-9999 the guest sets stays far from int64 overflow.
  int64_t PhasedWallNs() const { return clock_.WallClockNs() + phase_ns_; }
  int64_t NsIntoSecond() const;
  int64_t CurrentSeconds() const;
  uint8_t ReadTimeRegister(unsigned index) const;
  void WriteTimeRegister(unsigned index, uint8_t value);
  uint8_t Encode(unsigned value) const;
  unsigned Decode(uint8_t value) const;
  uint64_t PeriodNs() const;
  void CatchUp();
  void UpdateIrq();

  const VirtualClock& clock_;
  IrqLine irq_;
  uint8_t cmos_[128] = {};  // RAM, alarm registers, A, B, C
  uint8_t index_ = 0;
  int64_t offset_s_ = 0;
  int64_t phase_ns_ = 0;  // 0 <= phase_ns_ < 1e9
  int64_t frozen_seconds_ = 0;  // time while SET is on
  uint64_t checked_ns_ = 0;   // guest ns up to which flags have been computed
  uint8_t irq_level_ = 0;
};

}  // namespace vmrr
