/* fwcfg_probe: a test kernel written for QEMU (qemu-system-x86_64 -kernel fwcfg_probe.mb.elf
 * -m SIZE -nographic -device isa-debug-exit,iobase=0xf4,iosize=0x04), with nothing of vmrr's
 * guest runtime: Multiboot 1, 32-bit, loaded at 0x8000. It reads QEMU's fw_cfg (docs/specs/
 * fw_cfg.rst) through the I/O ports (signature, ID, RAM size, CPU counts, an unknown key, the
 * file directory and the etc/boot-fail-wait file it names) and through the DMA interface
 * (the RAM size again), prints what it read on COM1 and exits through isa-debug-exit with
 *   v = 32 * nb_cpus + ram_mib / 16   if every check below held, else 0x7f,
 * i.e. host status 2 * v + 1 (73 for one CPU and 64 MiB). */
#include <stdint.h>

static inline void outb(uint16_t port, uint8_t v) { __asm__ volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory"); }
static inline void outw(uint16_t port, uint16_t v) { __asm__ volatile("outw %0, %1" : : "a"(v), "Nd"(port) : "memory"); }
static inline void outl(uint16_t port, uint32_t v) { __asm__ volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory"); }
static inline uint8_t inb(uint16_t port) {
  uint8_t v;
  __asm__ volatile("inb %1, %0" : "=a"(v) : "Nd"(port) : "memory");
  return v;
}

#define COM1 0x3f8
#define FW_CFG_SELECTOR 0x510
#define FW_CFG_DATA 0x511
#define FW_CFG_DMA_HIGH 0x514
#define FW_CFG_DMA_LOW 0x518
#define DEBUG_EXIT 0xf4

#define FW_CFG_SIGNATURE 0x0000
#define FW_CFG_ID 0x0001
#define FW_CFG_RAM_SIZE 0x0003
#define FW_CFG_NB_CPUS 0x0005
#define FW_CFG_MAX_CPUS 0x000f
#define FW_CFG_FILE_DIR 0x0019

static void put_char(char c) {
  while (!(inb(COM1 + 5) & 0x20)) {
  }
  outb(COM1, (uint8_t)c);
}
static void put_str(const char* s) {
  while (*s) put_char(*s++);
}
static void put_dec(uint32_t v) {
  char b[11];
  int n = 0;
  do {
    b[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) put_char(b[--n]);
}
static void put_hex(uint64_t v, int digits) {
  put_str("0x");
  for (int i = digits - 1; i >= 0; --i) put_char("0123456789abcdef"[(v >> (4 * i)) & 0xf]);
}
static uint32_t be32(uint32_t v) { return __builtin_bswap32(v); }

static void fw_select(uint16_t key) { outw(FW_CFG_SELECTOR, key); }
static void fw_read(void* buf, uint32_t n) {
  uint8_t* p = buf;
  while (n--) *p++ = inb(FW_CFG_DATA);
}

/* FWCfgDmaAccess: big-endian fields. */
static volatile struct {
  uint32_t control;
  uint32_t length;
  uint32_t address_high;
  uint32_t address_low;
} __attribute__((aligned(16))) dma;

static int fw_dma_read(uint16_t key, void* buf, uint32_t n) {
  dma.control = be32(((uint32_t)key << 16) | 0x08 /* select */ | 0x02 /* read */);
  dma.length = be32(n);
  dma.address_high = 0;
  dma.address_low = be32((uint32_t)(uintptr_t)buf);
  outl(FW_CFG_DMA_HIGH, 0);
  outl(FW_CFG_DMA_LOW, be32((uint32_t)(uintptr_t)&dma));  /* starts the transfer */
  return be32(dma.control) == 0;
}

static int str_eq(const char* a, const char* b) {
  while (*a && *a == *b) ++a, ++b;
  return *a == *b;
}

void kmain(void) {
  int ok = 1;
  put_str("fwcfg-probe: start\n");

  char sig[5] = {0};
  fw_select(FW_CFG_SIGNATURE);
  fw_read(sig, 4);
  put_str("signature ");
  put_str(sig);
  put_char('\n');
  ok &= str_eq(sig, "QEMU");

  uint32_t id = 0;
  fw_select(FW_CFG_ID);
  fw_read(&id, 4);
  put_str("id ");
  put_dec(id);
  put_char('\n');

  uint64_t ram = 0;
  fw_select(FW_CFG_RAM_SIZE);
  fw_read(&ram, 8);
  const uint32_t ram_mib = (uint32_t)(ram >> 20);
  put_str("ram_size ");
  put_hex(ram, 16);
  put_str(" (");
  put_dec(ram_mib);
  put_str(" MiB)\n");

  uint16_t cpus = 0, max_cpus = 0;
  fw_select(FW_CFG_NB_CPUS);
  fw_read(&cpus, 2);
  fw_select(FW_CFG_MAX_CPUS);
  fw_read(&max_cpus, 2);
  put_str("nb_cpus ");
  put_dec(cpus);
  put_str(" max_cpus ");
  put_dec(max_cpus);
  put_char('\n');

  /* An item no machine has reads as zeros. */
  uint32_t unknown = 0x5a5a5a5a;
  fw_select(0x3fff);
  fw_read(&unknown, 4);
  put_str("unknown-key ");
  put_dec(unknown);
  put_char('\n');
  ok &= unknown == 0;

  /* The file directory: find etc/boot-fail-wait (QEMU's default: -1) and read it. */
  uint32_t count = 0, fail_wait = 0;
  uint16_t fail_wait_key = 0;
  fw_select(FW_CFG_FILE_DIR);
  fw_read(&count, 4);
  count = be32(count);
  for (uint32_t i = 0; i < count && i < 256; ++i) {
    struct {
      uint32_t size;
      uint16_t select;
      uint16_t reserved;
      char name[56];
    } f;
    fw_read(&f, sizeof f);
    f.name[55] = 0;
    if (str_eq(f.name, "etc/boot-fail-wait") && be32(f.size) == 4)
      fail_wait_key = (uint16_t)((f.select >> 8) | (f.select << 8));
  }
  if (fail_wait_key) {
    fw_select(fail_wait_key);
    fw_read(&fail_wait, 4);
  }
  put_str("etc/boot-fail-wait ");
  put_hex(fail_wait, 8);
  put_char('\n');
  ok &= fail_wait_key != 0 && fail_wait == 0xffffffffu;

  if (id & 2) {
    uint64_t dma_ram = 0;
    const int done = fw_dma_read(FW_CFG_RAM_SIZE, &dma_ram, 8);
    put_str("dma ram_size ");
    put_hex(dma_ram, 16);
    put_str(done ? " ok\n" : " error\n");
    ok &= done && dma_ram == ram;
  } else {
    put_str("dma absent\n");
  }

  const uint32_t v = ok ? ((uint32_t)cpus << 5) + (ram_mib >> 4) : 0x7f;
  put_str("RESULT fwcfg-probe ");
  put_dec(v);
  put_char('\n');
  outb(DEBUG_EXIT, (uint8_t)v);
}
