// Builders for the bzImage and Linux-boot tests: payloads compressed the way the kernel's build
// compresses them, a small vmlinux stand-in and a minimal protocol-2.15 bzImage around a payload.
#pragma once

#include <gtest/gtest.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <vector>

#include "hv-hooks/machine/loader.h"  // LoaderError
#include "tests/unit/machine/test_images.h"

namespace vmrr::test {

using Bytes = std::vector<uint8_t>;

// XZ as the kernel builds it (scripts/xz_wrap.sh): the x86 BCJ filter, then LZMA2, CRC32 check.
inline Bytes CompressXz(const Bytes& in, uint32_t preset = 6) {
  lzma_options_lzma opt;
  EXPECT_FALSE(lzma_lzma_preset(&opt, preset));
  opt.dict_size = std::min<uint32_t>(opt.dict_size, 1u << 20);
  lzma_filter filters[] = {{LZMA_FILTER_X86, nullptr}, {LZMA_FILTER_LZMA2, &opt},
                           {LZMA_VLI_UNKNOWN, nullptr}};
  Bytes out(lzma_stream_buffer_bound(in.size()));
  size_t pos = 0;
  EXPECT_EQ(lzma_stream_buffer_encode(filters, LZMA_CHECK_CRC32, nullptr, in.data(), in.size(),
                                      out.data(), &pos, out.size()),
            LZMA_OK);
  out.resize(pos);
  return out;
}

inline Bytes CompressGzip(const Bytes& in, int level = 9) {
  z_stream z{};
  EXPECT_EQ(deflateInit2(&z, level, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  Bytes out(deflateBound(&z, in.size()) + 64);
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());
  z.next_out = out.data();
  z.avail_out = static_cast<uInt>(out.size());
  EXPECT_EQ(deflate(&z, Z_FINISH), Z_STREAM_END);
  out.resize(z.total_out);
  deflateEnd(&z);
  return out;
}

inline Bytes CompressZstd(const Bytes& in, int level = 19) {
  Bytes out(ZSTD_compressBound(in.size()));
  const size_t n = ZSTD_compress(out.data(), out.size(), in.data(), in.size(), level);
  EXPECT_FALSE(ZSTD_isError(n));
  out.resize(n);
  return out;
}

// The LZ4 legacy frame (lz4 -l): magic, then [u32 compressed size][block] per 8 MiB of input.
inline Bytes CompressLz4Legacy(const Bytes& in) {
  Bytes out = {0x02, 0x21, 0x4C, 0x18};
  constexpr size_t kBlock = 8u << 20;
  for (size_t off = 0; off < in.size(); off += kBlock) {
    const int n = static_cast<int>(std::min(kBlock, in.size() - off));
    Bytes block(LZ4_compressBound(n));
    const int c = LZ4_compress_default(reinterpret_cast<const char*>(in.data() + off),
                                       reinterpret_cast<char*>(block.data()), n,
                                       static_cast<int>(block.size()));
    EXPECT_GT(c, 0);
    AppendLe(out, static_cast<uint32_t>(c), 4);
    out.insert(out.end(), block.begin(), block.begin() + c);
  }
  return out;
}

// The kernel build appends the decompressed size (u32 LE) to every payload but gzip's.
inline Bytes WithSizeTrailer(Bytes payload, uint64_t size) {
  AppendLe(payload, static_cast<uint32_t>(size), 4);
  return payload;
}

// A small valid vmlinux stand-in: an x86-64 ELF64 with code and some less compressible data.
inline Bytes Vmlinux() {
  Bytes data(3000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>((i * 7919) >> 5);
  return MakeElf64(0x1000000, {{0x1000000, kHelloCode}, {0x1200000, data}});
}

inline constexpr uint32_t kPayloadOffset = 0x40;  // from the protected-mode code at (1 + 1) * 512

// A minimal protocol-2.15 bzImage: boot sector + one setup sector (the header), then the
// protected-mode part with the payload at kPayloadOffset.
inline Bytes MakeBzImage(const Bytes& payload, uint32_t init_size = 16u << 20) {
  Bytes b(1024, 0);
  b[0x1f1] = 1;                     // setup_sects
  Put32(b, 0x1f4, static_cast<uint32_t>((kPayloadOffset + payload.size() + 15) / 16));
  Put16(b, 0x1fe, 0xAA55);          // boot_flag
  b[0x200] = 0xEB;                  // jump ...
  b[0x201] = 0x6a;                  // ... to 0x26c: the header's end for 2.15
  Put32(b, 0x202, 0x53726448);      // "HdrS"
  Put16(b, 0x206, 0x020f);          // version
  b[0x211] = 0x01;                  // loadflags: LOADED_HIGH
  Put32(b, 0x214, 0x100000);        // code32_start
  Put32(b, 0x22c, 0x7fffffff);      // initrd_addr_max
  Put32(b, 0x230, 0x200000);        // kernel_alignment
  b[0x234] = 1;                     // relocatable_kernel
  b[0x235] = 21;                    // min_alignment
  Put16(b, 0x236, 0x3);             // xloadflags: KERNEL_64 | CAN_BE_LOADED_ABOVE_4G
  Put32(b, 0x238, 2047);            // cmdline_size
  Put32(b, 0x248, kPayloadOffset);  // payload_offset
  Put32(b, 0x24c, static_cast<uint32_t>(payload.size()));
  Put64(b, 0x258, 0x1000000);       // pref_address
  Put32(b, 0x260, init_size);
  b.resize(1024 + kPayloadOffset, 0x90);
  b.insert(b.end(), payload.begin(), payload.end());
  return b;
}

// The LoaderError message of f(), or "" when it returns (any other exception propagates).
inline std::string ErrorOf(const std::function<void()>& f) {
  try {
    f();
  } catch (const LoaderError& e) {
    return e.what();
  }
  return "";
}

// The stock Debian kernels: the one .ci/setup extracts from Debian's linux-image-amd64 package
// into build/kernel/ (without installing it), and any in /boot; sorted.
inline std::vector<std::filesystem::path> StockKernels() {
  std::vector<std::filesystem::path> kernels;
  std::vector<std::filesystem::path> dirs = {"/boot"};
  if (const char* src = std::getenv("VMRR_SOURCE_DIR")) dirs.push_back(std::filesystem::path(src) / "build" / "kernel");
  for (const auto& dir : dirs) {
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      if (entry.path().filename().string().rfind("vmlinuz-", 0) == 0) kernels.push_back(entry.path());
    }
  }
  std::sort(kernels.begin(), kernels.end());
  return kernels;
}

// The whole file, or an empty vector when it cannot be read.
inline Bytes ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  return Bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

}  // namespace vmrr::test
