/* smc: self-modifying code, the case a translating CPU must notice.
 *  1. A 4 KiB buffer (its own page) gets "mov $imm, %eax; ret" with a new imm 64 times, each
 *     version called right after it was written.
 *  2. The code of smc_patch_next (smc_asm.S) stores into the instruction that follows the store
 *     (same page and same basic block), 64 times with different values.
 *  3. smc_loop_patch rewrites the immediate of an add inside its own running loop on every
 *     iteration (the modified instruction runs in the same block on the next pass).
 *  4. A function in the page of kmain's own code (.text) is overwritten with a different
 *     body and called, then restored and called again.
 * Each result is compared with the value computed without self-modification.
 * "RESULT smc <sum of all results>". Exit 0; 2/3/4/5 = case 1/2/3/4 gave a wrong value. */
#include "rt.h"

uint32_t smc_patch_next(uint32_t value);
uint32_t smc_loop_patch(uint32_t iterations);
uint32_t smc_text_target(void);
extern uint8_t smc_text_target_end[];

static uint8_t code_page[4096] __attribute__((aligned(4096), section(".data.smc")));

typedef uint32_t (*fn_t)(void);

static void emit_mov_ret(uint8_t *p, uint32_t imm) {
  p[0] = 0xb8;  /* mov $imm32, %eax */
  memcpy(p + 1, &imm, 4);
  p[5] = 0xc3;  /* ret */
}

int kmain(uint64_t ram_bytes) {
  (void)ram_bytes;
  serial_init();
  idt_init();
  uint64_t total = 0;

  /* 1 */
  fn_t f = (fn_t)(uintptr_t)code_page;
  uint64_t sum = 0, want = 0;
  for (uint32_t i = 0; i < 64; ++i) {
    uint32_t imm = 0x1000u * i + 7;
    emit_mov_ret(code_page, imm);
    barrier();
    sum += f();
    want += imm;
  }
  printf("smc buffer: sum %lu (want %lu)\n", sum, want);
  if (sum != want) return 2;
  total += sum;

  /* 2 */
  sum = want = 0;
  for (uint32_t i = 0; i < 64; ++i) {
    uint32_t v = i * 2654435761u;
    sum += smc_patch_next(v);
    want += v;
  }
  printf("smc next instruction: sum %lu (want %lu)\n", sum, want);
  if (sum != want) return 3;
  total += sum;

  /* 3: the add's immediate is the iteration number, so the result is 0 + 1 + ... + (n-1). */
  uint32_t n = 1000;
  uint32_t r = smc_loop_patch(n);
  uint32_t rwant = n * (n - 1) / 2;
  printf("smc loop: %u (want %u)\n", r, rwant);
  if (r != rwant) return 4;
  total += r;

  /* 4 */
  uint8_t saved[16];
  size_t len = (size_t)(smc_text_target_end - (uint8_t *)(uintptr_t)smc_text_target);
  if (len > sizeof saved || len < 6) return 5;
  uint32_t before = smc_text_target();
  memcpy(saved, (void *)(uintptr_t)smc_text_target, len);
  emit_mov_ret((uint8_t *)(uintptr_t)smc_text_target, 0xc0ffee);
  barrier();
  uint32_t during = smc_text_target();
  memcpy((void *)(uintptr_t)smc_text_target, saved, len);
  barrier();
  uint32_t after = smc_text_target();
  printf("smc text: %x %x %x\n", before, during, after);
  if (before != 0x5eed || during != 0xc0ffee || after != 0x5eed) return 5;
  total += before + during + after;

  printf("RESULT smc %lu\n", total);
  return 0;
}
