/* The tiny runtime shared by every freestanding test guest: port and MMIO access, COM1
 * output (polled) and input (interrupt-driven), printf-lite, exit through the debug-exit port,
 * the IDT with one assembly stub per vector, 8259/8254/local-APIC helpers and a virtio-mmio v2
 * driver core (feature negotiation, split virtqueues). See tests/guests/README.md. */
#ifndef VMRR_GUEST_RT_H
#define VMRR_GUEST_RT_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "platform.h"

/* Every guest defines this; its return value is the exit code (0 = success). */
int kmain(uint64_t ram_bytes);

/* ---- CPU primitives ------------------------------------------------------------------ */
static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port)); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port)); }
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
static inline void mmio_write32(uint64_t addr, uint32_t v) { *(volatile uint32_t *)(uintptr_t)addr = v; }
static inline uint32_t mmio_read32(uint64_t addr) { return *(volatile uint32_t *)(uintptr_t)addr; }
static inline uint8_t mmio_read8(uint64_t addr) { return *(volatile uint8_t *)(uintptr_t)addr; }
static inline void cli(void) { __asm__ volatile("cli" ::: "memory"); }
static inline void sti(void) { __asm__ volatile("sti" ::: "memory"); }
/* Enables interrupts and halts in one step (no wake-up can be lost between the two). */
static inline void sti_hlt(void) { __asm__ volatile("sti; hlt" ::: "memory"); }
/* Called with IF = 0: lets interrupts in, halts until one comes, disables them again. The
 * virtio guests wait this way. -DGUEST_NO_HLT (a manual bring-up build, never the CMake one)
 * polls instead, for QEMU microvm, whose virtio-mmio IRQs bypass the 8259. */
static inline void wait_for_interrupt(void) {
#ifdef GUEST_NO_HLT
  __asm__ volatile("sti; pause; cli" ::: "memory");
#else
  __asm__ volatile("sti; hlt; cli" ::: "memory");
#endif
}
static inline void barrier(void) { __asm__ volatile("" ::: "memory"); }
static inline uint64_t rdtsc(void) {
  uint32_t lo, hi;
  __asm__ volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return ((uint64_t)hi << 32) | lo;
}
static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
  __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}
static inline uint64_t read_cr2(void) {
  uint64_t v;
  __asm__ volatile("mov %%cr2, %0" : "=r"(v));
  return v;
}

/* ---- memory ---------------------------------------------------------------------------- */
void *memcpy(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
void *memmove(void *dst, const void *src, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
/* FNV-1a, 32 bits: the checksum every guest prints. */
uint32_t fnv1a(uint32_t h, const void *data, size_t n);
#define FNV1A_INIT 0x811c9dc5u

/* ---- console and exit -------------------------------------------------------------------- */
void serial_init(void);                 /* 115200 8N1, FIFOs on, OUT2 set, no interrupts */
void serial_putc(char c);               /* polls LSR.THRE; no CR is added before LF */
void serial_puts(const char *s);
/* Interrupt-driven receive: enables IER.RDA, unmasks IRQ4 at the PIC (pic_init first) and
 * installs the handler; bytes land in a 256-byte ring read by serial_getc_nonblock. */
void serial_enable_rx_irq(void);
int serial_getc_nonblock(void);         /* -1 if nothing was received */
int printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
int vprintf(const char *fmt, va_list ap);
/* Writes code to the debug-exit port (host status (code << 1) | 1); never returns. */
__attribute__((noreturn)) void rt_exit(uint32_t code);

/* ---- interrupts --------------------------------------------------------------------------- */
/* What isr_common pushes: general registers (r15 lowest), vector, error code (0 if none),
 * then the CPU's frame. A handler returns the frame to resume, which may be another thread's. */
struct frame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error;
  uint64_t rip, cs, rflags, rsp, ss;
};
typedef struct frame *(*irq_handler_t)(struct frame *f);
/* Present gates for vectors 0-63 and 255 and LIDT. Unhandled exceptions print the vector,
 * error code, RIP, CR2 and RSP and exit with EXIT_UNEXPECTED_EXCEPTION (0x7e); unhandled
 * interrupts exit with EXIT_UNEXPECTED_INTERRUPT (0x7d); spurious IRQ7/IRQ15 are ignored. */
void idt_init(void);
/* Only the listed vector's gate present (everything else faults through a missing gate). */
void idt_init_single(unsigned vector);
void idt_set_handler(unsigned vector, irq_handler_t handler);

/* 8259 pair remapped to VEC_PIC_BASE, all lines masked, and the local APIC put in
 * virtual-wire mode (software-enabled, LINT0 = ExtINT) as firmware leaves it, so that the
 * 8259's output reaches the CPU whatever state the loader left the APIC in (QEMU microvm
 * needs this; vmrr accepts either). */
void pic_init(void);
/* The 8259 set-up alone: the local APIC stays as it was (on vmrr: software-disabled, the
 * power-on state in which the 8259 output goes straight to the CPU). */
void pic_init_alone(void);
void pic_unmask(unsigned irq);
void pic_mask(unsigned irq);
void pic_eoi(unsigned irq);
/* PIT counter 0, mode 2 (rate generator) at about hz (divisor 1193182 / hz). */
void pit_start_hz(unsigned hz);
void pit_stop(void);

/* Local APIC (xAPIC MMIO): software enable with the spurious vector, periodic timer with
 * divide-by-1 (1 count = 1 guest ns on vmrr), EOI. */
void lapic_enable(void);
void lapic_virtual_wire(void);
void lapic_timer_periodic(uint8_t vector, uint32_t initial_count);
void lapic_timer_stop(void);
void lapic_eoi(void);

/* ---- virtio-mmio version 2 -------------------------------------------------------------- */
#define VIRTIO_MAGIC 0x74726976u
#define VIRTIO_DEV_NET 1
#define VIRTIO_DEV_BLK 2
#define VIRTIO_DEV_RNG 4
#define VIRTIO_F_VERSION_1 (1ull << 32)
#define VIRTQ_SIZE 16
#define VIRTQ_DESC_F_NEXT 1
#define VIRTQ_DESC_F_WRITE 2

struct virtq_desc {
  uint64_t addr;
  uint32_t len;
  uint16_t flags;
  uint16_t next;
};
struct virtq_avail {
  uint16_t flags;
  uint16_t idx;
  uint16_t ring[VIRTQ_SIZE];
  uint16_t used_event;
};
struct virtq_used_elem {
  uint32_t id;
  uint32_t len;
};
struct virtq_used {
  uint16_t flags;
  uint16_t idx;
  struct virtq_used_elem ring[VIRTQ_SIZE];
  uint16_t avail_event;
};
/* Ring memory of one queue (descriptor table, driver area, device area). */
struct virtq_mem {
  struct virtq_desc desc[VIRTQ_SIZE];
  struct virtq_avail avail;
  uint8_t pad[4096 - sizeof(struct virtq_desc) * VIRTQ_SIZE - sizeof(struct virtq_avail)];
  struct virtq_used used;
} __attribute__((aligned(4096)));

struct virtq {
  uint64_t base;
  uint16_t index;
  uint16_t free_head;
  uint16_t num_free;
  uint16_t last_used;
  volatile struct virtq_mem *mem;
};
struct vbuf {
  const void *addr;
  uint32_t len;
  int device_writable;
};

/* Magic, version 2 and device ID match (an absent device reads as anything else). */
int virtio_probe(uint64_t base, uint32_t device_id);
/* Reset, ACKNOWLEDGE|DRIVER, accept (offered & wanted) | VERSION_1, FEATURES_OK and read
 * it back. Returns 0, or -1 if the device refused the features. *accepted may be NULL. */
int virtio_negotiate(uint64_t base, uint64_t wanted, uint64_t *accepted);
/* Configures queue `index` with VIRTQ_SIZE entries in `mem`. -1 if the device's maximum is
 * smaller or the queue is already live. */
int virtq_init(struct virtq *q, uint64_t base, uint16_t index, struct virtq_mem *mem);
void virtio_driver_ok(uint64_t base);
uint32_t virtio_status(uint64_t base);
uint8_t virtio_config8(uint64_t base, unsigned offset);
/* Reads InterruptStatus and acknowledges those bits. */
uint32_t virtio_ack_interrupt(uint64_t base);
/* Makes a chain of n buffers available; returns its head, or -1 if descriptors ran out. */
int virtq_submit(struct virtq *q, const struct vbuf *bufs, unsigned n);
void virtq_notify(struct virtq *q);
/* Takes one used chain (frees its descriptors): its head, or -1 if none is used yet. */
int virtq_take_used(struct virtq *q, uint32_t *written);

#endif
