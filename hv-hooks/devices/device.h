// Device: the one narrow interface every device model implements, so that a board can register
// it in a DeviceRegistry (device_registry.h) and have it mapped, timed, polled and saved from
// that one registration: a stable name, its timed events, its host input, its saved state.
#pragma once

#include <cstdint>
#include <string_view>

#include "hv-hooks/substrate/state_io.h"
#include "hv-hooks/substrate/virtual_clock.h"

namespace vmrr {

class Device : public Stateful {
 public:
  // Stable across builds: it names the device in messages and in the saved-state manifest
  // (a registry refuses two devices of one name). A model that a board may instantiate more
  // than once takes its name as a constructor argument.
  virtual std::string_view name() const = 0;

  // Guest time of the device's next timed event, kNoDeadline if none. RunTimers processes
  // every event due by now; it is called for every device whenever any deadline is reached, so
  // it must do nothing when nothing of its own is due.
  virtual uint64_t NextDeadlineNs() const { return kNoDeadline; }
  virtual void RunTimers() {}

  // At an input point: takes host input through the Environment (only devices that have any).
  virtual void PollInput() {}
};

}  // namespace vmrr
