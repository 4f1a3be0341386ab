/* The IDT and interrupt dispatch, the 8259 pair, the 8254 PIT and the local APIC. */
#include "rt.h"

struct idt_gate {
  uint16_t offset_lo;
  uint16_t selector;
  uint8_t ist;
  uint8_t type_attr;
  uint16_t offset_mid;
  uint32_t offset_hi;
  uint32_t reserved;
};

static struct idt_gate idt[256] __attribute__((aligned(16)));
static irq_handler_t handlers[256];
extern const uint64_t isr_stub_table[64];
extern void isr_255(void);

static void set_gate(unsigned vector, uint64_t stub) {
  struct idt_gate *g = &idt[vector];
  g->offset_lo = (uint16_t)stub;
  g->selector = 0x08;
  g->ist = 0;
  g->type_attr = 0x8e;  /* present, DPL 0, 64-bit interrupt gate (clears IF) */
  g->offset_mid = (uint16_t)(stub >> 16);
  g->offset_hi = (uint32_t)(stub >> 32);
  g->reserved = 0;
}

static void load_idt(void) {
  struct __attribute__((packed)) {
    uint16_t limit;
    uint64_t base;
  } idtr = {sizeof(idt) - 1, (uint64_t)(uintptr_t)idt};
  __asm__ volatile("lidt %0" : : "m"(idtr) : "memory");
}

void idt_init(void) {
  for (unsigned v = 0; v < 64; ++v) set_gate(v, isr_stub_table[v]);
  set_gate(255, (uint64_t)(uintptr_t)isr_255);
  load_idt();
}

void idt_init_single(unsigned vector) {
  set_gate(vector, vector == 255 ? (uint64_t)(uintptr_t)isr_255 : isr_stub_table[vector & 63]);
  load_idt();
}

void idt_set_handler(unsigned vector, irq_handler_t handler) { handlers[vector & 255] = handler; }

static const char *const exception_names[32] = {
    "#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO", "#TS", "#NP",
    "#SS", "#GP", "#PF", "?15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP", "?22", "?23",
    "?24", "?25", "?26", "?27", "?28", "#HV", "#VC", "#SX"};

/* Called by isr_common with interrupts disabled. */
struct frame *isr_dispatch(struct frame *f) {
  unsigned v = (unsigned)f->vector;
  if (handlers[v]) return handlers[v](f);
  if (v < 32) {
    printf("EXCEPTION %s vector=%u error=%lx rip=%lx cr2=%lx rsp=%lx\n", exception_names[v], v,
           f->error, f->rip, read_cr2(), f->rsp);
    rt_exit(EXIT_UNEXPECTED_EXCEPTION);
  }
  if (v == VEC_IRQ(7) || v == VEC_IRQ(15) || v == VEC_LAPIC_SPURIOUS) {
    /* Spurious: the master's IRQ7 needs no EOI; a slave spurious IRQ15 needs the master's. */
    if (v == VEC_IRQ(15)) outb(PLAT_PIC_MASTER_BASE, 0x20);
    return f;
  }
  printf("UNEXPECTED INTERRUPT vector=%u rip=%lx\n", v, f->rip);
  rt_exit(EXIT_UNEXPECTED_INTERRUPT);
}

/* ---- 8259 pair ---------------------------------------------------------------------------- */
static uint16_t pic_masks = 0xffff;

static void pic_write_masks(void) {
  outb(PLAT_PIC_MASTER_BASE + 1, (uint8_t)pic_masks);
  outb(PLAT_PIC_SLAVE_BASE + 1, (uint8_t)(pic_masks >> 8));
}

void pic_init(void) {
  pic_init_alone();
  lapic_virtual_wire();
}

void pic_init_alone(void) {
  outb(PLAT_PIC_MASTER_BASE, 0x11);  /* ICW1: edge, cascade, ICW4 follows */
  outb(PLAT_PIC_SLAVE_BASE, 0x11);
  outb(PLAT_PIC_MASTER_BASE + 1, VEC_PIC_BASE);      /* ICW2: vector base */
  outb(PLAT_PIC_SLAVE_BASE + 1, VEC_PIC_BASE + 8);
  outb(PLAT_PIC_MASTER_BASE + 1, 1u << PLAT_PIC_CASCADE_IRQ);  /* ICW3 */
  outb(PLAT_PIC_SLAVE_BASE + 1, PLAT_PIC_CASCADE_IRQ);
  outb(PLAT_PIC_MASTER_BASE + 1, 0x01);  /* ICW4: 8086 mode, normal EOI */
  outb(PLAT_PIC_SLAVE_BASE + 1, 0x01);
  pic_masks = (uint16_t)~(1u << PLAT_PIC_CASCADE_IRQ);  /* everything masked but the cascade */
  pic_write_masks();
}

void pic_unmask(unsigned irq) {
  pic_masks &= (uint16_t)~(1u << irq);
  pic_write_masks();
}

void pic_mask(unsigned irq) {
  pic_masks |= (uint16_t)(1u << irq);
  pic_write_masks();
}

void pic_eoi(unsigned irq) {
  if (irq >= 8) outb(PLAT_PIC_SLAVE_BASE, 0x20);
  outb(PLAT_PIC_MASTER_BASE, 0x20);
}

/* ---- 8254 --------------------------------------------------------------------------------- */
void pit_start_hz(unsigned hz) {
  uint32_t divisor = 1193182u / hz;
  if (divisor > 0xffff) divisor = 0;  /* 0 means 65536 */
  outb(PLAT_PIT_BASE + 3, 0x34);      /* counter 0, LSB then MSB, mode 2, binary */
  outb(PLAT_PIT_BASE + 0, (uint8_t)divisor);
  outb(PLAT_PIT_BASE + 0, (uint8_t)(divisor >> 8));
}

void pit_stop(void) {
  outb(PLAT_PIT_BASE + 3, 0x30);  /* counter 0, mode 0, no count loaded: OUT stays low */
}

/* ---- local APIC --------------------------------------------------------------------------- */
enum {
  kLapicEoi = 0xb0, kLapicSvr = 0xf0, kLapicLvtTimer = 0x320, kLapicLvtLint0 = 0x350,
  kLapicTimerInitial = 0x380, kLapicTimerDivide = 0x3e0,
};

void lapic_virtual_wire(void) {
  lapic_enable();
  mmio_write32(PLAT_LAPIC_BASE + kLapicLvtLint0, 0x700);  /* ExtINT, unmasked, edge */
}

void lapic_enable(void) { mmio_write32(PLAT_LAPIC_BASE + kLapicSvr, 0x100 | VEC_LAPIC_SPURIOUS); }

void lapic_timer_periodic(uint8_t vector, uint32_t initial_count) {
  mmio_write32(PLAT_LAPIC_BASE + kLapicTimerDivide, 0x0b);  /* divide by 1 */
  mmio_write32(PLAT_LAPIC_BASE + kLapicLvtTimer, (1u << 17) | vector);
  mmio_write32(PLAT_LAPIC_BASE + kLapicTimerInitial, initial_count);
}

void lapic_timer_stop(void) {
  mmio_write32(PLAT_LAPIC_BASE + kLapicLvtTimer, 1u << 16);  /* masked */
  mmio_write32(PLAT_LAPIC_BASE + kLapicTimerInitial, 0);
}

void lapic_eoi(void) { mmio_write32(PLAT_LAPIC_BASE + kLapicEoi, 0); }
