/* console: echoes typed bytes back to COM1 using interrupt-driven UART receive (IER.RDA,
 * IRQ 4 through the 8259; HLT while the ring is empty). A carriage return is echoed as a line
 * feed. Stops at 'q' or Ctrl-D (0x04), neither echoed, and prints
 * "RESULT console <bytes echoed> <fnv1a of them>". Exit 0. Without input it waits forever
 * (the UART has no end-of-file): feed it "...q". */
#include "rt.h"

int kmain(uint64_t ram_bytes) {
  (void)ram_bytes;
  serial_init();
  idt_init();
  pic_init();
  serial_enable_rx_irq();
  printf("console: type; 'q' or Ctrl-D ends\n");
  uint32_t count = 0, h = FNV1A_INIT;
  cli();
  for (;;) {
    int c = serial_getc_nonblock();
    if (c < 0) {
      wait_for_interrupt();
      continue;
    }
    if (c == 'q' || c == 0x04) break;
    uint8_t b = (uint8_t)c;
    h = fnv1a(h, &b, 1);
    ++count;
    serial_putc(c == '\r' ? '\n' : (char)c);
  }
  sti();
  /* When the input ended, in guest time: depends on when the bytes were typed, so it differs
   * from live run to live run (what a recording must reproduce). */
  printf("\nconsole: input ended at %lu us of guest time\n", (unsigned long)(rdtsc() / 1000));
  printf("RESULT console %u %08x\n", count, h);
  return 0;
}
