/* timer: interrupt-driven counters between busy loops. Phase 1 halts through 4 PIT ticks
 * (1 kHz) and prints the TSC delta of each; phase 2 counts busy-loop iterations in each of
 * 16 PIT ticks; phase 3 does the same for 16 local-APIC timer ticks (periodic, 250 us).
 * The counts depend on how many instructions run per unit of guest time: identical on every
 * run in icount clock mode, different from live run to live run in host clock mode.
 * Phase 4 idles like a server waiting for work: HLT through 50 PIT ticks at 100 Hz (500 ms
 * of guest time), the part a replay skips instead of sleeping.
 * Output ends with "RESULT timer <fnv1a of all numbers>". Exit 0, or 2 if a tick never
 * came (busy loop ran past its cap). Also built as timer.mb.elf. */
#include "rt.h"

#define HLT_TICKS 4
#define PIT_TICKS 16
#define LAPIC_TICKS 16
#define IDLE_TICKS 50
#define LOOP_CAP 50000000ull

static volatile uint32_t ticks;
static volatile uint64_t loop_count;
static uint64_t stamp[PIT_TICKS + LAPIC_TICKS + 1];
static uint64_t tsc_at[HLT_TICKS + 1];

static void record(void) {
  uint32_t t = ticks;
  if (t <= PIT_TICKS + LAPIC_TICKS) stamp[t] = loop_count;
  if (t <= HLT_TICKS) tsc_at[t] = rdtsc();
  ticks = t + 1;
}

static struct frame *pit_irq(struct frame *f) {
  record();
  pic_eoi(PLAT_PIT_IRQ);
  return f;
}

static struct frame *lapic_irq(struct frame *f) {
  record();
  lapic_eoi();
  return f;
}

/* Busy loop until `target` ticks have been recorded; 0 if the cap was hit. */
static int spin_until(uint32_t target) {
  while (ticks < target) {
    loop_count = loop_count + 1;
    if (loop_count > LOOP_CAP) return 0;
  }
  return 1;
}

int kmain(uint64_t ram_bytes) {
  (void)ram_bytes;
  serial_init();
  idt_init();
  pic_init();
  printf("timer: PIT 1 kHz, then local APIC 250 us\n");
  uint32_t h = FNV1A_INIT;

  /* Phase 1: halt between ticks. */
  idt_set_handler(VEC_IRQ(PLAT_PIT_IRQ), pit_irq);
  pic_unmask(PLAT_PIT_IRQ);
  pit_start_hz(1000);
  sti();
  while (ticks < HLT_TICKS + 1) sti_hlt();
  for (int i = 1; i <= HLT_TICKS; ++i) {
    uint64_t d = tsc_at[i] - tsc_at[i - 1];
    printf("hlt tick %d: tsc delta %lu\n", i, d);
    h = fnv1a(h, &d, sizeof d);
  }

  /* Phase 2: PIT ticks between busy loops. */
  cli();
  ticks = 0;
  loop_count = 0;
  sti();
  if (!spin_until(PIT_TICKS + 1)) {
    printf("timer: PIT ticks stopped after %u\n", ticks);
    return 2;
  }
  cli();
  pic_mask(PLAT_PIT_IRQ);
  pit_stop();
  for (int i = 1; i <= PIT_TICKS; ++i) {
    uint64_t n = stamp[i] - stamp[i - 1];
    printf("pit tick %d: %lu iterations\n", i, n);
    h = fnv1a(h, &n, sizeof n);
  }

  /* Phase 3: local APIC timer ticks between busy loops. */
  idt_set_handler(VEC_LAPIC_TIMER, lapic_irq);
  ticks = 0;
  loop_count = 0;
  lapic_enable();
  lapic_timer_periodic(VEC_LAPIC_TIMER, 250000);
  sti();
  if (!spin_until(LAPIC_TICKS + 1)) {
    printf("timer: APIC ticks stopped after %u\n", ticks);
    return 2;
  }
  cli();
  lapic_timer_stop();
  for (int i = 1; i <= LAPIC_TICKS; ++i) {
    uint64_t n = stamp[i] - stamp[i - 1];
    printf("apic tick %d: %lu iterations\n", i, n);
    h = fnv1a(h, &n, sizeof n);
  }
  /* Phase 4: idle at 100 Hz. */
  ticks = 0;
  uint64_t idle_start = rdtsc();
  pic_unmask(PLAT_PIT_IRQ);
  pit_start_hz(100);
  sti();
  while (ticks < IDLE_TICKS) sti_hlt();
  cli();
  pic_mask(PLAT_PIT_IRQ);
  pit_stop();
  uint64_t idle = rdtsc() - idle_start;
  printf("idle: %d ticks at 100 Hz in %lu ns of guest time\n", IDLE_TICKS, idle);
  h = fnv1a(h, &idle, sizeof idle);
  printf("RESULT timer %08x\n", h);
  return 0;
}
