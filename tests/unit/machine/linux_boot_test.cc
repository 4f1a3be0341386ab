// The Linux 64-bit boot protocol loader: on the stock Debian kernel (skipped only when none is
// present) the kernel's segments, boot_params, the command line, the initrd, the e820 map and
// the entry state are read back from guest memory; on small synthetic bzImages each rule and
// each refusal (RAM too small, initrd too large, command line too long, ...) is checked, and a
// refused load leaves guest memory untouched.
#include "hv-hooks/machine/linux_boot.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "hv-hooks/machine/bzimage.h"
#include "hv-hooks/devices/acpi_pm.h"
#include "hv-hooks/machine/machine.h"
#include "hv-hooks/machine/platform_layout.h"
#include "tests/unit/machine/bzimage_images.h"
#include "tests/unit/machine/test_images.h"

namespace vmrr {
namespace {

using test::Bytes;
using test::ErrorOf;
using test::Put16;
using test::Put32;

constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kKernelVirtualBase = 0xffffffff81000000ull;

uint64_t Read64(const GuestMemory& mem, uint64_t gpa) {
  uint8_t b[8];
  EXPECT_TRUE(mem.Read(gpa, b, 8));
  return LoadLe64(b);
}
uint32_t Read32(const GuestMemory& mem, uint64_t gpa) {
  uint8_t b[4];
  EXPECT_TRUE(mem.Read(gpa, b, 4));
  return LoadLe32(b);
}
uint8_t Read8(const GuestMemory& mem, uint64_t gpa) {
  uint8_t b = 0;
  EXPECT_TRUE(mem.Read(gpa, &b, 1));
  return b;
}
Bytes ReadBytes(const GuestMemory& mem, uint64_t gpa, uint64_t n) {
  Bytes b(n);
  EXPECT_TRUE(mem.Read(gpa, b.data(), n));
  return b;
}
bool AllZero(const GuestMemory& mem) {
  const uint8_t* p = mem.Span(0, mem.size());
  return std::all_of(p, p + mem.size(), [](uint8_t b) { return b == 0; });
}

// The physical address `va` translates to through the page tables at CR3 (4-level, 2 MiB or
// 4 KiB pages), or ~0 when it is not mapped.
uint64_t Translate(const GuestMemory& mem, uint64_t cr3, uint64_t va) {
  const uint64_t kAddr = 0x000ffffffffff000ull;
  const uint64_t pml4e = Read64(mem, (cr3 & kAddr) + 8 * ((va >> 39) & 511));
  if (!(pml4e & 1)) return ~uint64_t{0};
  const uint64_t pdpte = Read64(mem, (pml4e & kAddr) + 8 * ((va >> 30) & 511));
  if (!(pdpte & 1)) return ~uint64_t{0};
  if (pdpte & 0x80) return (pdpte & kAddr & ~((1ull << 30) - 1)) | (va & ((1ull << 30) - 1));
  const uint64_t pde = Read64(mem, (pdpte & kAddr) + 8 * ((va >> 21) & 511));
  if (!(pde & 1)) return ~uint64_t{0};
  if (pde & 0x80) return (pde & kAddr & ~((1ull << 21) - 1)) | (va & ((1ull << 21) - 1));
  const uint64_t pte = Read64(mem, (pde & kAddr) + 8 * ((va >> 12) & 511));
  if (!(pte & 1)) return ~uint64_t{0};
  return (pte & kAddr) | (va & 0xfff);
}

Bytes Pattern(size_t n, uint32_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>((i * 2654435761u + seed) >> 13);
  return b;
}

struct Range {
  const char* what;
  uint64_t lo, hi;
};

// What every successful load must satisfy, read back from guest memory.
void CheckLoad(const GuestMemory& mem, const BootState& boot, std::span<const uint8_t> bzimage,
               const Bytes& initrd, const std::string& cmdline, uint64_t elf_entry) {
  const BzImage bz = ParseBzImage(bzimage);
  const uint64_t zp = kBootParamsAddr;

  // The setup header is the image's, but for the fields the loader fills in.
  const std::vector<std::pair<uint64_t, uint64_t>> filled = {
      {zeropage::kTypeOfLoader, 1}, {zeropage::kLoadflags, 1}, {zeropage::kRamdiskImage, 4},
      {zeropage::kRamdiskSize, 4},  {zeropage::kHeapEndPtr, 2}, {zeropage::kCmdLinePtr, 4}};
  const Bytes header = ReadBytes(mem, zp + kSetupHeaderOffset, bz.setup_header.size());
  for (size_t i = 0; i < header.size(); ++i) {
    const uint64_t off = kSetupHeaderOffset + i;
    const bool is_filled = std::any_of(filled.begin(), filled.end(), [&](const auto& f) {
      return off >= f.first && off < f.first + f.second;
    });
    if (!is_filled) {
      EXPECT_EQ(header[i], bz.setup_header[i]) << "setup header byte " << std::hex << off;
    }
  }
  EXPECT_EQ(Read32(mem, zp + 0x202), 0x53726448u);  // "HdrS"
  EXPECT_EQ(Read8(mem, zp + zeropage::kTypeOfLoader), 0xff);
  EXPECT_EQ(Read8(mem, zp + zeropage::kLoadflags), kLoadedHigh);
  EXPECT_EQ(Read8(mem, zp + zeropage::kSentinel), 0);

  // The command line, exactly, with its NUL.
  const uint64_t cmd = Read32(mem, zp + zeropage::kCmdLinePtr) |
                       (uint64_t{Read32(mem, zp + zeropage::kExtCmdLinePtr)} << 32);
  EXPECT_EQ(cmd, kCmdlineAddr);
  const Bytes got_cmd = ReadBytes(mem, cmd, cmdline.size() + 1);
  EXPECT_EQ(std::string(got_cmd.begin(), got_cmd.end() - 1), cmdline);
  EXPECT_EQ(got_cmd.back(), 0);

  // The initrd, page-aligned, as high as it goes, above the kernel's end.
  const uint64_t rd = Read32(mem, zp + zeropage::kRamdiskImage) |
                      (uint64_t{Read32(mem, zp + zeropage::kExtRamdiskImage)} << 32);
  const uint64_t rd_size = Read32(mem, zp + zeropage::kRamdiskSize) |
                           (uint64_t{Read32(mem, zp + zeropage::kExtRamdiskSize)} << 32);
  EXPECT_EQ(rd_size, initrd.size());
  uint64_t kernel_lo = ~uint64_t{0}, kernel_hi = 0;
  for (const auto& s : boot.segments) {
    kernel_lo = std::min(kernel_lo, s.gpa);
    kernel_hi = std::max(kernel_hi, s.gpa + s.mem_bytes);
  }
  const uint64_t limit = std::min<uint64_t>(uint64_t{bz.initrd_addr_max} + 1, mem.size());
  if (initrd.empty()) {
    EXPECT_EQ(rd, 0u);
  } else {
    EXPECT_EQ(rd % 0x1000, 0u);
    EXPECT_EQ(rd, (limit - initrd.size()) & ~uint64_t{0xfff});
    EXPECT_GE(rd, std::max(kernel_hi, kernel_lo + bz.init_size));
    EXPECT_EQ(ReadBytes(mem, rd, rd_size), initrd);
  }

  // The e820 table: MemoryMap's, sorted, RAM covering the low 640 KiB and 1 MiB..RAM top.
  const std::vector<MemoryRegion> map = MemoryMap(mem.size());
  ASSERT_EQ(Read8(mem, zp + zeropage::kE820Entries), map.size());
  uint64_t prev_end = 0, ram = 0;
  std::vector<Range> ram_ranges;
  for (size_t i = 0; i < map.size(); ++i) {
    const uint64_t at = zp + zeropage::kE820Table + i * zeropage::kE820EntrySize;
    const MemoryRegion e{Read64(mem, at), Read64(mem, at + 8), Read32(mem, at + 16)};
    EXPECT_EQ(e, map[i]) << "e820 entry " << i;
    EXPECT_GE(e.base, prev_end) << "e820 entry " << i;
    EXPECT_GT(e.length, 0u);
    prev_end = e.base + e.length;
    if (e.type == MemoryRegion::kRam) {
      ram += e.length;
      ram_ranges.push_back({"RAM", e.base, e.base + e.length});
    }
  }
  EXPECT_EQ(ram, mem.size() - (kMiB - 0xa0000));
  ASSERT_GE(ram_ranges.size(), 2u);
  EXPECT_EQ(ram_ranges[0].lo, 0u);
  EXPECT_EQ(ram_ranges[0].hi, 0xa0000u);
  EXPECT_EQ(ram_ranges.back().lo, kMiB);
  EXPECT_EQ(ram_ranges.back().hi, mem.size());

  // Kernel, boot_params, command line, GDT and page tables, initrd: in RAM, pairwise disjoint,
  // and identity-mapped by the entry page tables.
  std::vector<Range> pieces;
  for (const auto& s : boot.segments) pieces.push_back({"kernel segment", s.gpa, s.gpa + s.mem_bytes});
  pieces.push_back({"boot_params", zp, zp + kBootParamsSize});
  pieces.push_back({"command line", kCmdlineAddr, kCmdlineAddr + cmdline.size() + 1});
  pieces.push_back({"GDT and page tables", kLoaderAreaBase, kLoaderAreaEnd});
  if (!initrd.empty()) pieces.push_back({"initrd", rd, rd + rd_size});
  for (size_t i = 0; i < pieces.size(); ++i) {
    const Range& a = pieces[i];
    EXPECT_TRUE(std::any_of(ram_ranges.begin(), ram_ranges.end(),
                            [&](const Range& r) { return a.lo >= r.lo && a.hi <= r.hi; }))
        << a.what << " outside e820 RAM";
    for (size_t j = i + 1; j < pieces.size(); ++j) {
      const Range& b = pieces[j];
      EXPECT_FALSE(a.lo < b.hi && b.lo < a.hi) << a.what << " overlaps " << b.what;
    }
    for (uint64_t addr : {a.lo, a.hi - 1}) {
      EXPECT_EQ(Translate(mem, boot.cpu.cr3, addr), addr) << a.what << std::hex << " at " << addr;
    }
  }

  // The entry state of the 64-bit boot protocol.
  const CpuState& s = boot.cpu;
  EXPECT_EQ(s.rip, elf_entry);
  EXPECT_EQ(boot.entry, elf_entry);
  EXPECT_EQ(s.gpr[kRsi], kBootParamsAddr);
  EXPECT_TRUE(s.cr0 & (1u << 31)) << "CR0.PG";
  EXPECT_TRUE(s.cr0 & 1u) << "CR0.PE";
  EXPECT_TRUE(s.cr4 & (1u << 5)) << "CR4.PAE";
  EXPECT_TRUE(s.efer & (1u << 10)) << "EFER.LMA";
  EXPECT_TRUE(s.efer & (1u << 8)) << "EFER.LME";
  EXPECT_EQ(s.cr3, kBootPml4Addr);
  EXPECT_FALSE(s.rflags & (1u << 9)) << "interrupts enabled";
  EXPECT_TRUE(s.seg[kCs].attr & kSegAttrL) << "CS is not a 64-bit code segment";
  EXPECT_EQ(s.cpl, 0);
}

// ---- The stock Debian kernel -----------------------------------------------------------

class StockKernel : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto kernels = test::StockKernels();
    if (kernels.empty()) return;
    path_ = new std::string(kernels.front().string());
    image_ = new Bytes(test::ReadFile(kernels.front()));
  }
  static void TearDownTestSuite() {
    delete image_;
    delete path_;
    image_ = nullptr;
    path_ = nullptr;
  }
  void SetUp() override {
    if (!image_) GTEST_SKIP() << "no vmlinuz-* in /boot or build/kernel (bash .ci/setup fetches one)";
    ASSERT_FALSE(image_->empty()) << "cannot read " << *path_;
  }
  static Bytes* image_;
  static std::string* path_;
};
Bytes* StockKernel::image_ = nullptr;
std::string* StockKernel::path_ = nullptr;

TEST_F(StockKernel, LoadsForThe64BitBootProtocol) {
  SCOPED_TRACE(*path_);
  const BzImage bz = ParseBzImage(*image_);
  const Bytes vmlinux = DecompressBzImageKernel(bz);
  const uint64_t e_entry = LoadLe64(vmlinux.data() + 24);

  GuestMemory mem(256 * kMiB);
  const Bytes initrd = Pattern(64 * 1024 + 123, 7);
  const std::string cmdline = "console=ttyS0 root=/dev/vda rw panic=-1 quiet";
  const BootState boot = LoadLinuxKernel(mem, *image_, initrd, cmdline);
  CheckLoad(mem, boot, *image_, initrd, cmdline, e_entry);

  // Debian's vmlinux is linked at 16 MiB physical and entered there (phys_startup_64).
  ASSERT_FALSE(boot.segments.empty());
  EXPECT_EQ(boot.segments.front().gpa, 16 * kMiB);
  EXPECT_EQ(e_entry, 16 * kMiB);
  // Every PT_LOAD's bytes are the vmlinux's (file part) and zeros (the rest), at p_paddr.
  const uint64_t phoff = LoadLe64(vmlinux.data() + 32);
  const unsigned phnum = LoadLe16(vmlinux.data() + 56);
  size_t loads = 0;
  for (unsigned i = 0; i < phnum; ++i) {
    const uint8_t* ph = vmlinux.data() + phoff + 56 * i;
    if (LoadLe32(ph) != 1) continue;  // PT_LOAD
    const uint64_t off = LoadLe64(ph + 8), paddr = LoadLe64(ph + 24);
    const uint64_t filesz = LoadLe64(ph + 32), memsz = LoadLe64(ph + 40);
    ASSERT_LT(loads, boot.segments.size());
    EXPECT_EQ(boot.segments[loads].gpa, paddr);
    EXPECT_EQ(boot.segments[loads].mem_bytes, memsz);
    ++loads;
    const uint8_t* in_ram = mem.Span(paddr, memsz);
    ASSERT_NE(in_ram, nullptr);
    EXPECT_TRUE(std::equal(in_ram, in_ram + filesz, vmlinux.data() + off)) << "PT_LOAD " << i;
    EXPECT_TRUE(std::all_of(in_ram + filesz, in_ram + memsz, [](uint8_t b) { return b == 0; }));
  }
  EXPECT_EQ(loads, boot.segments.size());
  // The entry's bytes are the vmlinux's startup_64 code: the first PT_LOAD's first file bytes.
  const uint64_t first_off = LoadLe64(vmlinux.data() + LoadLe64(vmlinux.data() + 32) + 8);
  const Bytes at_entry = ReadBytes(mem, e_entry, 16);
  EXPECT_EQ(at_entry, Bytes(vmlinux.begin() + first_off, vmlinux.begin() + first_off + 16));
  EXPECT_FALSE(std::all_of(at_entry.begin(), at_entry.end(), [](uint8_t b) { return b == 0; }));
  std::string hex;
  for (uint8_t b : at_entry) {
    char two[4];
    std::snprintf(two, sizeof two, "%02x ", b);
    hex += two;
  }
  std::printf("%s: e_entry %#llx, bytes there: %s\n", path_->c_str(),
              static_cast<unsigned long long>(e_entry), hex.c_str());
  for (const auto& s : boot.segments) {
    std::printf("  PT_LOAD at %#llx: %#llx file bytes, %#llx in memory\n",
                static_cast<unsigned long long>(s.gpa), static_cast<unsigned long long>(s.file_bytes),
                static_cast<unsigned long long>(s.mem_bytes));
  }
  std::printf("  init_size %#x, vmlinux %zu bytes\n", bz.init_size, vmlinux.size());
}

TEST_F(StockKernel, RefusesRamTooSmallForTheKernel) {
  GuestMemory mem(32 * kMiB);
  const std::string e = ErrorOf([&] { (void)LoadLinuxKernel(mem, *image_, {}, "console=ttyS0"); });
  EXPECT_NE(e.find("decompressed vmlinux: PT_LOAD segment 0: [0x1000000, "), std::string::npos) << e;
  EXPECT_NE(e.find("lies outside guest RAM (0x2000000 bytes)"), std::string::npos) << e;
  EXPECT_TRUE(AllZero(mem));
}

TEST_F(StockKernel, RefusesAnInitrdThatDoesNotFit) {
  // The kernel ends at its load address + init_size (0x1000000 + 0x3f98000 for 6.1.0-57):
  // about 16.4 MiB of 96 MiB are left above it.
  GuestMemory mem(96 * kMiB);
  const std::string e =
      ErrorOf([&] { (void)LoadLinuxKernel(mem, *image_, Bytes(20 * kMiB, 0xa5), ""); });
  EXPECT_NE(e.find("initrd of 0x1400000 bytes does not fit in guest RAM (0x6000000 bytes)"),
            std::string::npos) << e;
  EXPECT_TRUE(AllZero(mem));
}

TEST_F(StockKernel, RefusesACommandLineLongerThanCmdlineSize) {
  const BzImage bz = ParseBzImage(*image_);
  GuestMemory mem(256 * kMiB);
  const std::string e = ErrorOf(
      [&] { (void)LoadLinuxKernel(mem, *image_, {}, std::string(bz.cmdline_size + 1, 'a')); });
  EXPECT_NE(e.find(std::to_string(bz.cmdline_size + 1) +
                   " bytes, longer than the kernel's cmdline_size " + std::to_string(bz.cmdline_size)),
            std::string::npos) << e;
  EXPECT_TRUE(AllZero(mem));
}

// ---- Synthetic bzImages ----------------------------------------------------------------

// A vmlinux stand-in linked like the real one: virtual 0xffffffff81000000, physical 16 MiB,
// entered at its physical start; a second segment with a bss.
Bytes LinkedVmlinux(uint64_t entry = 16 * kMiB, uint64_t paddr = 16 * kMiB) {
  test::Segment64 text{paddr, test::kHelloCode};
  text.vaddr = kKernelVirtualBase + (paddr - 16 * kMiB);
  test::Segment64 data{paddr + 2 * kMiB, Pattern(3000, 1), 0x10000};
  data.vaddr = text.vaddr + 2 * kMiB;
  return test::MakeElf64(entry, {text, data});
}

Bytes SyntheticBzImage(const Bytes& vmlinux = LinkedVmlinux(), uint32_t init_size = 16u << 20) {
  return test::MakeBzImage(test::CompressXz(vmlinux), init_size);
}

TEST(LinuxBoot, LoadsASyntheticBzImage) {
  const Bytes image = SyntheticBzImage();
  GuestMemory mem(64 * kMiB);
  const Bytes initrd = Pattern(3 * 4096 + 5, 3);
  const std::string cmdline = "earlyprintk=serial console=ttyS0";
  const BootState boot = LoadLinuxKernel(mem, image, initrd, cmdline);
  CheckLoad(mem, boot, image, initrd, cmdline, 16 * kMiB);
  ASSERT_EQ(boot.segments.size(), 2u);
  EXPECT_EQ(boot.segments[0].gpa, 16 * kMiB);
  EXPECT_EQ(boot.segments[1].gpa, 18 * kMiB);
  EXPECT_EQ(boot.segments[1].mem_bytes, 0x10000u);
  EXPECT_EQ(ReadBytes(mem, 16 * kMiB, test::kHelloCode.size()), test::kHelloCode);
  EXPECT_EQ(ReadBytes(mem, 18 * kMiB, 3000), Pattern(3000, 1));
  EXPECT_EQ(ReadBytes(mem, 18 * kMiB + 3000, 0x10000 - 3000), Bytes(0x10000 - 3000, 0));
  // 64 MiB RAM, initrd_addr_max 0x7fffffff: the initrd ends in RAM's last page.
  EXPECT_EQ(Read32(mem, kBootParamsAddr + zeropage::kRamdiskImage), 64 * kMiB - 4 * 4096);
}

TEST(LinuxBoot, AnEmptyInitrdAndCommandLine) {
  const Bytes image = SyntheticBzImage();
  GuestMemory mem(64 * kMiB);
  const BootState boot = LoadLinuxKernel(mem, image, {}, "");
  CheckLoad(mem, boot, image, {}, "", 16 * kMiB);
  EXPECT_EQ(Read32(mem, kBootParamsAddr + zeropage::kRamdiskImage), 0u);
  EXPECT_EQ(Read32(mem, kBootParamsAddr + zeropage::kRamdiskSize), 0u);
  EXPECT_EQ(Read8(mem, kCmdlineAddr), 0);
}

TEST(LinuxBoot, TheCommandLineMayBeCmdlineSizeLongButNoLonger) {
  const Bytes image = SyntheticBzImage();  // cmdline_size 2047
  {
    GuestMemory mem(64 * kMiB);
    const std::string longest(2047, 'x');
    const BootState boot = LoadLinuxKernel(mem, image, {}, longest);
    CheckLoad(mem, boot, image, {}, longest, 16 * kMiB);
  }
  GuestMemory mem(64 * kMiB);
  const std::string e = ErrorOf([&] { (void)LoadLinuxKernel(mem, image, {}, std::string(2048, 'x')); });
  EXPECT_EQ(e, "the kernel command line is 2048 bytes, longer than the kernel's cmdline_size 2047");
  const std::string nul = ErrorOf([&] { (void)LoadLinuxKernel(mem, image, {}, std::string("a\0b", 3)); });
  EXPECT_NE(nul.find("contains a NUL byte"), std::string::npos) << nul;
  // A hostile cmdline_size does not let a command line run past the loader's area for it.
  Bytes huge = image;
  Put32(huge, 0x238, 0xffffffff);
  const std::string past = ErrorOf([&] { (void)LoadLinuxKernel(mem, huge, {}, std::string(0x60000, 'x')); });
  EXPECT_NE(past.find("the loader has for it"), std::string::npos) << past;
  EXPECT_TRUE(AllZero(mem));
}

TEST(LinuxBoot, TheInitrdStaysBelowInitrdAddrMaxAndAboveTheKernel) {
  Bytes image = SyntheticBzImage();
  Put32(image, 0x22c, 48 * kMiB - 1);  // initrd_addr_max
  {
    GuestMemory mem(64 * kMiB);
    const Bytes initrd = Pattern(5000, 9);
    const BootState boot = LoadLinuxKernel(mem, image, initrd, "");
    CheckLoad(mem, boot, image, initrd, "", 16 * kMiB);
    EXPECT_EQ(Read32(mem, kBootParamsAddr + zeropage::kRamdiskImage), 48 * kMiB - 2 * 4096);
  }
  // The kernel's end is load address + init_size (16 + 16 MiB): 16 MiB fit below 48 MiB ...
  {
    GuestMemory mem(64 * kMiB);
    const BootState boot = LoadLinuxKernel(mem, image, Bytes(16 * kMiB, 1), "");
    EXPECT_EQ(Read32(mem, kBootParamsAddr + zeropage::kRamdiskImage), 32 * kMiB);
  }
  // ... one byte more does not.
  GuestMemory mem(64 * kMiB);
  const std::string e = ErrorOf([&] { (void)LoadLinuxKernel(mem, image, Bytes(16 * kMiB + 1, 1), ""); });
  EXPECT_EQ(e, "initrd of 0x1000001 bytes does not fit in guest RAM (0x4000000 bytes) between the "
               "kernel's end 0x2000000 and 0x3000000 (min(initrd_addr_max + 1, RAM top))");
  EXPECT_TRUE(AllZero(mem));
}

TEST(LinuxBoot, RefusesWhatTheProtocolCannotBoot) {
  GuestMemory mem(64 * kMiB);
  const auto error = [&](const Bytes& image) {
    return ErrorOf([&] { (void)LoadLinuxKernel(mem, image, {}, ""); });
  };
  EXPECT_NE(error(LinkedVmlinux()).find("not a Linux bzImage"), std::string::npos);
  Bytes no64 = SyntheticBzImage();
  Put16(no64, 0x236, 0);
  EXPECT_NE(error(no64).find("lacks XLF_KERNEL_64"), std::string::npos) << error(no64);
  // e_entry must be physical (inside a segment's p_paddr range): a virtual one is refused.
  const std::string virt = error(SyntheticBzImage(LinkedVmlinux(kKernelVirtualBase)));
  EXPECT_EQ(virt, "decompressed vmlinux: entry point 0xffffffff81000000 is not inside any "
                  "PT_LOAD segment's physical range");
  // Segments below 1 MiB would overlap boot_params, the command line and the page tables.
  const std::string low = error(SyntheticBzImage(LinkedVmlinux(0x10000, 0x10000)));
  EXPECT_NE(low.find("PT_LOAD segment 0 [0x10000, 0x10015) is not between 1 MiB and the 4 GiB"),
            std::string::npos) << low;
  // RAM too small for the kernel names the segment and the RAM size.
  GuestMemory small(17 * kMiB);
  const std::string e = ErrorOf([&] { (void)LoadLinuxKernel(small, SyntheticBzImage(), {}, ""); });
  EXPECT_EQ(e, "decompressed vmlinux: PT_LOAD segment 1: [0x1200000, 0x1210000) lies outside "
               "guest RAM (0x1100000 bytes)");
  EXPECT_TRUE(AllZero(mem));
  EXPECT_TRUE(AllZero(small));
}

}  // namespace
}  // namespace vmrr

// ---- through the format dispatch and the Machine -----------------------------------------

namespace vmrr {
namespace {

TEST(LinuxBoot, TheLoaderDispatchRecognisesABzImageAndPassesItsArguments) {
  const Bytes image = SyntheticBzImage();
  EXPECT_EQ(DetectKernelFormat(image), KernelFormat::kLinuxBzImage);
  GuestMemory mem(64 * kMiB);
  const Bytes initrd = Pattern(5000, 7);
  const std::string cmdline = "console=ttyS0 root=/dev/vda";
  const BootState boot = LoadKernelImage(mem, image, {initrd, cmdline, 0xe0000});
  EXPECT_EQ(boot.format, KernelFormat::kLinuxBzImage);
  CheckLoad(mem, boot, image, initrd, cmdline, 16 * kMiB);
  EXPECT_EQ(Read64(mem, kBootParamsAddr + zeropage::kAcpiRsdpAddr), 0xe0000u);
  GuestMemory mem2(64 * kMiB);
  (void)LoadLinuxKernel(mem2, image, {}, "");
  EXPECT_EQ(Read64(mem2, kBootParamsAddr + zeropage::kAcpiRsdpAddr), 0u);
}

TEST(LinuxBoot, ArgumentsAFormatCannotTakeAreRefused) {
  GuestMemory mem(64 * kMiB);
  const Bytes elf = test::CodeGuest({0xf4});
  const Bytes initrd = {1, 2, 3};
  EXPECT_NE(ErrorOf([&] { (void)LoadKernelImage(mem, elf, {initrd, "", 0}); }).find("initrd is for a Linux"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { (void)LoadKernelImage(mem, elf, {{}, "x", 0}); }).find("no command line"),
            std::string::npos);
  std::vector<uint8_t> payload = test::MultibootHeader(0x3);
  payload.resize(0x100, 0xf4);
  const Bytes mb = test::MakeElf32(0x10000c, 0x100000, payload, 0x1000);
  EXPECT_NE(ErrorOf([&] { (void)LoadKernelImage(mem, mb, {initrd, "", 0}); }).find("initrd is for a Linux"),
            std::string::npos);
  EXPECT_NE(ErrorOf([&] { (void)LoadKernelImage(mem, mb, {{}, std::string(0x1000, 'a'), 0}); })
                .find("longer than the 4095"),
            std::string::npos);
}

TEST(LinuxBoot, AMultibootGuestGetsItsCommandLine) {
  std::vector<uint8_t> payload = test::MultibootHeader(0x3);
  payload.resize(0x100, 0xf4);
  const Bytes mb = test::MakeElf32(0x10000c, 0x100000, payload, 0x1000);
  GuestMemory mem(64 * kMiB);
  const BootState boot = LoadKernelImage(mem, mb, {{}, "quiet mode=7", 0});
  ASSERT_EQ(boot.format, KernelFormat::kMultiboot);
  // The image leaves 0x8000 free: the loader's block is there, info at 0x9000, command line
  // at 0xa000.
  EXPECT_EQ(boot.cpu.gpr[kRbx], 0x9000u);
  const uint32_t flags = Read32(mem, 0x9000);
  EXPECT_TRUE(flags & (1u << 2));  // MULTIBOOT_INFO_CMDLINE
  EXPECT_EQ(Read32(mem, 0x9000 + 16), 0xa000u);
  EXPECT_EQ(ReadBytes(mem, 0xa000, 13), Bytes({'q', 'u', 'i', 'e', 't', ' ', 'm', 'o', 'd', 'e', '=', '7', 0}));
  GuestMemory mem2(64 * kMiB);
  (void)LoadKernelImage(mem2, mb, {});
  EXPECT_FALSE(Read32(mem2, 0x9000) & (1u << 2));
}

// A Linux kernel loaded into a Machine finds the ACPI tables of that machine's devices where
// boot_params says, with one LNRO0005 node per virtio transport present.
TEST(LinuxBoot, TheMachineGivesALinuxKernelItsAcpiTables) {
  const Bytes image = SyntheticBzImage();
  struct Case {
    bool rng, net;
    size_t virtio;
  } cases[] = {{true, false, 1}, {true, true, 2}, {false, false, 0}};
  for (const Case& c : cases) {
    MachineConfig config;
    config.memory_bytes = 64 * kMiB;
    config.virtio_rng = c.rng;
    config.net = c.net;
    test::FakeEnvironment env;
    Machine m(config, env);
    m.LoadKernelBytes(image, "bz", {}, "console=ttyS0");
    const GuestMemory& mem = m.memory();
    const uint64_t rsdp = Read64(mem, kBootParamsAddr + zeropage::kAcpiRsdpAddr);
    ASSERT_EQ(rsdp, platform::kAcpiTablesBase);
    EXPECT_EQ(ReadBytes(mem, rsdp, 8), Bytes({'R', 'S', 'D', ' ', 'P', 'T', 'R', ' '}));
    const uint64_t xsdt = Read64(mem, rsdp + 24);
    EXPECT_EQ(ReadBytes(mem, xsdt, 4), Bytes({'X', 'S', 'D', 'T'}));
    const uint64_t fadt = Read64(mem, xsdt + 36);
    EXPECT_EQ(ReadBytes(mem, fadt, 4), Bytes({'F', 'A', 'C', 'P'}));
    const uint64_t dsdt = Read64(mem, fadt + 140);
    const Bytes d = ReadBytes(mem, dsdt, Read32(mem, dsdt + 4));
    const std::string text(d.begin(), d.end());
    size_t nodes = 0;
    for (size_t at = text.find("LNRO0005"); at != std::string::npos; at = text.find("LNRO0005", at + 1)) ++nodes;
    EXPECT_EQ(nodes, c.virtio);
    // The sleep control register the FADT names is the machine's power-off port.
    EXPECT_EQ(Read64(mem, fadt + 248), platform::kAcpiPmBase + AcpiPm::kSleepControl);
  }
  // An ELF64 test guest gets none: its low memory is untouched.
  test::FakeEnvironment env;
  Machine m(MachineConfig{}, env);
  m.LoadKernelBytes(test::CodeGuest({0xf4}), "elf");
  EXPECT_EQ(ReadBytes(m.memory(), platform::kAcpiTablesBase, 8), Bytes(8, 0));
}

}  // namespace
}  // namespace vmrr
