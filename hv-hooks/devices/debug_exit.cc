// DebugExit: exit request latch.
#include "hv-hooks/devices/debug_exit.h"

namespace vmrr {

void DebugExit::Write(uint64_t, unsigned, uint64_t value) {
  // QEMU's debug_exit_write ignores the offset: a write to any port of the window exits.
  // The status is an int as a process exit status: only the low bits reach the host shell,
  // exactly as with QEMU (exit((v << 1) | 1)).
  requested_ = 1;
  status_ = static_cast<int>(((value << 1) | 1) & 0x7fffffff);
  if (handler_) handler_(status_);
}

void DebugExit::SaveState(StateWriter& out) const {
  out.Begin("DBGX", 1);
  out.U8(requested_);
  out.U32(static_cast<uint32_t>(status_));
}

void DebugExit::LoadState(StateReader& in) {
  in.Begin("DBGX", 1);
  uint8_t requested = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "debug-exit requested"));
  uint32_t status = static_cast<uint32_t>(in.Bounded(in.U32(), 0x7fffffff, "debug-exit status"));
  requested_ = requested;
  status_ = static_cast<int>(status);
}

}  // namespace vmrr
