/* crash: a timer-dependent memory corruption that later faults. The main loop walks a ring
 * of 64 linked nodes forever, counting steps. On the 8th PIT tick (1 kHz) the interrupt
 * handler overwrites the next pointer of the node the walk has reached with a non-canonical
 * address; the walk reaches that node again within 64 steps and loads through the pointer:
 * #GP. The IDT has only the timer vector's gate present (no exception handlers), so the #GP
 * cannot be delivered (#NP, then #DF through a missing gate) and the CPU triple-faults:
 * vmrr run ends with its guest-fault status 8; QEMU (-no-reboot) stops.
 * Which node is corrupted, and so the faulting instruction's registers, depends on how many
 * steps ran before the tick: fixed in icount mode, varying from live run to live run in host
 * mode; the fault itself happens in every run.
 * Prints "RESULT crash node <index> step <step>" from the handler just before the fault.
 * Exit codes only when something is wrong: 2 still running 10M steps after the corruption,
 * 3 no timer tick within 50M steps. The 8259 is used alone (local APIC left as the loader
 * left it: software-disabled on vmrr). */
#include "rt.h"

#define NODES 64
#define CORRUPT_TICK 8

struct node {
  struct node *volatile next;
  volatile uint64_t value;
};

static struct node nodes[NODES];
static volatile uint64_t steps;
static volatile uint32_t ticks;
static volatile uint64_t corrupted_at;

static struct frame *pit_irq(struct frame *f) {
  uint32_t t = ticks + 1;
  ticks = t;
  if (t == CORRUPT_TICK) {
    uint64_t s = steps;
    unsigned idx = (unsigned)(s % NODES);
    nodes[idx].next = (struct node *)(uintptr_t)(0xdead000000000000ull | (idx * 16ull));
    corrupted_at = s;
    printf("RESULT crash node %u step %lu\n", idx, s);
  }
  pic_eoi(PLAT_PIT_IRQ);
  return f;
}

int kmain(uint64_t ram_bytes) {
  (void)ram_bytes;
  serial_init();
  for (unsigned i = 0; i < NODES; ++i) {
    nodes[i].next = &nodes[(i + 1) % NODES];
    nodes[i].value = i * 3 + 1;
  }
  idt_init_single(VEC_IRQ(PLAT_PIT_IRQ));
  idt_set_handler(VEC_IRQ(PLAT_PIT_IRQ), pit_irq);
  pic_init_alone();
  pic_unmask(PLAT_PIT_IRQ);
  pit_start_hz(1000);
  printf("crash: walking a %d-node ring; tick %d corrupts it\n", NODES, CORRUPT_TICK);
  sti();
  struct node *p = &nodes[0];
  uint64_t sum = 0;
  for (;;) {
    sum += p->value;
    p = p->next;
    uint64_t s = steps + 1;
    steps = s;
    if (corrupted_at && s > corrupted_at + 10000000) {
      printf("crash: no fault (sum %lu)\n", sum);
      return 2;
    }
    if (!corrupted_at && s > 50000000) {
      printf("crash: no timer tick\n");
      return 3;
    }
  }
}
