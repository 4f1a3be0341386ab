/* disk: virtio-blk driver test. Reads the capacity, hashes the original sectors 0-7, writes
 * a pattern to them (one 8-sector request, then one 2-sector request split over two data
 * descriptors that rewrites sectors 2-3), reads everything back with interrupt-driven
 * completion (IRQ 6 through the 8259, HLT while waiting), compares, prints the checksum of
 * what was read and "DISK OK". vmrr's disk overlays writes, so the image file is unchanged.
 * "RESULT disk <fnv1a of the data read back>" depends only on the pattern, not on the image.
 * Exit 0; 3 no virtio-blk device (prints NO DISK); 4 feature/queue set-up refused;
 * 5 request failed (status byte not OK); 6 data read back differs; 7 disk under 8 sectors;
 * 8 a completion never came. */
#include "rt.h"

#define SECTOR 512
#define NSECT 8
#define BLK_T_IN 0
#define BLK_T_OUT 1
#define BLK_F_FLUSH (1ull << 9)
#define BLK_F_BLK_SIZE (1ull << 6)
#define BLK_F_SEG_MAX (1ull << 2)

struct blk_req_hdr {
  uint32_t type;
  uint32_t reserved;
  uint64_t sector;
};

static struct virtq_mem queue_mem;
static struct virtq q;
static volatile uint32_t irqs;
static uint8_t data[NSECT * SECTOR] __attribute__((aligned(16)));
static uint8_t expect[NSECT * SECTOR];

static struct frame *blk_irq(struct frame *f) {
  virtio_ack_interrupt(PLAT_VIRTIO_BLK_BASE);
  irqs = irqs + 1;
  pic_eoi(PLAT_VIRTIO_BLK_IRQ);
  return f;
}

/* Submits header, data buffers, status; waits for completion. Returns the status byte or
 * a negative value if the request could not be queued or never completed. */
static int blk_request(uint32_t type, uint64_t sector, uint8_t *buf, uint32_t len, int split) {
  static struct blk_req_hdr hdr;
  static volatile uint8_t status;
  hdr.type = type;
  hdr.reserved = 0;
  hdr.sector = sector;
  status = 0xff;
  int in = type == BLK_T_IN;
  struct vbuf b[4];
  unsigned n = 0;
  b[n++] = (struct vbuf){&hdr, sizeof hdr, 0};
  if (split) {
    b[n++] = (struct vbuf){buf, len / 2, in};
    b[n++] = (struct vbuf){buf + len / 2, len - len / 2, in};
  } else {
    b[n++] = (struct vbuf){buf, len, in};
  }
  b[n++] = (struct vbuf){(const void *)&status, 1, 1};
  cli();
  int head = virtq_submit(&q, b, n);
  if (head < 0) return -1;
  virtq_notify(&q);
  /* Completion arrives about 20 us of guest time later with an interrupt; halt until then. */
  for (uint32_t waits = 0; waits < 1000000; ++waits) {
    uint32_t written;
    int done = virtq_take_used(&q, &written);
    if (done >= 0) {
      sti();
      if (done != head) return -2;
      return status;
    }
    wait_for_interrupt();
  }
  sti();
  return -3;
}

static int check(int rc, const char *what) {
  if (rc == 0) return 0;
  printf("disk: %s failed (%d)\n", what, rc);
  return rc < -2 ? 8 : 5;
}

int kmain(uint64_t ram_bytes) {
  (void)ram_bytes;
  serial_init();
  idt_init();
  pic_init();
  uint64_t base = PLAT_VIRTIO_BLK_BASE;
  if (!virtio_probe(base, VIRTIO_DEV_BLK)) {
    printf("NO DISK\n");
    return 3;
  }
  uint64_t features = 0;
  if (virtio_negotiate(base, BLK_F_FLUSH | BLK_F_BLK_SIZE | BLK_F_SEG_MAX, &features) ||
      virtq_init(&q, base, 0, &queue_mem)) {
    printf("disk: set-up refused (status %x)\n", virtio_status(base));
    return 4;
  }
  uint64_t capacity = 0;
  for (int i = 7; i >= 0; --i) capacity = (capacity << 8) | virtio_config8(base, (unsigned)i);
  printf("disk: capacity %lu sectors, features %lx\n", capacity, features);
  if (capacity < NSECT) return 7;
  idt_set_handler(VEC_IRQ(PLAT_VIRTIO_BLK_IRQ), blk_irq);
  pic_unmask(PLAT_VIRTIO_BLK_IRQ);
  virtio_driver_ok(base);
  sti();

  int rc = check(blk_request(BLK_T_IN, 0, data, sizeof data, 0), "read of the original data");
  if (rc) return rc;
  printf("disk: original sectors 0-%d fnv1a %08x\n", NSECT - 1, fnv1a(FNV1A_INIT, data, sizeof data));

  for (uint32_t i = 0; i < sizeof expect; ++i) {
    uint32_t sector = i / SECTOR;
    expect[i] = (uint8_t)(i * 7 + sector * 13 + (i >> 9));
  }
  memcpy(data, expect, sizeof data);
  if ((rc = check(blk_request(BLK_T_OUT, 0, data, sizeof data, 0), "write of sectors 0-7"))) return rc;
  /* Rewrite sectors 2-3 with a second pattern from a two-descriptor buffer. */
  for (uint32_t i = 2 * SECTOR; i < 4 * SECTOR; ++i) expect[i] = (uint8_t)(0xa5 ^ i);
  memcpy(data, expect + 2 * SECTOR, 2 * SECTOR);
  if ((rc = check(blk_request(BLK_T_OUT, 2, data, 2 * SECTOR, 1), "split write of sectors 2-3"))) return rc;

  memset(data, 0, sizeof data);
  if ((rc = check(blk_request(BLK_T_IN, 0, data, sizeof data, 1), "read back"))) return rc;
  if (memcmp(data, expect, sizeof data) != 0) {
    for (uint32_t i = 0; i < sizeof data; ++i) {
      if (data[i] != expect[i]) {
        printf("disk: byte %u read %02x, wrote %02x\n", i, data[i], expect[i]);
        break;
      }
    }
    return 6;
  }
  uint32_t h = fnv1a(FNV1A_INIT, data, sizeof data);
  printf("disk: %u interrupts\n", irqs);
  printf("DISK OK\n");
  printf("RESULT disk %08x\n", h);
  return 0;
}
