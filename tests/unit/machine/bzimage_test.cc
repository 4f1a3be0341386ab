// bzImage: the setup header is parsed as the boot protocol says, payloads compressed here with
// each of the four libraries decompress to the ELF they hold, and every malformed, truncated or
// oversized input is a LoaderError naming what is wrong.
#include "hv-hooks/machine/bzimage.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <functional>
#include <string>
#include <vector>

#include "tests/unit/machine/bzimage_images.h"
#include "tests/unit/machine/test_images.h"

namespace vmrr {
namespace {

using test::Bytes;
using test::CompressGzip;
using test::CompressLz4Legacy;
using test::CompressXz;
using test::CompressZstd;
using test::ErrorOf;
using test::kPayloadOffset;
using test::MakeBzImage;
using test::Vmlinux;
using test::WithSizeTrailer;
using test::Put16;
using test::Put32;
using test::Put64;

enum class Format { kXz, kGzip, kZstd, kLz4 };
const Format kFormats[] = {Format::kXz, Format::kGzip, Format::kZstd, Format::kLz4};
const char* Name(Format f) {
  switch (f) {
    case Format::kXz: return "XZ";
    case Format::kGzip: return "gzip";
    case Format::kZstd: return "zstd";
    case Format::kLz4: return "LZ4";
  }
  return "?";
}

Bytes Compress(Format f, const Bytes& in, bool fast = false) {
  switch (f) {
    case Format::kXz: return CompressXz(in, fast ? 0 : 6);
    case Format::kGzip: return CompressGzip(in, fast ? 1 : 9);
    case Format::kZstd: return CompressZstd(in, fast ? 1 : 19);
    case Format::kLz4: return CompressLz4Legacy(in);
  }
  return {};
}

std::string ParseError(const Bytes& image) {
  return ErrorOf([&] { (void)ParseBzImage(image); });
}
std::string DecompressError(const Bytes& payload, uint64_t max_output = 16u << 20) {
  return ErrorOf([&] { (void)DecompressKernelPayload(payload, max_output); });
}

TEST(BzImage, ParsesTheSetupHeader) {
  const Bytes payload = CompressXz(Vmlinux());
  const Bytes image = MakeBzImage(payload);
  EXPECT_TRUE(LooksLikeBzImage(image));
  EXPECT_FALSE(LooksLikeBzImage(Vmlinux()));
  EXPECT_FALSE(LooksLikeBzImage(Bytes(0x205, 0)));
  const BzImage bz = ParseBzImage(image);
  EXPECT_EQ(bz.protocol, 0x020f);
  EXPECT_EQ(bz.setup_sects, 1);
  EXPECT_EQ(bz.loadflags, 1);
  EXPECT_EQ(bz.code32_start, 0x100000u);
  EXPECT_EQ(bz.initrd_addr_max, 0x7fffffffu);
  EXPECT_EQ(bz.kernel_alignment, 0x200000u);
  EXPECT_TRUE(bz.relocatable_kernel);
  EXPECT_EQ(bz.min_alignment, 21);
  EXPECT_EQ(bz.xloadflags, kXlfKernel64 | kXlfCanBeLoadedAbove4G);
  EXPECT_EQ(bz.cmdline_size, 2047u);
  EXPECT_EQ(bz.payload_offset, kPayloadOffset);
  EXPECT_EQ(bz.payload_length, payload.size());
  EXPECT_EQ(bz.pref_address, 0x1000000u);
  EXPECT_EQ(bz.init_size, 16u << 20);
  EXPECT_EQ(bz.protected_mode_offset, 1024u);
  ASSERT_EQ(bz.setup_header.size(), 0x26cu - 0x1f1u);
  EXPECT_TRUE(std::equal(bz.setup_header.begin(), bz.setup_header.end(), image.begin() + 0x1f1));
  EXPECT_EQ(bz.payload.data(), image.data() + 1024 + kPayloadOffset);
  EXPECT_EQ(bz.payload.size(), payload.size());

  // setup_sects 0 means 4: the protected-mode code then starts at 5 * 512.
  Bytes four = image;
  four[0x1f1] = 0;
  four.insert(four.begin() + 1024, 3 * 512, 0);
  const BzImage bz4 = ParseBzImage(four);
  EXPECT_EQ(bz4.setup_sects, 4);
  EXPECT_EQ(bz4.protected_mode_offset, 5u * 512);
  EXPECT_TRUE(std::equal(bz4.payload.begin(), bz4.payload.end(), payload.begin(), payload.end()));
}

TEST(BzImage, DecompressesEveryFormatWithAndWithoutTheSizeTrailer) {
  const Bytes elf = Vmlinux();
  for (Format f : kFormats) {
    SCOPED_TRACE(Name(f));
    const Bytes plain = Compress(f, elf);
    for (const Bytes& payload : {plain, WithSizeTrailer(plain, elf.size())}) {
      const Bytes image = MakeBzImage(payload);  // bz.payload points into it
      const BzImage bz = ParseBzImage(image);
      EXPECT_EQ(DecompressBzImageKernel(bz), elf);
      EXPECT_EQ(DecompressKernelPayload(payload, elf.size()), elf);  // exactly at the cap
      EXPECT_NE(DecompressError(payload, elf.size() - 1).find("limit"), std::string::npos)
          << DecompressError(payload, elf.size() - 1);
    }
  }
}

TEST(BzImage, EveryTruncationIsALoaderError) {
  const Bytes elf = Vmlinux();
  for (Format f : kFormats) {
    SCOPED_TRACE(Name(f));
    const Bytes plain = Compress(f, elf);
    // Without the trailer every cut of the stream fails (one LZ4 block: its legacy frame has no
    // end marker, so a cut at a block boundary of a longer one would be a shorter valid stream).
    for (size_t n = 0; n < plain.size(); ++n) {
      EXPECT_NE(DecompressError(Bytes(plain.begin(), plain.begin() + n)), "") << "cut at " << n;
    }
    // With it, every cut but the one removing the whole trailer fails.
    const Bytes trailed = WithSizeTrailer(plain, elf.size());
    for (size_t n = plain.size() + 1; n < trailed.size(); ++n) {
      EXPECT_NE(DecompressError(Bytes(trailed.begin(), trailed.begin() + n)), "") << "cut at " << n;
    }
    // Every cut of the image is refused by the parser (the payload runs past its end).
    const Bytes image = MakeBzImage(trailed);
    for (size_t n = 0; n < image.size(); ++n) {
      const Bytes cut(image.begin(), image.begin() + n);
      EXPECT_NE(ErrorOf([&] { (void)DecompressBzImageKernel(ParseBzImage(cut)); }), "")
          << "cut at " << n;
    }
  }
}

TEST(BzImage, RejectsUnknownMagicAndNonElfOutput) {
  const std::string bzip2 = DecompressError({'B', 'Z', 'h', '9', 0x31, 0x41, 0x59});
  EXPECT_NE(bzip2.find("unsupported compression format: it starts with 42 5A 68 39 31 41"),
            std::string::npos) << bzip2;
  EXPECT_NE(DecompressError({0x5D, 0x00, 0x00, 0x80, 0x00}).find("5D 00 00 80 00"), std::string::npos);
  EXPECT_NE(DecompressError({}).find("(none)"), std::string::npos);
  EXPECT_NE(DecompressError({0x1F, 0x9E, 1, 2}).find("1F 9E"), std::string::npos);  // old gzip

  const Bytes text = {'n', 'o', 't', ' ', 'a', 'n', ' ', 'E', 'L', 'F', '!', '\n'};
  for (Format f : kFormats) {
    SCOPED_TRACE(Name(f));
    const std::string e = DecompressError(Compress(f, text));
    EXPECT_NE(e.find("is not an ELF vmlinux: it starts with 6E 6F 74 20"), std::string::npos) << e;
  }
  const Bytes elf32 = test::MakeElf32(0x100000, 0x100000, test::kHelloCode);
  EXPECT_NE(DecompressError(CompressGzip(elf32)).find("not a little-endian ELF64"), std::string::npos);
  Bytes arm = Vmlinux();
  Put16(arm, 18, 183);  // EM_AARCH64
  EXPECT_NE(DecompressError(CompressZstd(arm)).find("machine 183, not x86-64"), std::string::npos);
}

TEST(BzImage, RejectsMalformedSetupHeaders) {
  const Bytes good = MakeBzImage(CompressGzip(Vmlinux()));
  const auto with = [&](const std::function<void(Bytes&)>& edit) {
    Bytes b = good;
    edit(b);
    return ParseError(b);
  };
  EXPECT_NE(ParseError(Bytes(0x205, 0)).find("too short"), std::string::npos);
  const Bytes no_version(good.begin(), good.begin() + 0x207);  // signatures, half a version
  EXPECT_TRUE(LooksLikeBzImage(no_version));
  EXPECT_NE(ParseError(no_version).find("519 bytes is too short"), std::string::npos);
  EXPECT_NE(with([](Bytes& b) { Put16(b, 0x1fe, 0x55AA); }).find("boot_flag at 0x1fe is 0x55aa"),
            std::string::npos);
  EXPECT_NE(with([](Bytes& b) { b[0x205] = 'X'; }).find("no \"HdrS\" signature"), std::string::npos);
  const std::string old = with([](Bytes& b) { Put16(b, 0x206, 0x020b); });
  EXPECT_NE(old.find("boot protocol 2.11 is older than the 2.12 required"), std::string::npos) << old;
  EXPECT_EQ(with([](Bytes& b) { Put16(b, 0x206, 0x020c); }), "");
  EXPECT_NE(with([](Bytes& b) { b[0x201] = 0x10; }).find("the setup header ends at 0x212"),
            std::string::npos);
  EXPECT_NE(with([](Bytes& b) { b[0x201] = 0x8f; }).find("ends at 0x291"), std::string::npos);
  EXPECT_NE(with([](Bytes& b) { b[0x211] = 0; }).find("LOADED_HIGH"), std::string::npos);
  EXPECT_NE(with([](Bytes& b) { Put32(b, 0x260, 0); }).find("init_size is 0"), std::string::npos);
  EXPECT_NE(with([](Bytes& b) { b[0x1f1] = 0xff; }).find("(setup_sects 255 + 1)"), std::string::npos);
  EXPECT_NE(with([](Bytes& b) { Put32(b, 0x248, 0); }).find("no payload"), std::string::npos);
  EXPECT_NE(with([](Bytes& b) { Put32(b, 0x24c, 0); }).find("no payload"), std::string::npos);
  const std::string far = with([](Bytes& b) { Put32(b, 0x248, 0xffffffff); });
  EXPECT_NE(far.find("runs past the end"), std::string::npos) << far;
  EXPECT_NE(with([](Bytes& b) { Put32(b, 0x24c, 0xffffffff); }).find("payload_length 0xffffffff"),
            std::string::npos);
  EXPECT_NE(with([](Bytes& b) { Put32(b, 0x24c, LoadLe32(b.data() + 0x24c) + 1); })
                .find("runs past the end"),
            std::string::npos);
  // A header whose own length reaches past a short image.
  Bytes stub(0x210, 0);
  std::copy(good.begin(), good.begin() + 0x210, stub.begin());
  EXPECT_NE(ParseError(stub).find("past the end of the 528-byte image"), std::string::npos);
}

TEST(BzImage, DecompressionBombsFailAtTheCap) {
  const Bytes zeros(64u << 20, 0);
  for (Format f : kFormats) {
    SCOPED_TRACE(Name(f));
    const Bytes bomb = Compress(f, zeros, /*fast=*/true);
    EXPECT_LT(bomb.size(), 4u << 20);
    const std::string e = DecompressError(bomb, 1u << 20);
    EXPECT_NE(e.find(std::string(Name(f)) + " payload"), std::string::npos) << e;
    EXPECT_NE(e.find("1 MiB limit"), std::string::npos) << e;
    // Through the header: init_size is the default cap.
    const Bytes image = MakeBzImage(bomb, 2u << 20);
    const BzImage bz = ParseBzImage(image);
    EXPECT_NE(ErrorOf([&] { (void)DecompressBzImageKernel(bz); }).find("2 MiB limit"),
              std::string::npos);
  }
  // No caller can lift the cap past 512 MiB.
  EXPECT_EQ(kMaxDecompressedKernel, 512u << 20);
}

TEST(BzImage, TheSizeTrailerMustMatchAndNothingElseMayFollow) {
  const Bytes elf = Vmlinux();
  for (Format f : kFormats) {
    SCOPED_TRACE(Name(f));
    const Bytes plain = Compress(f, elf);
    const std::string wrong = DecompressError(WithSizeTrailer(plain, elf.size() + 1));
    EXPECT_NE(wrong.find("size trailer says"), std::string::npos) << wrong;
    Bytes five = WithSizeTrailer(plain, elf.size());
    five.push_back(0);
    EXPECT_NE(DecompressError(five), "");
  }
  Bytes xz = WithSizeTrailer(CompressXz(elf), elf.size());
  xz.push_back(0);
  EXPECT_NE(DecompressError(xz).find("5 bytes follow the end of the stream"), std::string::npos);
}

TEST(BzImage, CorruptStreamsAreLoaderErrors) {
  const Bytes elf = Vmlinux();
  for (Format f : kFormats) {
    SCOPED_TRACE(Name(f));
    const Bytes plain = WithSizeTrailer(Compress(f, elf), elf.size());
    // Flip each byte after the magic in turn: an error or (where no check covers it) some
    // output, but never a crash; the ELF check and the trailer catch most.
    for (size_t i = 6; i < plain.size(); ++i) {
      Bytes b = plain;
      b[i] ^= 0x5a;
      (void)DecompressError(b);
    }
  }
}

// The stock Debian kernel (test::StockKernels).
TEST(BzImage, DecompressesTheStockDebianKernel) {
  const std::vector<std::filesystem::path> kernels = test::StockKernels();
  if (kernels.empty()) GTEST_SKIP() << "no vmlinuz-* in /boot or build/kernel (bash .ci/setup fetches one)";
  for (const auto& path : kernels) {
    SCOPED_TRACE(path.string());
    const Bytes image = test::ReadFile(path);
    if (image.empty()) {
      ADD_FAILURE() << "cannot read " << path;
      continue;
    }
    ASSERT_TRUE(LooksLikeBzImage(image));
    const BzImage bz = ParseBzImage(image);
    EXPECT_TRUE(bz.xloadflags & kXlfKernel64);
    const Bytes elf = DecompressBzImageKernel(bz);
    ASSERT_GE(elf.size(), 64u);
    EXPECT_EQ(elf[4], 2);                    // ELFCLASS64
    EXPECT_EQ(LoadLe16(elf.data() + 18), 62);  // EM_X86_64
    EXPECT_LE(elf.size(), bz.init_size);
  }
}

}  // namespace
}  // namespace vmrr
