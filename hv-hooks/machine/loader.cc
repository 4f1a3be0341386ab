// ELF64 and Multiboot 1 loaders, the e820 memory map and format detection.
#include "hv-hooks/machine/loader.h"

#include <elf.h>
#include <fmt/format.h>

#include <algorithm>
#include <bit>
#include <cstddef>
#include <cstring>
#include <string>

#include "hv-hooks/machine/bzimage.h"
#include "hv-hooks/machine/linux_boot.h"
#include "hv-hooks/machine/platform_layout.h"
#include "logformat/byte_order.h"

namespace vmrr {

namespace {

constexpr uint64_t kOneMiB = 0x100000;
constexpr uint64_t kMultibootSearchBytes = 8192;
constexpr unsigned kMaxProgramHeaders = 256;

// <elf.h>'s structures are copied out of the image as they are: the only host is x86-64, and
// ParseElfHeader refuses any file that is not little-endian.
static_assert(std::endian::native == std::endian::little);

[[noreturn]] void Fail(const std::string& what) { throw LoaderError(what); }

// A header of type T at byte `off` of the (hostile) image, copied out; callers check the range
// first with a message of their own, this check only keeps a missed one from reading past the end.
template <typename T>
T CopyOut(std::span<const uint8_t> image, uint64_t off) {
  if (off > image.size() || sizeof(T) > image.size() - off) {
    Fail(fmt::format("header at {:#x} runs past the end of the {}-byte image", off, image.size()));
  }
  T v;
  std::memcpy(&v, image.data() + off, sizeof v);
  return v;
}

bool IsElf(std::span<const uint8_t> image) {
  return image.size() >= SELFMAG && std::memcmp(image.data(), ELFMAG, SELFMAG) == 0;
}

// One piece of the image to place in RAM: file bytes [file_off, file_off+file_bytes) at gpa,
// then zeros up to mem_bytes.
struct Piece {
  uint64_t gpa, file_off, file_bytes, mem_bytes;
};

// Whether a piece must stay out of the fixed loader area (ELF64 and Linux) or may lie
// anywhere in RAM (Multiboot, whose loader structures move out of its way).
enum class LoaderArea : uint8_t { kReserved, kFree };

// Checks a piece against the file, RAM and the loader area (overflow-safe).
void CheckPiece(const GuestMemory& mem, std::span<const uint8_t> image, const Piece& p,
                const std::string& what, LoaderArea area) {
  if (p.file_bytes > p.mem_bytes) {
    Fail(fmt::format("{}: file size {:#x} exceeds memory size {:#x}", what, p.file_bytes, p.mem_bytes));
  }
  if (p.file_off > image.size() || p.file_bytes > image.size() - p.file_off) {
    Fail(fmt::format("{}: file bytes [{:#x}, +{:#x}) run past the end of the {}-byte image", what,
                     p.file_off, p.file_bytes, image.size()));
  }
  if (p.gpa > ~uint64_t{0} - p.mem_bytes) {
    Fail(fmt::format("{}: address {:#x} + size {:#x} overflows", what, p.gpa, p.mem_bytes));
  }
  if (!mem.Contains(p.gpa, p.mem_bytes)) {
    Fail(fmt::format("{}: [{:#x}, {:#x}) lies outside guest RAM ({:#x} bytes)", what, p.gpa,
                     p.gpa + p.mem_bytes, mem.size()));
  }
  if (area == LoaderArea::kReserved && p.mem_bytes && p.gpa < kLoaderAreaEnd &&
      p.gpa + p.mem_bytes > kLoaderAreaBase) {
    Fail(fmt::format("{}: [{:#x}, {:#x}) overlaps the loader's GDT/page-table area [{:#x}, {:#x})",
                     what, p.gpa, p.gpa + p.mem_bytes, kLoaderAreaBase, kLoaderAreaEnd));
  }
}

void CheckNoOverlap(const std::vector<Piece>& pieces) {
  for (size_t i = 0; i < pieces.size(); ++i) {
    for (size_t j = i + 1; j < pieces.size(); ++j) {
      const Piece& a = pieces[i];
      const Piece& b = pieces[j];
      if (a.mem_bytes && b.mem_bytes && a.gpa < b.gpa + b.mem_bytes && b.gpa < a.gpa + a.mem_bytes) {
        Fail(fmt::format("segments {} and {} overlap at {:#x}", i, j, std::max(a.gpa, b.gpa)));
      }
    }
  }
}

void RequireLoaderArea(const GuestMemory& mem) {
  if (mem.size() < kOneMiB) {
    Fail(fmt::format("guest RAM ({:#x} bytes) is smaller than the 1 MiB the loader needs", mem.size()));
  }
}

void Place(GuestMemory& mem, std::span<const uint8_t> image, const std::vector<Piece>& pieces,
           BootState* boot) {
  for (const Piece& p : pieces) {
    if (p.mem_bytes == 0) continue;
    uint8_t* dst = mem.Span(p.gpa, p.mem_bytes);
    std::memcpy(dst, image.data() + p.file_off, p.file_bytes);
    std::memset(dst + p.file_bytes, 0, p.mem_bytes - p.file_bytes);
    mem.NoteWrite(p.gpa, p.mem_bytes);
    boot->segments.push_back({p.gpa, p.file_bytes, p.mem_bytes});
  }
}

void Write64(GuestMemory& mem, uint64_t gpa, uint64_t v) {
  uint8_t b[8];
  StoreLe(b, v, 8);
  mem.Write(gpa, b, 8);
}
void Write32(GuestMemory& mem, uint64_t gpa, uint32_t v) {
  uint8_t b[4];
  StoreLe(b, v, 4);
  mem.Write(gpa, b, 4);
}

// GDT: null, 0x08 64-bit code, 0x10 flat data, 0x18 flat 32-bit code.
void WriteGdt(GuestMemory& mem, uint64_t at) {
  Write64(mem, at + 0x00, 0);
  Write64(mem, at + 0x08, 0x00af9b000000ffffull);
  Write64(mem, at + 0x10, 0x00cf93000000ffffull);
  Write64(mem, at + 0x18, 0x00cf9b000000ffffull);
}
constexpr uint16_t kBootGdtLimit = 4 * 8 - 1;

constexpr uint16_t kAttrCode64 = 0xb | kSegAttrS | kSegAttrP | kSegAttrL | kSegAttrG;
constexpr uint16_t kAttrCode32 = 0xb | kSegAttrS | kSegAttrP | kSegAttrDb | kSegAttrG;
constexpr uint16_t kAttrData = 0x3 | kSegAttrS | kSegAttrP | kSegAttrDb | kSegAttrG;

CpuState FlatState(uint16_t code_sel, uint16_t code_attr, uint64_t gdt) {
  CpuState s;
  s.seg[kCs] = Segment{code_sel, code_attr, 0xffffffff, 0};
  for (SegIndex i : {kDs, kEs, kSs, kFs, kGs}) {
    s.seg[i] = Segment{kBootDataSelector, kAttrData, 0xffffffff, 0};
  }
  s.gdtr = {gdt, kBootGdtLimit};
  s.idtr = {0, 0};
  s.ldtr = Segment{0, 0x82, 0xffff, 0};
  s.tr = Segment{0, 0x8b, 0x67, 0};
  s.rflags = 2;
  s.cpl = 0;
  s.gpr[kRsp] = kBootStackTop;
  return s;
}

struct ElfHeader {
  uint64_t entry, phoff;
  uint16_t phentsize, phnum;
};

// Common ELF checks; returns the program header table position.
ElfHeader ParseElfHeader(std::span<const uint8_t> image, bool is64) {
  const uint64_t ehsize = is64 ? sizeof(Elf64_Ehdr) : sizeof(Elf32_Ehdr);
  if (!IsElf(image)) Fail("not an ELF file (bad magic)");
  if (image.size() < ehsize) Fail("ELF header truncated (" + std::to_string(image.size()) + " bytes)");
  if (image[EI_CLASS] != (is64 ? ELFCLASS64 : ELFCLASS32)) {
    Fail(is64 ? "ELF class is not ELF64" : "ELF class is not ELF32");
  }
  if (image[EI_DATA] != ELFDATA2LSB) Fail("ELF data encoding is not little-endian");
  if (image[EI_VERSION] != EV_CURRENT) Fail("ELF version is not 1");
  ElfHeader h;
  uint16_t type, machine;
  // Elf64_Ehdr and Elf32_Ehdr name the same fields; only their widths differ.
  auto take = [&](const auto& e) {
    type = e.e_type;
    machine = e.e_machine;
    h.entry = e.e_entry;
    h.phoff = e.e_phoff;
    h.phentsize = e.e_phentsize;
    h.phnum = e.e_phnum;
  };
  if (is64) take(CopyOut<Elf64_Ehdr>(image, 0));
  else take(CopyOut<Elf32_Ehdr>(image, 0));
  if (type != ET_EXEC) Fail("ELF type " + std::to_string(type) + " is not ET_EXEC (statically linked executable)");
  if (is64 && machine != EM_X86_64) Fail("ELF machine " + std::to_string(machine) + " is not x86-64 (62)");
  if (!is64 && machine != EM_386) Fail("ELF machine " + std::to_string(machine) + " is not i386 (3)");
  const uint16_t want = is64 ? sizeof(Elf64_Phdr) : sizeof(Elf32_Phdr);
  if (h.phentsize != want) {
    Fail("ELF program header entry size " + std::to_string(h.phentsize) + " is not " +
         std::to_string(want));
  }
  if (h.phnum == 0) Fail("ELF has no program headers");
  if (h.phnum > kMaxProgramHeaders) {
    Fail("ELF has " + std::to_string(h.phnum) + " program headers (at most " +
         std::to_string(kMaxProgramHeaders) + ")");
  }
  const uint64_t table = uint64_t{h.phnum} * h.phentsize;
  if (h.phoff > image.size() || table > image.size() - h.phoff) {
    Fail(fmt::format("ELF program headers [{:#x}, +{:#x}) truncated: image has {} bytes", h.phoff,
                     table, image.size()));
  }
  return h;
}

struct ElfSegments {
  std::vector<Piece> pieces;
  std::vector<uint64_t> vaddr;
};

ElfSegments CollectLoads(const GuestMemory& mem, std::span<const uint8_t> image,
                         const ElfHeader& h, bool is64, LoaderArea area) {
  ElfSegments out;
  for (unsigned i = 0; i < h.phnum; ++i) {
    const uint64_t ph = h.phoff + uint64_t{i} * h.phentsize;
    Piece p;
    uint64_t vaddr = 0;
    // Elf64_Phdr and Elf32_Phdr name the same fields (in another order and width).
    auto take = [&](const auto& e) {
      if (e.p_type != PT_LOAD) return false;
      p.file_off = e.p_offset;
      vaddr = e.p_vaddr;
      p.gpa = e.p_paddr;
      p.file_bytes = e.p_filesz;
      p.mem_bytes = e.p_memsz;
      return true;
    };
    if (!(is64 ? take(CopyOut<Elf64_Phdr>(image, ph)) : take(CopyOut<Elf32_Phdr>(image, ph)))) continue;
    CheckPiece(mem, image, p, "PT_LOAD segment " + std::to_string(i), area);
    out.pieces.push_back(p);
    out.vaddr.push_back(vaddr);
  }
  if (out.pieces.empty()) Fail("ELF has no PT_LOAD segment");
  CheckNoOverlap(out.pieces);
  return out;
}

// The physical entry point: e_entry inside some segment's virtual range, translated.
uint64_t ElfEntry(const ElfSegments& segs, uint64_t entry, bool require_identity) {
  for (size_t i = 0; i < segs.pieces.size(); ++i) {
    const Piece& p = segs.pieces[i];
    const uint64_t v = segs.vaddr[i];
    if (p.mem_bytes && entry >= v && entry - v < p.mem_bytes) {
      if (require_identity && v != p.gpa) {
        Fail(fmt::format("entry segment has p_vaddr {:#x} != p_paddr {:#x} (guests must be "
                         "identity-linked)", v, p.gpa));
      }
      return p.gpa + (entry - v);
    }
  }
  Fail(fmt::format("entry point {:#x} is not inside any PT_LOAD segment", entry));
}

// Multiboot header found in the image: its offset and fields.
struct MultibootHeader {
  uint64_t offset = 0;
  uint32_t flags = 0;
  uint32_t header_addr = 0, load_addr = 0, load_end_addr = 0, bss_end_addr = 0, entry_addr = 0;
};

// Where the Multiboot loader block goes (loader.h: kMultibootPreferredBlock, else after the
// highest segment, else after another segment or at 4 KiB): the first candidate that lies
// wholly inside one RAM region below 4 GiB and overlaps no piece.
uint64_t MultibootBlock(const std::vector<MemoryRegion>& map, const std::vector<Piece>& pieces) {
  constexpr uint64_t kPage = 0x1000, k4GiB = uint64_t{1} << 32;
  auto page_up = [&](uint64_t a) { return a > ~uint64_t{0} - (kPage - 1) ? ~uint64_t{0} : (a + kPage - 1) & ~(kPage - 1); };
  std::vector<uint64_t> ends;  // piece ends, highest first
  for (const Piece& p : pieces) {
    if (p.mem_bytes) ends.push_back(page_up(p.gpa + p.mem_bytes));
  }
  std::sort(ends.begin(), ends.end(), [](uint64_t a, uint64_t b) { return a > b; });
  std::vector<uint64_t> candidates = {kMultibootPreferredBlock};
  candidates.insert(candidates.end(), ends.begin(), ends.end());
  candidates.push_back(kPage);
  for (uint64_t c : candidates) {
    if (c > k4GiB - kMultibootBlockBytes) continue;
    const uint64_t end = c + kMultibootBlockBytes;
    const bool in_ram = std::any_of(map.begin(), map.end(), [&](const MemoryRegion& r) {
      return r.type == MemoryRegion::kRam && c >= r.base && end <= r.base + r.length;
    });
    const bool free = std::none_of(pieces.begin(), pieces.end(), [&](const Piece& p) {
      return p.mem_bytes && p.gpa < end && c < p.gpa + p.mem_bytes;
    });
    if (in_ram && free) return c;
  }
  Fail(fmt::format("no room for the loader's {:#x}-byte Multiboot information block: the image "
                   "leaves no free RAM at {:#x}, after a segment, or at {:#x}",
                   kMultibootBlockBytes, kMultibootPreferredBlock, kPage));
}

bool FindMultibootHeader(std::span<const uint8_t> image, MultibootHeader* out) {
  const uint64_t limit = std::min<uint64_t>(image.size(), kMultibootSearchBytes);
  for (uint64_t off = 0; off + 12 <= limit; off += 4) {
    if (LoadLe32(image.data() + off) != kMultibootHeaderMagic) continue;
    const uint32_t flags = LoadLe32(image.data() + off + 4);
    const uint32_t sum = kMultibootHeaderMagic + flags + LoadLe32(image.data() + off + 8);
    if (sum != 0) continue;
    out->offset = off;
    out->flags = flags;
    return true;
  }
  return false;
}

}  // namespace

const char* KernelFormatName(KernelFormat format) {
  switch (format) {
    case KernelFormat::kUnknown: return "unknown";
    case KernelFormat::kElf64: return "ELF64";
    case KernelFormat::kLinuxBzImage: return "Linux bzImage";
    case KernelFormat::kLinuxPvh: return "Linux vmlinux (PVH)";
    case KernelFormat::kMultiboot: return "Multiboot";
  }
  return "unknown";
}

KernelFormat DetectKernelFormat(std::span<const uint8_t> image) {
  constexpr size_t kMachineEnd = offsetof(Elf64_Ehdr, e_machine) + sizeof(Elf64_Half);
  if (IsElf(image) && image.size() >= kMachineEnd && image[EI_CLASS] == ELFCLASS64 &&
      LoadLe16(image.data() + offsetof(Elf64_Ehdr, e_machine)) == EM_X86_64) {
    return FindPvhEntry(image) ? KernelFormat::kLinuxPvh : KernelFormat::kElf64;
  }
  if (LooksLikeBzImage(image)) return KernelFormat::kLinuxBzImage;
  MultibootHeader h;
  if (FindMultibootHeader(image, &h)) return KernelFormat::kMultiboot;
  return KernelFormat::kUnknown;
}

std::vector<MemoryRegion> MemoryMap(uint64_t memory_bytes) {
  std::vector<MemoryRegion> map;
  constexpr uint64_t kLowEnd = 0xa0000;
  map.push_back({0, std::min(memory_bytes, kLowEnd), MemoryRegion::kRam});
  map.push_back({kLowEnd, kOneMiB - kLowEnd, MemoryRegion::kReserved});
  if (memory_bytes > kOneMiB) map.push_back({kOneMiB, memory_bytes - kOneMiB, MemoryRegion::kRam});
  // MMIO windows (the virtio transports share one page).
  map.push_back({platform::kVirtioRngBase, 0x1000, MemoryRegion::kReserved});
  map.push_back({platform::kIoApicBase, platform::kIoApicSize, MemoryRegion::kReserved});
  map.push_back({platform::kLapicBase, platform::kLapicSize, MemoryRegion::kReserved});
  return map;
}

void ApplyBootState(const BootState& boot, CpuState* s) {
  const CpuState& b = boot.cpu;
  std::copy(std::begin(b.gpr), std::end(b.gpr), std::begin(s->gpr));
  s->rip = b.rip;
  s->rflags = b.rflags;
  std::copy(std::begin(b.seg), std::end(b.seg), std::begin(s->seg));
  s->ldtr = b.ldtr;
  s->tr = b.tr;
  s->gdtr = b.gdtr;
  s->idtr = b.idtr;
  s->cr0 = b.cr0;
  s->cr2 = b.cr2;
  s->cr3 = b.cr3;
  s->cr4 = b.cr4;
  s->efer = b.efer;
  s->cpl = b.cpl;
  s->halted = false;
  s->shutdown = false;
}

Elf64Plan PlanElf64(const GuestMemory& mem, std::span<const uint8_t> image,
                    ElfEntryAddress entry) {
  RequireLoaderArea(mem);
  const ElfHeader h = ParseElfHeader(image, true);
  const ElfSegments segs = CollectLoads(mem, image, h, true, LoaderArea::kReserved);
  Elf64Plan plan;
  if (entry == ElfEntryAddress::kVirtual) {
    plan.entry = ElfEntry(segs, h.entry, true);
  } else {
    const bool inside = std::any_of(segs.pieces.begin(), segs.pieces.end(), [&](const Piece& p) {
      return p.mem_bytes && h.entry >= p.gpa && h.entry - p.gpa < p.mem_bytes;
    });
    if (!inside) {
      Fail(fmt::format("entry point {:#x} is not inside any PT_LOAD segment's physical range",
                       h.entry));
    }
    plan.entry = h.entry;
  }
  for (const Piece& p : segs.pieces) {
    plan.segments.push_back({p.gpa, p.file_off, p.file_bytes, p.mem_bytes});
  }
  return plan;
}

void PlaceElf64(GuestMemory& mem, std::span<const uint8_t> image, const Elf64Plan& plan,
                BootState* boot) {
  std::vector<Piece> pieces;
  for (const Elf64Plan::Segment& s : plan.segments) {
    pieces.push_back({s.gpa, s.file_off, s.file_bytes, s.mem_bytes});
  }
  Place(mem, image, pieces, boot);
}

std::optional<uint64_t> FindPvhEntry(std::span<const uint8_t> image) {
  constexpr uint32_t kXenElfnotePhys32Entry = 18;
  const size_t n = image.size();
  if (n < sizeof(Elf64_Ehdr) || !IsElf(image) || image[EI_CLASS] != ELFCLASS64) return std::nullopt;
  const uint8_t* p = image.data();
  const uint64_t phoff = LoadLe64(p + offsetof(Elf64_Ehdr, e_phoff));
  const uint16_t phentsize = LoadLe16(p + offsetof(Elf64_Ehdr, e_phentsize));
  const uint16_t phnum = LoadLe16(p + offsetof(Elf64_Ehdr, e_phnum));
  if (phentsize < sizeof(Elf64_Phdr) || phoff > n || uint64_t{phnum} * phentsize > n - phoff) return std::nullopt;
  for (uint16_t i = 0; i < phnum; ++i) {
    const uint8_t* ph = p + phoff + uint64_t{i} * phentsize;
    if (LoadLe32(ph + offsetof(Elf64_Phdr, p_type)) != PT_NOTE) continue;
    const uint64_t off = LoadLe64(ph + offsetof(Elf64_Phdr, p_offset));
    const uint64_t size = LoadLe64(ph + offsetof(Elf64_Phdr, p_filesz));
    if (off > n || size > n - off) continue;
    // Notes: namesz, descsz, type, then the name and the descriptor, each padded to 4 bytes.
    uint64_t at = 0;
    while (size - at >= 12) {
      const uint8_t* note = p + off + at;
      const uint64_t namesz = LoadLe32(note), descsz = LoadLe32(note + 4);
      const uint32_t type = LoadLe32(note + 8);
      const uint64_t name_padded = (namesz + 3) & ~uint64_t{3}, desc_padded = (descsz + 3) & ~uint64_t{3};
      if (name_padded > size - at - 12 || desc_padded > size - at - 12 - name_padded) break;
      const uint8_t* name = note + 12;
      const uint8_t* desc = name + name_padded;
      if (type == kXenElfnotePhys32Entry && namesz == 4 && std::memcmp(name, "Xen", 4) == 0) {
        if (descsz == 4) return LoadLe32(desc);
        if (descsz == 8) return LoadLe64(desc);
      }
      at += 12 + name_padded + desc_padded;
    }
  }
  return std::nullopt;
}

CpuState EnterProtectedMode32(GuestMemory& mem, uint64_t eip) {
  WriteGdt(mem, kBootGdtAddr);
  CpuState s = FlatState(kBootCode32Selector, kAttrCode32, kBootGdtAddr);
  s.cr0 = 0x11;  // PE | ET
  s.rip = eip;
  return s;
}

CpuState EnterLongMode(GuestMemory& mem, uint64_t rip) {
  WriteGdt(mem, kBootGdtAddr);
  // Identity map of 4 GiB with 2 MiB pages: PML4 -> one PDPT -> four PDs.
  constexpr uint64_t kPdpt = kBootPml4Addr + 0x1000, kPd0 = kBootPml4Addr + 0x2000;
  constexpr uint64_t kPresentWrite = 0x3, kLarge = 0x80;
  static_assert(kPd0 + 4 * 0x1000 <= kLoaderAreaEnd && kIdentityMapBytes == (4ull * 512) << 21);
  std::vector<uint8_t> zeros(0x1000, 0);
  for (uint64_t a = kBootPml4Addr; a < kPd0 + 4 * 0x1000; a += 0x1000) mem.Write(a, zeros.data(), 0x1000);
  Write64(mem, kBootPml4Addr, kPdpt | kPresentWrite);
  for (uint64_t i = 0; i < 4; ++i) {
    Write64(mem, kPdpt + 8 * i, (kPd0 + 0x1000 * i) | kPresentWrite);
    for (uint64_t j = 0; j < 512; ++j) {
      Write64(mem, kPd0 + 0x1000 * i + 8 * j, ((i * 512 + j) << 21) | kPresentWrite | kLarge);
    }
  }
  CpuState s = FlatState(kBootCode64Selector, kAttrCode64, kBootGdtAddr);
  s.cr0 = 0x80010033;  // PG | WP | NE | ET | MP | PE
  s.cr3 = kBootPml4Addr;
  s.cr4 = 0x20;        // PAE
  s.efer = 0xd01;      // NXE | LMA | LME | SCE
  s.rip = rip;
  return s;
}

BootState LoadElf64(GuestMemory& mem, std::span<const uint8_t> image) {
  const Elf64Plan plan = PlanElf64(mem, image, ElfEntryAddress::kVirtual);
  BootState boot;
  boot.format = KernelFormat::kElf64;
  PlaceElf64(mem, image, plan, &boot);
  boot.cpu = EnterLongMode(mem, plan.entry);
  boot.cpu.gpr[kRdi] = mem.size();
  boot.entry = plan.entry;
  return boot;
}

BootState LoadMultiboot(GuestMemory& mem, std::span<const uint8_t> image, const std::string& cmdline) {
  RequireLoaderArea(mem);
  if (cmdline.find('\0') != std::string::npos) Fail("the command line contains a NUL byte");
  if (cmdline.size() > kMultibootCmdlineMax) {
    Fail(fmt::format("the command line is {} bytes, longer than the {} a Multiboot guest gets",
                     cmdline.size(), kMultibootCmdlineMax));
  }
  MultibootHeader mh;
  if (!FindMultibootHeader(image, &mh)) {
    Fail("no Multiboot header (magic 0x1BADB002 with a valid checksum, 4-byte aligned) in the "
         "first 8 KiB");
  }
  // Bits 0 (page-align modules), 1 (memory info) and 2 (video mode: a preference we may
  // ignore) are understood. The specification says a loader must refuse an image requiring
  // any other bit (3-15); QEMU's -kernel loader (hw/i386/multiboot.c) ignores them and boots
  // it, and vmrr loads what QEMU loads, so they are ignored here too.

  std::vector<Piece> pieces;
  uint64_t entry;
  if (mh.flags & (1u << 16)) {
    if (mh.offset + 32 > image.size()) Fail("Multiboot a.out-kludge header truncated");
    mh.header_addr = LoadLe32(image.data() + mh.offset + 12);
    mh.load_addr = LoadLe32(image.data() + mh.offset + 16);
    mh.load_end_addr = LoadLe32(image.data() + mh.offset + 20);
    mh.bss_end_addr = LoadLe32(image.data() + mh.offset + 24);
    mh.entry_addr = LoadLe32(image.data() + mh.offset + 28);
    if (mh.load_addr > mh.header_addr) {
      Fail(fmt::format("Multiboot load_addr {:#x} is above header_addr {:#x}", mh.load_addr,
                       mh.header_addr));
    }
    const uint64_t back = mh.header_addr - mh.load_addr;
    if (back > mh.offset) {
      Fail(fmt::format("Multiboot header_addr - load_addr ({:#x}) reaches before the start of the file",
                       back));
    }
    Piece p;
    p.gpa = mh.load_addr;
    p.file_off = mh.offset - back;
    if (mh.load_end_addr == 0) {
      p.file_bytes = image.size() - p.file_off;
    } else {
      if (mh.load_end_addr < mh.load_addr) {
        Fail(fmt::format("Multiboot load_end_addr {:#x} is below load_addr {:#x}", mh.load_end_addr,
                         mh.load_addr));
      }
      p.file_bytes = uint64_t{mh.load_end_addr} - mh.load_addr;
    }
    p.mem_bytes = p.file_bytes;
    if (mh.bss_end_addr != 0) {
      if (mh.bss_end_addr < p.gpa + p.file_bytes) {
        Fail(fmt::format("Multiboot bss_end_addr {:#x} is below the end of the loaded image",
                         mh.bss_end_addr));
      }
      p.mem_bytes = uint64_t{mh.bss_end_addr} - p.gpa;
    }
    CheckPiece(mem, image, p, "Multiboot a.out-kludge image", LoaderArea::kFree);
    if (mh.entry_addr < p.gpa || mh.entry_addr - p.gpa >= p.mem_bytes) {
      Fail(fmt::format("Multiboot entry_addr {:#x} is outside the loaded image", mh.entry_addr));
    }
    entry = mh.entry_addr;
    pieces.push_back(p);
  } else {
    if (!IsElf(image)) {
      Fail("Multiboot image without the a.out-kludge flag (bit 16) must be an ELF32 file");
    }
    const ElfHeader h = ParseElfHeader(image, false);
    const ElfSegments segs = CollectLoads(mem, image, h, false, LoaderArea::kFree);
    entry = ElfEntry(segs, h.entry, false);
    pieces = segs.pieces;
  }

  const std::vector<MemoryRegion> map = MemoryMap(mem.size());
  const uint64_t block = MultibootBlock(map, pieces);
  BootState boot;
  boot.format = KernelFormat::kMultiboot;
  boot.boot_block = block;
  Place(mem, image, pieces, &boot);
  WriteGdt(mem, block);

  const uint64_t kInfo = block + kMultibootInfoOffset, kMmap = block + kMultibootMmapOffset,
                 kName = block + kMultibootNameOffset, kCmdline = block + kMultibootCmdlineOffset;
  std::vector<uint8_t> zeros(0x1000, 0);
  mem.Write(kInfo, zeros.data(), zeros.size());
  uint64_t at = kMmap;
  for (const MemoryRegion& r : map) {
    Write32(mem, at, 20);
    Write64(mem, at + 4, r.base);
    Write64(mem, at + 12, r.length);
    Write32(mem, at + 20, r.type);
    at += 24;
  }
  const char kLoaderName[] = "vmrr";
  mem.Write(kName, kLoaderName, sizeof kLoaderName);
  const uint64_t upper = mem.size() > kOneMiB ? (mem.size() - kOneMiB) / 1024 : 0;
  uint32_t info_flags = (1u << 0) | (1u << 6) | (1u << 9);  // mem, mmap, loader name
  if (!cmdline.empty()) {
    mem.Write(kCmdline, cmdline.c_str(), cmdline.size() + 1);
    Write32(mem, kInfo + 16, static_cast<uint32_t>(kCmdline));
    info_flags |= 1u << 2;  // cmdline
  }
  Write32(mem, kInfo + 0, info_flags);
  Write32(mem, kInfo + 4, 640);                                  // mem_lower (KiB)
  Write32(mem, kInfo + 8, static_cast<uint32_t>(std::min<uint64_t>(upper, 0xffffffffu)));
  Write32(mem, kInfo + 44, static_cast<uint32_t>(at - kMmap));  // mmap_length
  Write32(mem, kInfo + 48, static_cast<uint32_t>(kMmap));       // mmap_addr
  Write32(mem, kInfo + 64, static_cast<uint32_t>(kName));       // boot_loader_name

  CpuState& s = boot.cpu;
  s = FlatState(kBootCode32Selector, kAttrCode32, block);
  s.cr0 = 0x11;  // PE | ET
  s.gpr[kRax] = kMultibootBootloaderMagic;
  s.gpr[kRbx] = kInfo;
  s.rip = entry;
  boot.entry = entry;
  return boot;
}

BootState LoadKernelImage(GuestMemory& mem, std::span<const uint8_t> image, const KernelArgs& args) {
  const KernelFormat format = DetectKernelFormat(image);
  if (!args.initrd.empty() && format != KernelFormat::kLinuxBzImage && format != KernelFormat::kLinuxPvh &&
      format != KernelFormat::kUnknown) {
    Fail(fmt::format("an initrd is for a Linux kernel; this is a {} image", KernelFormatName(format)));
  }
  switch (format) {
    case KernelFormat::kElf64:
      if (!args.cmdline.empty()) Fail("an ELF64 test guest takes no command line");
      return LoadElf64(mem, image);
    case KernelFormat::kMultiboot: return LoadMultiboot(mem, image, args.cmdline);
    case KernelFormat::kLinuxBzImage:
      return LoadLinuxKernel(mem, image, args.initrd, args.cmdline, args.acpi_rsdp);
    case KernelFormat::kLinuxPvh:
      return LoadLinuxPvh(mem, image, args.initrd, args.cmdline, args.acpi_rsdp);
    case KernelFormat::kUnknown: break;
  }
  if (image.empty()) Fail("the kernel image is empty");
  if (IsElf(image)) {
    Fail("ELF file is neither x86-64 ELF64 nor carries a Multiboot header");
  }
  Fail("unknown kernel format (neither ELF64 x86-64, a Linux bzImage nor a Multiboot 1 image)");
}

}  // namespace vmrr
