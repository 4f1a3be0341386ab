// Fuzz target for the bzImage parser and the payload decompressors (XZ, gzip, zstd, LZ4
// legacy). Any byte string must parse or be a LoaderError, and decompress within the 16 MiB cap
// or be a LoaderError: no crash, no read outside the input, no allocation past the cap (run with
// -malloc_limit_mb to catch one). The input is tried both as a whole bzImage and as a bare
// payload, so that the decompressors are reached without a valid setup header. A parsed image
// whose init_size is within the cap is also loaded by LoadLinuxKernel (its first bytes as the
// initrd): it must load inside RAM or be a LoaderError.
#include <algorithm>
#include <cstdint>
#include <span>
#include <vector>

#include "hv-hooks/machine/bzimage.h"
#include "hv-hooks/machine/linux_boot.h"

namespace {

constexpr uint64_t kCap = 16ull << 20;

void Decompress(std::span<const uint8_t> payload) {
  try {
    const std::vector<uint8_t> elf = vmrr::DecompressKernelPayload(payload, kCap);
    if (elf.size() > kCap || elf.size() < 64) __builtin_trap();
  } catch (const vmrr::LoaderError&) {
  }
}

void LoadLinux(std::span<const uint8_t> image) {
  // 40 MiB: a kernel linked at 16 MiB fits, a larger one or a large initrd does not.
  static vmrr::GuestMemory mem(40ull << 20);
  try {
    const vmrr::BootState boot =
        vmrr::LoadLinuxKernel(mem, image, image.first(std::min<size_t>(image.size(), 4096)),
                              "console=ttyS0");
    for (const auto& seg : boot.segments) {
      if (!mem.Contains(seg.gpa, seg.mem_bytes) || seg.file_bytes > seg.mem_bytes) __builtin_trap();
    }
    if (boot.cpu.gpr[vmrr::kRsi] != vmrr::kBootParamsAddr) __builtin_trap();
  } catch (const vmrr::LoaderError&) {
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> input(data, size);
  const bool looks = vmrr::LooksLikeBzImage(input);
  try {
    const vmrr::BzImage bz = vmrr::ParseBzImage(input);
    if (!looks) __builtin_trap();
    if (bz.payload.empty() || bz.payload.data() < data ||
        bz.payload.data() + bz.payload.size() > data + size) {
      __builtin_trap();
    }
    if (bz.setup_header.size() > vmrr::kSetupHeaderMaxEnd - vmrr::kSetupHeaderOffset) __builtin_trap();
    Decompress(bz.payload);
    if (bz.init_size <= kCap) LoadLinux(input);
  } catch (const vmrr::LoaderError&) {
  }
  Decompress(input);
  return 0;
}
