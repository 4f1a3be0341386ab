/* C mirror of hv-hooks/machine/platform_layout.h for the freestanding test guests (which are
 * C, while that header is C++). tests/guests/layout_check.cc static_asserts that every value
 * here equals the C++ one, so the two can never drift: change both together. */
#ifndef VMRR_GUEST_PLATFORM_H
#define VMRR_GUEST_PLATFORM_H

/* I/O ports */
#define PLAT_PIC_MASTER_BASE 0x20
#define PLAT_PIC_SLAVE_BASE 0xa0
#define PLAT_ELCR_BASE 0x4d0
#define PLAT_PIT_BASE 0x40
#define PLAT_SYSTEM_CONTROL_PORT 0x61
#define PLAT_RTC_BASE 0x70
#define PLAT_COM1_BASE 0x3f8
#define PLAT_DEBUG_EXIT_PORT 0xf4
#define PLAT_PCI_CONFIG_ADDRESS 0xcf8
#define PLAT_PCI_CONFIG_DATA 0xcfc

/* MMIO */
#define PLAT_IOAPIC_BASE 0xfec00000ull
#define PLAT_LAPIC_BASE 0xfee00000ull
#define PLAT_VIRTIO_MMIO_SIZE 0x200ull
#define PLAT_VIRTIO_RNG_BASE 0xfeb00000ull
#define PLAT_VIRTIO_BLK_BASE 0xfeb00200ull
#define PLAT_VIRTIO_NET_BASE 0xfeb00400ull

/* ISA IRQ lines */
#define PLAT_PIT_IRQ 0
#define PLAT_PIC_CASCADE_IRQ 2
#define PLAT_COM1_IRQ 4
#define PLAT_VIRTIO_RNG_IRQ 5
#define PLAT_VIRTIO_BLK_IRQ 6
#define PLAT_VIRTIO_NET_IRQ 7
#define PLAT_RTC_IRQ 8

/* Interrupt vectors the runtime uses: the 8259 pair is remapped to 0x20-0x2f. */
#define VEC_PIC_BASE 0x20
#define VEC_IRQ(irq) (VEC_PIC_BASE + (irq))
#define VEC_LAPIC_TIMER 0x30
#define VEC_LAPIC_SPURIOUS 0xff

/* Exit codes the runtime itself uses (guests use small codes for their own failures). */
#define EXIT_UNEXPECTED_EXCEPTION 0x7e
#define EXIT_UNEXPECTED_INTERRUPT 0x7d

#endif
