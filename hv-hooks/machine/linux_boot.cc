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
  if (cmdline.find('\0') != std::string::npos) Fail("the kernel command line contains a NUL byte");
  if (cmdline.size() > bz.cmdline_size) {
    Fail(fmt::format("the kernel command line is {} bytes, longer than the kernel's cmdline_size "
                     "{}", cmdline.size(), bz.cmdline_size));
  }
  if (cmdline.size() + 1 > kCmdlineAreaEnd - kCmdlineAddr) {
    Fail(fmt::format("the kernel command line is {} bytes, longer than the {} bytes at {:#x} the "
                     "loader has for it", cmdline.size(), kCmdlineAreaEnd - kCmdlineAddr - 1,
                     kCmdlineAddr));
  }

  const std::vector<uint8_t> vmlinux = DecompressBzImageKernel(bz);
  const Elf64Plan plan = [&] {
    try {
      return PlanElf64(mem, vmlinux, ElfEntryAddress::kPhysical);
    } catch (const LoaderError& e) {
      throw LoaderError(std::string("decompressed vmlinux: ") + e.what());
    }
  }();
  uint64_t kernel_lo = ~uint64_t{0}, kernel_hi = 0;
  for (size_t i = 0; i < plan.segments.size(); ++i) {
    const Elf64Plan::Segment& s = plan.segments[i];
    if (s.mem_bytes == 0) continue;
    if (s.gpa < kLinuxKernelMinAddr || s.gpa + s.mem_bytes > kIdentityMapBytes) {
      Fail(fmt::format("decompressed vmlinux: PT_LOAD segment {} [{:#x}, {:#x}) is not between "
                       "1 MiB and the 4 GiB the boot identity map covers", i, s.gpa,
                       s.gpa + s.mem_bytes));
    }
    kernel_lo = std::min(kernel_lo, s.gpa);
    kernel_hi = std::max(kernel_hi, s.gpa + s.mem_bytes);
  }
  if (kernel_hi == 0) Fail("decompressed vmlinux: every PT_LOAD segment is empty");
  const uint64_t kernel_end = std::max(kernel_hi, kernel_lo + bz.init_size);

  const std::vector<MemoryRegion> map = MemoryMap(mem.size());
  if (map.size() > zeropage::kE820Max) {
    Fail(fmt::format("the memory map has {} entries, more than boot_params' {}", map.size(),
                     zeropage::kE820Max));
  }
  const uint64_t limit = std::min<uint64_t>(uint64_t{bz.initrd_addr_max} + 1, mem.size());
  const InitrdPlacement rd = PlaceInitrd(map, initrd.size(), kernel_end, limit, mem.size());

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
  PlaceElf64(mem, vmlinux, plan, &boot);
  mem.Write(kBootParamsAddr, zp.data(), zp.size());
  mem.Write(kCmdlineAddr, cmdline.c_str(), cmdline.size() + 1);
  if (rd.size) mem.Write(rd.gpa, initrd.data(), rd.size);
  boot.cpu = EnterLongMode(mem, plan.entry);
  boot.cpu.gpr[kRsi] = kBootParamsAddr;
  boot.entry = plan.entry;
  boot.format = KernelFormat::kLinuxBzImage;
  return boot;
}

}  // namespace vmrr
