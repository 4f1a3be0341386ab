// Kernel loaders: valid ELF64 and Multiboot images load as the boot contract says; every
// malformed image is a LoaderError and leaves RAM untouched.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>

#include "hv-hooks/machine/linux_boot.h"
#include "hv-hooks/machine/loader.h"
#include "tests/unit/machine/test_images.h"

namespace vmrr {
namespace {

using test::Put16;
using test::Put32;
using test::Put64;

constexpr uint64_t kRam = 16ull << 20;

uint64_t Read64(const GuestMemory& mem, uint64_t gpa) {
  uint64_t v = 0;
  EXPECT_TRUE(mem.Read(gpa, &v, 8));
  return v;
}
uint32_t Read32(const GuestMemory& mem, uint64_t gpa) {
  uint32_t v = 0;
  EXPECT_TRUE(mem.Read(gpa, &v, 4));
  return v;
}

TEST(Loader, Elf64LoadsSegmentsZeroesBssAndBuildsLongModeState) {
  GuestMemory mem(kRam);
  std::memset(mem.data(), 0xaa, mem.size());  // so that zero-filling is visible
  std::vector<uint8_t> code = {0x90, 0x90, 0xf4};
  std::vector<uint8_t> data = {1, 2, 3, 4};
  const auto image = test::MakeElf64(0x100001, {{0x100000, code}, {0x300000, data, 0x2000}});
  EXPECT_EQ(DetectKernelFormat(image), KernelFormat::kElf64);
  const BootState boot = LoadKernelImage(mem, image);
  EXPECT_EQ(boot.format, KernelFormat::kElf64);
  EXPECT_EQ(boot.entry, 0x100001u);
  ASSERT_EQ(boot.segments.size(), 2u);
  EXPECT_EQ(mem.data()[0x100000], 0x90);
  EXPECT_EQ(mem.data()[0x100002], 0xf4);
  EXPECT_EQ(mem.data()[0x300003], 4);
  EXPECT_EQ(mem.data()[0x300004], 0);      // bss
  EXPECT_EQ(mem.data()[0x301fff], 0);      // end of bss
  EXPECT_EQ(mem.data()[0x302000], 0xaa);   // past it: untouched

  const CpuState& s = boot.cpu;
  EXPECT_EQ(s.rip, 0x100001u);
  EXPECT_EQ(s.gpr[kRdi], kRam);
  EXPECT_EQ(s.gpr[kRsp], 0x80000u);
  EXPECT_EQ(s.rflags, 2u);
  EXPECT_EQ(s.cr0, 0x80010033u);
  EXPECT_EQ(s.cr3, 0x9000u);
  EXPECT_EQ(s.cr4, 0x20u);
  EXPECT_EQ(s.efer, 0xd01u);
  EXPECT_EQ(s.seg[kCs].selector, 0x08);
  EXPECT_TRUE(s.seg[kCs].attr & kSegAttrL);
  EXPECT_EQ(s.seg[kSs].selector, 0x10);
  EXPECT_EQ(s.gdtr.base, 0x8000u);
  EXPECT_EQ(s.idtr.limit, 0);
  // GDT descriptors as in the boot contract.
  EXPECT_EQ(Read64(mem, 0x8008), 0x00af9b000000ffffull);
  EXPECT_EQ(Read64(mem, 0x8010), 0x00cf93000000ffffull);
  // Identity map of 4 GiB with 2 MiB pages.
  EXPECT_EQ(Read64(mem, 0x9000), 0xa003u);
  EXPECT_EQ(Read64(mem, 0xa000 + 3 * 8), 0xe003u);
  EXPECT_EQ(Read64(mem, 0xb000), 0x83u);
  EXPECT_EQ(Read64(mem, 0xb008), 0x200083u);
  EXPECT_EQ(Read64(mem, 0xe000 + 8 * 511), 0xffe00083ull);  // 0xffe00000: last 2 MiB
  EXPECT_EQ(Read64(mem, 0xe000 + 8 * 502), 0xfec00083ull);  // IOAPIC window
}

// An ELF64 "vmlinux" with a PVH note (Xen's PHYS32_ENTRY, type 18): segment 1 is turned into
// the PT_NOTE that holds it (the Xen ABI's layout: namesz 4, descsz 4 or 8, type, "Xen\0",
// the entry).
std::vector<uint8_t> PvhImage(uint32_t note_type = 18, uint32_t descsz = 4, uint64_t entry = 0x100010) {
  std::vector<uint8_t> note;
  Put32(note, 0, 4);
  Put32(note, 4, descsz);
  Put32(note, 8, note_type);
  note.insert(note.end(), {'X', 'e', 'n', 0});
  for (uint32_t i = 0; i < descsz && i < 8; ++i) note.push_back(static_cast<uint8_t>(entry >> (8 * i)));
  std::vector<uint8_t> e = test::MakeElf64(0x100000, {{0x100000, std::vector<uint8_t>(64, 0x90)},
                                                      {0x300000, note}});
  Put32(e, 64 + 56, 4);  // program header 1: PT_NOTE
  return e;
}

TEST(Loader, PvhNoteFoundAndCheckedAgainstTheImage) {
  EXPECT_EQ(FindPvhEntry(PvhImage()), std::optional<uint64_t>(0x100010));
  EXPECT_EQ(FindPvhEntry(PvhImage(18, 8, 0x100020)), std::optional<uint64_t>(0x100020));
  EXPECT_EQ(DetectKernelFormat(PvhImage()), KernelFormat::kLinuxPvh);
  EXPECT_EQ(FindPvhEntry(PvhImage(17)), std::nullopt);  // another Xen note
  EXPECT_EQ(DetectKernelFormat(PvhImage(17)), KernelFormat::kElf64);
  // A note whose descriptor runs past the segment, and one past the file: no entry, no read
  // outside the image.
  std::vector<uint8_t> e = PvhImage(18, 0x1000);
  EXPECT_EQ(FindPvhEntry(e), std::nullopt);
  e = PvhImage();
  Put64(e, 64 + 56 + 32, 1ull << 40);  // p_filesz
  EXPECT_EQ(FindPvhEntry(e), std::nullopt);
}

// The PVH boot ABI (hvm_start_info v1) as a Linux kernel reads it: 32-bit flat protected mode
// at the note's entry, EBX = the start info, the initrd as module 0, the command line, the
// RSDP and the e820 map.
TEST(Loader, PvhEntersProtectedModeWithStartInfo) {
  GuestMemory mem(kRam);
  const std::vector<uint8_t> initrd = {1, 2, 3, 4, 5, 6, 7, 8, 9};
  const BootState boot = LoadKernelImage(mem, PvhImage(), KernelArgs{initrd, "console=ttyS0", 0xe0000});
  EXPECT_EQ(boot.format, KernelFormat::kLinuxPvh);
  EXPECT_EQ(boot.cpu.rip, 0x100010u);
  EXPECT_EQ(boot.cpu.cr0, 0x11u);  // PE | ET, paging off
  EXPECT_EQ(boot.cpu.cr4, 0u);
  EXPECT_EQ(boot.cpu.efer, 0u);
  EXPECT_EQ(boot.cpu.rflags & 0x200, 0u);
  EXPECT_EQ(boot.cpu.seg[kCs].limit, 0xffffffffu);
  EXPECT_NE(boot.cpu.seg[kCs].attr & kSegAttrDb, 0);  // 32-bit code
  ASSERT_EQ(boot.cpu.gpr[kRbx], kBootParamsAddr);
  auto u32 = [&](uint64_t a) { uint32_t v = 0; mem.Read(a, &v, 4); return v; };
  auto u64 = [&](uint64_t a) { uint64_t v = 0; mem.Read(a, &v, 8); return v; };
  const uint64_t si = kBootParamsAddr;
  EXPECT_EQ(u32(si), 0x336ec578u);
  EXPECT_EQ(u32(si + 4), 1u);
  ASSERT_EQ(u32(si + 12), 1u);  // one module: the initrd
  const uint64_t mod = u64(si + 16);
  const uint64_t rd = u64(mod), rd_size = u64(mod + 8);
  ASSERT_EQ(rd_size, initrd.size());
  std::vector<uint8_t> got(initrd.size());
  mem.Read(rd, got.data(), got.size());
  EXPECT_EQ(got, initrd);
  EXPECT_GE(rd, 0x100000u + 64);
  char cmd[16] = {};
  mem.Read(u64(si + 24), cmd, sizeof cmd - 1);
  EXPECT_STREQ(cmd, "console=ttyS0");
  EXPECT_EQ(u64(si + 32), 0xe0000u);
  const std::vector<MemoryRegion> map = MemoryMap(kRam);
  ASSERT_EQ(u32(si + 48), map.size());
  const uint64_t mm = u64(si + 40);
  for (size_t i = 0; i < map.size(); ++i) {
    EXPECT_EQ(u64(mm + 24 * i), map[i].base);
    EXPECT_EQ(u64(mm + 24 * i + 8), map[i].length);
    EXPECT_EQ(u32(mm + 24 * i + 16), map[i].type);
  }
  uint8_t code[4];
  mem.Read(0x100000, code, 4);
  EXPECT_EQ(code[0], 0x90);
  // An entry outside every loaded segment is refused.
  GuestMemory other(kRam);
  try {
    LoadKernelImage(other, PvhImage(18, 4, 0x500000));
    ADD_FAILURE() << "an entry outside the kernel was accepted";
  } catch (const LoaderError& e) {
    EXPECT_NE(std::string(e.what()).find("PVH entry"), std::string::npos) << e.what();
  }
}

TEST(Loader, ApplyBootStateKeepsOtherRegisters) {
  GuestMemory mem(kRam);
  const BootState boot = LoadElf64(mem, test::CodeGuest({0xf4}));
  CpuState s;
  s.apic_base = 0xfee00900;
  s.pat = 0x0007040600070406ull;
  s.halted = true;
  ApplyBootState(boot, &s);
  EXPECT_EQ(s.apic_base, 0xfee00900u);
  EXPECT_EQ(s.pat, 0x0007040600070406ull);
  EXPECT_FALSE(s.halted);
  EXPECT_EQ(s.rip, 0x100000u);
  EXPECT_EQ(s.cr3, 0x9000u);
}

TEST(Loader, MemoryMapHasLowRamHoleRamAndMmioWindows) {
  const auto map = MemoryMap(64ull << 20);
  ASSERT_EQ(map.size(), 6u);
  EXPECT_EQ(map[0], (MemoryRegion{0, 0xa0000, MemoryRegion::kRam}));
  EXPECT_EQ(map[1], (MemoryRegion{0xa0000, 0x60000, MemoryRegion::kReserved}));
  EXPECT_EQ(map[2], (MemoryRegion{0x100000, (64ull << 20) - 0x100000, MemoryRegion::kRam}));
  EXPECT_EQ(map[3].base, 0xfeb00000u);
  EXPECT_EQ(map[4].base, 0xfec00000u);
  EXPECT_EQ(map[5].base, 0xfee00000u);
  for (size_t i = 1; i < map.size(); ++i) EXPECT_LE(map[i - 1].base + map[i - 1].length, map[i].base);
}

TEST(Loader, MultibootElf32EntersProtectedModeWithInfo) {
  GuestMemory mem(kRam);
  std::vector<uint8_t> payload = test::MultibootHeader(0x3);
  payload.insert(payload.end(), {0xfa, 0xf4});  // cli; hlt
  const auto image = test::MakeElf32(0x10000c, 0x100000, payload, 0x1000);
  EXPECT_EQ(DetectKernelFormat(image), KernelFormat::kMultiboot);
  const BootState boot = LoadKernelImage(mem, image);
  EXPECT_EQ(boot.format, KernelFormat::kMultiboot);
  const CpuState& s = boot.cpu;
  EXPECT_EQ(s.rip, 0x10000cu);
  EXPECT_EQ(s.gpr[kRax], 0x2BADB002u);
  EXPECT_EQ(s.gpr[kRbx], 0x9000u);
  EXPECT_EQ(s.cr0 & 0x80000001u, 1u);  // PE, no PG
  EXPECT_EQ(s.efer, 0u);
  EXPECT_FALSE(s.rflags & kFlagIf);
  EXPECT_TRUE(s.seg[kCs].attr & kSegAttrDb);
  EXPECT_FALSE(s.seg[kCs].attr & kSegAttrL);
  EXPECT_EQ(s.seg[kCs].limit, 0xffffffffu);
  EXPECT_EQ(s.seg[kDs].limit, 0xffffffffu);
  EXPECT_EQ(mem.data()[0x10000c], 0xfa);

  const uint64_t info = 0x9000;
  const uint32_t flags = Read32(mem, info);
  EXPECT_TRUE(flags & 1);
  EXPECT_TRUE(flags & (1u << 6));
  EXPECT_EQ(Read32(mem, info + 4), 640u);
  EXPECT_EQ(Read32(mem, info + 8), (kRam - 0x100000) / 1024);
  const uint32_t mmap_len = Read32(mem, info + 44);
  const uint32_t mmap_addr = Read32(mem, info + 48);
  const auto map = MemoryMap(kRam);
  ASSERT_EQ(mmap_len, 24 * map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    const uint64_t e = mmap_addr + 24 * i;
    EXPECT_EQ(Read32(mem, e), 20u);
    EXPECT_EQ(Read64(mem, e + 4), map[i].base);
    EXPECT_EQ(Read64(mem, e + 12), map[i].length);
    EXPECT_EQ(Read32(mem, e + 20), map[i].type);
  }
}

TEST(Loader, MultibootAoutKludgeLoadsRawBinary) {
  GuestMemory mem(kRam);
  // Raw file loaded at 0x200000; header at file offset 16 (header_addr 0x200010); bss to
  // 0x203000; entry after the header.
  std::vector<uint8_t> image(16, 0x90);
  const auto hdr = test::MultibootHeader(0x10003, 0x200010, 0x200000, 0, 0x203000, 0x200030);
  image.insert(image.end(), hdr.begin(), hdr.end());
  image.insert(image.end(), {0xf4, 0xf4});
  std::memset(mem.data() + 0x200000, 0xaa, 0x4000);
  const BootState boot = LoadMultiboot(mem, image);
  EXPECT_EQ(boot.cpu.rip, 0x200030u);
  EXPECT_EQ(mem.data()[0x200030], 0xf4);
  EXPECT_EQ(mem.data()[0x200032], 0);      // bss
  EXPECT_EQ(mem.data()[0x202fff], 0);
  EXPECT_EQ(mem.data()[0x203000], 0xaa);
}

// The GDT the entry state points at and the multiboot_info EBX points at, in the block the
// loader reports, with the command line where multiboot_info says.
void ExpectBootBlockAt(const GuestMemory& mem, const BootState& boot, uint64_t block) {
  EXPECT_EQ(boot.boot_block, block);
  EXPECT_EQ(boot.cpu.gdtr.base, block);
  EXPECT_EQ(boot.cpu.gdtr.limit, 31u);
  EXPECT_EQ(Read64(mem, block + 0x18), 0x00cf9b000000ffffull) << "flat 32-bit code at 0x18";
  EXPECT_EQ(Read64(mem, block + 0x10), 0x00cf93000000ffffull) << "flat data at 0x10";
  EXPECT_EQ(boot.cpu.seg[kCs].selector, 0x18);
  EXPECT_EQ(boot.cpu.gpr[kRbx], block + 0x1000);
  const uint64_t info = block + 0x1000;
  EXPECT_EQ(Read32(mem, info) & 0x245u, 0x245u) << "mem, cmdline, mmap, loader name";
  EXPECT_EQ(Read32(mem, info + 16), block + 0x2000);
  EXPECT_EQ(std::string(reinterpret_cast<const char*>(mem.data() + block + 0x2000)), "low=1");
  const uint32_t mmap = Read32(mem, info + 48);
  EXPECT_TRUE(mmap >= block && mmap < block + 0x3000);
  EXPECT_EQ(Read64(mem, mmap + 4), 0u) << "first entry: RAM from 0";
}

// QEMU's -kernel takes a Multiboot image at 0x8000 (its segments anywhere in RAM): the
// loader's block moves out of the way, after the image (page-aligned), as QEMU puts its
// Multiboot information after the kernel. The image's bytes are all intact.
TEST(Loader, MultibootImageAt0x8000MovesTheBootBlockAfterIt) {
  GuestMemory mem(kRam);
  std::vector<uint8_t> image(16, 0x90);
  const auto hdr = test::MultibootHeader(0x10003, 0x8010, 0x8000, 0, 0x8800, 0x8030);
  image.insert(image.end(), hdr.begin(), hdr.end());
  image.resize(0x7f0, 0xf4);
  const BootState boot = LoadKernelImage(mem, image, {{}, "low=1", 0});
  EXPECT_EQ(boot.cpu.rip, 0x8030u);
  ExpectBootBlockAt(mem, boot, 0x9000);
  EXPECT_TRUE(std::equal(image.begin(), image.end(), mem.data() + 0x8000));
  EXPECT_TRUE(std::all_of(mem.data() + 0x87f0, mem.data() + 0x8800, [](uint8_t b) { return b == 0; }));
  EXPECT_TRUE(std::all_of(mem.data() + 0x8800, mem.data() + 0x9000, [](uint8_t b) { return b == 0; }))
      << "nothing of the loader's between the image and its block";
}

// An ELF32 segment from 0x8000 to the end of low RAM (640 KiB): neither 0x8000 nor the place
// after it (the VGA hole) is RAM the block fits in, so it goes at 4 KiB.
TEST(Loader, MultibootSegmentFillingLowRamPutsTheBlockAt4KiB) {
  GuestMemory mem(kRam);
  std::vector<uint8_t> payload = test::MultibootHeader(0x3);
  payload.insert(payload.end(), {0xfa, 0xf4});
  const auto image = test::MakeElf32(0x800c, 0x8000, payload, 0x98000);
  const BootState boot = LoadKernelImage(mem, image, {{}, "low=1", 0});
  EXPECT_EQ(boot.cpu.rip, 0x800cu);
  ExpectBootBlockAt(mem, boot, 0x1000);
  EXPECT_TRUE(std::equal(payload.begin(), payload.end(), mem.data() + 0x8000));
}

TEST(Loader, MultibootImageLeavingTheUsualPlaceFreeKeepsIt) {
  GuestMemory mem(kRam);
  std::vector<uint8_t> payload = test::MultibootHeader(0x3);
  payload.insert(payload.end(), {0xfa, 0xf4});
  const auto image = test::MakeElf32(0xb00c, 0xb000, payload, 0x1000);  // 0xb000..0xc000
  const BootState boot = LoadKernelImage(mem, image, {{}, "low=1", 0});
  // [0x8000, 0xb000) is free: the block stays where it always was.
  ExpectBootBlockAt(mem, boot, 0x8000);
}

// ---- malformed images ----------------------------------------------------------------------

void ExpectRejected(const std::vector<uint8_t>& image, const std::string& what_contains,
                    uint64_t ram = kRam) {
  GuestMemory mem(ram);
  try {
    LoadKernelImage(mem, image);
    ADD_FAILURE() << "accepted: expected error containing '" << what_contains << "'";
  } catch (const LoaderError& e) {
    EXPECT_NE(std::string(e.what()).find(what_contains), std::string::npos)
        << "message: " << e.what();
  }
  // Nothing was written.
  EXPECT_TRUE(std::all_of(mem.data(), mem.data() + mem.size(), [](uint8_t b) { return b == 0; }));
}

std::vector<uint8_t> GoodElf() { return test::CodeGuest({0x90, 0xf4}); }

TEST(LoaderRejects, UnknownFormats) {
  ExpectRejected({}, "empty");
  ExpectRejected({1, 2, 3}, "unknown kernel format");
  std::vector<uint8_t> mb_bad_sum = test::MultibootHeader(0x3);
  mb_bad_sum[8] ^= 1;
  ExpectRejected(mb_bad_sum, "unknown kernel format");
  auto e = GoodElf();
  e[4] = 1;  // ELFCLASS32 without multiboot header
  ExpectRejected(e, "neither");
  e = GoodElf();
  e[18] = 40;  // ARM
  ExpectRejected(e, "neither");
}

TEST(LoaderRejects, MalformedElf64Headers) {
  auto e = GoodElf();
  e[5] = 2;
  ExpectRejected(e, "little-endian");
  e = GoodElf();
  Put16(e, 16, 3);  // ET_DYN
  ExpectRejected(e, "ET_EXEC");
  e = GoodElf();
  Put16(e, 54, 40);
  ExpectRejected(e, "entry size");
  e = GoodElf();
  Put16(e, 56, 0);
  ExpectRejected(e, "no program headers");
  e = GoodElf();
  Put16(e, 56, 60000);
  ExpectRejected(e, "program headers");
  e = GoodElf();
  Put64(e, 32, ~uint64_t{0} - 10);  // phoff overflow
  ExpectRejected(e, "truncated");
  e = GoodElf();
  e.resize(100);  // program header cut
  ExpectRejected(e, "truncated");
  e = GoodElf();
  e.resize(40);  // ELF header cut
  ExpectRejected(e, "truncated");
}

TEST(LoaderRejects, MalformedSegments) {
  const size_t ph = 64;
  auto e = GoodElf();
  Put32(e, ph, 4);  // PT_NOTE only
  ExpectRejected(e, "no PT_LOAD");
  e = GoodElf();
  Put64(e, ph + 32, 0x10);  // filesz > memsz (2)
  ExpectRejected(e, "exceeds memory size");
  e = GoodElf();
  Put64(e, ph + 8, 0x100000);  // offset past file
  ExpectRejected(e, "past the end");
  e = GoodElf();
  Put64(e, ph + 8, ~uint64_t{0} - 1);  // offset + filesz overflow
  ExpectRejected(e, "past the end");
  e = GoodElf();
  Put64(e, ph + 24, kRam - 1);  // runs past RAM
  Put64(e, ph + 16, kRam - 1);
  ExpectRejected(e, "outside guest RAM");
  e = GoodElf();
  Put64(e, ph + 24, ~uint64_t{0} - 1);  // paddr + memsz overflow
  ExpectRejected(e, "overflows");
  e = GoodElf();
  Put64(e, ph + 40, ~uint64_t{0});  // huge memsz
  ExpectRejected(e, "overflows");
  e = GoodElf();
  Put64(e, ph + 24, 0x9ff0);  // over the page tables
  Put64(e, ph + 16, 0x9ff0);
  Put64(e, 24, 0x9ff0);
  ExpectRejected(e, "loader's GDT/page-table area");
  e = GoodElf();
  Put64(e, 24, 0x500000);  // entry outside
  ExpectRejected(e, "not inside any PT_LOAD");
  e = GoodElf();
  Put64(e, ph + 16, 0xffffffff80100000ull);  // higher-half vaddr, entry in it
  Put64(e, 24, 0xffffffff80100000ull);
  ExpectRejected(e, "identity");
  ExpectRejected(test::MakeElf64(0x100000, {{0x100000, {1, 2, 3, 4}}, {0x100002, {5, 6}}}), "overlap");
  ExpectRejected(GoodElf(), "smaller than the 1 MiB", 512 * 1024);
}

TEST(LoaderRejects, MalformedMultiboot) {
  // A required flag bit beyond 0-2 (here 5) is ignored, as QEMU's -kernel loader does.
  {
    GuestMemory mem(kRam);
    EXPECT_NO_THROW(LoadKernelImage(mem, test::MakeElf32(0x100000, 0x100000, test::MultibootHeader(0x3 | (1u << 5)))));
  }
  // Header found but not an ELF and no kludge flag.
  ExpectRejected(test::MultibootHeader(0x3), "must be an ELF32");
  // a.out kludge: header truncated.
  auto k = test::MultibootHeader(0x10003, 0x200000, 0x200000, 0, 0, 0x200000);
  k.resize(20);
  ExpectRejected(k, "truncated");
  // load_addr above header_addr.
  ExpectRejected(test::MultibootHeader(0x10003, 0x200000, 0x200100, 0, 0, 0x200100), "above header_addr");
  // header_addr - load_addr reaching before the file.
  ExpectRejected(test::MultibootHeader(0x10003, 0x200100, 0x200000, 0, 0, 0x200100), "before the start");
  // load_end below load_addr.
  ExpectRejected(test::MultibootHeader(0x10003, 0x200000, 0x200000, 0x100000, 0, 0x200000), "below load_addr");
  // load_end past the file.
  ExpectRejected(test::MultibootHeader(0x10003, 0x200000, 0x200000, 0x300000, 0, 0x200000), "past the end");
  // bss_end below the loaded image.
  ExpectRejected(test::MultibootHeader(0x10003, 0x200000, 0x200000, 0x200020, 0x200010, 0x200000), "bss_end_addr");
  // entry outside.
  ExpectRejected(test::MultibootHeader(0x10003, 0x200000, 0x200000, 0, 0, 0x400000), "entry_addr");
  // load outside RAM.
  ExpectRejected(test::MultibootHeader(0x10003, 0xfff00000, 0xfff00000, 0, 0xfff10000, 0xfff00000), "outside guest RAM");
  // Covering every place the loader's block could go: [4 KiB, end of RAM).
  ExpectRejected(test::MultibootHeader(0x10003, 0x1000, 0x1000, 0, kRam, 0x1000),
                 "no room for the loader's 0x3000-byte Multiboot information block");
  // ELF32 with wrong machine.
  auto e32 = test::MakeElf32(0x100000, 0x100000, test::MultibootHeader(0x3));
  Put16(e32, 18, 62);
  ExpectRejected(e32, "not i386");
}

}  // namespace
}  // namespace vmrr
