// The Linux x86 64-bit boot protocol (Documentation/arch/x86/boot.rst, zero-page.rst), as
// Firecracker uses it: the bzImage's payload is decompressed on the host, the vmlinux ELF's
// PT_LOAD segments are placed at their physical addresses, boot_params (the "zero page") is
// built with the setup header, the command line, the initrd and the e820 map, and the CPU
// starts at the ELF entry (startup_64, physical) in long mode. The guest's own decompressor
// and real-mode setup never run.
//
#pragma once

#include <cstdint>
#include <span>
#include <string>

#include "hv-hooks/machine/loader.h"

namespace vmrr {

// Fixed low addresses (below 1 MiB, clear of the loader area [0x8000, 0xf000) that holds the
// GDT and the identity page tables): Firecracker's zero page and command line addresses.
inline constexpr uint64_t kBootParamsAddr = 0x7000;   // 4 KiB struct boot_params
inline constexpr uint64_t kBootParamsSize = 0x1000;
inline constexpr uint64_t kCmdlineAddr = 0x20000;     // NUL-terminated command line
inline constexpr uint64_t kCmdlineAreaEnd = 0x7f000;  // below kBootStackTop's page
// Every kernel segment lies at or above this (the low MiB holds the structures above).
inline constexpr uint64_t kLinuxKernelMinAddr = 0x100000;

// boot_params offsets (zero-page.rst) and setup-header offsets within it (boot.rst).
namespace zeropage {
inline constexpr uint64_t kAcpiRsdpAddr = 0x070;
inline constexpr uint64_t kExtRamdiskImage = 0x0c0;
inline constexpr uint64_t kExtRamdiskSize = 0x0c4;
inline constexpr uint64_t kExtCmdLinePtr = 0x0c8;
inline constexpr uint64_t kE820Entries = 0x1e8;
inline constexpr uint64_t kSentinel = 0x1ef;
inline constexpr uint64_t kTypeOfLoader = 0x210;
inline constexpr uint64_t kLoadflags = 0x211;
inline constexpr uint64_t kRamdiskImage = 0x218;
inline constexpr uint64_t kRamdiskSize = 0x21c;
inline constexpr uint64_t kHeapEndPtr = 0x224;
inline constexpr uint64_t kCmdLinePtr = 0x228;
inline constexpr uint64_t kE820Table = 0x2d0;
inline constexpr uint64_t kE820EntrySize = 20;  // u64 addr, u64 size, u32 type (packed)
inline constexpr unsigned kE820Max = 128;
inline constexpr uint8_t kUndefinedLoader = 0xff;
}  // namespace zeropage

// The PVH boot ABI (Xen's arch-x86/hvm/start_info.h, as QEMU and Firecracker use it for a
// vmlinux): struct hvm_start_info version 1 at kBootParamsAddr, its module list and memory
// map after it in the same page.
namespace pvh {
inline constexpr uint32_t kStartInfoMagic = 0x336ec578;
inline constexpr uint64_t kModlistOffset = 0x40;   // one hvm_modlist_entry (32 bytes): the initrd
inline constexpr uint64_t kMemmapOffset = 0x80;    // hvm_memmap_table_entry[] (24 bytes each)
inline constexpr uint64_t kMaxMemmap = (kBootParamsSize - kMemmapOffset) / 24;
}  // namespace pvh

// Loads a bzImage (LooksLikeBzImage) for the 64-bit boot protocol into `mem`:
// - the payload decompressed (DecompressBzImageKernel) and its PT_LOAD segments placed at
//   p_paddr (each at or above 1 MiB and below 4 GiB, inside RAM: a LoaderError naming the
//   segment and the RAM size otherwise); e_entry must lie in a segment's physical range;
// - boot_params at kBootParamsAddr: zeros, the setup header copied at 0x1f1, type_of_loader
//   0xff, loadflags LOADED_HIGH only, cmd_line_ptr (+ ext_) = kCmdlineAddr holding `cmdline`
//   and a NUL (refused when longer than the header's cmdline_size), ramdisk_image/size (+ ext_)
//   for the initrd (0/0 when it is empty), the e820 table from MemoryMap(mem.size());
// - the initrd page-aligned as high as possible in RAM below min(initrd_addr_max + 1, RAM top),
//   above the kernel's end (the larger of its last segment's end and its lowest segment plus
//   init_size), outside every reserved e820 range; refused when it does not fit;
// - the CPU in long mode (EnterLongMode: the 4 GiB identity map and the boot GDT) at the ELF
//   entry with RSI = kBootParamsAddr, interrupts disabled;
// - boot_params.acpi_rsdp_addr = acpi_rsdp (0: none).
// Nothing is written to guest memory before everything has been validated.
// The returned state has format kLinuxBzImage, entry = RIP and the kernel segments placed.
BootState LoadLinuxKernel(GuestMemory& mem, std::span<const uint8_t> bzimage,
                          std::span<const uint8_t> initrd, const std::string& cmdline,
                          uint64_t acpi_rsdp = 0);

// Loads an uncompressed vmlinux ELF64 with a PVH entry note (FindPvhEntry) as QEMU's -kernel
// does: its PT_LOAD segments at p_paddr (as for a bzImage's payload), the initrd and the
// command line placed as LoadLinuxKernel places them, hvm_start_info version 1 at
// kBootParamsAddr (magic, nr_modules 0 or 1 with the initrd, cmdline_paddr, rsdp_paddr =
// acpi_rsdp, the e820 map as its memory map), and the CPU in flat 32-bit protected mode, paging
// off, at the note's entry with EBX = kBootParamsAddr, interrupts disabled.
BootState LoadLinuxPvh(GuestMemory& mem, std::span<const uint8_t> vmlinux,
                       std::span<const uint8_t> initrd, const std::string& cmdline, uint64_t acpi_rsdp);

}  // namespace vmrr
