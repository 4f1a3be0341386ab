// The Linux 64-bit boot protocol loader: see linux_boot.h.
//
// Verified on Debian 12's vmlinuz-6.1.0-57-amd64 (protocol 2.15, XZ payload, init_size
// 0x3f98000, cmdline_size 2047, initrd_addr_max 0x7fffffff): the decompressed vmlinux (65.9 MB)
// has four PT_LOAD segments with p_paddr 0x1000000 (16 MiB, p_vaddr 0xffffffff81000000),
// 0x2a00000, 0x3044000 (.data..percpu, p_vaddr 0) and 0x3079000, ending at 0x4a00000; e_entry
// is 0x1000000 (phys_startup_64), and its first bytes are startup_64's code (48 8d 25 ...:
// lea rsp, the init stack; lea rdi, _text; mov ecx, 0xc0000101 (MSR_GS_BASE)).
//
// One deviation from boot.rst, shared with Firecracker: the protocol names selector 0x10 for
// __BOOT_CS and 0x18 for __BOOT_DS; the boot GDT here (loader.h) has its 64-bit code at 0x08
// and flat data at 0x10. startup_64 loads its own GDT (startup_64_setup_env) and reloads every
// segment register before it relies on a selector.
#include "hv-hooks/machine/linux_boot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cstring>
#include <vector>

#include "hv-hooks/machine/bzimage.h"
#include "logformat/byte_order.h"

namespace vmrr {

namespace {

constexpr uint64_t kPage = 0x1000;

[[noreturn]] void Fail(const std::string& what) { throw LoaderError(what); }

struct InitrdPlacement {
  uint64_t gpa = 0;
  uint64_t size = 0;
};

// The highest page-aligned address at which `size` bytes lie inside one RAM range of `map`,
// above `low` and below `limit`, outside every reserved range.
InitrdPlacement PlaceInitrd(const std::vector<MemoryRegion>& map, uint64_t size, uint64_t low,
                            uint64_t limit, uint64_t ram) {
  if (size == 0) return {};
  auto overlaps_reserved = [&](uint64_t a, uint64_t b, uint64_t* reserved_base) {
    for (const MemoryRegion& r : map) {
      if (r.type != MemoryRegion::kRam && a < r.base + r.length && r.base < b) {
        *reserved_base = r.base;
        return true;
      }
    }
    return false;
  };
  for (auto it = map.rbegin(); it != map.rend(); ++it) {
    if (it->type != MemoryRegion::kRam) continue;
    const uint64_t lo = std::max(it->base, low);
    uint64_t hi = std::min(it->base + it->length, limit);
    while (hi > lo && hi - lo >= size) {
      const uint64_t at = (hi - size) & ~(kPage - 1);
      if (at < lo) break;
      uint64_t reserved = 0;
      if (!overlaps_reserved(at, at + size, &reserved)) return {at, size};
      hi = reserved;
    }
  }
  Fail(fmt::format("initrd of {:#x} bytes does not fit in guest RAM ({:#x} bytes) between the "
                   "kernel's end {:#x} and {:#x} (min(initrd_addr_max + 1, RAM top))",
                   size, ram, low, limit));
}

void Put(std::vector<uint8_t>& b, uint64_t off, uint64_t v, unsigned bytes) {
  StoreLe(b.data() + off, v, bytes);
}

}  // namespace

namespace {

void CheckCmdline(const std::string& cmdline, uint64_t kernel_max) {
  if (cmdline.find('\0') != std::string::npos) Fail("the kernel command line contains a NUL byte");
  if (cmdline.size() > kernel_max) {
    Fail(fmt::format("the kernel command line is {} bytes, longer than the kernel's cmdline_size "
                     "{}", cmdline.size(), kernel_max));
  }
  if (cmdline.size() + 1 > kCmdlineAreaEnd - kCmdlineAddr) {
    Fail(fmt::format("the kernel command line is {} bytes, longer than the {} bytes at {:#x} the "
                     "loader has for it", cmdline.size(), kCmdlineAreaEnd - kCmdlineAddr - 1,
                     kCmdlineAddr));
  }
}

// Where a vmlinux and its initrd go: its PT_LOAD segments at their physical addresses (each
// between 1 MiB and 4 GiB), the initrd as high as possible below `initrd_limit`, above the
// kernel's end (its last segment's end, or its lowest segment plus init_size if larger).
struct LinuxPlan {
  Elf64Plan elf;
  std::vector<MemoryRegion> map;
  InitrdPlacement rd;
};

LinuxPlan PlanLinux(GuestMemory& mem, const std::vector<uint8_t>& vmlinux, std::span<const uint8_t> initrd,
                    uint64_t init_size, uint64_t initrd_limit, const char* what) {
  LinuxPlan lp{[&] {
    try {
      return PlanElf64(mem, vmlinux, ElfEntryAddress::kPhysical);
    } catch (const LoaderError& e) {
      throw LoaderError(std::string(what) + ": " + e.what());
    }
  }(), {}, {}};
  uint64_t kernel_lo = ~uint64_t{0}, kernel_hi = 0;
  for (size_t i = 0; i < lp.elf.segments.size(); ++i) {
    const Elf64Plan::Segment& s = lp.elf.segments[i];
    if (s.mem_bytes == 0) continue;
    if (s.gpa < kLinuxKernelMinAddr || s.gpa + s.mem_bytes > kIdentityMapBytes) {
      Fail(fmt::format("{}: PT_LOAD segment {} [{:#x}, {:#x}) is not between 1 MiB and the 4 GiB "
                       "the boot identity map covers", what, i, s.gpa, s.gpa + s.mem_bytes));
    }
    kernel_lo = std::min(kernel_lo, s.gpa);
    kernel_hi = std::max(kernel_hi, s.gpa + s.mem_bytes);
  }
  if (kernel_hi == 0) Fail(fmt::format("{}: every PT_LOAD segment is empty", what));
  const uint64_t kernel_end = std::max(kernel_hi, kernel_lo + init_size);
  lp.map = MemoryMap(mem.size());
  lp.rd = PlaceInitrd(lp.map, initrd.size(), kernel_end, std::min(initrd_limit, mem.size()), mem.size());
  return lp;
}

}  // namespace

BootState LoadLinuxKernel(GuestMemory& mem, std::span<const uint8_t> bzimage,
                          std::span<const uint8_t> initrd, const std::string& cmdline,
                          uint64_t acpi_rsdp) {
  if (!LooksLikeBzImage(bzimage)) {
    Fail("not a Linux bzImage (no boot_flag 0xAA55 at 0x1fe and \"HdrS\" at 0x202)");
  }
  const BzImage bz = ParseBzImage(bzimage);
  if (!(bz.xloadflags & kXlfKernel64)) {
    Fail(fmt::format("the kernel has no 64-bit entry point (xloadflags {:#x} lacks XLF_KERNEL_64)",
                     bz.xloadflags));
  }
  CheckCmdline(cmdline, bz.cmdline_size);
  const std::vector<uint8_t> vmlinux = DecompressBzImageKernel(bz);
  const LinuxPlan lp = PlanLinux(mem, vmlinux, initrd, bz.init_size, uint64_t{bz.initrd_addr_max} + 1,
                                 "decompressed vmlinux");
  const std::vector<MemoryRegion>& map = lp.map;
  const InitrdPlacement& rd = lp.rd;
  if (map.size() > zeropage::kE820Max) {
    Fail(fmt::format("the memory map has {} entries, more than boot_params' {}", map.size(),
                     zeropage::kE820Max));
  }

  // boot_params, built on the host and written in one piece.
  std::vector<uint8_t> zp(kBootParamsSize, 0);
  std::copy(bz.setup_header.begin(), bz.setup_header.end(), zp.begin() + kSetupHeaderOffset);
  zp[zeropage::kSentinel] = 0;
  zp[zeropage::kTypeOfLoader] = zeropage::kUndefinedLoader;
  zp[zeropage::kLoadflags] = kLoadedHigh;  // no CAN_USE_HEAP: heap_end_ptr is for real-mode setup
  Put(zp, zeropage::kHeapEndPtr, 0, 2);
  Put(zp, zeropage::kCmdLinePtr, kCmdlineAddr & 0xffffffffu, 4);
  Put(zp, zeropage::kExtCmdLinePtr, kCmdlineAddr >> 32, 4);
  Put(zp, zeropage::kRamdiskImage, rd.gpa & 0xffffffffu, 4);
  Put(zp, zeropage::kRamdiskSize, rd.size & 0xffffffffu, 4);
  Put(zp, zeropage::kExtRamdiskImage, rd.gpa >> 32, 4);
  Put(zp, zeropage::kExtRamdiskSize, rd.size >> 32, 4);
  Put(zp, zeropage::kAcpiRsdpAddr, acpi_rsdp, 8);
  zp[zeropage::kE820Entries] = static_cast<uint8_t>(map.size());
  for (size_t i = 0; i < map.size(); ++i) {
    const uint64_t at = zeropage::kE820Table + i * zeropage::kE820EntrySize;
    Put(zp, at, map[i].base, 8);
    Put(zp, at + 8, map[i].length, 8);
    Put(zp, at + 16, map[i].type, 4);
  }

  BootState boot;
  PlaceElf64(mem, vmlinux, lp.elf, &boot);
  mem.Write(kBootParamsAddr, zp.data(), zp.size());
  mem.Write(kCmdlineAddr, cmdline.c_str(), cmdline.size() + 1);
  if (rd.size) mem.Write(rd.gpa, initrd.data(), rd.size);
  boot.cpu = EnterLongMode(mem, lp.elf.entry);
  boot.cpu.gpr[kRsi] = kBootParamsAddr;
  boot.entry = lp.elf.entry;
  boot.format = KernelFormat::kLinuxBzImage;
  return boot;
}

BootState LoadLinuxPvh(GuestMemory& mem, std::span<const uint8_t> vmlinux_image,
                       std::span<const uint8_t> initrd, const std::string& cmdline, uint64_t acpi_rsdp) {
  const std::optional<uint64_t> entry = FindPvhEntry(vmlinux_image);
  if (!entry) Fail("the ELF64 image has no PVH entry note (XEN_ELFNOTE_PHYS32_ENTRY)");
  CheckCmdline(cmdline, kCmdlineAreaEnd - kCmdlineAddr - 1);
  const std::vector<uint8_t> vmlinux(vmlinux_image.begin(), vmlinux_image.end());
  // No setup header: the initrd below 4 GiB (what a 32-bit entry can address).
  const LinuxPlan lp = PlanLinux(mem, vmlinux, initrd, 0, uint64_t{1} << 32, "vmlinux");
  bool entry_in_kernel = false;
  for (const Elf64Plan::Segment& s : lp.elf.segments)
    entry_in_kernel |= *entry >= s.gpa && *entry - s.gpa < s.mem_bytes;
  if (!entry_in_kernel || *entry >= (uint64_t{1} << 32))
    Fail(fmt::format("the PVH entry {:#x} is not inside a PT_LOAD segment below 4 GiB", *entry));
  if (lp.map.size() > pvh::kMaxMemmap) {
    Fail(fmt::format("the memory map has {} entries, more than the {} the start info has room for",
                     lp.map.size(), pvh::kMaxMemmap));
  }
  // struct hvm_start_info (version 1), its module list (the initrd) and memory map, built on
  // the host and written in one piece at kBootParamsAddr.
  std::vector<uint8_t> si(kBootParamsSize, 0);
  Put(si, 0, pvh::kStartInfoMagic, 4);
  Put(si, 4, 1, 4);  // version
  Put(si, 12, lp.rd.size ? 1 : 0, 4);  // nr_modules
  Put(si, 16, kBootParamsAddr + pvh::kModlistOffset, 8);
  Put(si, 24, kCmdlineAddr, 8);
  Put(si, 32, acpi_rsdp, 8);
  Put(si, 40, kBootParamsAddr + pvh::kMemmapOffset, 8);
  Put(si, 48, lp.map.size(), 4);
  if (lp.rd.size) {
    Put(si, pvh::kModlistOffset, lp.rd.gpa, 8);
    Put(si, pvh::kModlistOffset + 8, lp.rd.size, 8);
  }
  for (size_t i = 0; i < lp.map.size(); ++i) {
    const uint64_t at = pvh::kMemmapOffset + i * 24;
    Put(si, at, lp.map[i].base, 8);
    Put(si, at + 8, lp.map[i].length, 8);
    Put(si, at + 16, lp.map[i].type, 4);
  }

  BootState boot;
  PlaceElf64(mem, vmlinux, lp.elf, &boot);
  mem.Write(kBootParamsAddr, si.data(), si.size());
  mem.Write(kCmdlineAddr, cmdline.c_str(), cmdline.size() + 1);
  if (lp.rd.size) mem.Write(lp.rd.gpa, initrd.data(), lp.rd.size);
  boot.cpu = EnterProtectedMode32(mem, *entry);
  boot.cpu.gpr[kRbx] = kBootParamsAddr;
  boot.entry = *entry;
  boot.format = KernelFormat::kLinuxPvh;
  return boot;
}

}  // namespace vmrr
