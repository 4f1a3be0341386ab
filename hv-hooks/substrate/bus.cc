// Bus: range map and access routing.
#include "hv-hooks/substrate/bus.h"

#include <fmt/format.h>

namespace vmrr {

void Bus::Insert(BusDevice& device, uint64_t base, uint64_t length) {
  if (length == 0) throw BusError(fmt::format("{} bus: empty range at {:#x}", name_, base));
  if (base + length - 1 < base) throw BusError(fmt::format("{} bus: range at {:#x} wraps", name_, base));
  uint64_t last = base + length - 1;
  auto next = ranges_.lower_bound(base);
  if (next != ranges_.end() && next->first <= last) {
    throw BusError(fmt::format("{} bus: range {:#x}..{:#x} overlaps one at {:#x}", name_, base, last,
                               next->first));
  }
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.length - 1 >= base) {
      throw BusError(fmt::format("{} bus: range {:#x}..{:#x} overlaps one at {:#x}", name_, base,
                                 last, prev->first));
    }
  }
  ranges_.emplace(base, Range{length, &device});
}

BusDevice* Bus::Find(uint64_t addr, unsigned size, uint64_t* offset) const {
  if (size != 1 && size != 2 && size != 4 && size != 8) return nullptr;
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return nullptr;
  --it;
  uint64_t off = addr - it->first;
  if (off >= it->second.length || size > it->second.length - off) return nullptr;
  *offset = off;
  return it->second.device;
}

uint64_t Bus::Read(uint64_t addr, unsigned size) {
  uint64_t off = 0;
  BusDevice* d = Find(addr, size, &off);
  if (!d) return AllOnes(size);
  return d->Read(off, size) & AllOnes(size);
}

void Bus::Write(uint64_t addr, unsigned size, uint64_t value) {
  uint64_t off = 0;
  BusDevice* d = Find(addr, size, &off);
  if (d) d->Write(off, size, value & AllOnes(size));
}

}  // namespace vmrr
