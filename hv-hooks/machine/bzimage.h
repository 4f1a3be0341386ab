// Linux bzImage on the host: the setup header (Documentation/arch/x86/boot.rst) and the
// decompression of the protected-mode payload (an XZ, gzip, zstd or LZ4-legacy stream holding
// the vmlinux ELF64), so that the later boot code can load the ELF directly instead of running
// the guest's own decompressor. Every input is hostile: a malformed image or stream is a
// LoaderError naming the rule it breaks, and no output grows past its cap, so a decompression
// bomb fails instead of exhausting memory. Nothing here touches guest memory.
//
// Not yet used by Machine::LoadKernel or the CLI (issue 12: the kernel needs x87/SSE first).
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "hv-hooks/machine/loader.h"  // LoaderError

namespace vmrr {

// The oldest boot protocol accepted: 2.12 (Linux 3.8) is the first with xloadflags, which the
// 64-bit entry needs (XLF_KERNEL_64); every field read below exists from it on.
inline constexpr uint16_t kMinBzImageProtocol = 0x020c;
// The setup header starts at 0x1f1; boot_params has room for it up to 0x290.
inline constexpr uint64_t kSetupHeaderOffset = 0x1f1;
inline constexpr uint64_t kSetupHeaderMaxEnd = 0x290;
// No decompressed kernel may exceed this, whatever the caller or the header asks.
inline constexpr uint64_t kMaxDecompressedKernel = 512ull << 20;

// loadflags / xloadflags bits the later boot code checks.
inline constexpr uint8_t kLoadedHigh = 1u << 0;
inline constexpr uint16_t kXlfKernel64 = 1u << 0;
inline constexpr uint16_t kXlfCanBeLoadedAbove4G = 1u << 1;

struct BzImage {
  uint16_t protocol = 0;           // 0x206 version, (major << 8) | minor
  uint8_t setup_sects = 0;         // 0x1f1, with the protocol's "0 means 4" applied
  uint8_t loadflags = 0;           // 0x211
  uint32_t syssize = 0;            // 0x1f4, 16-byte paragraphs of protected-mode code
  uint32_t code32_start = 0;       // 0x214
  uint32_t initrd_addr_max = 0;    // 0x22c, highest byte an initrd may occupy
  uint32_t kernel_alignment = 0;   // 0x230
  bool relocatable_kernel = false; // 0x234
  uint8_t min_alignment = 0;       // 0x235, log2
  uint16_t xloadflags = 0;         // 0x236
  uint32_t cmdline_size = 0;       // 0x238, longest command line without its NUL
  uint32_t payload_offset = 0;     // 0x248, from the start of the protected-mode code
  uint32_t payload_length = 0;     // 0x24c
  uint64_t pref_address = 0;       // 0x258
  uint32_t init_size = 0;          // 0x260, linear memory the kernel needs to initialize
  uint64_t protected_mode_offset = 0;  // (setup_sects + 1) * 512: file offset of that code
  // Bytes 0x1f1 .. 0x202 + image[0x201] (the boot protocol's end of the setup header): what a
  // loader copies into boot_params at 0x1f1 before filling in its own fields.
  std::vector<uint8_t> setup_header;
  // The compressed payload, a view into the image given to ParseBzImage (which must outlive it).
  std::span<const uint8_t> payload;
};

// boot_flag 0xAA55 at 0x1fe and "HdrS" at 0x202: the image claims to be a Linux kernel with a
// boot protocol 2.x header. Looks at nothing else.
bool LooksLikeBzImage(std::span<const uint8_t> image);

// Validates the setup header (signatures, protocol >= 2.12, LOADED_HIGH, the header's own
// length, init_size) and locates the payload inside the image; LoaderError otherwise.
BzImage ParseBzImage(std::span<const uint8_t> image);

// Decompresses a payload, detecting XZ (FD 37 7A 58 5A 00), gzip (1F 8B), zstd (28 B5 2F FD) or
// the LZ4 legacy frame (02 21 4C 18) by its magic, into at most
// min(max_output, kMaxDecompressedKernel) bytes; the output never grows past that bound. After
// the stream the kernel's build appends the decompressed size as a 32-bit little-endian trailer
// (not for gzip, whose own trailer holds it): either nothing or exactly those 4 bytes may follow
// the stream, and they must match. The result must be an x86-64 ELF64 (vmlinux). Every failure,
// the bound exceeded included, is a LoaderError.
std::vector<uint8_t> DecompressKernelPayload(std::span<const uint8_t> payload, uint64_t max_output);

// DecompressKernelPayload(bz.payload, bz.init_size): the decompressor of the kernel itself
// needs the decompressed image to fit in init_size, so a longer one is refused.
std::vector<uint8_t> DecompressBzImageKernel(const BzImage& bz);

}  // namespace vmrr
