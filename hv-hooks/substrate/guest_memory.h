// Guest physical RAM: one zero-filled host mapping, bounds-checked access, dirty-page
// tracking for incremental snapshots, and code-page watching so that any write to a page
// holding decoded code (CPU store or device DMA) invalidates the CPU's block cache.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vmrr {

inline constexpr uint64_t kGuestPageSize = 4096;
inline constexpr unsigned kGuestPageShift = 12;

// Told when a write lands on a page marked as holding code.
class CodeWriteObserver {
 public:
  virtual ~CodeWriteObserver() = default;
  virtual void OnCodeWrite(uint64_t gpa, uint64_t len) = 0;
};

class GuestMemory {
 public:
  // size is rounded up to whole pages. Throws std::bad_alloc if the host cannot map it.
  explicit GuestMemory(uint64_t size);
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  uint64_t size() const { return size_; }
  uint64_t pages() const { return size_ >> kGuestPageShift; }

  // Host pointer for [gpa, gpa+len) if it lies wholly in RAM, else nullptr. A caller that
  // writes through the pointer must call NoteWrite for the same range.
  uint8_t* Span(uint64_t gpa, uint64_t len) {
    return Contains(gpa, len) ? base_ + gpa : nullptr;
  }
  const uint8_t* Span(uint64_t gpa, uint64_t len) const {
    return Contains(gpa, len) ? base_ + gpa : nullptr;
  }
  bool Contains(uint64_t gpa, uint64_t len) const {
    return gpa <= size_ && len <= size_ - gpa;
  }

  // Bounds-checked copies; false (and nothing copied) if the range leaves RAM.
  bool Read(uint64_t gpa, void* out, uint64_t len) const;
  bool Write(uint64_t gpa, const void* in, uint64_t len);

  // Records a write done through a Span pointer: marks pages dirty and tells the code
  // observer if any of them holds code.
  void NoteWrite(uint64_t gpa, uint64_t len) {
    uint64_t first = gpa >> kGuestPageShift;
    uint64_t last = (gpa + (len ? len - 1 : 0)) >> kGuestPageShift;
    bool code = false;
    for (uint64_t p = first; p <= last && p < pages(); ++p) {
      dirty_[p] = kPageDirty | kPageWritten;
      code |= code_[p] != 0;
    }
    if (code && observer_) observer_->OnCodeWrite(gpa, len);
  }

  // Dirty tracking: one byte per page, set by every write since the last ClearDirty.
  bool IsDirty(uint64_t page) const { return (dirty_[page] & kPageDirty) != 0; }
  void ClearDirty();
  // False for a page nothing has written since the memory was mapped: such a page is zero,
  // so snapshots and digests can skip it without reading (and faulting in) host memory.
  bool MayBeNonZero(uint64_t page) const { return (dirty_[page] & kPageWritten) != 0; }

  // Code watching: the CPU marks pages it has decoded; a write to one calls the observer.
  void MarkCode(uint64_t page) { code_[page] = 1; }
  void UnmarkCode(uint64_t page) { code_[page] = 0; }
  bool IsCode(uint64_t page) const { return code_[page] != 0; }
  void ClearCodeMarks();
  void SetCodeWriteObserver(CodeWriteObserver* observer) { observer_ = observer; }

  uint8_t* data() { return base_; }
  const uint8_t* data() const { return base_; }

 private:
  uint8_t* base_ = nullptr;
  uint64_t size_ = 0;
  static constexpr uint8_t kPageDirty = 1, kPageWritten = 2;
  std::vector<uint8_t> dirty_;  // kPageDirty | kPageWritten bits per page
  std::vector<uint8_t> code_;
  CodeWriteObserver* observer_ = nullptr;
};

}  // namespace vmrr
