// Kernel loaders: put an ELF64 test guest or a Multiboot 1 image into guest RAM and describe
// the CPU state it is entered with (tests/../notes boot contract: GDT at 0x8000, identity page
// tables at 0x9000..0xefff; a Multiboot image's GDT and multiboot_info in one block wherever
// the image leaves room, 0x8000 when it can). Every input is hostile:
// each malformed image is a LoaderError naming the rule it breaks, and nothing is written to
// RAM until the whole image has been validated.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "hv-hooks/cpu/cpu.h"
#include "hv-hooks/substrate/guest_memory.h"

namespace vmrr {

class LoaderError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class KernelFormat : uint8_t {
  kUnknown = 0,
  kElf64 = 1,      // ELF64 x86-64 ET_EXEC, entered in long mode
  kMultiboot = 2,  // Multiboot 1 header (ELF32 or a.out kludge), entered in 32-bit PM
  kLinuxBzImage = 3,  // Linux boot protocol 2.x ("HdrS" at 0x202), the 64-bit entry
  kLinuxPvh = 4,      // an uncompressed vmlinux ELF64 with a PVH entry note, entered in 32-bit PM
};
const char* KernelFormatName(KernelFormat format);

// The PVH entry point of an ELF64 image: the XEN_ELFNOTE_PHYS32_ENTRY note (type 18, name
// "Xen") in a PT_NOTE segment, as a Linux vmlinux built with CONFIG_PVH carries it; nullopt
// when there is none (every offset and size is checked against the image).
std::optional<uint64_t> FindPvhEntry(std::span<const uint8_t> image);

// Looks only at magic numbers: an x86-64 ELF64 is kElf64 (kLinuxPvh with a PVH note), a bzImage (boot_flag 0xAA55 and
// "HdrS") kLinuxBzImage, else an image with a valid Multiboot 1 header (magic + checksum,
// 4-byte aligned, in the first 8 KiB) is kMultiboot.
KernelFormat DetectKernelFormat(std::span<const uint8_t> image);

// The guest-physical memory map (e820 types) of a machine with memory_bytes of RAM: RAM below
// 640 KiB, reserved 640 KiB..1 MiB (VGA/BIOS hole), RAM 1 MiB..end, and the MMIO windows of
// platform_layout.h as reserved. Sorted by base, non-overlapping.
struct MemoryRegion {
  enum Type : uint32_t { kRam = 1, kReserved = 2 };
  uint64_t base = 0;
  uint64_t length = 0;
  uint32_t type = kRam;
  bool operator==(const MemoryRegion&) const = default;
};
std::vector<MemoryRegion> MemoryMap(uint64_t memory_bytes);

// Fixed addresses of the loader's own structures for ELF64 guests and Linux (below 1 MiB,
// above the IVT/BDA). Their segments may not overlap [kLoaderAreaBase, kLoaderAreaEnd).
inline constexpr uint64_t kLoaderAreaBase = 0x8000;
inline constexpr uint64_t kLoaderAreaEnd = 0xf000;
inline constexpr uint64_t kBootGdtAddr = 0x8000;
inline constexpr uint64_t kBootPml4Addr = 0x9000;  // ELF64: PML4, PDPT (0xa000), PDs 0xb000..
inline constexpr uint64_t kBootStackTop = 0x80000;
// A Multiboot image may lie anywhere in RAM, as QEMU's -kernel accepts it (0x8000 included).
// The loader's structures for it share one block of kMultibootBlockBytes: the boot GDT at
// +0 (what GDTR points at on entry), multiboot_info at +0x1000 (EBX), the memory map at
// +0x1100, the boot loader name at +0x1800, the command line at +0x2000. The block goes at
// kMultibootPreferredBlock (0x8000: GDT 0x8000, info 0x9000, command line 0xa000) when no
// segment overlaps it; else right after the highest segment, page-aligned, as QEMU places
// its Multiboot information after the kernel; else after any other segment or at 4 KiB, the
// first of these that lies wholly in RAM below 640 KiB or between 1 MiB and the end of RAM
// (below 4 GiB) and overlaps no segment. No room anywhere is a LoaderError.
inline constexpr uint64_t kMultibootPreferredBlock = 0x8000;
inline constexpr uint64_t kMultibootBlockBytes = 0x3000;
inline constexpr uint64_t kMultibootInfoOffset = 0x1000;
inline constexpr uint64_t kMultibootMmapOffset = 0x1100;
inline constexpr uint64_t kMultibootNameOffset = 0x1800;
inline constexpr uint64_t kMultibootCmdlineOffset = 0x2000;
inline constexpr uint32_t kMultibootBootloaderMagic = 0x2BADB002;
inline constexpr uint32_t kMultibootHeaderMagic = 0x1BADB002;
// Boot GDT selectors.
inline constexpr uint16_t kBootCode64Selector = 0x08, kBootDataSelector = 0x10,
                          kBootCode32Selector = 0x18;

// Everything the CPU needs at entry, plus what was loaded (for reports and tests).
struct BootState {
  KernelFormat format = KernelFormat::kUnknown;
  CpuState cpu;  // complete entry state (based on CpuState{} defaults)
  uint64_t entry = 0;
  struct Loaded {
    uint64_t gpa = 0;
    uint64_t file_bytes = 0;
    uint64_t mem_bytes = 0;
  };
  std::vector<Loaded> segments;
  // Multiboot: where the loader's block (GDT, multiboot_info, ...) went; 0 for other formats.
  uint64_t boot_block = 0;
};

// Copies the boot-relevant registers (GPRs, RIP, RFLAGS, segments, descriptor tables, control
// registers, EFER, CPL) of `boot` over a CPU's power-on state, keeping the rest (APIC base,
// PAT, ...).
void ApplyBootState(const BootState& boot, CpuState* state);

// The pieces of LoadElf64, shared with the Linux boot-protocol loader (linux_boot.h).
// An ELF64 x86-64 ET_EXEC's PT_LOAD segments, validated (the same checks as LoadElf64: inside
// the file, inside guest RAM, outside the loader area, no two overlapping) but not yet written.
struct Elf64Plan {
  struct Segment {
    uint64_t gpa = 0, file_off = 0, file_bytes = 0, mem_bytes = 0;
  };
  std::vector<Segment> segments;  // at p_paddr, in program-header order
  uint64_t entry = 0;             // guest-physical entry point
};
// kVirtual: e_entry lies in a segment's [p_vaddr, +p_memsz), which must be identity-linked
// (LoadElf64's test guests). kPhysical: e_entry lies in a segment's [p_paddr, +p_memsz), as
// for a vmlinux, whose e_entry is phys_startup_64.
enum class ElfEntryAddress : uint8_t { kVirtual, kPhysical };
Elf64Plan PlanElf64(const GuestMemory& mem, std::span<const uint8_t> image, ElfEntryAddress entry);
// Copies the planned segments (zero-filling past p_filesz) and records them in boot->segments.
void PlaceElf64(GuestMemory& mem, std::span<const uint8_t> image, const Elf64Plan& plan,
                BootState* boot);
// Writes the boot GDT at kBootGdtAddr and the identity map of the low 4 GiB (2 MiB pages) at
// kBootPml4Addr, and returns the long-mode entry state at rip: CS = kBootCode64Selector, the
// data segments kBootDataSelector (flat), CR0 PG|WP|NE|ET|MP|PE, CR4.PAE, EFER
// NXE|LMA|LME|SCE, CR3 = kBootPml4Addr, RFLAGS 0x2 (interrupts disabled), RSP kBootStackTop,
// every other GPR 0.
inline constexpr uint64_t kIdentityMapBytes = 4ull << 30;
CpuState EnterLongMode(GuestMemory& mem, uint64_t rip);
// Writes the boot GDT at kBootGdtAddr and returns the flat 32-bit protected-mode state at eip
// (paging off, CR0 PE|ET, CR4 0, interrupts disabled), as the PVH boot ABI enters a kernel.
CpuState EnterProtectedMode32(GuestMemory& mem, uint64_t eip);

// What QEMU's -initrd and -append give the kernel: the initrd (Linux only), the command line
// (Linux, or the Multiboot command line), and for Linux the ACPI RSDP's address for
// boot_params.acpi_rsdp_addr (0: none; the tables are the machine's business).
struct KernelArgs {
  std::span<const uint8_t> initrd;
  std::string cmdline;
  uint64_t acpi_rsdp = 0;
};

// The Multiboot command line: at block + kMultibootCmdlineOffset, NUL-terminated, at most
// this long.
inline constexpr uint64_t kMultibootCmdlineMax = 0xfff;
static_assert(kMultibootCmdlineOffset + kMultibootCmdlineMax + 1 <= kMultibootBlockBytes);

BootState LoadElf64(GuestMemory& mem, std::span<const uint8_t> image);
BootState LoadMultiboot(GuestMemory& mem, std::span<const uint8_t> image,
                        const std::string& cmdline = {});
// Detects the format and calls the matching loader; LoaderError for an unknown format, or
// for arguments the format cannot take (an initrd or a command line for an ELF64 test guest,
// an initrd for a Multiboot image).
BootState LoadKernelImage(GuestMemory& mem, std::span<const uint8_t> image,
                          const KernelArgs& args = {});

}  // namespace vmrr
