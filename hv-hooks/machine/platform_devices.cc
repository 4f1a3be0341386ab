// PlatformDevices: construction, and the one registration line of each device.
#include "hv-hooks/machine/platform_devices.h"

#include <string>

#include "hv-hooks/host/file_disk_backend.h"
#include "hv-hooks/machine/loader.h"
#include "hv-hooks/machine/platform_layout.h"

namespace vmrr {

namespace p = platform;

namespace {

std::vector<uint8_t> Le(uint64_t v, unsigned n) {
  std::vector<uint8_t> b(n);
  for (unsigned i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(v >> (8 * i));
  return b;
}

// What QEMU's pc machine puts in fw_cfg (hw/nvram/fw_cfg.c fw_cfg_common_realize, hw/i386/
// fw_cfg.c fw_cfg_arch_create) that a vmrr machine has too, from its configuration alone: the
// UUID (QEMU's default, all zero), the RAM size, no graphics (as with -nographic), the CPU
// count, no boot menu; files etc/boot-fail-wait (QEMU's default -1) and etc/e820 (QEMU's
// struct e820_entry: le64 address, le64 length, le32 type) holding vmrr's memory map.
// Kernel, initrd and command line items are not provided: they would make the device depend
// on the loaded files, which a replay does not rebuild the machine from.
std::map<uint16_t, std::vector<uint8_t>> FwCfgItems(uint64_t memory_bytes) {
  std::map<uint16_t, std::vector<uint8_t>> items;
  items[FwCfg::kUuid] = std::vector<uint8_t>(16, 0);
  items[FwCfg::kRamSize] = Le(memory_bytes, 8);
  items[FwCfg::kNoGraphic] = Le(1, 2);
  items[FwCfg::kNbCpus] = Le(p::kCpuCount, 2);
  items[FwCfg::kBootMenu] = Le(0, 2);
  items[FwCfg::kMaxCpus] = Le(p::kCpuCount, 2);
  return items;
}

std::vector<FwCfg::File> FwCfgFiles(uint64_t memory_bytes) {
  std::vector<uint8_t> e820;
  for (const MemoryRegion& r : MemoryMap(memory_bytes)) {
    for (uint8_t b : Le(r.base, 8)) e820.push_back(b);
    for (uint8_t b : Le(r.length, 8)) e820.push_back(b);
    for (uint8_t b : Le(r.type, 4)) e820.push_back(b);
  }
  return {{"etc/boot-fail-wait", Le(0xffffffffu, 4)}, {"etc/e820", std::move(e820)}};
}

static_assert(p::kFwCfgPortCount == FwCfg::kPortCount);

}  // namespace

PlatformDevices::PlatformDevices(GuestMemory& mem, const VirtualClock& clock,
                                 const IcountSource& icount, Environment& env,
                                 const PlatformConfig& config)
    : lapic_(clock),
      ioapic_(lapic_),
      router_(pic_, ioapic_, lapic_),
      pit_(clock, IrqLine(&router_, p::kPitIrq)),
      rtc_(clock, IrqLine(&router_, p::kRtcIrq)),
      com1_(env, icount, IrqLine(&router_, p::kCom1Irq)),
      fw_cfg_(mem, FwCfgItems(mem.size()), FwCfgFiles(mem.size())) {
  // Registration order is the order of RunTimers (interrupts raised at one instant reach the
  // controllers in this order) and of the saved state.
  registry_.Add(pic_, {Port(p::kPicMasterBase, p::kPicPortCount, pic_.master_io()),
                       Port(p::kPicSlaveBase, p::kPicPortCount, pic_.slave_io()),
                       Port(p::kElcrBase, p::kElcrPortCount, pic_.elcr_io())});
  registry_.Add(pit_, {Port(p::kPitBase, p::kPitPortCount),
                       Port(p::kSystemControlPort, 1, pit_.port61())});
  registry_.Add(rtc_, {Port(p::kRtcBase, p::kRtcPortCount)});
  registry_.Add(lapic_, {Mmio(p::kLapicBase, p::kLapicSize)});
  registry_.Add(ioapic_, {Mmio(p::kIoApicBase, p::kIoApicSize)});
  registry_.Add(com1_, {Port(p::kCom1Base, p::kUartPortCount)});
  registry_.Add(debug_exit_, {Port(p::kDebugExitPort, p::kDebugExitPortCount)});
  registry_.Add(pci_, {Port(p::kPciConfigAddress, p::kPciPortCount)});
  registry_.Add(acpi_pm_, {Port(p::kAcpiPmBase, p::kAcpiPmPortCount)});
  registry_.Add(fw_cfg_, {Port(p::kFwCfgBase, p::kFwCfgPortCount)});
  if (config.virtio_rng) {
    rng_ = std::make_unique<VirtioRng>(mem, clock, IrqLine(&router_, p::kVirtioRngIrq), env);
    registry_.Add(*rng_, {Mmio(p::kVirtioRngBase, p::kVirtioMmioSize)});
  }
  if (config.disk) {
    const PlatformConfig::Disk& d = *config.disk;
    blk_ = std::make_unique<VirtioBlock>(mem, clock, IrqLine(&router_, p::kVirtioBlkIrq),
                                         FileDiskBackend::Open(d.image_path, d.options.write_through_base),
                                         d.options);
    registry_.Add(*blk_, {Mmio(p::kVirtioBlkBase, p::kVirtioMmioSize)});
  }
  if (config.virtio_net) {
    net_ = std::make_unique<VirtioNet>(mem, clock, IrqLine(&router_, p::kVirtioNetIrq), env,
                                       config.mac);
    registry_.Add(*net_, {Mmio(p::kVirtioNetBase, p::kVirtioMmioSize)});
  }
}

AcpiLayout PlatformDevices::acpi_layout(uint64_t base) const {
  AcpiLayout l;
  l.base = base;
  l.lapic_base = static_cast<uint32_t>(p::kLapicBase);
  l.ioapic_base = static_cast<uint32_t>(p::kIoApicBase);
  l.ioapic_id = 0;
  // The PIT's IRQ 0 reaches I/O APIC pin 0 here (the router maps ISA IRQ n to pin n), not
  // pin 2 as on boards whose 8254 is wired through the 8259 cascade: an override saying 0 -> 0
  // keeps an OS from assuming the PC default.
  l.overrides.push_back({static_cast<uint8_t>(p::kPitIrq), p::kPitIrq, 0});
  auto virtio = [&](uint64_t mmio, unsigned irq) {
    l.virtio.push_back({static_cast<uint32_t>(mmio), static_cast<uint32_t>(p::kVirtioMmioSize), irq});
    // virtio-mmio interrupts are level-triggered, active high.
    l.overrides.push_back({static_cast<uint8_t>(irq), irq, kIntiActiveHighLevel});
  };
  if (rng_) virtio(p::kVirtioRngBase, p::kVirtioRngIrq);
  if (blk_) virtio(p::kVirtioBlkBase, p::kVirtioBlkIrq);
  if (net_) virtio(p::kVirtioNetBase, p::kVirtioNetIrq);
  l.isa.push_back({"COM1", "PNP0501", p::kCom1Base, static_cast<uint8_t>(p::kUartPortCount),
                   static_cast<uint8_t>(p::kCom1Irq)});
  l.isa.push_back({"RTC_", "PNP0B00", p::kRtcBase, static_cast<uint8_t>(p::kRtcPortCount),
                   static_cast<uint8_t>(p::kRtcIrq)});
  l.sleep_control_port = p::kAcpiPmBase + AcpiPm::kSleepControl;
  l.sleep_status_port = p::kAcpiPmBase + AcpiPm::kSleepStatus;
  l.reset_port = p::kAcpiPmBase + AcpiPm::kReset;
  l.reset_value = p::kAcpiResetValue;
  l.s5_sleep_type = p::kAcpiS5SleepType;
  l.pcat_compat = true;
  l.fw_cfg_port = p::kFwCfgBase;
  l.fw_cfg_port_count = static_cast<uint8_t>(p::kFwCfgPortCount);
  return l;
}

void PlatformDevices::SetHostErrorHandler(const std::function<void(const std::string&)>& handler) {
  if (blk_) blk_->set_host_error_handler(handler);
}

void PlatformDevices::MapInto(PortBus& ports, MmioBus& mmio) { registry_.MapInto(ports, mmio); }

uint64_t PlatformDevices::NextDeadlineNs() const { return registry_.NextDeadlineNs(); }

void PlatformDevices::RunTimers() { registry_.RunTimers(); }

void PlatformDevices::PollInputs() { registry_.PollInputs(); }

void PlatformDevices::SaveState(StateWriter& out) const {
  out.Begin("PLAT", kStateVersion);
  registry_.SaveState(out);
}

void PlatformDevices::LoadState(StateReader& in) {
  // Begin accepts any version up to ours; version 1's layout (presence flags, then the devices
  // in a hand-kept order) is not read: the registry's manifest replaced it.
  if (in.Begin("PLAT", kStateVersion) != kStateVersion) {
    in.Fail("platform state version 1 predates the device registry; this build reads version " +
            std::to_string(kStateVersion));
  }
  registry_.LoadState(in);
}

}  // namespace vmrr
