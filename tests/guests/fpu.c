/* fpu: numeric work in SSE2 double (and x87 long double with FPU_LONG_DOUBLE) through
 * fpu_work.c; the same source built for the host (fpu_host.c) must print the same bytes.
 * The FPU is enabled before kmain by rt_cpu_init (fpu_start.S). */
#include "fpu_work.h"
#include "rt.h"

static void put(const char *s) { serial_puts(s); }

int kmain(uint64_t ram_bytes) {
  (void)ram_bytes;
  serial_init();
  return fpu_work(put);
}
