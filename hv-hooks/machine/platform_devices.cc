// PlatformDevices: construction, bus mapping and collective operations.
#include "hv-hooks/machine/platform_devices.h"

#include <algorithm>

#include "hv-hooks/machine/platform_layout.h"

namespace vmrr {

namespace p = platform;

PlatformDevices::PlatformDevices(GuestMemory& mem, const VirtualClock& clock,
                                 const IcountSource& icount, Environment& env,
                                 const PlatformConfig& config)
    : lapic_(clock),
      ioapic_(lapic_),
      router_(pic_, ioapic_, lapic_),
      pit_(clock, IrqLine(&router_, p::kPitIrq)),
      rtc_(clock, IrqLine(&router_, p::kRtcIrq)),
      com1_(env, icount, IrqLine(&router_, p::kCom1Irq)) {
  if (config.virtio_rng) {
    rng_ = std::make_unique<VirtioRng>(mem, clock, IrqLine(&router_, p::kVirtioRngIrq), env);
  }
  if (config.disk) {
    blk_ = std::make_unique<VirtioBlock>(mem, clock, IrqLine(&router_, p::kVirtioBlkIrq),
                                         *config.disk);
  }
  if (config.virtio_net) {
    net_ = std::make_unique<VirtioNet>(mem, clock, IrqLine(&router_, p::kVirtioNetIrq), env,
                                       config.mac);
  }
}

void PlatformDevices::MapInto(PortBus& ports, MmioBus& mmio) {
  ports.Insert(pic_.master_io(), p::kPicMasterBase, p::kPicPortCount);
  ports.Insert(pic_.slave_io(), p::kPicSlaveBase, p::kPicPortCount);
  ports.Insert(pic_.elcr_io(), p::kElcrBase, p::kElcrPortCount);
  ports.Insert(pit_, p::kPitBase, p::kPitPortCount);
  ports.Insert(pit_.port61(), p::kSystemControlPort, 1);
  ports.Insert(rtc_, p::kRtcBase, p::kRtcPortCount);
  ports.Insert(com1_, p::kCom1Base, p::kUartPortCount);
  ports.Insert(debug_exit_, p::kDebugExitPort, p::kDebugExitPortCount);
  ports.Insert(pci_, p::kPciConfigAddress, p::kPciPortCount);
  mmio.Insert(ioapic_, p::kIoApicBase, p::kIoApicSize);
  mmio.Insert(lapic_, p::kLapicBase, p::kLapicSize);
  if (rng_) mmio.Insert(*rng_, p::kVirtioRngBase, p::kVirtioMmioSize);
  if (blk_) mmio.Insert(*blk_, p::kVirtioBlkBase, p::kVirtioMmioSize);
  if (net_) mmio.Insert(*net_, p::kVirtioNetBase, p::kVirtioMmioSize);
}

uint64_t PlatformDevices::NextDeadlineNs() const {
  uint64_t d = std::min({pit_.NextDeadlineNs(), rtc_.NextDeadlineNs(), lapic_.NextDeadlineNs()});
  if (blk_) d = std::min(d, blk_->NextDeadlineNs());
  return d;
}

void PlatformDevices::RunTimers() {
  // Fixed order, so that interrupts raised at the same instant reach the controllers in the
  // same order in every run. Every device is asked (each does only what is due): a device's
  // NextDeadlineNs already names its following event once the current one's time is reached.
  pit_.RunTimers();
  rtc_.RunTimers();
  lapic_.RunTimers();
  if (blk_) blk_->RunTimers();
}

void PlatformDevices::PollInputs() {
  com1_.PollInput();
  if (net_) net_->PollInput();
}

void PlatformDevices::SaveState(StateWriter& out) const {
  out.Begin("PLAT", 1);
  out.U8(rng_ ? 1 : 0);
  out.U8(blk_ ? 1 : 0);
  out.U8(net_ ? 1 : 0);
  SaveDevices(out);
}

void PlatformDevices::LoadState(StateReader& in) {
  in.Begin("PLAT", 1);
  if (in.Bool() != (rng_ != nullptr) || in.Bool() != (blk_ != nullptr) ||
      in.Bool() != (net_ != nullptr)) {
    in.Fail("the snapshot's virtio devices differ from this machine's configuration");
  }
  // Each device loads atomically, but the set must too: if a later device refuses its bytes,
  // the earlier ones are put back from a backup taken first (our own bytes always load).
  StateWriter backup;
  SaveDevices(backup);
  try {
    LoadDevices(in);
  } catch (const StateError&) {
    StateReader undo(backup.bytes());
    LoadDevices(undo);
    throw;
  }
}

void PlatformDevices::SaveDevices(StateWriter& out) const {
  pic_.SaveState(out);
  lapic_.SaveState(out);
  ioapic_.SaveState(out);
  pit_.SaveState(out);
  rtc_.SaveState(out);
  com1_.SaveState(out);
  debug_exit_.SaveState(out);
  pci_.SaveState(out);
  if (rng_) rng_->SaveState(out);
  if (blk_) blk_->SaveState(out);
  if (net_) net_->SaveState(out);
}

void PlatformDevices::LoadDevices(StateReader& in) {
  pic_.LoadState(in);
  lapic_.LoadState(in);
  ioapic_.LoadState(in);
  pit_.LoadState(in);
  rtc_.LoadState(in);
  com1_.LoadState(in);
  debug_exit_.LoadState(in);
  pci_.LoadState(in);
  if (rng_) rng_->LoadState(in);
  if (blk_) blk_->LoadState(in);
  if (net_) net_->LoadState(in);
}

}  // namespace vmrr
