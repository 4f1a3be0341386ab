// VirtioMmioDevice: virtio-mmio v2 register file and common queue handling.
#include "hv-hooks/devices/virtio/virtio_mmio.h"

#include <algorithm>

namespace vmrr {

namespace {
enum Reg : uint64_t {
  kRegMagic = 0x000, kRegVersion = 0x004, kRegDeviceId = 0x008, kRegVendorId = 0x00c,
  kRegDeviceFeatures = 0x010, kRegDeviceFeaturesSel = 0x014, kRegDriverFeatures = 0x020,
  kRegDriverFeaturesSel = 0x024, kRegQueueSel = 0x030, kRegQueueNumMax = 0x034,
  kRegQueueNum = 0x038, kRegQueueReady = 0x044, kRegQueueNotify = 0x050,
  kRegInterruptStatus = 0x060, kRegInterruptAck = 0x064, kRegStatus = 0x070,
  kRegQueueDescLow = 0x080, kRegQueueDescHigh = 0x084, kRegQueueDriverLow = 0x090,
  kRegQueueDriverHigh = 0x094, kRegQueueDeviceLow = 0x0a0, kRegQueueDeviceHigh = 0x0a4,
  kRegShmSel = 0x0ac, kRegShmLenLow = 0x0b0, kRegShmLenHigh = 0x0b4, kRegShmBaseLow = 0x0b8,
  kRegShmBaseHigh = 0x0bc, kRegConfigGeneration = 0x0fc, kRegConfig = 0x100,
};
constexpr uint32_t kInterruptUsedBuffer = 1;
constexpr uint32_t kInterruptConfigChange = 2;

void SetLow(uint64_t& v, uint32_t x) { v = (v & 0xffffffff00000000ull) | x; }
void SetHigh(uint64_t& v, uint32_t x) { v = (v & 0xffffffffull) | (static_cast<uint64_t>(x) << 32); }
}  // namespace

VirtioMmioDevice::VirtioMmioDevice(GuestMemory& mem, const VirtualClock& clock, IrqLine irq,
                                   unsigned num_queues)
    : mem_(mem), clock_(clock), irq_(irq), queues_(num_queues) {}

uint64_t VirtioMmioDevice::Read(uint64_t offset, unsigned size) {
  if (offset >= kRegConfig) {
    uint64_t off = offset - kRegConfig, v = 0;
    for (unsigned i = 0; i < size; ++i) {
      if (off + i < config_size()) v |= static_cast<uint64_t>(ReadConfig(off + i)) << (8 * i);
    }
    return v;
  }
  if (size != 4 || (offset & 3)) return 0;  // the spec allows only aligned 32-bit accesses
  const Virtqueue* q = queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
  uint64_t features = device_features() | kFeatureVersion1;
  switch (offset) {
    case kRegMagic: return kMagic;
    case kRegVersion: return 2;
    case kRegDeviceId: return device_id();
    case kRegVendorId: return kVendorId;
    case kRegDeviceFeatures:
      return device_features_sel_ == 0 ? static_cast<uint32_t>(features)
             : device_features_sel_ == 1 ? static_cast<uint32_t>(features >> 32)
                                         : 0;
    case kRegQueueNumMax: return q ? Virtqueue::kMaxSize : 0;
    case kRegQueueNum: return q ? q->size : 0;
    case kRegQueueReady: return q && q->ready ? 1 : 0;
    case kRegInterruptStatus: return interrupt_status_;
    case kRegStatus: return status_;
    case kRegQueueDescLow: return q ? static_cast<uint32_t>(q->desc_addr) : 0;
    case kRegQueueDescHigh: return q ? static_cast<uint32_t>(q->desc_addr >> 32) : 0;
    case kRegQueueDriverLow: return q ? static_cast<uint32_t>(q->avail_addr) : 0;
    case kRegQueueDriverHigh: return q ? static_cast<uint32_t>(q->avail_addr >> 32) : 0;
    case kRegQueueDeviceLow: return q ? static_cast<uint32_t>(q->used_addr) : 0;
    case kRegQueueDeviceHigh: return q ? static_cast<uint32_t>(q->used_addr >> 32) : 0;
    case kRegShmLenLow: case kRegShmLenHigh: case kRegShmBaseLow: case kRegShmBaseHigh:
      return 0xffffffff;  // no shared memory regions
    case kRegConfigGeneration: return 0;  // configuration never changes under the driver
  }
  return 0;
}

void VirtioMmioDevice::Write(uint64_t offset, unsigned size, uint64_t value) {
  if (offset >= kRegConfig) return;  // no device has writable configuration fields
  if (size != 4 || (offset & 3)) return;
  uint32_t v = static_cast<uint32_t>(value);
  Virtqueue* q = queue_sel_ < queues_.size() ? &queues_[queue_sel_] : nullptr;
  // The driver must not change a live queue's configuration; such writes are ignored.
  Virtqueue* qcfg = q && !q->ready ? q : nullptr;
  switch (offset) {
    case kRegDeviceFeaturesSel: device_features_sel_ = v; break;
    case kRegDriverFeatures:
      if (status_ & kFeaturesOk) break;  // features are fixed once accepted
      if (driver_features_sel_ == 0) SetLow(driver_features_, v);
      if (driver_features_sel_ == 1) SetHigh(driver_features_, v);
      break;
    case kRegDriverFeaturesSel: driver_features_sel_ = v; break;
    case kRegQueueSel: queue_sel_ = v; break;
    case kRegQueueNum: if (qcfg) qcfg->size = static_cast<uint16_t>(std::min<uint32_t>(v, 0xffff)); break;
    case kRegQueueReady:
      if (q) {
        q->ready = v & 1;
        if (!q->ready) {
          q->next_avail = q->next_used = 0;
        }
      }
      break;
    case kRegQueueNotify: Notify(v); break;
    case kRegInterruptAck:
      interrupt_status_ &= ~v;
      UpdateIrq();
      break;
    case kRegStatus:
      if (v == 0) {
        Reset();
        break;
      }
      if ((v & kFeaturesOk) && !(status_ & kFeaturesOk)) {
        uint64_t offered = device_features() | kFeatureVersion1;
        // Accept only a subset of what was offered that includes VERSION_1 (legacy drivers
        // cannot use a version-2 transport); otherwise FEATURES_OK stays clear and the
        // driver sees the refusal when it reads the status back.
        if ((driver_features_ & ~offered) || !(driver_features_ & kFeatureVersion1)) {
          v &= ~static_cast<uint32_t>(kFeaturesOk);
        }
      }
      // NEEDS_RESET is the device's bit; the driver cannot set or clear it.
      status_ = static_cast<uint8_t>((v & ~static_cast<uint32_t>(kNeedsReset)) |
                                     (status_ & kNeedsReset));
      break;
    case kRegQueueDescLow: if (qcfg) SetLow(qcfg->desc_addr, v); break;
    case kRegQueueDescHigh: if (qcfg) SetHigh(qcfg->desc_addr, v); break;
    case kRegQueueDriverLow: if (qcfg) SetLow(qcfg->avail_addr, v); break;
    case kRegQueueDriverHigh: if (qcfg) SetHigh(qcfg->avail_addr, v); break;
    case kRegQueueDeviceLow: if (qcfg) SetLow(qcfg->used_addr, v); break;
    case kRegQueueDeviceHigh: if (qcfg) SetHigh(qcfg->used_addr, v); break;
    default: break;
  }
}

void VirtioMmioDevice::Notify(unsigned index) {
  if (!DriverOk() || index >= queues_.size() || !queues_[index].ready) return;
  QueueNotified(index);
}

bool VirtioMmioDevice::PopChain(unsigned index, VirtqChain* chain) {
  if (!DriverOk()) return false;
  std::string why;
  switch (queues_[index].Pop(mem_, chain, &why)) {
    case Virtqueue::PopResult::kChain: return true;
    case Virtqueue::PopResult::kEmpty: return false;
    case Virtqueue::PopResult::kBroken:
      MarkNeedsReset("queue " + std::to_string(index) + ": " + why);
      return false;
  }
  return false;
}

void VirtioMmioDevice::Complete(unsigned index, uint16_t head, uint32_t written) {
  Virtqueue& q = queues_[index];
  if (!q.PushUsed(mem_, head, written)) {
    MarkNeedsReset("queue " + std::to_string(index) + ": used ring unusable");
    return;
  }
  if (!q.InterruptSuppressed(mem_)) SetInterrupt(kInterruptUsedBuffer);
}

void VirtioMmioDevice::MarkNeedsReset(const std::string& why) {
  if (status_ & kNeedsReset) return;
  status_ |= kNeedsReset;
  broken_reason_ = why;
  if (status_ & kDriverOk) SetInterrupt(kInterruptConfigChange);
}

void VirtioMmioDevice::SetInterrupt(uint32_t bits) {
  interrupt_status_ |= bits;
  UpdateIrq();
}

void VirtioMmioDevice::UpdateIrq() {
  bool level = interrupt_status_ != 0;
  if (level != (irq_level_ != 0)) {
    irq_level_ = level;
    irq_.Set(level);
  }
}

void VirtioMmioDevice::Reset() {
  for (Virtqueue& q : queues_) q.Reset();
  status_ = 0;
  device_features_sel_ = driver_features_sel_ = queue_sel_ = 0;
  driver_features_ = 0;
  interrupt_status_ = 0;
  broken_reason_.clear();
  ResetDevice();
  UpdateIrq();
}

void VirtioMmioDevice::SaveState(StateWriter& out) const {
  out.Begin("VIRT", 1);
  out.U32(device_id());
  out.U8(status_);
  out.U32(device_features_sel_);
  out.U32(driver_features_sel_);
  out.U64(driver_features_);
  out.U32(queue_sel_);
  out.U32(interrupt_status_);
  out.U8(irq_level_);
  out.Bytes(std::span<const uint8_t>(reinterpret_cast<const uint8_t*>(broken_reason_.data()),
                                     broken_reason_.size()));
  out.U32(static_cast<uint32_t>(queues_.size()));
  for (const Virtqueue& q : queues_) q.Save(out);
  SaveDevice(out);
}

void VirtioMmioDevice::LoadState(StateReader& in) {
  in.Begin("VIRT", 1);
  if (in.U32() != device_id()) in.Fail("virtio state is for another device type");
  uint8_t status = in.U8();
  uint32_t dsel = in.U32(), drsel = in.U32();
  uint64_t features = in.U64();  // as written by the driver; checked at FEATURES_OK
  uint32_t qsel = in.U32();
  uint32_t isr = static_cast<uint32_t>(in.Bounded(in.U32(), 3, "virtio interrupt status"));
  uint8_t level = static_cast<uint8_t>(in.Bounded(in.U8(), 1, "virtio irq level"));
  std::vector<uint8_t> reason = in.Bytes(4096);
  if (in.U32() != queues_.size()) in.Fail("virtio queue count differs");
  std::vector<Virtqueue> queues(queues_.size());
  for (Virtqueue& q : queues) q.Load(in);
  LoadDevice(in);  // the device commits its own part only if it parsed completely
  status_ = status;
  device_features_sel_ = dsel;
  driver_features_sel_ = drsel;
  driver_features_ = features;
  queue_sel_ = qsel;
  interrupt_status_ = isr;
  irq_level_ = level;
  broken_reason_.assign(reason.begin(), reason.end());
  queues_ = std::move(queues);
}

}  // namespace vmrr
