// A minimal machine for running vmrr's software CPU in tests, fuzzers and benchmarks: RAM-only
// platform with a scripted interrupt controller and an I/O log, plus builders for flat
// real/16/32/64-bit CPU states with a GDT, an IDT whose vectors each halt at a known address,
// and identity-mapped page tables. Header-only so tests/unit, tests/fuzz and bench share it.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "hv-hooks/cpu/cpu.h"
#include "hv-hooks/cpu/cpu_platform.h"
#include "hv-hooks/substrate/guest_memory.h"

namespace vmrr::testing {

// Physical layout used by every flat machine (all below 64 KiB so 16-bit addressing reaches
// the data and the stack).
inline constexpr uint64_t kGdtBase = 0x1000;
inline constexpr uint64_t kIdtBase = 0x2000;      // 256 gates (16 bytes in long mode, 8 else)
inline constexpr uint64_t kFaultStubs = 0x3000;   // vector v's handler is a HLT at 0x3000+v
inline constexpr uint64_t kPml4Base = 0x4000;     // PML4, PDPT at +0x1000, PD at +0x2000
inline constexpr uint64_t kDataBase = 0x8000;     // 8 KiB compared by the diff test
inline constexpr uint64_t kDataSize = 0x2000;
inline constexpr uint64_t kStackBase = 0xa000;    // 4 KiB stack page
inline constexpr uint64_t kStackSize = 0x1000;
inline constexpr uint64_t kStackTop = 0xa800;     // initial RSP (room for pushes and pops)
inline constexpr uint64_t kCodeBase = 0xb000;     // up to 16 KiB of code
inline constexpr uint64_t kCodeSize = 0x4000;
inline constexpr uint64_t kTssBase = 0xf000;

inline constexpr uint16_t kSelCode = 0x08, kSelData = 0x10, kSelCode32 = 0x18,
                          kSelCode16 = 0x20, kSelData16 = 0x28, kSelTss = 0x30,
                          kSelUserCode32 = 0x40, kSelUserData = 0x48, kSelUserCode = 0x50;
inline constexpr uint16_t kGdtLimit = 0x57;

enum class FlatMode : uint8_t { kReal, kProt16, kProt32, kProt32Paged, kLong64 };

inline const char* FlatModeName(FlatMode m) {
  switch (m) {
    case FlatMode::kReal: return "real";
    case FlatMode::kProt16: return "prot16";
    case FlatMode::kProt32: return "prot32";
    case FlatMode::kProt32Paged: return "prot32-paged";
    case FlatMode::kLong64: return "long64";
  }
  return "?";
}

// A platform with RAM only. Interrupt vectors come from a script; port writes are logged.
class TestPlatform : public CpuPlatform {
 public:
  explicit TestPlatform(uint64_t ram_bytes) : mem_(ram_bytes) {}
  GuestMemory& memory() override { return mem_; }
  uint8_t AckInterrupt() override {
    ++acks;
    return next_vector;
  }
  void PortOut(uint16_t port, unsigned size, uint32_t value) override {
    outs.push_back({port, size, value});
  }
  uint32_t PortIn(uint16_t port, unsigned size) override {
    (void)port;
    return size >= 4 ? port_in_value : port_in_value & ((1u << (8 * size)) - 1);
  }
  uint64_t ReadTsc() override { return tsc; }

  struct PortWrite {
    uint16_t port;
    unsigned size;
    uint32_t value;
  };
  uint8_t next_vector = 0x20;
  uint64_t acks = 0;
  uint32_t port_in_value = 0xffffffffu;
  uint64_t tsc = 0;
  std::vector<PortWrite> outs;

 private:
  GuestMemory mem_;
};

inline void Put64(GuestMemory& m, uint64_t gpa, uint64_t v) { m.Write(gpa, &v, 8); }
inline void Put32(GuestMemory& m, uint64_t gpa, uint32_t v) { m.Write(gpa, &v, 4); }
inline uint64_t Get64(const GuestMemory& m, uint64_t gpa) {
  uint64_t v = 0;
  m.Read(gpa, &v, 8);
  return v;
}

// GDT: null, 64-bit code, flat data, 32-bit code, 16-bit code, 16-bit data, 64-bit TSS,
// then the user (DPL 3) segments in the order SYSRET expects from STAR[63:48] = 0x40:
// 32-bit code, data, 64-bit code.
inline void WriteGdt(GuestMemory& m) {
  Put64(m, kGdtBase + 0x00, 0);
  Put64(m, kGdtBase + 0x08, 0x00af9a000000ffffull);
  Put64(m, kGdtBase + 0x10, 0x00cf92000000ffffull);
  Put64(m, kGdtBase + 0x18, 0x00cf9a000000ffffull);
  Put64(m, kGdtBase + 0x20, 0x00009a000000ffffull);
  Put64(m, kGdtBase + 0x28, 0x000092000000ffffull);
  // Available 64-bit TSS (type 9) at kTssBase, limit 0x67.
  const uint64_t b = kTssBase;
  Put64(m, kGdtBase + 0x30, 0x67 | ((b & 0xffffff) << 16) | (uint64_t{0x89} << 40) |
                                ((b >> 24) & 0xff) << 56);
  Put64(m, kGdtBase + 0x38, b >> 32);
  Put64(m, kGdtBase + 0x40, 0x00cffa000000ffffull);
  Put64(m, kGdtBase + 0x48, 0x00cff2000000ffffull);
  Put64(m, kGdtBase + 0x50, 0x00affa000000ffffull);
}

// IDT whose every vector v enters a ring-0 interrupt gate at kFaultStubs + v (a HLT).
inline void WriteIdt(GuestMemory& m, bool long_mode, uint16_t code_sel) {
  for (unsigned v = 0; v < 256; ++v) {
    const uint64_t off = kFaultStubs + v;
    const uint64_t lo = (off & 0xffff) | (uint64_t{code_sel} << 16) | (uint64_t{0x8e} << 40) |
                        ((off >> 16) & 0xffff) << 48;
    if (long_mode) {
      Put64(m, kIdtBase + v * 16, lo);
      Put64(m, kIdtBase + v * 16 + 8, off >> 32);
    } else {
      Put64(m, kIdtBase + v * 8, lo);
    }
    const uint8_t hlt = 0xf4;
    m.Write(kFaultStubs + v, &hlt, 1);
  }
}

// Identity map of the first 1 GiB with 2 MiB pages (4-level for long mode).
inline void WritePageTables64(GuestMemory& m) {
  Put64(m, kPml4Base, (kPml4Base + 0x1000) | 0x7);
  Put64(m, kPml4Base + 0x1000, (kPml4Base + 0x2000) | 0x7);
  for (uint64_t i = 0; i < 512; ++i) Put64(m, kPml4Base + 0x2000 + i * 8, (i << 21) | 0x87);
}
// 32-bit paging, identity map of the first 4 GiB with 4 MiB pages (CR4.PSE).
inline void WritePageTables32(GuestMemory& m) {
  for (uint32_t i = 0; i < 1024; ++i) Put32(m, kPml4Base + i * 4, (i << 22) | 0x87);
}

inline Segment FlatSeg(uint16_t sel, uint16_t attr, uint32_t limit = 0xffffffffu) {
  return Segment{sel, attr, limit, 0};
}

// Builds GDT/IDT/page tables in memory and returns a CPL0 state in the given mode with
// RIP = kCodeBase, RSP = kStackTop, IF = 0.
inline CpuState MakeFlatState(FlatMode mode, GuestMemory& m) {
  CpuState s;
  s.rflags = 2;
  s.rip = kCodeBase;
  s.gpr[kRsp] = kStackTop;
  s.cr0 = 0x60000010;
  s.dr[6] = 0xffff0ff0;
  s.dr[7] = 0x400;
  s.pat = 0x0007040600070406ull;
  s.apic_base = 0xfee00900;
  s.ldtr = Segment{0, 0x82, 0xffff, 0};
  s.tr = Segment{kSelTss, 0x8b, 0x67, kTssBase};
  WriteGdt(m);
  s.gdtr = {kGdtBase, kGdtLimit};
  switch (mode) {
    case FlatMode::kReal:
      for (auto& g : s.seg) g = Segment{0, 0x93, 0xffff, 0};
      s.seg[kCs] = Segment{0, 0x9b, 0xffff, 0};
      s.idtr = {0, 0x3ff};
      // Real-mode IVT: vector v -> 0000:(kFaultStubs + v).
      for (unsigned v = 0; v < 256; ++v) {
        Put32(m, v * 4, static_cast<uint32_t>(kFaultStubs + v));
        const uint8_t hlt = 0xf4;
        m.Write(kFaultStubs + v, &hlt, 1);
      }
      s.tr = Segment{0, 0x8b, 0xffff, 0};
      break;
    case FlatMode::kProt16:
      s.cr0 = 0x60000011;
      for (auto& g : s.seg) g = Segment{kSelData16, 0x93, 0xffff, 0};
      s.seg[kCs] = Segment{kSelCode16, 0x9b, 0xffff, 0};
      WriteIdt(m, false, kSelCode32);
      s.idtr = {kIdtBase, 256 * 8 - 1};
      break;
    case FlatMode::kProt32:
    case FlatMode::kProt32Paged:
      s.cr0 = 0x60000011;
      for (auto& g : s.seg) g = FlatSeg(kSelData, 0xc093);
      s.seg[kCs] = FlatSeg(kSelCode32, 0xc09b);
      WriteIdt(m, false, kSelCode32);
      s.idtr = {kIdtBase, 256 * 8 - 1};
      if (mode == FlatMode::kProt32Paged) {
        WritePageTables32(m);
        s.cr3 = kPml4Base;
        s.cr4 = 0x10;  // PSE
        s.cr0 = 0x80000011 | 0x10000;  // PG, WP, ET, PE
      }
      break;
    case FlatMode::kLong64:
      s.cr0 = 0x80010031;  // PG, WP, NE, ET, PE
      s.cr4 = 0x20;        // PAE
      s.efer = 0x500;      // LME, LMA
      s.cr3 = kPml4Base;
      WritePageTables64(m);
      for (auto& g : s.seg) g = FlatSeg(kSelData, 0xc093);
      s.seg[kCs] = FlatSeg(kSelCode, 0xa09b);
      WriteIdt(m, true, kSelCode);
      s.idtr = {kIdtBase, 256 * 16 - 1};
      s.tr = Segment{kSelTss, 0x8b, 0x67, kTssBase};
      break;
  }
  return s;
}

}  // namespace vmrr::testing
