// The debug-exit port (0xf4) with QEMU isa-debug-exit's encoding (hw/misc/debugexit.c,
// `-device isa-debug-exit,iobase=0xf4,iosize=0x04`): a guest write of v, of any width, to any
// port of the window asks the machine to stop with host exit status (v << 1) | 1, so status 0
// can never mean "guest said success" by accident and test guests written for QEMU run
// unchanged. Reads return all-ones (QEMU's device has no read handler).
#pragma once

#include <cstdint>
#include <functional>

#include "hv-hooks/devices/device.h"
#include "hv-hooks/substrate/bus.h"
#include "hv-hooks/substrate/state_io.h"

namespace vmrr {

class DebugExit : public BusDevice, public Device {
 public:
  std::string_view name() const override { return "debug-exit"; }

  // Called once per exit request; the machine stops the CPU after the current instruction.
  void SetExitHandler(std::function<void(int status)> handler) { handler_ = std::move(handler); }

  uint64_t Read(uint64_t, unsigned size) override { return AllOnes(size); }
  void Write(uint64_t offset, unsigned size, uint64_t value) override;

  bool exit_requested() const { return requested_ != 0; }
  // The host exit status the run should end with.
  int exit_status() const { return status_; }

  void SaveState(StateWriter& out) const override;
  void LoadState(StateReader& in) override;

 private:
  std::function<void(int)> handler_;
  uint8_t requested_ = 0;
  int status_ = 0;
};

}  // namespace vmrr
