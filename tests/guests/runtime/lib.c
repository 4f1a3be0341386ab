/* Memory and string helpers, COM1 console (polled output, interrupt-driven input),
 * printf-lite and exit. */
#include "rt.h"

void *memcpy(void *dst, const void *src, size_t n) {
  uint8_t *d = dst;
  const uint8_t *s = src;
  while (n--) *d++ = *s++;
  return dst;
}

void *memmove(void *dst, const void *src, size_t n) {
  uint8_t *d = dst;
  const uint8_t *s = src;
  if (d < s) {
    while (n--) *d++ = *s++;
  } else {
    while (n--) d[n] = s[n];
  }
  return dst;
}

void *memset(void *dst, int c, size_t n) {
  uint8_t *d = dst;
  while (n--) *d++ = (uint8_t)c;
  return dst;
}

int memcmp(const void *a, const void *b, size_t n) {
  const uint8_t *x = a, *y = b;
  for (size_t i = 0; i < n; ++i) {
    if (x[i] != y[i]) return x[i] < y[i] ? -1 : 1;
  }
  return 0;
}

size_t strlen(const char *s) {
  size_t n = 0;
  while (s[n]) ++n;
  return n;
}

uint32_t fnv1a(uint32_t h, const void *data, size_t n) {
  const uint8_t *p = data;
  for (size_t i = 0; i < n; ++i) {
    h ^= p[i];
    h *= 16777619u;
  }
  return h;
}

/* ---- COM1 --------------------------------------------------------------------------------- */
enum { kThr = 0, kRbr = 0, kIer = 1, kFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5 };

void serial_init(void) {
  outb(PLAT_COM1_BASE + kIer, 0x00);
  outb(PLAT_COM1_BASE + kLcr, 0x80);  /* DLAB */
  outb(PLAT_COM1_BASE + 0, 0x01);     /* divisor 1: 115200 baud */
  outb(PLAT_COM1_BASE + 1, 0x00);
  outb(PLAT_COM1_BASE + kLcr, 0x03);  /* 8N1 */
  outb(PLAT_COM1_BASE + kFcr, 0x07);  /* FIFOs on and cleared, trigger level 1 */
  outb(PLAT_COM1_BASE + kMcr, 0x0b);  /* DTR, RTS, OUT2 (IRQ line enable) */
}

void serial_putc(char c) {
  while (!(inb(PLAT_COM1_BASE + kLsr) & 0x20)) {
  }
  outb(PLAT_COM1_BASE + kThr, (uint8_t)c);
}

void serial_puts(const char *s) {
  while (*s) serial_putc(*s++);
}

static volatile uint8_t rx_ring[256];
static volatile uint8_t rx_head, rx_tail;

static struct frame *serial_irq(struct frame *f) {
  while (inb(PLAT_COM1_BASE + kLsr) & 0x01) {
    uint8_t b = inb(PLAT_COM1_BASE + kRbr);
    if ((uint8_t)(rx_head + 1) != rx_tail) {  /* full ring: drop, as a UART overruns */
      rx_ring[rx_head] = b;
      rx_head = (uint8_t)(rx_head + 1);
    }
  }
  pic_eoi(PLAT_COM1_IRQ);
  return f;
}

void serial_enable_rx_irq(void) {
  idt_set_handler(VEC_IRQ(PLAT_COM1_IRQ), serial_irq);
  outb(PLAT_COM1_BASE + kIer, 0x01);  /* received data available */
  pic_unmask(PLAT_COM1_IRQ);
}

int serial_getc_nonblock(void) {
  if (rx_tail == rx_head) return -1;
  uint8_t b = rx_ring[rx_tail];
  rx_tail = (uint8_t)(rx_tail + 1);
  return b;
}

/* ---- printf-lite: %d %i %u %x %X %p %s %c %%, l/ll/z modifiers, '0' flag and width ------ */
static void put_num(uint64_t v, unsigned base, int upper, int neg, int width, char pad) {
  char buf[24];
  const char *digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  int n = 0;
  do {
    buf[n++] = digits[v % base];
    v /= base;
  } while (v);
  int len = n + (neg ? 1 : 0);
  if (neg && pad == '0') serial_putc('-');
  for (; len < width; ++len) serial_putc(pad);
  if (neg && pad != '0') serial_putc('-');
  while (n) serial_putc(buf[--n]);
}

int vprintf(const char *fmt, va_list ap) {
  for (; *fmt; ++fmt) {
    if (*fmt != '%') {
      serial_putc(*fmt);
      continue;
    }
    ++fmt;
    char pad = ' ';
    int width = 0, longs = 0;
    if (*fmt == '0') {
      pad = '0';
      ++fmt;
    }
    while (*fmt >= '0' && *fmt <= '9') width = width * 10 + (*fmt++ - '0');
    while (*fmt == 'l' || *fmt == 'z') {
      ++longs;
      ++fmt;
    }
    switch (*fmt) {
      case 'd':
      case 'i': {
        int64_t v = longs ? va_arg(ap, int64_t) : va_arg(ap, int);
        put_num(v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v, 10, 0, v < 0, width, pad);
        break;
      }
      case 'u':
        put_num(longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 10, 0, 0, width, pad);
        break;
      case 'x':
      case 'X':
        put_num(longs ? va_arg(ap, uint64_t) : va_arg(ap, unsigned), 16, *fmt == 'X', 0, width, pad);
        break;
      case 'p':
        serial_puts("0x");
        put_num((uint64_t)(uintptr_t)va_arg(ap, void *), 16, 0, 0, 16, '0');
        break;
      case 's': {
        const char *s = va_arg(ap, const char *);
        if (!s) s = "(null)";
        int len = (int)strlen(s);
        for (; len < width; ++len) serial_putc(' ');
        serial_puts(s);
        break;
      }
      case 'c':
        serial_putc((char)va_arg(ap, int));
        break;
      case '%':
        serial_putc('%');
        break;
      case '\0':
        return 0;
      default:
        serial_putc('%');
        serial_putc(*fmt);
        break;
    }
  }
  return 0;
}

int printf(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  int r = vprintf(fmt, ap);
  va_end(ap);
  return r;
}

void rt_exit(uint32_t code) {
  cli();
  outl(PLAT_DEBUG_EXIT_PORT, code);
  /* No debug-exit device: stop here for good. */
  for (;;) __asm__ volatile("hlt");
}
