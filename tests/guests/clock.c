/* clock: the guest-visible time and entropy sources. Prints TSC deltas across fixed busy
 * loops, the CMOS RTC date and time, RDRAND/RDSEED values (when CPUID advertises them:
 * CPUID.1:ECX[30], CPUID.7.0:EBX[18]) and 16 bytes from virtio-rng (when present). Every one
 * of these is an input a recording must log; in icount mode the TSC deltas are the same on
 * every run, the rest comes from the host. "RESULT clock <fnv1a of everything printed>".
 * Exit 0; 4 RDRAND/RDSEED kept failing; 5 TSC went backwards; 6 RTC fields out of range;
 * 7 virtio-rng present but not usable. */
#include "rt.h"

static uint8_t cmos_read(uint8_t index) {
  outb(PLAT_RTC_BASE, (uint8_t)(0x80 | index));  /* NMI stays masked */
  return inb(PLAT_RTC_BASE + 1);
}

struct rtc_time {
  unsigned year, month, day, hour, minute, second;
};

static unsigned from_bcd(uint8_t v, int bcd) { return bcd ? (unsigned)(v >> 4) * 10 + (v & 15) : v; }

static void rtc_read_once(struct rtc_time *t) {
  while (cmos_read(0x0a) & 0x80) {  /* update in progress */
  }
  uint8_t b = cmos_read(0x0b);
  int bcd = !(b & 0x04);
  uint8_t hour = cmos_read(0x04);
  int pm = hour & 0x80;
  t->second = from_bcd(cmos_read(0x00), bcd);
  t->minute = from_bcd(cmos_read(0x02), bcd);
  t->hour = from_bcd(hour & 0x7f, bcd);
  if (!(b & 0x02)) t->hour = (t->hour % 12) + (pm ? 12 : 0);  /* 12-hour mode */
  t->day = from_bcd(cmos_read(0x07), bcd);
  t->month = from_bcd(cmos_read(0x08), bcd);
  t->year = from_bcd(cmos_read(0x32), bcd) * 100 + from_bcd(cmos_read(0x09), bcd);
}

/* Reads until two consecutive reads agree (a second boundary may fall between fields). */
static void rtc_read(struct rtc_time *t) {
  struct rtc_time a;
  rtc_read_once(&a);
  for (int i = 0; i < 5; ++i) {
    rtc_read_once(t);
    if (!memcmp(&a, t, sizeof a)) return;
    a = *t;
  }
}

static int rdrand64(uint64_t *v) {
  for (int i = 0; i < 10; ++i) {
    uint8_t ok;
    __asm__ volatile("rdrand %0; setc %1" : "=r"(*v), "=qm"(ok));
    if (ok) return 1;
  }
  return 0;
}

static int rdseed64(uint64_t *v) {
  for (int i = 0; i < 100; ++i) {
    uint8_t ok;
    __asm__ volatile("rdseed %0; setc %1" : "=r"(*v), "=qm"(ok));
    if (ok) return 1;
    __asm__ volatile("pause");
  }
  return 0;
}

static struct virtq_mem rng_mem;

/* 0: read `n` bytes; 1: no device; -1: device unusable. */
static int virtio_rng_read(uint8_t *out, uint32_t n, uint32_t *got) {
  uint64_t base = PLAT_VIRTIO_RNG_BASE;
  if (!virtio_probe(base, VIRTIO_DEV_RNG)) return 1;
  struct virtq q;
  if (virtio_negotiate(base, 0, 0) || virtq_init(&q, base, 0, &rng_mem)) return -1;
  virtio_driver_ok(base);
  struct vbuf b = {out, n, 1};
  if (virtq_submit(&q, &b, 1) < 0) return -1;
  virtq_notify(&q);
  /* virtio-rng completes during the notification on vmrr; poll with a bound anyway. */
  for (uint32_t spin = 0; spin < 10000000; ++spin) {
    if (virtq_take_used(&q, got) >= 0) {
      virtio_ack_interrupt(base);
      return 0;
    }
  }
  return -1;
}

int kmain(uint64_t ram_bytes) {
  (void)ram_bytes;
  serial_init();
  idt_init();
  uint32_t h = FNV1A_INIT;

  /* TSC across fixed amounts of work. */
  uint64_t prev = rdtsc();
  for (int round = 1; round <= 4; ++round) {
    for (volatile uint32_t i = 0; i < 10000u * (uint32_t)round; i = i + 1) {
    }
    uint64_t now = rdtsc();
    if (now < prev) {
      printf("clock: TSC went backwards %lu -> %lu\n", prev, now);
      return 5;
    }
    printf("tsc delta %d: %lu\n", round, now - prev);
    uint64_t d = now - prev;
    h = fnv1a(h, &d, sizeof d);
    prev = now;
  }

  struct rtc_time t;
  rtc_read(&t);
  printf("rtc %04u-%02u-%02u %02u:%02u:%02u\n", t.year, t.month, t.day, t.hour, t.minute,
         t.second);
  if (t.month < 1 || t.month > 12 || t.day < 1 || t.day > 31 || t.hour > 23 || t.minute > 59 ||
      t.second > 59) {
    printf("clock: RTC fields out of range\n");
    return 6;
  }
  h = fnv1a(h, &t, sizeof t);

  uint32_t r[4];
  cpuid(1, 0, r);
  if (r[2] & (1u << 30)) {
    for (int i = 0; i < 4; ++i) {
      uint64_t v;
      if (!rdrand64(&v)) {
        printf("clock: RDRAND failed 10 times\n");
        return 4;
      }
      printf("rdrand %016lx\n", v);
      h = fnv1a(h, &v, sizeof v);
    }
  } else {
    printf("NO RDRAND\n");
  }
  cpuid(0, 0, r);
  uint32_t max_leaf = r[0];
  if (max_leaf >= 7) cpuid(7, 0, r);
  if (max_leaf >= 7 && (r[1] & (1u << 18))) {
    for (int i = 0; i < 2; ++i) {
      uint64_t v;
      if (!rdseed64(&v)) {
        printf("clock: RDSEED failed 100 times\n");
        return 4;
      }
      printf("rdseed %016lx\n", v);
      h = fnv1a(h, &v, sizeof v);
    }
  } else {
    printf("NO RDSEED\n");
  }

  static uint8_t bytes[16];
  uint32_t got = 0;
  int rc = virtio_rng_read(bytes, sizeof bytes, &got);
  if (rc == 1) {
    printf("NO VIRTIO-RNG\n");
  } else if (rc < 0 || got == 0 || got > sizeof bytes) {
    printf("clock: virtio-rng unusable (status %x, got %u)\n", virtio_status(PLAT_VIRTIO_RNG_BASE), got);
    return 7;
  } else {
    printf("virtio-rng %u bytes:", got);
    for (uint32_t i = 0; i < got; ++i) printf(" %02x", bytes[i]);
    printf("\n");
    h = fnv1a(h, bytes, got);
  }
  printf("RESULT clock %08x\n", h);
  return 0;
}
