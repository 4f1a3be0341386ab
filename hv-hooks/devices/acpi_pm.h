// The hardware-reduced ACPI power registers (ACPI 6.0 4.8.3.7 sleep control and status
// registers, 4.8.3.6 reset register) the FADT points at, as three byte-wide I/O ports:
//   offset 0  sleep control: a write with SLP_EN (bit 5) and SLP_TYP (bits 4:2) equal to the
//             \_S5 sleep type asks for power-off; other sleep types are ignored (no S1-S4);
//   offset 1  sleep status: reads 0 (WAK_STS never set: the machine never wakes from sleep);
//   offset 2  reset register: writing the FADT's RESET_VALUE asks for a reset.
// Power-off ends the run like QEMU's (exit status 0); a reset ends it with its own status,
// since vmrr has no firmware to reboot into.
#pragma once

#include <cstdint>
#include <functional>

#include "hv-hooks/devices/device.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/state_io.h"

namespace vmrr {

class AcpiPm : public BusDevice, public Device {
 public:
  static constexpr uint64_t kSleepControl = 0, kSleepStatus = 1, kReset = 2;
  static constexpr unsigned kPortCount = 3;
  static constexpr uint8_t kSlpEn = 1u << 5;
  static constexpr unsigned kSlpTypShift = 2;
  static constexpr uint8_t kSlpTypMask = 0x7;

  enum class Request : uint8_t { kNone = 0, kPowerOff = 1, kReset = 2 };

  AcpiPm(uint8_t s5_sleep_type, uint8_t reset_value)
      : s5_sleep_type_(s5_sleep_type), reset_value_(reset_value) {}

  std::string_view name() const override { return "acpi-pm"; }

  // Called once when a request is latched; the machine stops after the current instruction.
  void SetRequestHandler(std::function<void()> handler) { handler_ = std::move(handler); }

  uint64_t Read(uint64_t offset, unsigned size) override;
  void Write(uint64_t offset, unsigned size, uint64_t value) override;

  Request request() const { return request_; }

  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

 private:
  void Latch(Request r);

  uint8_t s5_sleep_type_;
  uint8_t reset_value_;
  std::function<void()> handler_;
  Request request_ = Request::kNone;
};

}  // namespace vmrr
