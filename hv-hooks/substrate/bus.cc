// Bus: range map and access routing.
#include "hv-hooks/substrate/bus.h"

#include <cstdio>

namespace vmrr {

namespace {
std::string Hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}
}  // namespace

void Bus::Insert(BusDevice& device, uint64_t base, uint64_t length) {
  if (length == 0) throw BusError(name_ + " bus: empty range at " + Hex(base));
  if (base + length - 1 < base) throw BusError(name_ + " bus: range at " + Hex(base) + " wraps");
  uint64_t last = base + length - 1;
  auto next = ranges_.lower_bound(base);
  if (next != ranges_.end() && next->first <= last) {
    throw BusError(name_ + " bus: range " + Hex(base) + ".." + Hex(last) + " overlaps one at " +
                   Hex(next->first));
  }
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.length - 1 >= base) {
      throw BusError(name_ + " bus: range " + Hex(base) + ".." + Hex(last) +
                     " overlaps one at " + Hex(prev->first));
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
