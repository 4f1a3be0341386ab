/* virtio-mmio version 2 driver core: probing, feature negotiation, split virtqueues. */
#include "rt.h"

enum {
  kMagic = 0x000, kVersion = 0x004, kDeviceId = 0x008, kDeviceFeatures = 0x010,
  kDeviceFeaturesSel = 0x014, kDriverFeatures = 0x020, kDriverFeaturesSel = 0x024,
  kQueueSel = 0x030, kQueueNumMax = 0x034, kQueueNum = 0x038, kQueueReady = 0x044,
  kQueueNotify = 0x050, kInterruptStatus = 0x060, kInterruptAck = 0x064, kStatus = 0x070,
  kQueueDescLow = 0x080, kQueueDescHigh = 0x084, kQueueDriverLow = 0x090,
  kQueueDriverHigh = 0x094, kQueueDeviceLow = 0x0a0, kQueueDeviceHigh = 0x0a4,
  kConfig = 0x100,
};
enum { kAcknowledge = 1, kDriver = 2, kDriverOk = 4, kFeaturesOk = 8 };

int virtio_probe(uint64_t base, uint32_t device_id) {
  return mmio_read32(base + kMagic) == VIRTIO_MAGIC && mmio_read32(base + kVersion) == 2 &&
         mmio_read32(base + kDeviceId) == device_id;
}

int virtio_negotiate(uint64_t base, uint64_t wanted, uint64_t *accepted) {
  mmio_write32(base + kStatus, 0);  /* reset */
  mmio_write32(base + kStatus, kAcknowledge);
  mmio_write32(base + kStatus, kAcknowledge | kDriver);
  mmio_write32(base + kDeviceFeaturesSel, 0);
  uint64_t offered = mmio_read32(base + kDeviceFeatures);
  mmio_write32(base + kDeviceFeaturesSel, 1);
  offered |= (uint64_t)mmio_read32(base + kDeviceFeatures) << 32;
  uint64_t features = (offered & wanted) | VIRTIO_F_VERSION_1;
  mmio_write32(base + kDriverFeaturesSel, 0);
  mmio_write32(base + kDriverFeatures, (uint32_t)features);
  mmio_write32(base + kDriverFeaturesSel, 1);
  mmio_write32(base + kDriverFeatures, (uint32_t)(features >> 32));
  mmio_write32(base + kStatus, kAcknowledge | kDriver | kFeaturesOk);
  if (!(mmio_read32(base + kStatus) & kFeaturesOk)) return -1;
  if (accepted) *accepted = features;
  return 0;
}

int virtq_init(struct virtq *q, uint64_t base, uint16_t index, struct virtq_mem *mem) {
  mmio_write32(base + kQueueSel, index);
  if (mmio_read32(base + kQueueReady) != 0) return -1;
  if (mmio_read32(base + kQueueNumMax) < VIRTQ_SIZE) return -1;
  memset(mem, 0, sizeof(*mem));
  q->base = base;
  q->index = index;
  q->mem = mem;
  q->last_used = 0;
  /* Free descriptors form a list through their next fields. */
  for (uint16_t i = 0; i < VIRTQ_SIZE; ++i) mem->desc[i].next = (uint16_t)(i + 1);
  q->free_head = 0;
  q->num_free = VIRTQ_SIZE;
  uint64_t desc = (uint64_t)(uintptr_t)mem->desc;
  uint64_t avail = (uint64_t)(uintptr_t)&mem->avail;
  uint64_t used = (uint64_t)(uintptr_t)&mem->used;
  mmio_write32(base + kQueueNum, VIRTQ_SIZE);
  mmio_write32(base + kQueueDescLow, (uint32_t)desc);
  mmio_write32(base + kQueueDescHigh, (uint32_t)(desc >> 32));
  mmio_write32(base + kQueueDriverLow, (uint32_t)avail);
  mmio_write32(base + kQueueDriverHigh, (uint32_t)(avail >> 32));
  mmio_write32(base + kQueueDeviceLow, (uint32_t)used);
  mmio_write32(base + kQueueDeviceHigh, (uint32_t)(used >> 32));
  mmio_write32(base + kQueueReady, 1);
  return mmio_read32(base + kQueueReady) == 1 ? 0 : -1;
}

void virtio_driver_ok(uint64_t base) {
  mmio_write32(base + kStatus, mmio_read32(base + kStatus) | kDriverOk);
}

uint32_t virtio_status(uint64_t base) { return mmio_read32(base + kStatus); }

uint8_t virtio_config8(uint64_t base, unsigned offset) { return mmio_read8(base + kConfig + offset); }

uint32_t virtio_ack_interrupt(uint64_t base) {
  uint32_t s = mmio_read32(base + kInterruptStatus);
  if (s) mmio_write32(base + kInterruptAck, s);
  return s;
}

int virtq_submit(struct virtq *q, const struct vbuf *bufs, unsigned n) {
  if (n == 0 || n > q->num_free) return -1;
  volatile struct virtq_mem *m = q->mem;
  uint16_t head = q->free_head, d = head;
  for (unsigned i = 0; i < n; ++i) {
    m->desc[d].addr = (uint64_t)(uintptr_t)bufs[i].addr;
    m->desc[d].len = bufs[i].len;
    uint16_t next = m->desc[d].next;
    m->desc[d].flags = (uint16_t)((bufs[i].device_writable ? VIRTQ_DESC_F_WRITE : 0) |
                                  (i + 1 < n ? VIRTQ_DESC_F_NEXT : 0));
    if (i + 1 < n) d = next;
    else q->free_head = next;
  }
  q->num_free = (uint16_t)(q->num_free - n);
  uint16_t idx = m->avail.idx;
  m->avail.ring[idx % VIRTQ_SIZE] = head;
  barrier();  /* x86 keeps stores in order; the compiler must too */
  m->avail.idx = (uint16_t)(idx + 1);
  barrier();
  return head;
}

void virtq_notify(struct virtq *q) { mmio_write32(q->base + kQueueNotify, q->index); }

int virtq_take_used(struct virtq *q, uint32_t *written) {
  volatile struct virtq_mem *m = q->mem;
  if (m->used.idx == q->last_used) return -1;
  barrier();
  struct virtq_used_elem e;
  e.id = m->used.ring[q->last_used % VIRTQ_SIZE].id;
  e.len = m->used.ring[q->last_used % VIRTQ_SIZE].len;
  q->last_used = (uint16_t)(q->last_used + 1);
  if (written) *written = e.len;
  /* Return the chain's descriptors to the free list. */
  uint16_t d = (uint16_t)e.id, count = 1;
  while (m->desc[d].flags & VIRTQ_DESC_F_NEXT) {
    d = m->desc[d].next;
    ++count;
  }
  m->desc[d].next = q->free_head;
  q->free_head = (uint16_t)e.id;
  q->num_free = (uint16_t)(q->num_free + count);
  return (int)e.id;
}
