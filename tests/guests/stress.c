/* stress: preemptive threads racing on shared data. Four worker threads and the main thread
 * are switched round-robin by the PIT interrupt (10 kHz); the interrupt stub saves and
 * restores every general register and the handler returns the next thread's saved frame.
 * Each worker does 100000 non-atomic increments of a shared counter (load, some work on the
 * loaded value, store), so a switch between its load and store loses the other threads'
 * increments: the final counter depends on where the ticks fell (fixed in icount mode,
 * different from live run to live run in host mode). Each worker also computes a checksum
 * that does not depend on scheduling, which catches a register the switch failed to restore.
 * Prints per-thread iterations, times switched in and checksum status, then
 * "RESULT stress <counter> lost <lost> switches <n>".
 * Exit 0; 2 a worker's checksum was wrong; 3 counter larger than possible; 4 workers not done
 * after 200000 ticks. Also built as stress.mb.elf.
 * Built with STRESS_FOREVER defined (stress_forever.c), the workload runs in rounds until
 * the machine is stopped: see there. */
#include "rt.h"

#define WORKERS 4
#ifndef ITER
#define ITER 100000u
#endif
#define STACK 16384

struct thread {
  struct frame *frame;
  volatile int done;
  uint32_t switched_in;
  uint64_t checksum;
  volatile uint32_t iterations;
  uint8_t stack[STACK] __attribute__((aligned(16)));
};

static struct thread threads[WORKERS + 1];  /* 0 is the main thread (stack: boot stack) */
static volatile unsigned current;
static volatile uint64_t shared_counter;
static volatile uint64_t switches, ticks;
#ifdef STRESS_FOREVER
static volatile uint64_t rounds_done;  /* written once per round, by the main thread */
#endif

/* The work done between the racy load and store: a small loop, so that the window holds
 * branches (QEMU's TCG takes interrupts only between translated blocks). */
__attribute__((noinline)) static uint64_t mix(uint64_t c, uint64_t i, unsigned id) {
  for (unsigned k = 0; k < 3; ++k) c = (c ^ (i + id + k)) * 0x9e3779b97f4a7c15ull + (c >> 29);
  return c;
}

static uint64_t expected_checksum(unsigned id) {
  uint64_t c = id;
  for (uint64_t i = 0; i < ITER; ++i) c = mix(c, i, id);
  return c;
}

static void worker(unsigned id) {
  struct thread *t = &threads[id];
  uint64_t c = id;
  for (uint64_t i = 0; i < ITER; ++i) {
    uint64_t v = shared_counter;  /* racy read-modify-write */
    c = mix(c, i, id);
    shared_counter = v + 1;
    t->iterations = t->iterations + 1;
  }
  t->checksum = c;
}

__attribute__((noreturn)) static void thread_exit(void) {
  threads[current].done = 1;
  for (;;) sti_hlt();  /* never scheduled again after the next tick */
}

static void thread_start(unsigned id) {
  worker(id);
  thread_exit();
}

static struct frame *schedule(struct frame *f) {
  ticks = ticks + 1;
  threads[current].frame = f;
  unsigned next = current;
  for (unsigned k = 0; k <= WORKERS; ++k) {
    next = (next + 1) % (WORKERS + 1);
    if (!threads[next].done) break;
  }
  if (next != current) {
    switches = switches + 1;
    threads[next].switched_in++;
    current = next;
  }
  pic_eoi(PLAT_PIT_IRQ);
  return threads[current].frame;
}

static void make_thread(unsigned id) {
  struct thread *t = &threads[id];
  uint8_t *top = t->stack + STACK;                 /* 16-byte aligned */
  uint64_t *ret = (uint64_t *)(top - 8);           /* entry RSP = 8 mod 16, as after a call */
  *ret = (uint64_t)(uintptr_t)thread_exit;         /* thread_start never returns; belt and braces */
  struct frame *f = (struct frame *)(top - 256 - sizeof(struct frame));
  memset(f, 0, sizeof *f);
  f->rdi = id;
  f->rip = (uint64_t)(uintptr_t)thread_start;
  f->cs = 0x08;
  f->rflags = 0x202;  /* IF */
  f->rsp = (uint64_t)(uintptr_t)ret;
  f->ss = 0x10;
  t->frame = f;
}

int kmain(uint64_t ram_bytes) {
  (void)ram_bytes;
  serial_init();
  idt_init();
  pic_init();
  uint64_t want[WORKERS + 1];
  for (unsigned id = 1; id <= WORKERS; ++id) {
    want[id] = expected_checksum(id);
    make_thread(id);
  }
  printf("stress: %d threads x %u racy increments, PIT 10 kHz preemption\n", WORKERS, ITER);
  idt_set_handler(VEC_IRQ(PLAT_PIT_IRQ), schedule);
  pic_unmask(PLAT_PIT_IRQ);
  pit_start_hz(10000);
  cli();
#ifdef STRESS_FOREVER
  for (;;) {
#endif
  for (;;) {
    int all = 1;
    for (unsigned id = 1; id <= WORKERS; ++id) all &= threads[id].done;
    if (all) break;
    if (ticks > 200000) {
      printf("stress: workers not done after %lu ticks\n", ticks);
      return 4;
    }
    wait_for_interrupt();  /* the main thread idles until it is switched out and back */
  }
#ifdef STRESS_FOREVER
  /* Every worker is done; interrupts are off (IF = 0 outside wait_for_interrupt), so the
   * main thread checks the round and restarts the workers without being preempted. */
  for (unsigned id = 1; id <= WORKERS; ++id) {
    if (threads[id].checksum != want[id] || threads[id].iterations != ITER) {
      printf("stress: round %lu: thread %u checksum WRONG\n", rounds_done, id);
      return 2;
    }
  }
  rounds_done = rounds_done + 1;
  printf("round %lu counter %lu switches %lu\n", rounds_done, shared_counter, switches);
  shared_counter = 0;
  ticks = 0;
  for (unsigned id = 1; id <= WORKERS; ++id) {
    threads[id].iterations = 0;
    threads[id].checksum = 0;
    make_thread(id);
    threads[id].done = 0;
  }
  }
#endif
  pic_mask(PLAT_PIT_IRQ);
  pit_stop();
  sti();
  int bad = 0;
  for (unsigned id = 1; id <= WORKERS; ++id) {
    int ok = threads[id].checksum == want[id] && threads[id].iterations == ITER;
    bad |= !ok;
    printf("thread %u: iterations %u switched in %u checksum %s\n", id, threads[id].iterations,
           threads[id].switched_in, ok ? "ok" : "WRONG");
  }
  uint64_t total = (uint64_t)WORKERS * ITER;
  uint64_t counter = shared_counter;
  printf("RESULT stress %lu lost %lu switches %lu\n", counter, counter <= total ? total - counter : 0,
         switches);
  if (bad) return 2;
  if (counter > total) return 3;
  return 0;
}
