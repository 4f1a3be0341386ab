// The C mirror of the platform layout that guest code includes (tests/guests/runtime/
// platform.h) must equal hv-hooks/machine/platform_layout.h: any drift fails compilation.
#include "hv-hooks/machine/platform_layout.h"

#include <cstdio>

#include "tests/guests/runtime/platform.h"

namespace p = vmrr::platform;

static_assert(PLAT_PIC_MASTER_BASE == p::kPicMasterBase);
static_assert(PLAT_PIC_SLAVE_BASE == p::kPicSlaveBase);
static_assert(PLAT_ELCR_BASE == p::kElcrBase);
static_assert(PLAT_PIT_BASE == p::kPitBase);
static_assert(PLAT_SYSTEM_CONTROL_PORT == p::kSystemControlPort);
static_assert(PLAT_RTC_BASE == p::kRtcBase);
static_assert(PLAT_COM1_BASE == p::kCom1Base);
static_assert(PLAT_DEBUG_EXIT_PORT == p::kDebugExitPort);
static_assert(PLAT_PCI_CONFIG_ADDRESS == p::kPciConfigAddress);
static_assert(PLAT_PCI_CONFIG_DATA == p::kPciConfigData);
static_assert(PLAT_IOAPIC_BASE == p::kIoApicBase);
static_assert(PLAT_LAPIC_BASE == p::kLapicBase);
static_assert(PLAT_VIRTIO_MMIO_SIZE == p::kVirtioMmioSize);
static_assert(PLAT_VIRTIO_RNG_BASE == p::kVirtioRngBase);
static_assert(PLAT_VIRTIO_BLK_BASE == p::kVirtioBlkBase);
static_assert(PLAT_VIRTIO_NET_BASE == p::kVirtioNetBase);
static_assert(PLAT_PIT_IRQ == p::kPitIrq);
static_assert(PLAT_PIC_CASCADE_IRQ == p::kPicCascadeIrq);
static_assert(PLAT_COM1_IRQ == p::kCom1Irq);
static_assert(PLAT_VIRTIO_RNG_IRQ == p::kVirtioRngIrq);
static_assert(PLAT_VIRTIO_BLK_IRQ == p::kVirtioBlkIrq);
static_assert(PLAT_VIRTIO_NET_IRQ == p::kVirtioNetIrq);
static_assert(PLAT_RTC_IRQ == p::kRtcIrq);

int main() {
  std::puts("guest platform.h matches platform_layout.h");
  return 0;
}
