/* hello: prints a greeting, the RAM size it was given and the CPU vendor, then exits 0. */
#include "rt.h"

int kmain(uint64_t ram_bytes) {
  serial_init();
  printf("Hello from a vmrr test guest\n");
  uint32_t r[4];
  cpuid(0, 0, r);
  char vendor[13];
  memcpy(vendor, &r[1], 4);
  memcpy(vendor + 4, &r[3], 4);
  memcpy(vendor + 8, &r[2], 4);
  vendor[12] = 0;
  printf("ram=%lu MiB cpu=%s\n", ram_bytes >> 20, vendor);
  printf("RESULT hello ok\n");
  return 0;
}
