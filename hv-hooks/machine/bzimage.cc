// bzImage setup header parsing and host-side payload decompression (liblzma, zlib, libzstd,
// liblz4), every output capped before it grows.
#include "hv-hooks/machine/bzimage.h"

#include <elf.h>
#include <fmt/format.h>
#include <lz4.h>
#include <lzma.h>
#include <zlib.h>
#include <zstd.h>

#include <algorithm>
#include <cstring>
#include <limits>
#include <memory>
#include <utility>
#include <memory>
#include <string>

#include "logformat/byte_order.h"

namespace vmrr {

namespace {

[[noreturn]] void Fail(const std::string& what) { throw LoaderError(what); }

constexpr uint16_t kBootFlag = 0xAA55;
constexpr uint32_t kHdrS = 0x53726448;  // "HdrS"
constexpr uint64_t kSectorBytes = 512;
// The setup header must reach at least the end of init_size (0x260/4), the last field read.
constexpr uint64_t kSetupHeaderMinEnd = 0x264;

constexpr uint8_t kXzMagic[] = {0xFD, '7', 'z', 'X', 'Z', 0x00};
constexpr uint8_t kGzipMagic[] = {0x1F, 0x8B};
constexpr uint8_t kZstdMagic[] = {0x28, 0xB5, 0x2F, 0xFD};
constexpr uint8_t kLz4LegacyMagic[] = {0x02, 0x21, 0x4C, 0x18};
constexpr uint32_t kLz4LegacyMagicLe = 0x184C2102;
// The LZ4 legacy format's fixed block size (the kernel's LZ4_DEFAULT_UNCOMPRESSED_CHUNK_SIZE).
constexpr size_t kLz4LegacyBlockBytes = 8u << 20;
// liblzma's memory limit: the kernel's XZ uses a 32 MiB dictionary; this leaves room.
constexpr uint64_t kXzMemLimit = 128ull << 20;
// zstd's default decoder window limit (2^27 = 128 MiB), set explicitly; zstd -22 --ultra on a
// stream of unknown size (the kernel build) declares a window of 2^27.
constexpr int kZstdWindowLogMax = 27;
constexpr size_t kFirstChunkBytes = 1u << 20;

template <size_t N>
bool StartsWith(std::span<const uint8_t> data, const uint8_t (&magic)[N]) {
  return data.size() >= N && std::memcmp(data.data(), magic, N) == 0;
}

std::string HexBytes(std::span<const uint8_t> data, size_t n) {
  std::string s;
  for (size_t i = 0; i < std::min(n, data.size()); ++i) {
    s += fmt::format("{}{:02X}", i ? " " : "", data[i]);
  }
  return s.empty() ? "(none)" : s;
}

std::string Mib(uint64_t bytes) {
  return bytes % (1u << 20) == 0 ? fmt::format("{} MiB", bytes >> 20) : fmt::format("{} bytes", bytes);
}

// Uninitialised byte buffers (new[] without a value): the decompressors write before they
// read (only the first used_ bytes ever leave CappedOutput), and zero-filling megabytes that
// a short or corrupt stream never reaches was most of the cost of a failed decompression
// (and of the bzimage fuzz target).
using ScratchBytes = std::unique_ptr<uint8_t[]>;
ScratchBytes NewScratch(size_t n) { return ScratchBytes(new uint8_t[n]); }

// The decompressor's output: grows by doubling but never past `cap` bytes. At the cap a decoder is
// handed a one-byte probe; any byte written there means the stream is longer than the cap.
class CappedOutput {
 public:
  CappedOutput(uint64_t cap, const char* format) : cap_(cap), format_(format) {}

  std::span<uint8_t> Space() {
    probing_ = false;
    if (used_ == size_) {
      if (size_ >= cap_) {
        probing_ = true;
        return {&probe_, 1};
      }
      const uint64_t grown = std::min<uint64_t>(cap_, std::max<uint64_t>(kFirstChunkBytes, 2 * size_));
      ScratchBytes bigger = NewScratch(grown);
      if (used_) std::memcpy(bigger.get(), buf_.get(), used_);
      buf_ = std::move(bigger);
      size_ = grown;
    }
    return {buf_.get() + used_, size_ - used_};
  }
  void Commit(size_t n) {
    if (probing_ && n) TooLong();
    used_ += n;
  }
  void Append(const uint8_t* p, size_t n) {
    if (n > cap_ - used_) TooLong();
    while (n) {
      const std::span<uint8_t> space = Space();
      const size_t k = std::min(n, space.size());
      std::memcpy(space.data(), p, k);
      Commit(k);
      p += k;
      n -= k;
    }
  }
  uint64_t size() const { return used_; }
  std::vector<uint8_t> Take() {
    return std::vector<uint8_t>(buf_.get(), buf_.get() + used_);
  }

 private:
  [[noreturn]] void TooLong() const {
    Fail(fmt::format("{} payload decompresses to more than the {} limit (a corrupt image or a "
                     "decompression bomb)", format_, Mib(cap_)));
  }

  uint64_t cap_;
  const char* format_;
  ScratchBytes buf_;
  uint64_t size_ = 0;  // bytes allocated in buf_
  uint64_t used_ = 0;
  uint8_t probe_ = 0;
  bool probing_ = false;
};

// The stream has ended after `consumed` bytes of the payload: what follows may only be the
// kernel build's 4-byte size trailer, and it must agree with what was decompressed.
void CheckTrailer(std::span<const uint8_t> payload, uint64_t consumed, uint64_t out_bytes,
                  const char* format) {
  const uint64_t rest = payload.size() - consumed;
  if (rest == 0) return;
  if (rest != 4) {
    Fail(fmt::format("{} payload: {} bytes follow the end of the stream at offset {:#x} (only "
                     "the 4-byte size trailer may)", format, rest, consumed));
  }
  const uint32_t trailer = LoadLe32(payload.data() + consumed);
  if (trailer != static_cast<uint32_t>(out_bytes)) {
    Fail(fmt::format("{} payload: the size trailer says {:#x} bytes but the stream decompressed "
                     "to {:#x}", format, trailer, out_bytes));
  }
}

void DecompressXz(std::span<const uint8_t> in, CappedOutput& out) {
  lzma_stream s = LZMA_STREAM_INIT;
  if (lzma_stream_decoder(&s, kXzMemLimit, 0) != LZMA_OK) Fail("XZ: liblzma decoder init failed");
  const std::unique_ptr<lzma_stream, void (*)(lzma_stream*)> guard(&s, lzma_end);
  s.next_in = in.data();
  s.avail_in = in.size();
  for (;;) {
    const std::span<uint8_t> space = out.Space();
    s.next_out = space.data();
    s.avail_out = space.size();
    const lzma_ret r = lzma_code(&s, LZMA_FINISH);
    out.Commit(space.size() - s.avail_out);
    switch (r) {
      case LZMA_OK:
        continue;
      case LZMA_STREAM_END:
        CheckTrailer(in, in.size() - s.avail_in, out.size(), "XZ");
        return;
      case LZMA_MEMLIMIT_ERROR:
        Fail(fmt::format("XZ payload needs {} bytes of decoder memory, over the {} limit",
                         lzma_memusage(&s), Mib(kXzMemLimit)));
      case LZMA_FORMAT_ERROR:
        Fail("XZ payload: not a valid .xz stream header");
      case LZMA_OPTIONS_ERROR:
        Fail("XZ payload: unsupported filter chain or options");
      case LZMA_DATA_ERROR:
        Fail(fmt::format("XZ payload is corrupt (at input offset {:#x})", in.size() - s.avail_in));
      case LZMA_BUF_ERROR:
        Fail(fmt::format("XZ payload is truncated: the stream does not end within its {} bytes",
                         in.size()));
      default:
        Fail(fmt::format("XZ payload: liblzma error {}", static_cast<int>(r)));
    }
  }
}

void DecompressGzip(std::span<const uint8_t> in, CappedOutput& out) {
  z_stream z{};
  if (inflateInit2(&z, 16 + MAX_WBITS) != Z_OK) Fail("gzip: zlib inflate init failed");
  const std::unique_ptr<z_stream, int (*)(z_stream*)> guard(&z, inflateEnd);
  z.next_in = const_cast<Bytef*>(in.data());
  z.avail_in = static_cast<uInt>(in.size());  // < 4 GiB: checked by the caller
  for (;;) {
    const std::span<uint8_t> space = out.Space();
    z.next_out = space.data();
    z.avail_out = static_cast<uInt>(std::min<size_t>(space.size(), std::numeric_limits<uInt>::max()));
    const uInt offered = z.avail_out;
    const int r = inflate(&z, Z_NO_FLUSH);
    out.Commit(offered - z.avail_out);
    switch (r) {
      case Z_OK:
        continue;
      case Z_STREAM_END:
        CheckTrailer(in, in.size() - z.avail_in, out.size(), "gzip");
        return;
      case Z_BUF_ERROR:  // no progress possible: always room for output, so input ran out
        Fail(fmt::format("gzip payload is truncated: the stream does not end within its {} bytes",
                         in.size()));
      case Z_DATA_ERROR:
        Fail(fmt::format("gzip payload is corrupt: {}", z.msg ? z.msg : "data error"));
      case Z_NEED_DICT:
        Fail("gzip payload needs a preset dictionary");
      case Z_MEM_ERROR:
        Fail("gzip: zlib out of memory");
      default:
        Fail(fmt::format("gzip payload: zlib error {}", r));
    }
  }
}

void DecompressZstd(std::span<const uint8_t> in, CappedOutput& out, uint64_t cap) {
  const unsigned long long declared = ZSTD_getFrameContentSize(in.data(), in.size());
  if (declared != ZSTD_CONTENTSIZE_UNKNOWN && declared != ZSTD_CONTENTSIZE_ERROR && declared > cap) {
    Fail(fmt::format("zstd payload declares {:#x} decompressed bytes, more than the {} limit",
                     declared, Mib(cap)));
  }
  const std::unique_ptr<ZSTD_DCtx, size_t (*)(ZSTD_DCtx*)> d(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!d) Fail("zstd: decoder init failed");
  if (ZSTD_isError(ZSTD_DCtx_setParameter(d.get(), ZSTD_d_windowLogMax, kZstdWindowLogMax))) {
    Fail("zstd: cannot set the window limit");
  }
  ZSTD_inBuffer src{in.data(), in.size(), 0};
  for (;;) {
    const std::span<uint8_t> space = out.Space();
    ZSTD_outBuffer dst{space.data(), space.size(), 0};
    const size_t r = ZSTD_decompressStream(d.get(), &dst, &src);
    out.Commit(dst.pos);
    if (ZSTD_isError(r)) {
      Fail(fmt::format("zstd payload is corrupt: {} (at input offset {:#x})", ZSTD_getErrorName(r),
                       src.pos));
    }
    if (r == 0) {
      CheckTrailer(in, src.pos, out.size(), "zstd");
      return;
    }
    if (src.pos == src.size && dst.pos < dst.size) {
      Fail(fmt::format("zstd payload is truncated: the frame does not end within its {} bytes",
                       in.size()));
    }
  }
}

// The LZ4 legacy frame (lz4 -l, the kernel's format): the magic, then blocks of
// [u32 compressed size][data], each decompressing to at most 8 MiB; a repeated magic (frames
// concatenated) is skipped, as the kernel's unlz4 does. The kernel's size trailer is the 4 bytes
// left after the last block.
void DecompressLz4Legacy(std::span<const uint8_t> in, CappedOutput& out) {
  const size_t max_block = static_cast<size_t>(LZ4_compressBound(kLz4LegacyBlockBytes));
  // The format's fixed 8 MiB block buffer, allocated by the first LZ4 payload a thread meets
  // and kept: allocating and freeing 8 MiB per payload was most of the cost of a corrupt one.
  static thread_local ScratchBytes block;
  uint64_t pos = sizeof kLz4LegacyMagic;
  unsigned blocks = 0;
  for (;;) {
    const uint64_t rest = in.size() - pos;
    if (rest == 0 || (rest == 4 && blocks > 0)) break;
    if (rest < 4) {
      Fail(fmt::format("LZ4 payload is truncated: {} bytes at offset {:#x} where a block header "
                       "(4 bytes) belongs", rest, pos));
    }
    const uint32_t csize = LoadLe32(in.data() + pos);
    if (csize == kLz4LegacyMagicLe) {
      pos += 4;
      continue;
    }
    if (csize == 0 || csize > max_block) {
      Fail(fmt::format("LZ4 payload: block {} at offset {:#x} has compressed size {:#x} (must be "
                       "1..{:#x})", blocks, pos, csize, max_block));
    }
    if (csize > rest - 4) {
      Fail(fmt::format("LZ4 payload is truncated: block {} at offset {:#x} needs {:#x} bytes, {:#x} "
                       "remain", blocks, pos, csize, rest - 4));
    }
    if (!block) block = NewScratch(kLz4LegacyBlockBytes);
    const int n = LZ4_decompress_safe(reinterpret_cast<const char*>(in.data() + pos + 4),
                                      reinterpret_cast<char*>(block.get()), static_cast<int>(csize),
                                      static_cast<int>(kLz4LegacyBlockBytes));
    if (n < 0) {
      Fail(fmt::format("LZ4 payload: block {} at offset {:#x} is corrupt (or decompresses past "
                       "the format's 8 MiB block size)", blocks, pos));
    }
    out.Append(block.get(), static_cast<size_t>(n));
    pos += 4 + csize;
    ++blocks;
  }
  if (blocks == 0) Fail("LZ4 payload has no blocks");
  CheckTrailer(in, pos, out.size(), "LZ4");
}

void CheckVmlinux(std::span<const uint8_t> elf, const char* format) {
  if (elf.size() < sizeof(Elf64_Ehdr) || std::memcmp(elf.data(), ELFMAG, SELFMAG) != 0) {
    Fail(fmt::format("the decompressed {} payload ({} bytes) is not an ELF vmlinux: it starts with "
                     "{}", format, elf.size(), HexBytes(elf, 4)));
  }
  if (elf[EI_CLASS] != ELFCLASS64 || elf[EI_DATA] != ELFDATA2LSB) {
    Fail(fmt::format("the decompressed {} payload is an ELF but not a little-endian ELF64 (class "
                     "{}, data {})", format, elf[EI_CLASS], elf[EI_DATA]));
  }
  const uint16_t machine = LoadLe16(elf.data() + offsetof(Elf64_Ehdr, e_machine));
  if (machine != EM_X86_64) {
    Fail(fmt::format("the decompressed {} payload is an ELF64 for machine {}, not x86-64 ({})",
                     format, machine, EM_X86_64));
  }
}

}  // namespace

bool LooksLikeBzImage(std::span<const uint8_t> image) {
  return image.size() >= 0x206 && LoadLe16(image.data() + 0x1fe) == kBootFlag &&
         LoadLe32(image.data() + 0x202) == kHdrS;
}

BzImage ParseBzImage(std::span<const uint8_t> image) {
  if (image.size() < 0x208) {
    Fail(fmt::format("bzImage: {} bytes is too short for a setup header (boot_flag, \"HdrS\" and "
                     "version end at 0x208)", image.size()));
  }
  const uint8_t* p = image.data();
  if (LoadLe16(p + 0x1fe) != kBootFlag) {
    Fail(fmt::format("bzImage: boot_flag at 0x1fe is {:#06x}, not 0xaa55", LoadLe16(p + 0x1fe)));
  }
  if (LoadLe32(p + 0x202) != kHdrS) {
    Fail(fmt::format("bzImage: no \"HdrS\" signature at 0x202 (found {}): a pre-2.00 protocol "
                     "zImage or not a Linux kernel", HexBytes(image.subspan(0x202), 4)));
  }
  BzImage bz;
  bz.protocol = LoadLe16(p + 0x206);
  if (bz.protocol < kMinBzImageProtocol) {
    Fail(fmt::format("bzImage: boot protocol {}.{:02} is older than the {}.{:02} required",
                     bz.protocol >> 8, bz.protocol & 0xff, kMinBzImageProtocol >> 8,
                     kMinBzImageProtocol & 0xff));
  }
  // The header's end, by the boot protocol: 0x202 plus the jump's offset byte at 0x201.
  const uint64_t header_end = 0x202 + uint64_t{p[0x201]};
  if (header_end < kSetupHeaderMinEnd || header_end > kSetupHeaderMaxEnd) {
    Fail(fmt::format("bzImage: the setup header ends at {:#x} (0x202 + byte {:#04x} at 0x201); it "
                     "must end within [{:#x}, {:#x}]", header_end, p[0x201], kSetupHeaderMinEnd,
                     kSetupHeaderMaxEnd));
  }
  if (header_end > image.size()) {
    Fail(fmt::format("bzImage: the setup header ends at {:#x}, past the end of the {}-byte image",
                     header_end, image.size()));
  }
  bz.setup_header.assign(p + kSetupHeaderOffset, p + header_end);
  bz.setup_sects = p[0x1f1] ? p[0x1f1] : 4;
  bz.syssize = LoadLe32(p + 0x1f4);
  bz.loadflags = p[0x211];
  bz.code32_start = LoadLe32(p + 0x214);
  bz.initrd_addr_max = LoadLe32(p + 0x22c);
  bz.kernel_alignment = LoadLe32(p + 0x230);
  bz.relocatable_kernel = p[0x234] != 0;
  bz.min_alignment = p[0x235];
  bz.xloadflags = LoadLe16(p + 0x236);
  bz.cmdline_size = LoadLe32(p + 0x238);
  bz.payload_offset = LoadLe32(p + 0x248);
  bz.payload_length = LoadLe32(p + 0x24c);
  bz.pref_address = LoadLe64(p + 0x258);
  bz.init_size = LoadLe32(p + 0x260);
  if (!(bz.loadflags & kLoadedHigh)) {
    Fail("bzImage: loadflags lacks LOADED_HIGH: a zImage (loaded at 0x10000) is not supported");
  }
  if (bz.init_size == 0) Fail("bzImage: init_size is 0");
  bz.protected_mode_offset = (uint64_t{bz.setup_sects} + 1) * kSectorBytes;
  if (bz.protected_mode_offset >= image.size()) {
    Fail(fmt::format("bzImage: the protected-mode code would start at {:#x} ((setup_sects {} + 1) "
                     "* 512), past the end of the {}-byte image", bz.protected_mode_offset,
                     bz.setup_sects, image.size()));
  }
  if (bz.payload_offset == 0 || bz.payload_length == 0) {
    Fail(fmt::format("bzImage: no payload (payload_offset {:#x}, payload_length {:#x})",
                     bz.payload_offset, bz.payload_length));
  }
  const uint64_t start = bz.protected_mode_offset + bz.payload_offset;  // no overflow: 33 bits
  const uint64_t end = start + bz.payload_length;
  if (end > image.size()) {
    Fail(fmt::format("bzImage: the payload [{:#x}, {:#x}) (payload_offset {:#x} from the "
                     "protected-mode code at {:#x}, payload_length {:#x}) runs past the end of the "
                     "{}-byte image", start, end, bz.payload_offset, bz.protected_mode_offset,
                     bz.payload_length, image.size()));
  }
  bz.payload = image.subspan(start, bz.payload_length);
  return bz;
}

std::vector<uint8_t> DecompressKernelPayload(std::span<const uint8_t> payload, uint64_t max_output) {
  const uint64_t cap = std::min(max_output, kMaxDecompressedKernel);
  if (payload.size() > std::numeric_limits<uint32_t>::max()) {
    Fail(fmt::format("kernel payload of {} bytes is larger than a bzImage's 32-bit payload_length",
                     payload.size()));
  }
  const char* format;
  if (StartsWith(payload, kXzMagic)) {
    format = "XZ";
  } else if (StartsWith(payload, kGzipMagic)) {
    format = "gzip";
  } else if (StartsWith(payload, kZstdMagic)) {
    format = "zstd";
  } else if (StartsWith(payload, kLz4LegacyMagic)) {
    format = "LZ4";
  } else {
    Fail(fmt::format("kernel payload has an unsupported compression format: it starts with {} "
                     "(XZ FD 37 7A 58 5A 00, gzip 1F 8B, zstd 28 B5 2F FD and LZ4 legacy 02 21 4C 18 "
                     "are supported)", HexBytes(payload, 6)));
  }
  CappedOutput out(cap, format);
  if (format[0] == 'X') {
    DecompressXz(payload, out);
  } else if (format[0] == 'g') {
    DecompressGzip(payload, out);
  } else if (format[0] == 'z') {
    DecompressZstd(payload, out, cap);
  } else {
    DecompressLz4Legacy(payload, out);
  }
  std::vector<uint8_t> elf = out.Take();
  CheckVmlinux(elf, format);
  return elf;
}

std::vector<uint8_t> DecompressBzImageKernel(const BzImage& bz) {
  return DecompressKernelPayload(bz.payload, bz.init_size);
}

}  // namespace vmrr
