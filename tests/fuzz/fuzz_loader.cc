// Fuzz target for the kernel loaders: format detection, ELF64, Multiboot (ELF32 and a.out
// kludge). Any byte string must either load inside RAM (a Multiboot image's loader block too,
// clear of its segments) or be a LoaderError; the loaders may never crash, read outside the image, write outside RAM or allocate by a header's say-so.
#include <cstdint>
#include <cstring>
#include <span>

#include "hv-hooks/machine/loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // 2 MiB of RAM: small enough that many header values fall outside it.
  static vmrr::GuestMemory mem(2ull << 20);
  const std::span<const uint8_t> image(data, size);
  (void)vmrr::DetectKernelFormat(image);
  try {
    const vmrr::BootState boot = vmrr::LoadKernelImage(mem, image);
    for (const auto& seg : boot.segments) {
      if (!mem.Contains(seg.gpa, seg.mem_bytes) || seg.file_bytes > seg.mem_bytes) __builtin_trap();
      // A Multiboot image's loader block lies in RAM and clear of every segment.
      if (boot.format == vmrr::KernelFormat::kMultiboot && seg.mem_bytes &&
          seg.gpa < boot.boot_block + vmrr::kMultibootBlockBytes &&
          boot.boot_block < seg.gpa + seg.mem_bytes) {
        __builtin_trap();
      }
    }
    if (boot.format == vmrr::KernelFormat::kMultiboot &&
        !mem.Contains(boot.boot_block, vmrr::kMultibootBlockBytes)) {
      __builtin_trap();
    }
  } catch (const vmrr::LoaderError&) {
  }
  // Each loader directly, so that the one detection does not pick is exercised too.
  try {
    (void)vmrr::LoadElf64(mem, image);
  } catch (const vmrr::LoaderError&) {
  }
  try {
    (void)vmrr::LoadMultiboot(mem, image);
  } catch (const vmrr::LoaderError&) {
  }
  if (size >= 8) {
    uint64_t bytes;
    std::memcpy(&bytes, data, 8);
    (void)vmrr::MemoryMap(bytes);
  }
  return 0;
}
