// Virtqueue: bounded, validated split-ring processing.
#include "hv-hooks/devices/virtio/virtqueue.h"

#include <algorithm>
#include <cstring>

#include "logformat/byte_order.h"

namespace vmrr {

namespace {
constexpr uint16_t kDescNext = 1;
constexpr uint16_t kDescWrite = 2;
constexpr uint16_t kDescIndirect = 4;
constexpr uint16_t kAvailNoInterrupt = 1;

bool ReadU16(const GuestMemory& mem, uint64_t gpa, uint16_t* v) {
  uint8_t b[2];
  if (!mem.Read(gpa, b, 2)) return false;
  *v = LoadLe16(b);
  return true;
}
bool WriteU16(GuestMemory& mem, uint64_t gpa, uint16_t v) {
  uint8_t b[2];
  StoreLe(b, v, 2);
  return mem.Write(gpa, b, 2);
}
void Why(std::string* why, const char* text) {
  if (why) *why = text;
}
}  // namespace

bool Virtqueue::Valid(const GuestMemory& mem, std::string* why) const {
  if (size == 0 || size > kMaxSize || (size & (size - 1)) != 0) {
    Why(why, "queue size is not a power of two up to 256");
    return false;
  }
  if ((desc_addr & 15) || (avail_addr & 1) || (used_addr & 3)) {
    Why(why, "ring address misaligned");
    return false;
  }
  if (!mem.Contains(desc_addr, 16ull * size) || !mem.Contains(avail_addr, 6ull + 2ull * size) ||
      !mem.Contains(used_addr, 6ull + 8ull * size)) {
    Why(why, "ring outside guest RAM");
    return false;
  }
  return true;
}

bool Virtqueue::HasAvailable(const GuestMemory& mem) const {
  if (!ready || !Valid(mem, nullptr)) return false;
  uint16_t idx = 0;
  if (!ReadU16(mem, avail_addr + 2, &idx)) return false;
  uint16_t pending = static_cast<uint16_t>(idx - next_avail);
  return pending != 0 && pending <= size;
}

Virtqueue::PopResult Virtqueue::Pop(const GuestMemory& mem, VirtqChain* chain, std::string* why) {
  if (!ready) return PopResult::kEmpty;
  if (!Valid(mem, why)) return PopResult::kBroken;
  uint16_t idx = 0;
  ReadU16(mem, avail_addr + 2, &idx);  // inside RAM: checked by Valid
  uint16_t pending = static_cast<uint16_t>(idx - next_avail);
  if (pending == 0) return PopResult::kEmpty;
  if (pending > size) {
    Why(why, "available index ran more than a queue ahead");
    return PopResult::kBroken;
  }
  uint16_t head = 0;
  ReadU16(mem, avail_addr + 4 + 2ull * (next_avail % size), &head);
  if (head >= size) {
    Why(why, "available ring names a descriptor beyond the queue size");
    return PopResult::kBroken;
  }
  chain->head = head;
  chain->buffers.clear();
  chain->readable_bytes = chain->writable_bytes = 0;
  chain->bad_address = false;
  uint16_t i = head;
  bool seen_writable = false;
  // A chain of more than `size` descriptors must revisit one: a loop.
  for (unsigned count = 0;; ++count) {
    if (count >= size) {
      Why(why, "descriptor chain loops or is longer than the queue");
      return PopResult::kBroken;
    }
    uint8_t d[16];
    mem.Read(desc_addr + 16ull * i, d, 16);
    VirtqBuffer b;
    b.addr = LoadLe64(d);
    b.len = LoadLe32(d + 8);
    uint16_t flags = LoadLe16(d + 12);
    uint16_t next = LoadLe16(d + 14);
    if (flags & kDescIndirect) {
      Why(why, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
      return PopResult::kBroken;
    }
    b.device_writable = flags & kDescWrite;
    if (b.device_writable) {
      seen_writable = true;
      chain->writable_bytes += b.len;
    } else {
      if (seen_writable) {
        Why(why, "device-readable descriptor after a device-writable one");
        return PopResult::kBroken;
      }
      chain->readable_bytes += b.len;
    }
    if (!mem.Contains(b.addr, b.len)) chain->bad_address = true;
    chain->buffers.push_back(b);
    if (!(flags & kDescNext)) break;
    if (next >= size) {
      Why(why, "descriptor names a next descriptor beyond the queue size");
      return PopResult::kBroken;
    }
    i = next;
  }
  ++next_avail;
  return PopResult::kChain;
}

bool Virtqueue::PushUsed(GuestMemory& mem, uint16_t head, uint32_t written) {
  if (!Valid(mem, nullptr)) return false;
  uint64_t elem = used_addr + 4 + 8ull * (next_used % size);
  uint8_t e[8];
  StoreLe(e, head, 4);
  StoreLe(e + 4, written, 4);
  mem.Write(elem, e, 8);
  ++next_used;
  return WriteU16(mem, used_addr + 2, next_used);
}

bool Virtqueue::InterruptSuppressed(const GuestMemory& mem) const {
  uint16_t flags = 0;
  return ReadU16(mem, avail_addr, &flags) && (flags & kAvailNoInterrupt);
}

uint64_t Virtqueue::ReadFrom(const GuestMemory& mem, const VirtqChain& chain, uint64_t offset,
                             void* out, uint64_t len) {
  uint8_t* dst = static_cast<uint8_t*>(out);
  uint64_t done = 0, pos = 0;
  for (const VirtqBuffer& b : chain.buffers) {
    if (done == len || b.device_writable) break;
    uint64_t end = pos + b.len;
    if (offset + done < end) {
      uint64_t in_buf = offset + done - pos;
      uint64_t n = std::min<uint64_t>(b.len - in_buf, len - done);
      if (!mem.Read(b.addr + in_buf, dst + done, n)) std::memset(dst + done, 0, n);
      done += n;
    }
    pos = end;
  }
  return done;
}

uint64_t Virtqueue::WriteTo(GuestMemory& mem, const VirtqChain& chain, uint64_t offset,
                            const void* in, uint64_t len) {
  const uint8_t* src = static_cast<const uint8_t*>(in);
  uint64_t done = 0, pos = 0;
  for (const VirtqBuffer& b : chain.buffers) {
    if (done == len) break;
    if (!b.device_writable) continue;
    uint64_t end = pos + b.len;
    if (offset + done < end) {
      uint64_t in_buf = offset + done - pos;
      uint64_t n = std::min<uint64_t>(b.len - in_buf, len - done);
      mem.Write(b.addr + in_buf, src + done, n);  // refused (no-op) outside RAM
      done += n;
    }
    pos = end;
  }
  return done;
}

void Virtqueue::Save(StateWriter& out) const {
  out.U16(size);
  out.Bool(ready);
  out.U64(desc_addr);
  out.U64(avail_addr);
  out.U64(used_addr);
  out.U16(next_avail);
  out.U16(next_used);
}

void Virtqueue::Load(StateReader& in) {
  Virtqueue q;
  // Any size the driver wrote is state; Valid() refuses unusable ones when the queue is used.
  q.size = in.U16();
  q.ready = in.Bool();
  q.desc_addr = in.U64();
  q.avail_addr = in.U64();
  q.used_addr = in.U64();
  q.next_avail = in.U16();
  q.next_used = in.U16();
  *this = q;
}

}  // namespace vmrr
