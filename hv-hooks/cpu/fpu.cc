// x87 / MMX / SSE foundation (issue 11, in progress; see FPU_NOTES.md): the CR0/CR4
// availability rules every x87, MMX, SSE and XSAVE handler checks first, the state
// instructions (FXSAVE/FXRSTOR, XSAVE/XRSTOR/XSAVEOPT, XGETBV/XSETBV, FNINIT, FNSTCW, FLDCW,
// FNSTSW, FNCLEX, FWAIT, STMXCSR, LDMXCSR, EMMS) and the plain data moves (MOVD/MOVQ,
// MOVDQA/MOVDQU/MOVAPS/MOVUPS/MOVAPD/MOVUPD, PXOR/POR/PAND/PANDN). SSE/SSE2 arithmetic and
// integer SIMD are in sse.cc. CPUID advertises none of it.
#include <Zydis/Zydis.h>

#include <cstring>

#include "hv-hooks/cpu/core.h"
#include "hv-hooks/cpu/xmm_mem.h"

namespace vmrr {

namespace {
constexpr uint64_t kCr0Mp = 2, kCr0Em = 4, kCr0Ts = 8, kCr0Ne = 32;
constexpr uint64_t kCr4Osfxsr = 1u << 9, kCr4Osxsave = 1u << 18;
constexpr uint16_t kFswEs = 0x80;

// A pending unmasked x87 exception (FSW.ES) is reported at the next waiting instruction:
// #MF when CR0.NE=1. With CR0.NE=0 the PC-compatible FERR#/IRQ 13 path applies, which this
// machine does not wire: the exception stays pending and the instruction runs.
bool NoPendingX87(CpuCore& c) {
  if ((c.s.fsw & kFswEs) && (c.s.cr0 & kCr0Ne)) {
    c.FaultNoErr(16);
    return false;
  }
  return true;
}
}  // namespace

// SDM Vol. 3 Table 2-2 / 12-? / 13-? ("Action taken for combinations of EM, MP, TS").
bool CheckFpuAvailable(CpuCore& c) {
  if (c.s.cr0 & (kCr0Em | kCr0Ts)) {
    c.FaultNoErr(7);
    return false;
  }
  return true;
}
bool CheckFpuAvailableWaiting(CpuCore& c) { return CheckFpuAvailable(c) && NoPendingX87(c); }
bool CheckWaitAvailable(CpuCore& c) {
  if ((c.s.cr0 & (kCr0Mp | kCr0Ts)) == (kCr0Mp | kCr0Ts)) {
    c.FaultNoErr(7);
    return false;
  }
  return NoPendingX87(c);
}
bool CheckMmxAvailable(CpuCore& c) {
  if (c.s.cr0 & kCr0Em) {
    c.Ud();
    return false;
  }
  if (c.s.cr0 & kCr0Ts) {
    c.FaultNoErr(7);
    return false;
  }
  return NoPendingX87(c);
}
bool CheckSseAvailableSlow(CpuCore& c) {
  if ((c.s.cr0 & kCr0Em) || !(c.s.cr4 & kCr4Osfxsr)) {
    c.Ud();
    return false;
  }
  if (c.s.cr0 & kCr0Ts) {
    c.FaultNoErr(7);
    return false;
  }
  return true;
}
bool CheckFxsrAvailable(CpuCore& c) { return CheckFpuAvailable(c); }
bool CheckXsaveAvailable(CpuCore& c) {
  if (!(c.s.cr4 & kCr4Osxsave)) {
    c.Ud();
    return false;
  }
  if (c.s.cr0 & kCr0Ts) {
    c.FaultNoErr(7);
    return false;
  }
  return true;
}

// A control word loaded from memory (FLDCW, FXRSTOR, XRSTOR): the reserved bits 7 and 13-15
// read as 0 and bit 6 as 1, as the hardware stores them (FLDCW FFFFH then FNSTCW gives 1F7FH
// on Intel; seen in the differential test against the host CPU).
uint16_t FcwFromMemory(uint16_t v) { return static_cast<uint16_t>((v & 0x1f3f) | 0x40); }

// Every MMX instruction but EMMS: TOP = 0 and every tag valid (SDM Vol. 1 9.5.1).
void MmxTransition(CpuState& s) {
  s.fsw &= static_cast<uint16_t>(~(7u << 11));
  s.ftw = 0xff;
}
void SetMmx(CpuState& s, unsigned r, uint64_t v) {
  s.st[r].mant = v;
  s.st[r].sign_exp = 0xffff;
}

void FpuInit(CpuState& s) {
  s.fcw = kFcwInit;
  s.fsw = 0;
  s.ftw = 0;
  s.fop = 0;
  s.fip = s.fdp = 0;
  s.fcs = s.fds = 0;
}

namespace {

// ---- memory helpers ---------------------------------------------------------------------

// The linear address of a memory operand, with the segment checks for size bytes and an
// alignment #GP(0) when align != 0. false = fault pending.
bool MemLinear(CpuCore& c, const Op& op, const Operand& o, unsigned size, Access acc,
               unsigned align, uint64_t* lin) {
  const uint64_t off = c.EffectiveAddress(op, o);
  if (!c.Linear(o.seg, off, size, acc, lin)) return false;
  if (align && (*lin & (align - 1))) {
    c.Gp(0);
    return false;
  }
  if (acc == kWrite && !c.ProbeWrite(o.seg, off, size)) return false;
  return true;
}

bool Read128(CpuCore& c, const Op& op, const Operand& o, bool aligned, uint64_t v[2]) {
  if (o.kind == kOpXmm) {
    v[0] = c.s.xmm[o.reg][0];
    v[1] = c.s.xmm[o.reg][1];
    return true;
  }
  if (XmmFastRead(c, op, o, 16, aligned ? 16 : 0, v)) return true;
  uint64_t lin;
  return MemLinear(c, op, o, 16, kRead, aligned ? 16 : 0, &lin) && c.ReadLin(lin, 8, &v[0]) &&
         c.ReadLin(lin + 8, 8, &v[1]);
}

bool Write128(CpuCore& c, const Op& op, const Operand& o, bool aligned, const uint64_t v[2]) {
  if (o.kind == kOpXmm) {
    c.s.xmm[o.reg][0] = v[0];
    c.s.xmm[o.reg][1] = v[1];
    return true;
  }
  if (XmmFastWrite(c, op, o, 16, aligned ? 16 : 0, v)) return true;
  uint64_t lin;
  return MemLinear(c, op, o, 16, kWrite, aligned ? 16 : 0, &lin) && c.WriteLin(lin, 8, v[0]) &&
         c.WriteLin(lin + 8, 8, v[1]);
}

// Bytes [from, to) of a save area at lin, in 8-byte units (every range used is 8-aligned).
bool WriteArea(CpuCore& c, uint64_t lin, const uint8_t* img, unsigned from, unsigned to) {
  for (unsigned i = from; i < to; i += 8) {
    uint64_t v;
    std::memcpy(&v, img + i, 8);
    if (!c.WriteLin(lin + i, 8, v)) return false;
  }
  return true;
}
bool ReadArea(CpuCore& c, uint64_t lin, uint8_t* img, unsigned from, unsigned to) {
  for (unsigned i = from; i < to; i += 8) {
    uint64_t v;
    if (!c.ReadLin(lin + i, 8, &v)) return false;
    std::memcpy(img + i, &v, 8);
  }
  return true;
}

template <typename T>
void Put(uint8_t* img, unsigned at, T v) { std::memcpy(img + at, &v, sizeof v); }
template <typename T>
T Get(const uint8_t* img, unsigned at) {
  T v;
  std::memcpy(&v, img + at, sizeof v);
  return v;
}

unsigned Top(const CpuState& s) { return (s.fsw >> 11) & 7; }

// ---- the FXSAVE image (SDM Vol. 1 10.5.1, Tables 10-2 and 10-3) --------------------------
// Bytes 0-23 and 32-159 are the x87 part, 24-31 MXCSR and MXCSR_MASK, 160-415 XMM0-15
// (XMM0-7 outside 64-bit mode). wide = the REX.W layout (64-bit FIP/FDP, no FCS/FDS).
// Reserved bytes of the x87 part are written as zeros; 416-511 are never written.
void BuildLegacyImage(const CpuState& s, bool wide, uint8_t* img) {
  Put<uint16_t>(img, 0, s.fcw);
  Put<uint16_t>(img, 2, s.fsw);
  Put<uint8_t>(img, 4, s.ftw);
  Put<uint8_t>(img, 5, 0);
  Put<uint16_t>(img, 6, s.fop);
  if (wide) {
    Put<uint64_t>(img, 8, s.fip);
    Put<uint64_t>(img, 16, s.fdp);
  } else {
    Put<uint32_t>(img, 8, static_cast<uint32_t>(s.fip));
    Put<uint16_t>(img, 12, s.fcs);
    Put<uint16_t>(img, 14, 0);
    Put<uint32_t>(img, 16, static_cast<uint32_t>(s.fdp));
    Put<uint16_t>(img, 20, s.fds);
    Put<uint16_t>(img, 22, 0);
  }
  Put<uint32_t>(img, 24, s.mxcsr);
  Put<uint32_t>(img, 28, kMxcsrMask);
  const unsigned top = Top(s);
  for (unsigned i = 0; i < 8; ++i) {  // ST(i) order
    const X87Reg& r = s.st[(top + i) & 7];
    Put<uint64_t>(img, 32 + 16 * i, r.mant);
    Put<uint16_t>(img, 40 + 16 * i, r.sign_exp);
    std::memset(img + 42 + 16 * i, 0, 6);
  }
  for (unsigned i = 0; i < 16; ++i) {
    Put<uint64_t>(img, 160 + 16 * i, s.xmm[i][0]);
    Put<uint64_t>(img, 168 + 16 * i, s.xmm[i][1]);
  }
}

void LoadX87FromImage(CpuState& s, bool wide, const uint8_t* img) {
  s.fcw = FcwFromMemory(Get<uint16_t>(img, 0));
  // ES and B are not loaded but recomputed from the flags and masks, as the hardware does
  // (FXRSTOR of FSW 8000H with FCW 037FH then FNSTSW gives 0000H; FSW 0001H with FCW 037EH
  // gives 8081H; seen in the differential test against the host CPU).
  s.fsw = Get<uint16_t>(img, 2) & 0x7f7f;
  if (s.fsw & ~s.fcw & 0x3f) s.fsw |= 0x8080;
  s.ftw = Get<uint8_t>(img, 4);
  s.fop = Get<uint16_t>(img, 6) & 0x7ff;
  if (wide) {
    s.fip = Get<uint64_t>(img, 8);
    s.fdp = Get<uint64_t>(img, 16);
    s.fcs = s.fds = 0;  // as on processors that deprecate FCS/FDS
  } else {
    s.fip = Get<uint32_t>(img, 8);
    s.fcs = Get<uint16_t>(img, 12);
    s.fdp = Get<uint32_t>(img, 16);
    s.fds = Get<uint16_t>(img, 20);
  }
  const unsigned top = Top(s);
  for (unsigned i = 0; i < 8; ++i) {
    X87Reg& r = s.st[(top + i) & 7];
    r.mant = Get<uint64_t>(img, 32 + 16 * i);
    r.sign_exp = Get<uint16_t>(img, 40 + 16 * i);
  }
}

void LoadXmmFromImage(CpuState& s, unsigned nxmm, const uint8_t* img) {
  for (unsigned i = 0; i < nxmm; ++i) {
    s.xmm[i][0] = Get<uint64_t>(img, 160 + 16 * i);
    s.xmm[i][1] = Get<uint64_t>(img, 168 + 16 * i);
  }
}

bool WideForm(const Op& op) {
  switch (op.mnemonic) {
    case ZYDIS_MNEMONIC_FXSAVE64: case ZYDIS_MNEMONIC_FXRSTOR64: case ZYDIS_MNEMONIC_XSAVE64:
    case ZYDIS_MNEMONIC_XRSTOR64: case ZYDIS_MNEMONIC_XSAVEOPT64:
      return true;
    default:
      return false;
  }
}

// ---- FXSAVE / FXRSTOR ---------------------------------------------------------------------
// XMM and MXCSR are saved and restored whatever CR4.OSFXSR says (the SDM leaves it to the
// implementation; this one always does).

void OpFxsave(CpuCore& c, const Op& op) {
  if (!CheckFxsrAvailable(c)) return;
  uint64_t lin;
  if (!MemLinear(c, op, op.o[0], 512, kWrite, 16, &lin)) return;
  uint8_t img[512];
  BuildLegacyImage(c.s, WideForm(op), img);
  WriteArea(c, lin, img, 0, c.long64() ? 416 : 288);
}

void OpFxrstor(CpuCore& c, const Op& op) {
  if (!CheckFxsrAvailable(c)) return;
  uint64_t lin;
  if (!MemLinear(c, op, op.o[0], 512, kRead, 16, &lin)) return;
  uint8_t img[512];
  const unsigned end = c.long64() ? 416 : 288;
  if (!ReadArea(c, lin, img, 0, end)) return;
  const uint32_t mxcsr = Get<uint32_t>(img, 24);
  if (mxcsr & ~kMxcsrMask) return c.Gp(0);
  LoadX87FromImage(c.s, WideForm(op), img);
  c.s.mxcsr = mxcsr;
  LoadXmmFromImage(c.s, c.long64() ? 16 : 8, img);
}

// ---- XSAVE family (SDM Vol. 1 ch. 13, standard form only) ---------------------------------
// XINUSE is reported as 1 for every enabled component (the SDM allows it), so XSAVEOPT
// saves exactly what XSAVE saves. The header's XCOMP_BV and reserved bytes are not written.

uint64_t Rfbm(const CpuCore& c) {
  return ((c.s.gpr[kRdx] << 32) | (c.s.gpr[kRax] & 0xffffffffu)) & c.s.xcr0;
}

void OpXsave(CpuCore& c, const Op& op) {
  if (!CheckXsaveAvailable(c)) return;
  uint64_t lin;
  if (!MemLinear(c, op, op.o[0], 576, kWrite, 64, &lin)) return;
  uint64_t xstate_bv;
  if (!c.ReadLin(lin + 512, 8, &xstate_bv)) return;
  const uint64_t rfbm = Rfbm(c);
  uint8_t img[512];
  BuildLegacyImage(c.s, WideForm(op), img);
  if (rfbm & 1) {
    if (!WriteArea(c, lin, img, 0, 24) || !WriteArea(c, lin, img, 32, 160)) return;
  }
  if (rfbm & 2) {
    if (!WriteArea(c, lin, img, 24, 32) || !WriteArea(c, lin, img, 160, c.long64() ? 416 : 288))
      return;
  }
  xstate_bv = (xstate_bv & ~rfbm) | rfbm;  // XINUSE = 1 for every requested component
  c.WriteLin(lin + 512, 8, xstate_bv);
}

void OpXrstor(CpuCore& c, const Op& op) {
  if (!CheckXsaveAvailable(c)) return;
  uint64_t lin;
  if (!MemLinear(c, op, op.o[0], 576, kRead, 64, &lin)) return;
  uint8_t img[576];
  if (!ReadArea(c, lin, img, 512, 576)) return;
  const uint64_t xstate_bv = Get<uint64_t>(img, 512);
  // Standard form: XSTATE_BV within XCR0, XCOMP_BV (bytes 8-15) and bytes 16-23 of the
  // header zero (no compaction support).
  if ((xstate_bv & ~c.s.xcr0) || Get<uint64_t>(img, 520) || Get<uint64_t>(img, 528)) return c.Gp(0);
  const uint64_t rfbm = Rfbm(c);
  if (!ReadArea(c, lin, img, 0, c.long64() ? 416 : 288)) return;
  const uint32_t mxcsr = Get<uint32_t>(img, 24);
  if ((rfbm & 2) && (mxcsr & ~kMxcsrMask)) return c.Gp(0);
  if (rfbm & 1) {
    if (xstate_bv & 1) {
      LoadX87FromImage(c.s, WideForm(op), img);
    } else {
      FpuInit(c.s);
      for (X87Reg& r : c.s.st) r = X87Reg{};
    }
  }
  if (rfbm & 2) {
    c.s.mxcsr = mxcsr;  // loaded whenever RFBM[1] is set, whatever XSTATE_BV[1] says
    if (xstate_bv & 2) {
      LoadXmmFromImage(c.s, c.long64() ? 16 : 8, img);
    } else {
      for (unsigned i = 0; i < (c.long64() ? 16u : 8u); ++i) c.s.xmm[i][0] = c.s.xmm[i][1] = 0;
    }
  }
}

void OpXgetbv(CpuCore& c, const Op&) {
  if (!(c.s.cr4 & kCr4Osxsave)) return c.Ud();
  if ((c.s.gpr[kRcx] & 0xffffffffu) != 0) return c.Gp(0);
  c.s.gpr[kRax] = c.s.xcr0 & 0xffffffffu;
  c.s.gpr[kRdx] = c.s.xcr0 >> 32;
}

void OpXsetbv(CpuCore& c, const Op&) {
  if (!(c.s.cr4 & kCr4Osxsave)) return c.Ud();
  if (c.s.cpl != 0 || c.mode == kModeV86) return c.Gp(0);
  if ((c.s.gpr[kRcx] & 0xffffffffu) != 0) return c.Gp(0);
  const uint64_t v = (c.s.gpr[kRdx] << 32) | (c.s.gpr[kRax] & 0xffffffffu);
  if (!(v & 1) || (v & ~kXcr0Supported)) return c.Gp(0);
  c.s.xcr0 = v;
  c.end_block = true;
}

// ---- x87 control ------------------------------------------------------------------------
// None of these updates FIP/FDP/FOP (SDM Vol. 1 8.1.8: control instructions).

void UpdateEs(CpuState& s) {
  const bool es = (s.fsw & ~s.fcw & 0x3f) != 0;
  s.fsw = static_cast<uint16_t>(es ? s.fsw | 0x8080 : s.fsw & ~0x8080);
}

void OpFninit(CpuCore& c, const Op&) {
  if (!CheckFpuAvailable(c)) return;
  FpuInit(c.s);
}

void OpFnclex(CpuCore& c, const Op&) {
  if (!CheckFpuAvailable(c)) return;
  c.s.fsw &= 0x7f00;  // PE UE OE ZE DE IE, SF, ES and B cleared; C0-C3 and TOP kept
}

void OpFnstcw(CpuCore& c, const Op& op) {
  if (!CheckFpuAvailable(c)) return;
  c.Write(op, op.o[0], c.s.fcw);
}

void OpFnstsw(CpuCore& c, const Op& op) {
  if (!CheckFpuAvailable(c)) return;
  c.Write(op, op.o[0], c.s.fsw);  // m16 or AX
}

void OpFldcw(CpuCore& c, const Op& op) {
  if (!CheckFpuAvailableWaiting(c)) return;
  uint64_t v;
  if (!c.Read(op, op.o[0], &v)) return;
  c.s.fcw = FcwFromMemory(static_cast<uint16_t>(v));
  UpdateEs(c.s);  // unmasking a flagged exception makes it pending
}

void OpFwait(CpuCore& c, const Op&) { CheckWaitAvailable(c); }

// ---- MXCSR ------------------------------------------------------------------------------

void OpStmxcsr(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  c.Write(op, op.o[0], c.s.mxcsr);
}

void OpLdmxcsr(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  uint64_t v;
  if (!c.Read(op, op.o[0], &v)) return;
  if (v & ~uint64_t{kMxcsrMask}) return c.Gp(0);
  c.s.mxcsr = static_cast<uint32_t>(v);
}

// ---- MMX state --------------------------------------------------------------------------


// EMMS: every tag empty and TOP = 0 (SDM Vol. 3 Table 12-1 "Effects of MMX Instructions on
// x87 FPU State"; found by the Unicorn/host differential test, a Xeon sets TOP to 0 too).
void OpEmms(CpuCore& c, const Op&) {
  if (!CheckMmxAvailable(c)) return;
  c.s.fsw &= static_cast<uint16_t>(~(7u << 11));
  c.s.ftw = 0;
}

bool UsesMmx(const Op& op) {
  for (unsigned i = 0; i < op.nops; ++i)
    if (op.o[i].kind == kOpMmx) return true;
  return false;
}

// Reads a 64-bit-or-narrower operand: GPR, memory, MMX register or the low quadword of an
// XMM register.
bool ReadQ(CpuCore& c, const Op& op, const Operand& o, uint64_t* v) {
  switch (o.kind) {
    case kOpMmx: *v = c.s.st[o.reg].mant; return true;
    case kOpXmm: *v = c.s.xmm[o.reg][0]; return true;
    default: {
      uint64_t x;
      if (!c.Read(op, o, &x)) return false;
      *v = x & SizeMask(o.size);
      return true;
    }
  }
}

// MOVD / MOVQ in all their MMX and XMM forms. An XMM destination gets the value
// zero-extended to 128 bits.
void OpMovdq(CpuCore& c, const Op& op) {
  const bool mmx = UsesMmx(op);
  if (!(mmx ? CheckMmxAvailable(c) : CheckSseAvailable(c))) return;
  uint64_t v;
  if (!ReadQ(c, op, op.o[1], &v)) return;
  const Operand& d = op.o[0];
  switch (d.kind) {
    case kOpMmx: SetMmx(c.s, d.reg, v); break;
    case kOpXmm: c.s.xmm[d.reg][0] = v; c.s.xmm[d.reg][1] = 0; break;
    default:
      if (!c.Write(op, d, v)) return;
  }
  if (mmx) MmxTransition(c.s);
}

// 128-bit moves; the aligned forms #GP(0) on a memory operand not 16-byte aligned.
template <bool kAligned>
void OpMov128(CpuCore& c, const Op& op) {
  if (!CheckSseAvailable(c)) return;
  // A load into an XMM register that the TLB serves: straight into the register.
  if (op.o[0].kind == kOpXmm && op.o[1].kind == kOpMem &&
      XmmFastRead(c, op, op.o[1], 16, kAligned ? 16 : 0, c.s.xmm[op.o[0].reg]))
    return;
  uint64_t v[2];
  if (!Read128(c, op, op.o[1], kAligned, v)) return;
  Write128(c, op, op.o[0], kAligned, v);
}

enum Logic { kXor, kOr, kAnd, kAndn };
template <Logic kOp>
uint64_t Apply(uint64_t d, uint64_t s) {
  switch (kOp) {
    case kXor: return d ^ s;
    case kOr: return d | s;
    case kAnd: return d & s;
    case kAndn: return ~d & s;
  }
  return 0;
}

// PXOR/POR/PAND/PANDN, MMX (no alignment) and XMM (legacy SSE: memory 16-byte aligned).
template <Logic kOp>
void OpPlogic(CpuCore& c, const Op& op) {
  if (op.o[0].kind == kOpMmx) {
    if (!CheckMmxAvailable(c)) return;
    uint64_t s;
    if (!ReadQ(c, op, op.o[1], &s)) return;
    SetMmx(c.s, op.o[0].reg, Apply<kOp>(c.s.st[op.o[0].reg].mant, s));
    MmxTransition(c.s);
    return;
  }
  if (!CheckSseAvailable(c)) return;
  uint64_t s[2];
  if (!Read128(c, op, op.o[1], true, s)) return;
  uint64_t* d = c.s.xmm[op.o[0].reg];
  d[0] = Apply<kOp>(d[0], s[0]);
  d[1] = Apply<kOp>(d[1], s[1]);
}

}  // namespace

void RegisterFpu(Handler* t) {
  t[ZYDIS_MNEMONIC_FXSAVE] = OpFxsave;
  t[ZYDIS_MNEMONIC_FXSAVE64] = OpFxsave;
  t[ZYDIS_MNEMONIC_FXRSTOR] = OpFxrstor;
  t[ZYDIS_MNEMONIC_FXRSTOR64] = OpFxrstor;
  t[ZYDIS_MNEMONIC_XSAVE] = OpXsave;
  t[ZYDIS_MNEMONIC_XSAVE64] = OpXsave;
  t[ZYDIS_MNEMONIC_XSAVEOPT] = OpXsave;
  t[ZYDIS_MNEMONIC_XSAVEOPT64] = OpXsave;
  t[ZYDIS_MNEMONIC_XRSTOR] = OpXrstor;
  t[ZYDIS_MNEMONIC_XRSTOR64] = OpXrstor;
  t[ZYDIS_MNEMONIC_XGETBV] = OpXgetbv;
  t[ZYDIS_MNEMONIC_XSETBV] = OpXsetbv;
  t[ZYDIS_MNEMONIC_FNINIT] = OpFninit;
  t[ZYDIS_MNEMONIC_FNCLEX] = OpFnclex;
  t[ZYDIS_MNEMONIC_FNSTCW] = OpFnstcw;
  t[ZYDIS_MNEMONIC_FNSTSW] = OpFnstsw;
  t[ZYDIS_MNEMONIC_FLDCW] = OpFldcw;
  t[ZYDIS_MNEMONIC_FWAIT] = OpFwait;
  t[ZYDIS_MNEMONIC_STMXCSR] = OpStmxcsr;
  t[ZYDIS_MNEMONIC_LDMXCSR] = OpLdmxcsr;
  t[ZYDIS_MNEMONIC_EMMS] = OpEmms;
  t[ZYDIS_MNEMONIC_MOVD] = OpMovdq;
  t[ZYDIS_MNEMONIC_MOVQ] = OpMovdq;
  t[ZYDIS_MNEMONIC_MOVDQA] = OpMov128<true>;
  t[ZYDIS_MNEMONIC_MOVAPS] = OpMov128<true>;
  t[ZYDIS_MNEMONIC_MOVAPD] = OpMov128<true>;
  t[ZYDIS_MNEMONIC_MOVDQU] = OpMov128<false>;
  t[ZYDIS_MNEMONIC_MOVUPS] = OpMov128<false>;
  t[ZYDIS_MNEMONIC_MOVUPD] = OpMov128<false>;
  t[ZYDIS_MNEMONIC_PXOR] = OpPlogic<kXor>;
  t[ZYDIS_MNEMONIC_POR] = OpPlogic<kOr>;
  t[ZYDIS_MNEMONIC_PAND] = OpPlogic<kAnd>;
  t[ZYDIS_MNEMONIC_PANDN] = OpPlogic<kAndn>;
  // The FP-typed forms are the same bit operations (no FP exception, no MXCSR use).
  t[ZYDIS_MNEMONIC_XORPS] = OpPlogic<kXor>;
  t[ZYDIS_MNEMONIC_XORPD] = OpPlogic<kXor>;
  t[ZYDIS_MNEMONIC_ORPS] = OpPlogic<kOr>;
  t[ZYDIS_MNEMONIC_ORPD] = OpPlogic<kOr>;
  t[ZYDIS_MNEMONIC_ANDPS] = OpPlogic<kAnd>;
  t[ZYDIS_MNEMONIC_ANDPD] = OpPlogic<kAnd>;
  t[ZYDIS_MNEMONIC_ANDNPS] = OpPlogic<kAndn>;
  t[ZYDIS_MNEMONIC_ANDNPD] = OpPlogic<kAndn>;
}

}  // namespace vmrr
