/* net: virtio-net echo server. Posts 8 receive buffers, then for each received Ethernet frame
 * prints its length, source MAC and checksum, and sends it back with source and destination
 * MAC swapped (transmit completion polled). Stops after 64 frames or after echoing a frame
 * whose payload (bytes after the 14-byte Ethernet header) starts with "QUIT". Waits for
 * frames with HLT; the receive interrupt (IRQ 7 through the 8259) wakes it.
 * "RESULT net <frames> <fnv1a of the frames received>".
 * Exit 0; 3 no virtio-net device (prints NO NET); 4 set-up refused; 5 queue error. */
#include "rt.h"

#define NET_F_MAC (1ull << 5)
#define NET_F_STATUS (1ull << 16)
#define HDR 12
#define BUF_SIZE 1536
#define NRX 8
#define MAX_FRAMES 64

static struct virtq_mem rx_mem, tx_mem;
static struct virtq rxq, txq;
static uint8_t rx_buf[NRX][BUF_SIZE] __attribute__((aligned(16)));
static uint8_t tx_buf[BUF_SIZE] __attribute__((aligned(16)));
static volatile uint32_t irqs;

static struct frame *net_irq(struct frame *f) {
  virtio_ack_interrupt(PLAT_VIRTIO_NET_BASE);
  irqs = irqs + 1;
  pic_eoi(PLAT_VIRTIO_NET_IRQ);
  return f;
}

static int post_rx(int i) {
  struct vbuf b = {rx_buf[i], BUF_SIZE, 1};
  return virtq_submit(&rxq, &b, 1);
}

int kmain(uint64_t ram_bytes) {
  (void)ram_bytes;
  serial_init();
  idt_init();
  pic_init();
  uint64_t base = PLAT_VIRTIO_NET_BASE;
  if (!virtio_probe(base, VIRTIO_DEV_NET)) {
    printf("NO NET\n");
    return 3;
  }
  uint64_t features = 0;
  if (virtio_negotiate(base, NET_F_MAC | NET_F_STATUS, &features) ||
      virtq_init(&rxq, base, 0, &rx_mem) || virtq_init(&txq, base, 1, &tx_mem)) {
    printf("net: set-up refused (status %x)\n", virtio_status(base));
    return 4;
  }
  uint8_t mac[6] = {0};
  if (features & NET_F_MAC) {
    for (unsigned i = 0; i < 6; ++i) mac[i] = virtio_config8(base, i);
  }
  printf("net: mac %02x:%02x:%02x:%02x:%02x:%02x link %s\n", mac[0], mac[1], mac[2], mac[3],
         mac[4], mac[5],
         (features & NET_F_STATUS) ? ((virtio_config8(base, 6) & 1) ? "up" : "down") : "?");
  idt_set_handler(VEC_IRQ(PLAT_VIRTIO_NET_IRQ), net_irq);
  pic_unmask(PLAT_VIRTIO_NET_IRQ);
  virtio_driver_ok(base);
  for (int i = 0; i < NRX; ++i) {
    if (post_rx(i) != i) return 5;  /* a fresh queue hands out descriptors 0, 1, ... */
  }
  virtq_notify(&rxq);
  printf("net: echoing up to %d frames\n", MAX_FRAMES);

  uint32_t h = FNV1A_INIT;
  int frames = 0, quit = 0;
  cli();
  while (frames < MAX_FRAMES && !quit) {
    uint32_t written;
    int head = virtq_take_used(&rxq, &written);
    if (head < 0) {
      wait_for_interrupt();
      continue;
    }
    if (head >= NRX || written < HDR || written > BUF_SIZE) return 5;
    uint8_t *frame = rx_buf[head] + HDR;
    uint32_t len = written - HDR;
    ++frames;
    h = fnv1a(h, frame, len);
    printf("frame %d: %u bytes from %02x:%02x:%02x:%02x:%02x:%02x fnv1a %08x\n", frames, len,
           len >= 12 ? frame[6] : 0, len >= 12 ? frame[7] : 0, len >= 12 ? frame[8] : 0,
           len >= 12 ? frame[9] : 0, len >= 12 ? frame[10] : 0, len >= 12 ? frame[11] : 0,
           fnv1a(FNV1A_INIT, frame, len));
    quit = len >= 18 && !memcmp(frame + 14, "QUIT", 4);
    /* Echo: virtio_net_hdr (all zero: no offloads), then the frame with MACs swapped. */
    memset(tx_buf, 0, HDR);
    memcpy(tx_buf + HDR, frame, len);
    if (len >= 12) {
      memcpy(tx_buf + HDR, frame + 6, 6);
      memcpy(tx_buf + HDR + 6, frame, 6);
    }
    struct vbuf b = {tx_buf, HDR + len, 0};
    if (virtq_submit(&txq, &b, 1) < 0) return 5;
    virtq_notify(&txq);
    for (uint32_t spin = 0; virtq_take_used(&txq, 0) < 0; ++spin) {
      if (spin > 100000000) {
        printf("net: transmit never completed\n");
        return 5;
      }
    }
    if (post_rx(head) != head) return 5;
    virtq_notify(&rxq);
  }
  sti();
  printf("net: %d frames echoed%s by %lu us of guest time\n", frames, quit ? " (QUIT)" : "",
         (unsigned long)(rdtsc() / 1000));
  printf("RESULT net %d %08x\n", frames, h);
  return 0;
}
