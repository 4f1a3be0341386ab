#include "analysis/gdb_target.h"

#include <algorithm>
#include <cstring>

#include "analysis/gdb_packet.h"

namespace vmrr::analysis {
namespace {

// The first four features follow gdb's own features/i386/64bit-{core,sse,segments}.xml, whose
// register names gdb's amd64 code looks up (a missing or misspelt one makes gdb reject the
// whole description). The vec128 union leaves out gdb 12's bfloat16 and half vectors, which
// older gdbs do not know. gdb's DTD wants a feature's types before its registers. The system
// registers use QEMU's names (k_gs_base, cr0, ..., efer); gdb knows no feature for them and
// simply adds them as extra registers.
constexpr std::string_view kTargetXml = R"(<?xml version="1.0"?>
<!DOCTYPE target SYSTEM "gdb-target.dtd">
<target version="1.0">
<architecture>i386:x86-64</architecture>
<feature name="org.gnu.gdb.i386.core">
  <flags id="i386_eflags" size="4">
    <field name="CF" start="0" end="0"/>
    <field name="" start="1" end="1"/>
    <field name="PF" start="2" end="2"/>
    <field name="AF" start="4" end="4"/>
    <field name="ZF" start="6" end="6"/>
    <field name="SF" start="7" end="7"/>
    <field name="TF" start="8" end="8"/>
    <field name="IF" start="9" end="9"/>
    <field name="DF" start="10" end="10"/>
    <field name="OF" start="11" end="11"/>
    <field name="NT" start="14" end="14"/>
    <field name="RF" start="16" end="16"/>
    <field name="VM" start="17" end="17"/>
    <field name="AC" start="18" end="18"/>
    <field name="VIF" start="19" end="19"/>
    <field name="VIP" start="20" end="20"/>
    <field name="ID" start="21" end="21"/>
  </flags>
  <reg name="rax" bitsize="64" type="int64"/>
  <reg name="rbx" bitsize="64" type="int64"/>
  <reg name="rcx" bitsize="64" type="int64"/>
  <reg name="rdx" bitsize="64" type="int64"/>
  <reg name="rsi" bitsize="64" type="int64"/>
  <reg name="rdi" bitsize="64" type="int64"/>
  <reg name="rbp" bitsize="64" type="data_ptr"/>
  <reg name="rsp" bitsize="64" type="data_ptr"/>
  <reg name="r8" bitsize="64" type="int64"/>
  <reg name="r9" bitsize="64" type="int64"/>
  <reg name="r10" bitsize="64" type="int64"/>
  <reg name="r11" bitsize="64" type="int64"/>
  <reg name="r12" bitsize="64" type="int64"/>
  <reg name="r13" bitsize="64" type="int64"/>
  <reg name="r14" bitsize="64" type="int64"/>
  <reg name="r15" bitsize="64" type="int64"/>
  <reg name="rip" bitsize="64" type="code_ptr"/>
  <reg name="eflags" bitsize="32" type="i386_eflags"/>
  <reg name="cs" bitsize="32" type="int32"/>
  <reg name="ss" bitsize="32" type="int32"/>
  <reg name="ds" bitsize="32" type="int32"/>
  <reg name="es" bitsize="32" type="int32"/>
  <reg name="fs" bitsize="32" type="int32"/>
  <reg name="gs" bitsize="32" type="int32"/>
  <reg name="st0" bitsize="80" type="i387_ext"/>
  <reg name="st1" bitsize="80" type="i387_ext"/>
  <reg name="st2" bitsize="80" type="i387_ext"/>
  <reg name="st3" bitsize="80" type="i387_ext"/>
  <reg name="st4" bitsize="80" type="i387_ext"/>
  <reg name="st5" bitsize="80" type="i387_ext"/>
  <reg name="st6" bitsize="80" type="i387_ext"/>
  <reg name="st7" bitsize="80" type="i387_ext"/>
  <reg name="fctrl" bitsize="32" type="int" group="float"/>
  <reg name="fstat" bitsize="32" type="int" group="float"/>
  <reg name="ftag" bitsize="32" type="int" group="float"/>
  <reg name="fiseg" bitsize="32" type="int" group="float"/>
  <reg name="fioff" bitsize="32" type="int" group="float"/>
  <reg name="foseg" bitsize="32" type="int" group="float"/>
  <reg name="fooff" bitsize="32" type="int" group="float"/>
  <reg name="fop" bitsize="32" type="int" group="float"/>
</feature>
<feature name="org.gnu.gdb.i386.sse">
  <vector id="v4f" type="ieee_single" count="4"/>
  <vector id="v2d" type="ieee_double" count="2"/>
  <vector id="v16i8" type="int8" count="16"/>
  <vector id="v8i16" type="int16" count="8"/>
  <vector id="v4i32" type="int32" count="4"/>
  <vector id="v2i64" type="int64" count="2"/>
  <union id="vec128">
    <field name="v4_float" type="v4f"/>
    <field name="v2_double" type="v2d"/>
    <field name="v16_int8" type="v16i8"/>
    <field name="v8_int16" type="v8i16"/>
    <field name="v4_int32" type="v4i32"/>
    <field name="v2_int64" type="v2i64"/>
    <field name="uint128" type="uint128"/>
  </union>
  <flags id="i386_mxcsr" size="4">
    <field name="IE" start="0" end="0"/>
    <field name="DE" start="1" end="1"/>
    <field name="ZE" start="2" end="2"/>
    <field name="OE" start="3" end="3"/>
    <field name="UE" start="4" end="4"/>
    <field name="PE" start="5" end="5"/>
    <field name="DAZ" start="6" end="6"/>
    <field name="IM" start="7" end="7"/>
    <field name="DM" start="8" end="8"/>
    <field name="ZM" start="9" end="9"/>
    <field name="OM" start="10" end="10"/>
    <field name="UM" start="11" end="11"/>
    <field name="PM" start="12" end="12"/>
    <field name="FZ" start="15" end="15"/>
  </flags>
  <reg name="xmm0" bitsize="128" type="vec128"/>
  <reg name="xmm1" bitsize="128" type="vec128"/>
  <reg name="xmm2" bitsize="128" type="vec128"/>
  <reg name="xmm3" bitsize="128" type="vec128"/>
  <reg name="xmm4" bitsize="128" type="vec128"/>
  <reg name="xmm5" bitsize="128" type="vec128"/>
  <reg name="xmm6" bitsize="128" type="vec128"/>
  <reg name="xmm7" bitsize="128" type="vec128"/>
  <reg name="xmm8" bitsize="128" type="vec128"/>
  <reg name="xmm9" bitsize="128" type="vec128"/>
  <reg name="xmm10" bitsize="128" type="vec128"/>
  <reg name="xmm11" bitsize="128" type="vec128"/>
  <reg name="xmm12" bitsize="128" type="vec128"/>
  <reg name="xmm13" bitsize="128" type="vec128"/>
  <reg name="xmm14" bitsize="128" type="vec128"/>
  <reg name="xmm15" bitsize="128" type="vec128"/>
  <reg name="mxcsr" bitsize="32" type="i386_mxcsr" group="vector"/>
</feature>
<feature name="org.gnu.gdb.i386.segments">
  <reg name="fs_base" bitsize="64" type="int"/>
  <reg name="gs_base" bitsize="64" type="int"/>
</feature>
<feature name="org.vmrr.gdb.i386.system">
  <flags id="i386_cr0" size="8">
    <field name="PE" start="0" end="0"/>
    <field name="MP" start="1" end="1"/>
    <field name="EM" start="2" end="2"/>
    <field name="TS" start="3" end="3"/>
    <field name="ET" start="4" end="4"/>
    <field name="NE" start="5" end="5"/>
    <field name="WP" start="16" end="16"/>
    <field name="AM" start="18" end="18"/>
    <field name="NW" start="29" end="29"/>
    <field name="CD" start="30" end="30"/>
    <field name="PG" start="31" end="31"/>
  </flags>
  <flags id="i386_cr4" size="8">
    <field name="VME" start="0" end="0"/>
    <field name="PVI" start="1" end="1"/>
    <field name="TSD" start="2" end="2"/>
    <field name="DE" start="3" end="3"/>
    <field name="PSE" start="4" end="4"/>
    <field name="PAE" start="5" end="5"/>
    <field name="MCE" start="6" end="6"/>
    <field name="PGE" start="7" end="7"/>
    <field name="PCE" start="8" end="8"/>
    <field name="OSFXSR" start="9" end="9"/>
    <field name="OSXMMEXCPT" start="10" end="10"/>
    <field name="UMIP" start="11" end="11"/>
    <field name="LA57" start="12" end="12"/>
    <field name="VMXE" start="13" end="13"/>
    <field name="SMXE" start="14" end="14"/>
    <field name="FSGSBASE" start="16" end="16"/>
    <field name="PCIDE" start="17" end="17"/>
    <field name="OSXSAVE" start="18" end="18"/>
    <field name="SMEP" start="20" end="20"/>
    <field name="SMAP" start="21" end="21"/>
    <field name="PKE" start="22" end="22"/>
  </flags>
  <flags id="i386_efer" size="8">
    <field name="SCE" start="0" end="0"/>
    <field name="LME" start="8" end="8"/>
    <field name="LMA" start="10" end="10"/>
    <field name="NXE" start="11" end="11"/>
    <field name="SVME" start="12" end="12"/>
    <field name="LMSLE" start="13" end="13"/>
    <field name="FFXSR" start="14" end="14"/>
    <field name="TCE" start="15" end="15"/>
  </flags>
  <reg name="k_gs_base" bitsize="64" type="int" group="system"/>
  <reg name="cr0" bitsize="64" type="i386_cr0" group="system"/>
  <reg name="cr2" bitsize="64" type="code_ptr" group="system"/>
  <reg name="cr3" bitsize="64" type="int" group="system"/>
  <reg name="cr4" bitsize="64" type="i386_cr4" group="system"/>
  <reg name="cr8" bitsize="64" type="int" group="system"/>
  <reg name="efer" bitsize="64" type="i386_efer" group="system"/>
</feature>
</target>
)";

struct RegDef {
  std::string_view name;
  unsigned bitsize;
};

// The description's registers in order; the test checks this against kTargetXml and gdb.
constexpr RegDef kDefs[] = {
    {"rax", 64},     {"rbx", 64},   {"rcx", 64},    {"rdx", 64},   {"rsi", 64},    {"rdi", 64},
    {"rbp", 64},     {"rsp", 64},   {"r8", 64},     {"r9", 64},    {"r10", 64},    {"r11", 64},
    {"r12", 64},     {"r13", 64},   {"r14", 64},    {"r15", 64},   {"rip", 64},    {"eflags", 32},
    {"cs", 32},      {"ss", 32},    {"ds", 32},     {"es", 32},    {"fs", 32},     {"gs", 32},
    {"st0", 80},     {"st1", 80},   {"st2", 80},    {"st3", 80},   {"st4", 80},    {"st5", 80},
    {"st6", 80},     {"st7", 80},   {"fctrl", 32},  {"fstat", 32}, {"ftag", 32},   {"fiseg", 32},
    {"fioff", 32},   {"foseg", 32}, {"fooff", 32},  {"fop", 32},   {"xmm0", 128},  {"xmm1", 128},
    {"xmm2", 128},   {"xmm3", 128}, {"xmm4", 128},  {"xmm5", 128}, {"xmm6", 128},  {"xmm7", 128},
    {"xmm8", 128},   {"xmm9", 128}, {"xmm10", 128}, {"xmm11", 128}, {"xmm12", 128}, {"xmm13", 128},
    {"xmm14", 128},  {"xmm15", 128}, {"mxcsr", 32}, {"fs_base", 64}, {"gs_base", 64},
    {"k_gs_base", 64}, {"cr0", 64}, {"cr2", 64},    {"cr3", 64},   {"cr4", 64},    {"cr8", 64},
    {"efer", 64},
};
constexpr size_t kNumRegs = std::size(kDefs);

// Remote register numbers of the groups the encoder treats alike.
constexpr unsigned kRip = 16, kEflags = 17, kSeg0 = 18, kSt0 = 24, kFctrl = 32, kXmm0 = 40,
                   kMxcsr = 56, kFsBase = 57, kGsBase = 58, kKGsBase = 59, kCr0 = 60, kCr2 = 61,
                   kCr3 = 62, kCr4 = 63, kCr8 = 64, kEfer = 65;
static_assert(kEfer + 1 == kNumRegs);

constexpr std::array<GdbRegister, kNumRegs> MakeTable() {
  std::array<GdbRegister, kNumRegs> t{};
  unsigned offset = 0;
  for (unsigned i = 0; i < kNumRegs; ++i) {
    t[i] = GdbRegister{kDefs[i].name, kDefs[i].bitsize, i, offset};
    offset += kDefs[i].bitsize / 8;
  }
  return t;
}
constexpr std::array<GdbRegister, kNumRegs> kTable = MakeTable();
constexpr size_t kGBytes = kTable.back().offset + kTable.back().bitsize / 8;
static_assert(kTable[kRip].name == "rip" && kTable[kEflags].name == "eflags" &&
              kTable[kSeg0].name == "cs" && kTable[kSt0].name == "st0" &&
              kTable[kFctrl].name == "fctrl" && kTable[kXmm0].name == "xmm0" &&
              kTable[kMxcsr].name == "mxcsr" && kTable[kFsBase].name == "fs_base" &&
              kTable[kKGsBase].name == "k_gs_base" && kTable[kEfer].name == "efer");

// gdb numbers the GPRs rax, rbx, rcx, rdx, rsi, rdi, rbp, rsp, r8-r15; CpuState keeps the
// encoding order rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8-r15.
constexpr unsigned kGprIndex[16] = {0, 3, 1, 2, 6, 7, 5, 4, 8, 9, 10, 11, 12, 13, 14, 15};
// gdb: cs, ss, ds, es, fs, gs; CpuState::seg: es, cs, ss, ds, fs, gs.
constexpr unsigned kSegIndex[6] = {1, 2, 3, 0, 4, 5};

void PutLe(uint8_t* out, uint64_t v, unsigned bytes) {
  for (unsigned i = 0; i < bytes; ++i) out[i] = static_cast<uint8_t>(v >> (8 * i));
}

// Writes register `r`'s bytes (kTable[r].bitsize / 8 of them) to `out`; r < kNumRegs.
void RegisterBytes(const CpuState& cpu, const FpuView& fpu, unsigned r, uint8_t* out) {
  const unsigned bytes = kTable[r].bitsize / 8;
  if (r < 16) return PutLe(out, cpu.gpr[kGprIndex[r]], bytes);
  if (r >= kSeg0 && r < kSeg0 + 6) return PutLe(out, cpu.seg[kSegIndex[r - kSeg0]].selector, bytes);
  if (r >= kSt0 && r < kSt0 + 8) {
    std::memcpy(out, fpu.st[r - kSt0].data(), 10);
    return;
  }
  if (r >= kXmm0 && r < kXmm0 + 16) {
    std::memcpy(out, fpu.xmm[r - kXmm0].data(), 16);
    return;
  }
  uint64_t v = 0;
  switch (r) {
    case kRip: v = cpu.rip; break;
    case kEflags: v = cpu.rflags; break;  // bits 32-63 are reserved (zero)
    case kFctrl + 0: v = fpu.fctrl; break;
    case kFctrl + 1: v = fpu.fstat; break;
    case kFctrl + 2: v = fpu.ftag; break;
    case kFctrl + 3: v = fpu.fiseg; break;
    case kFctrl + 4: v = fpu.fioff; break;
    case kFctrl + 5: v = fpu.foseg; break;
    case kFctrl + 6: v = fpu.fooff; break;
    case kFctrl + 7: v = fpu.fop; break;
    case kMxcsr: v = fpu.mxcsr; break;
    case kFsBase: v = cpu.seg[4].base; break;
    case kGsBase: v = cpu.seg[5].base; break;
    case kKGsBase: v = cpu.kernel_gs_base; break;
    case kCr0: v = cpu.cr0; break;
    case kCr2: v = cpu.cr2; break;
    case kCr3: v = cpu.cr3; break;
    case kCr4: v = cpu.cr4; break;
    case kCr8: v = cpu.cr8; break;
    case kEfer: v = cpu.efer; break;
    default: break;
  }
  PutLe(out, v, bytes);
}

}  // namespace

std::span<const GdbRegister> GdbRegisters() { return kTable; }

const GdbRegister* FindGdbRegister(std::string_view name) {
  for (const GdbRegister& r : kTable)
    if (r.name == name) return &r;
  return nullptr;
}

size_t GPacketBytes() { return kGBytes; }

std::string_view TargetXml() { return kTargetXml; }

std::string EncodeGPacket(const CpuState& cpu, const FpuView& fpu) {
  std::array<uint8_t, kGBytes> bytes{};
  for (unsigned r = 0; r < kNumRegs; ++r) RegisterBytes(cpu, fpu, r, bytes.data() + kTable[r].offset);
  return HexEncode(bytes);
}

std::optional<std::string> EncodeRegister(const CpuState& cpu, unsigned regnum, const FpuView& fpu) {
  if (regnum >= kNumRegs) return std::nullopt;
  uint8_t bytes[16];
  RegisterBytes(cpu, fpu, regnum, bytes);
  return HexEncode(std::span<const uint8_t>(bytes, kTable[regnum].bitsize / 8));
}

std::string XferRead(std::string_view document, uint64_t offset, uint64_t length) {
  if (offset >= document.size()) return "l";
  std::string_view chunk = document.substr(offset, std::min<uint64_t>(length, document.size() - offset));
  bool last = offset + chunk.size() == document.size();
  std::string out;
  out.reserve(chunk.size() + 1);
  out.push_back(last ? 'l' : 'm');
  out.append(chunk);
  return out;
}

std::optional<XferRequest> ParseXferFeaturesRead(std::string_view packet) {
  constexpr std::string_view kPrefix = "qXfer:features:read:";
  if (!packet.starts_with(kPrefix)) return std::nullopt;
  packet.remove_prefix(kPrefix.size());
  size_t colon = packet.find(':');
  if (colon == 0 || colon == std::string_view::npos) return std::nullopt;
  auto range = ParseHexList(packet.substr(colon + 1), 2);
  if (!range || (*range)[1] == 0) return std::nullopt;
  return XferRequest{std::string(packet.substr(0, colon)), (*range)[0], (*range)[1]};
}

FpuView FpuViewOf(const CpuState& cpu) {
  FpuView v;
  const unsigned top = (cpu.fsw >> 11) & 7;
  for (unsigned i = 0; i < 8; ++i) {
    const X87Reg& r = cpu.st[(top + i) & 7];
    for (unsigned b = 0; b < 8; ++b) v.st[i][b] = static_cast<uint8_t>(r.mant >> (8 * b));
    v.st[i][8] = static_cast<uint8_t>(r.sign_exp);
    v.st[i][9] = static_cast<uint8_t>(r.sign_exp >> 8);
  }
  uint16_t tag = 0;
  for (unsigned p = 0; p < 8; ++p) {
    const X87Reg& r = cpu.st[p];
    const unsigned exp = r.sign_exp & 0x7fff;
    unsigned t;
    if (!((cpu.ftw >> p) & 1)) t = 3;
    else if (exp == 0x7fff) t = 2;
    else if (exp == 0) t = r.mant == 0 ? 1 : 2;
    else t = (r.mant >> 63) & 1 ? 0 : 2;
    tag |= static_cast<uint16_t>(t << (2 * p));
  }
  v.fctrl = cpu.fcw;
  v.fstat = cpu.fsw;
  v.ftag = tag;
  v.fiseg = cpu.fcs;
  v.fioff = static_cast<uint32_t>(cpu.fip);
  v.foseg = cpu.fds;
  v.fooff = static_cast<uint32_t>(cpu.fdp);
  v.fop = cpu.fop;
  for (unsigned i = 0; i < 16; ++i)
    for (unsigned b = 0; b < 16; ++b) v.xmm[i][b] = static_cast<uint8_t>(cpu.xmm[i][b / 8] >> (8 * (b % 8)));
  v.mxcsr = cpu.mxcsr;
  return v;
}

}  // namespace vmrr::analysis
