// Guest physical RAM backed by an anonymous private mapping (zero-filled by the kernel, so
// no uninitialised host memory ever reaches the guest).
#include "hv-hooks/substrate/guest_memory.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstring>
#include <new>

namespace vmrr {

GuestMemory::GuestMemory(uint64_t size) {
  size_ = (size + kGuestPageSize - 1) & ~(kGuestPageSize - 1);
  if (size_ == 0) size_ = kGuestPageSize;
  void* p = mmap(nullptr, size_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                 -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  base_ = static_cast<uint8_t*>(p);
  dirty_.assign(pages(), 0);
  code_.assign(pages(), 0);
}

GuestMemory::~GuestMemory() { munmap(base_, size_); }

bool GuestMemory::Read(uint64_t gpa, void* out, uint64_t len) const {
  if (!Contains(gpa, len)) return false;
  std::memcpy(out, base_ + gpa, len);
  return true;
}

bool GuestMemory::Write(uint64_t gpa, const void* in, uint64_t len) {
  if (!Contains(gpa, len)) return false;
  std::memcpy(base_ + gpa, in, len);
  if (len) NoteWrite(gpa, len);
  return true;
}

void GuestMemory::ClearDirty() {
  for (uint8_t& d : dirty_) d &= static_cast<uint8_t>(~kPageDirty);
}
void GuestMemory::ClearCodeMarks() { std::fill(code_.begin(), code_.end(), 0); }

}  // namespace vmrr
