// Directed tests of the x87 instruction set (hv-hooks/cpu/x87.cc, FPU_NOTES.md "Branch x87").
//
// Two independent sources of expected values:
//  - hand-written bit patterns from the Intel SDM / IEEE 754 (stack faults, indefinites,
//    constants per rounding mode, 1/3 in each precision, BCD, FXAM classes, compare flags,
//    FPREM quotient bits, environment images byte by byte, unmasked exceptions and #MF,
//    pointers);
//  - the host's own x87 instruction, run here in inline asm written for the test under a
//    control word built here (every exception masked), as the oracle for sweeps over special
//    operands in every rounding and precision control.
#include <cmath>
#include <cstring>
#include <string>

#include "tests/unit/cpu/cpu_test_util.h"

namespace vmrr::testing {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint16_t kIe = 1, kDe = 2, kZe = 4, kOe = 8, kUe = 0x10, kPe = 0x20, kSf = 0x40,
                   kEs = 0x80, kC0 = 0x100, kC1 = 0x200, kC2 = 0x400, kC3 = 0x4000,
                   kB = 0x8000;
constexpr uint64_t kCr0Ne = 32;
constexpr X87Reg kInd{0xc000000000000000ull, 0xffff};

X87Reg R(long double v) {
  X87Reg r;
  std::memcpy(&r.mant, &v, 8);
  std::memcpy(&r.sign_exp, reinterpret_cast<const uint8_t*>(&v) + 8, 2);
  return r;
}
X87Reg Bits(uint16_t se, uint64_t mant) { return X87Reg{mant, se}; }
std::string Hex(const X87Reg& r) {
  char b[40];
  std::snprintf(b, sizeof b, "%04x:%016llx", r.sign_exp, static_cast<unsigned long long>(r.mant));
  return b;
}
#define EXPECT_REG(a, b) EXPECT_EQ(Hex(a), Hex(b))

// ---- the oracle: host x87 instructions under a control word built here ---------------------

struct Ref {
  X87Reg r;
  uint16_t sw;
};
// The references start with C0-C3 = 0 (FLD1; FTST; FSTP: FNCLEX leaves them), as the guest
// runs do: FPREM/FPREM1 with a NaN operand keep C0 and C3 (seen on a Xeon by the differential
// test), so a stale unordered compare would leak into the reference.
#define REF_BIN(NAME, INSN)                                                              \
  Ref NAME(X87Reg a, X87Reg b, uint16_t cw) {                                           \
    Ref out{};                                                                           \
    uint16_t old = 0;                                                                    \
    asm volatile("fnstcw %[old]\n\tfnclex\n\tfld1\n\tftst\n\tfstp %%st(0)\n\t"         \
                 "fldcw %[cw]\n\tfldt %[b]\n\tfldt %[a]\n\t"                           \
                 INSN "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]\n\tfstp %%st(0)\n\t"     \
                 "fldcw %[old]"                                                          \
                 : [r] "=m"(out.r), [sw] "=m"(out.sw), [old] "+m"(old)                   \
                 : [a] "m"(a), [b] "m"(b), [cw] "m"(cw)                                  \
                 : "st", "st(1)");                                                       \
    return out;                                                                          \
  }
REF_BIN(RefAdd, "fadd %%st(1), %%st")
REF_BIN(RefSub, "fsub %%st(1), %%st")
REF_BIN(RefSubr, "fsubr %%st(1), %%st")
REF_BIN(RefMul, "fmul %%st(1), %%st")
REF_BIN(RefDiv, "fdiv %%st(1), %%st")
REF_BIN(RefDivr, "fdivr %%st(1), %%st")
REF_BIN(RefPrem, "fprem")
REF_BIN(RefScale, "fscale")
#undef REF_BIN
#define REF_UN(NAME, INSN)                                                               \
  Ref NAME(X87Reg a, uint16_t cw) {                                                      \
    Ref out{};                                                                           \
    uint16_t old = 0;                                                                    \
    asm volatile("fnstcw %[old]\n\tfnclex\n\tfldcw %[cw]\n\tfldt %[a]\n\t" INSN          \
                 "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]\n\tfldcw %[old]"              \
                 : [r] "=m"(out.r), [sw] "=m"(out.sw), [old] "+m"(old)                   \
                 : [a] "m"(a), [cw] "m"(cw)                                              \
                 : "st");                                                                \
    return out;                                                                          \
  }
REF_UN(RefSqrt, "fsqrt")
REF_UN(RefRndint, "frndint")
#undef REF_UN
// ST(0) = a op m (a memory operand of type T).
#define REF_MEM(NAME, T, INSN)                                                           \
  Ref NAME(X87Reg a, T m, uint16_t cw) {                                                 \
    Ref out{};                                                                           \
    uint16_t old = 0;                                                                    \
    asm volatile("fnstcw %[old]\n\tfnclex\n\tfldcw %[cw]\n\tfldt %[a]\n\t" INSN         \
                 " %[m]\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]\n\tfldcw %[old]"          \
                 : [r] "=m"(out.r), [sw] "=m"(out.sw), [old] "+m"(old)                   \
                 : [a] "m"(a), [m] "m"(m), [cw] "m"(cw)                                  \
                 : "st");                                                                \
    return out;                                                                          \
  }
REF_MEM(RefFadds, uint32_t, "fadds") REF_MEM(RefFsubs, uint32_t, "fsubs")
REF_MEM(RefFsubrs, uint32_t, "fsubrs") REF_MEM(RefFmuls, uint32_t, "fmuls")
REF_MEM(RefFdivs, uint32_t, "fdivs") REF_MEM(RefFdivrs, uint32_t, "fdivrs")
REF_MEM(RefFaddl, uint64_t, "faddl") REF_MEM(RefFsubl, uint64_t, "fsubl")
REF_MEM(RefFmull, uint64_t, "fmull") REF_MEM(RefFdivrl, uint64_t, "fdivrl")
REF_MEM(RefFiadds, uint16_t, "fiadds") REF_MEM(RefFidivl, uint32_t, "fidivl")
REF_MEM(RefFcoms, uint32_t, "fcoms") REF_MEM(RefFcoml, uint64_t, "fcoml")
#undef REF_MEM
// FSW after a compare / FXAM / FPREM of a (ST(0)) and b (ST(1)); eflags for FCOMI forms.
#define REF_CC(NAME, INSN)                                                               \
  Ref NAME(X87Reg a, X87Reg b, uint16_t cw) {                                            \
    Ref out{};                                                                           \
    uint16_t old = 0;                                                                    \
    asm volatile("fnstcw %[old]\n\tfnclex\n\tfld1\n\tftst\n\tfstp %%st(0)\n\t"         \
                 "fldcw %[cw]\n\tfldt %[b]\n\tfldt %[a]\n\t"                           \
                 INSN "\n\tfnstsw %[sw]\n\tfnclex\n\tfstpt %[r]\n\tfstp %%st(0)\n\t"     \
                 "fldcw %[old]"                                                          \
                 : [r] "=m"(out.r), [sw] "=m"(out.sw), [old] "+m"(old)                   \
                 : [a] "m"(a), [b] "m"(b), [cw] "m"(cw)                                  \
                 : "st", "st(1)");                                                       \
    return out;                                                                          \
  }
REF_CC(RefFcom, "fcom %%st(1)") REF_CC(RefFucom, "fucom %%st(1)") REF_CC(RefFxam, "fxam")
REF_CC(RefFtst, "ftst") REF_CC(RefFprem1, "fprem1")
#undef REF_CC
uint64_t RefFcomiFlags(X87Reg a, X87Reg b, bool quiet) {
  uint64_t f = 0;
  asm volatile("fldt %[b]\n\tfldt %[a]\n\t"
               "cmpb $0, %[q]\n\tjne 1f\n\tfcomi %%st(1), %%st\n\tjmp 2f\n\t"
               "1: fucomi %%st(1), %%st\n\t2: pushfq\n\tpopq %[f]\n\tfnclex\n\t"
               "fstp %%st(0)\n\tfstp %%st(0)"
               : [f] "=r"(f) : [a] "m"(a), [b] "m"(b), [q] "m"(quiet) : "st", "st(1)", "cc");
  return f;
}

template <typename T>
uint16_t RefStore(X87Reg a, uint16_t cw, T* out, int kind) {
  uint16_t old = 0, sw = 0;
  switch (kind) {
    case 0:
      asm volatile("fnstcw %[old]\n\tfnclex\n\tfldcw %[cw]\n\tfldt %[a]\n\tfstps %[r]\n\t"
                   "fnstsw %[sw]\n\tfnclex\n\tfldcw %[old]"
                   : [r] "=m"(*reinterpret_cast<uint32_t*>(out)), [sw] "=m"(sw), [old] "+m"(old)
                   : [a] "m"(a), [cw] "m"(cw) : "st");
      break;
    case 1:
      asm volatile("fnstcw %[old]\n\tfnclex\n\tfldcw %[cw]\n\tfldt %[a]\n\tfstpl %[r]\n\t"
                   "fnstsw %[sw]\n\tfnclex\n\tfldcw %[old]"
                   : [r] "=m"(*reinterpret_cast<uint64_t*>(out)), [sw] "=m"(sw), [old] "+m"(old)
                   : [a] "m"(a), [cw] "m"(cw) : "st");
      break;
    case 2:
      asm volatile("fnstcw %[old]\n\tfnclex\n\tfldcw %[cw]\n\tfldt %[a]\n\tfistpl %[r]\n\t"
                   "fnstsw %[sw]\n\tfnclex\n\tfldcw %[old]"
                   : [r] "=m"(*reinterpret_cast<uint32_t*>(out)), [sw] "=m"(sw), [old] "+m"(old)
                   : [a] "m"(a), [cw] "m"(cw) : "st");
      break;
    default:
      asm volatile("fnstcw %[old]\n\tfnclex\n\tfldcw %[cw]\n\tfldt %[a]\n\tfistpll %[r]\n\t"
                   "fnstsw %[sw]\n\tfnclex\n\tfldcw %[old]"
                   : [r] "=m"(*reinterpret_cast<uint64_t*>(out)), [sw] "=m"(sw), [old] "+m"(old)
                   : [a] "m"(a), [cw] "m"(cw) : "st");
      break;
  }
  return sw;
}

// Special operands (no unsupported encodings: those are tested against the SDM).
std::vector<X87Reg> Specials() {
  return {
      Bits(0x0000, 0), Bits(0x8000, 0),                                   // ±0
      R(1.0L), R(-1.0L), R(1.5L), R(3.0L), R(-7.0L), R(1.0L / 3),         // small values
      R(0.1L), R(1e10L), R(-2.5L),
      Bits(0x3fff, 0x8000000000000001ull),                                // 1 + 2^-63
      Bits(0x7ffe, 0xffffffffffffffffull), Bits(0xfffe, 0xc000000000000000ull),  // huge
      Bits(0x0001, 0x8000000000000000ull),                                // smallest normal
      Bits(0x0000, 0x0000000000000001ull),                                // smallest denormal
      Bits(0x8000, 0x7fffffffffffffffull),                                // -largest denormal
      Bits(0x7fff, 0x8000000000000000ull), Bits(0xffff, 0x8000000000000000ull),  // ±inf
      Bits(0x7fff, 0xc000000000000001ull),                                // QNaN payload 1
      Bits(0xffff, 0xa000000000000000ull),                                // -SNaN
      Bits(0x7fff, 0x8000000000000003ull),                                // SNaN payload 3
      Bits(0x3ffe, 0xffffffffffffffffull),                                // 1 - 2^-64
      Bits(0x403e, 0xffffffffffffffffull),                                // 2^64 - 1
  };
}

class X87Test : public CpuTest {
 protected:
  // Runs code (then HLT) in 64-bit mode with the stack preset (stack[0] = ST(0)), the control
  // word fcw, RDI = kDataBase.
  void Run(const Bytes& code, const std::vector<X87Reg>& stack = {}, uint16_t fcw = 0x037f,
           const std::function<void(CpuState&)>& tweak = {}, FlatMode mode = FlatMode::kLong64) {
    Bytes c = code;
    c.push_back(0xf4);
    Start(mode, c, [&](CpuState& s) {
      const unsigned n = static_cast<unsigned>(stack.size());
      const unsigned top = (8 - n) & 7;
      s.fsw = static_cast<uint16_t>(top << 11);
      s.ftw = 0;
      for (unsigned i = 0; i < n; ++i) {
        s.st[(top + i) & 7] = stack[i];
        s.ftw = static_cast<uint8_t>(s.ftw | 1u << ((top + i) & 7));
      }
      s.fcw = fcw;
      s.gpr[kRdi] = kDataBase;
      if (tweak) tweak(s);
    });
    RunToHalt();
  }
  unsigned Top() const { return (st().fsw >> 11) & 7; }
  X87Reg St(unsigned i) const { return st().st[(Top() + i) & 7]; }
  bool Empty(unsigned i) const { return !((st().ftw >> ((Top() + i) & 7)) & 1); }
  uint16_t Flags() const { return st().fsw & 0x3f; }
  void PutBytes(uint64_t at, const void* p, size_t n) { mem().Write(at, p, n); }
  template <typename T>
  T GetT(uint64_t at) {
    T v;
    mem().Read(at, &v, sizeof v);
    return v;
  }
  X87Reg GetM80(uint64_t at) {
    X87Reg r;
    mem().Read(at, &r.mant, 8);
    mem().Read(at + 8, &r.sign_exp, 2);
    return r;
  }
  void PutM80(uint64_t at, const X87Reg& r) {
    mem().Write(at, &r.mant, 8);
    mem().Write(at + 8, &r.sign_exp, 2);
  }
};

// ---- the stack -----------------------------------------------------------------------------

TEST_F(X87Test, PushPopTopAndTags) {
  Run({0xd9, 0xe8, 0xd9, 0xee, 0xd9, 0xeb});  // fld1; fldz; fldpi
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(Top(), 5u);
  EXPECT_EQ(st().ftw, 0xe0);  // R5 R6 R7
  EXPECT_REG(st().st[7], Bits(0x3fff, 0x8000000000000000ull));
  EXPECT_REG(st().st[6], Bits(0, 0));
  EXPECT_REG(st().st[5], Bits(0x4000, 0xc90fdaa22168c235ull));
  // fstp st(0); fincstp; fdecstp; ffree st(1)
  Run({0xdd, 0xd8, 0xd9, 0xf7, 0xd9, 0xf6, 0xdd, 0xc1}, {R(1), R(2), R(3)});
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(Top(), 6u);
  EXPECT_REG(St(0), R(2));
  EXPECT_TRUE(Empty(1));  // R7 freed, TOP unchanged by ffree
  EXPECT_EQ(st().ftw, 0x40);
  EXPECT_EQ(st().fsw & kC1, 0);
}

TEST_F(X87Test, StackOverflowMaskedAndUnmasked) {
  std::vector<X87Reg> full(8, R(5));
  Run({0xd9, 0xe8}, full);  // fld1 on a full stack
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(Top(), 7u);
  EXPECT_REG(St(0), kInd);
  EXPECT_EQ(st().fsw & (kIe | kSf | kC1 | kEs), kIe | kSf | kC1);
  // Unmasked IE: nothing changes but the flags; the next waiting instruction raises #MF.
  Run({0xd9, 0xe8}, full, 0x037e);
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(Top(), 0u);
  EXPECT_REG(St(0), R(5));
  EXPECT_EQ(st().fsw & 0xffc0u & ~(7u << 11), kSf | kC1 | kEs | kB);
  Run({0xd9, 0xe8, 0xd9, 0xd0}, full, 0x037e);  // fld1; fnop
  EXPECT_EQ(FaultVector(), 16);
  EXPECT_EQ(Frame64(0), kCodeBase + 2);  // #MF at the fnop
}

TEST_F(X87Test, StackUnderflow) {
  Run({0xd8, 0xc1}, {R(1)});  // fadd st0, st1 with ST(1) empty
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_REG(St(0), kInd);
  EXPECT_EQ(st().fsw & (kIe | kSf | kC1), kIe | kSf);
  Put64(mem(), kDataBase, 0);
  Run({0xdd, 0x1f});  // fstp qword [rdi] from an empty stack: the double indefinite, popped
  EXPECT_EQ(Get64(mem(), kDataBase), 0xfff8000000000000ull);
  EXPECT_EQ(Top(), 1u);
  EXPECT_EQ(Flags(), kIe);
  Put64(mem(), kDataBase, 0x1234);
  Run({0xdd, 0x1f}, {}, 0x037e);  // unmasked: nothing stored, no pop
  EXPECT_EQ(Get64(mem(), kDataBase), 0x1234u);
  EXPECT_EQ(Top(), 0u);
  EXPECT_EQ(st().fsw & (kEs | kSf), kEs | kSf);
  Run({0xdf, 0x1f});  // fistp word: integer indefinite
  EXPECT_EQ(GetT<uint16_t>(kDataBase), 0x8000);
}

// ---- loads and stores --------------------------------------------------------------------

TEST_F(X87Test, LoadStoreRealFormats) {
  const uint32_t f = 0x3fc00000;            // 1.5f
  const uint64_t d = 0xc00921fb54442d18ull;  // -pi (double)
  PutBytes(kDataBase, &f, 4);
  Put64(mem(), kDataBase + 8, d);
  PutM80(kDataBase + 16, Bits(0x7fff, 0x8000000000000001ull));  // SNaN: loaded as is by m80
  // fld dword [rdi]; fld qword [rdi+8]; fld tbyte [rdi+16]
  Run({0xd9, 0x07, 0xdd, 0x47, 0x08, 0xdb, 0x6f, 0x10});
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_REG(St(2), Bits(0x3fff, 0xc000000000000000ull));
  EXPECT_REG(St(1), Bits(0xc000, 0xc90fdaa22168c000ull));
  EXPECT_REG(St(0), Bits(0x7fff, 0x8000000000000001ull));
  EXPECT_EQ(Flags(), 0);
  // fstp tbyte [rdi+32]; fst qword [rdi+48]; fstp dword [rdi+56]
  Run({0xdb, 0x7f, 0x20, 0xdd, 0x57, 0x30, 0xd9, 0x5f, 0x38},
      {Bits(0x7fff, 0x8000000000000001ull), R(-3.14159265358979323846L), R(1.5L)});
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_REG(GetM80(kDataBase + 32), Bits(0x7fff, 0x8000000000000001ull));
  EXPECT_EQ(Get64(mem(), kDataBase + 48), 0xc00921fb54442d18ull);
  EXPECT_EQ(GetT<uint32_t>(kDataBase + 56), 0xc0490fdbu);  // -pi as single (RN)
  EXPECT_EQ(Flags(), kPe);
  EXPECT_EQ(Top(), 7u);
  EXPECT_REG(St(0), R(1.5L));
  // FLD m32 of an SNaN: IE, quieted; of a denormal: DE.
  const uint32_t snan = 0x7f800001, den = 0x00000001;
  PutBytes(kDataBase, &snan, 4);
  PutBytes(kDataBase + 4, &den, 4);
  Run({0xd9, 0x07});
  EXPECT_REG(St(0), Bits(0x7fff, 0xc000010000000000ull));
  EXPECT_EQ(Flags(), kIe);
  Run({0xd9, 0x47, 0x04});
  EXPECT_REG(St(0), Bits(0x3f6a, 0x8000000000000000ull));  // 2^-149
  EXPECT_EQ(Flags(), kDe);
  // FST m32: overflow and underflow, SNaN.
  Run({0xd9, 0x17}, {R(1e300L)});
  EXPECT_EQ(GetT<uint32_t>(kDataBase), 0x7f800000u);
  EXPECT_EQ(Flags(), kOe | kPe);
  Run({0xd9, 0x17}, {R(1e-50L)});
  EXPECT_EQ(GetT<uint32_t>(kDataBase), 0u);
  EXPECT_EQ(Flags(), kUe | kPe);
  Run({0xd9, 0x17}, {Bits(0xffff, 0xa000000000000000ull)});
  EXPECT_EQ(GetT<uint32_t>(kDataBase), 0xffe00000u);
  EXPECT_EQ(Flags(), kIe);
  // Unmasked overflow to memory: nothing stored, no pop.
  Put32(mem(), kDataBase, 0x12345678);
  Run({0xd9, 0x1f}, {R(1e300L)}, 0x0377);
  EXPECT_EQ(GetT<uint32_t>(kDataBase), 0x12345678u);
  EXPECT_EQ(Top(), 7u);
  EXPECT_EQ(st().fsw & (kOe | kEs), kOe | kEs);
}

TEST_F(X87Test, StoreRoundingModesMatchHost) {
  for (const X87Reg& v : Specials()) {
    for (unsigned rc = 0; rc < 4; ++rc) {
      const uint16_t cw = static_cast<uint16_t>(0x037f | rc << 10);
      uint32_t f = 0;
      uint64_t d = 0, q = 0;
      uint32_t i = 0;
      const uint16_t swf = RefStore(v, cw, &f, 0);
      const uint16_t swd = RefStore(v, cw, &d, 1);
      const uint16_t swi = RefStore(v, cw, &i, 2);
      const uint16_t swq = RefStore(v, cw, &q, 3);
      SCOPED_TRACE(Hex(v) + " rc " + std::to_string(rc));
      Run({0xd9, 0x17, 0xdd, 0x57, 0x08, 0xdb, 0x57, 0x10, 0xdf, 0x7f, 0x18}, {v}, cw);
      ASSERT_EQ(FaultVector(), -1);
      EXPECT_EQ(GetT<uint32_t>(kDataBase), f);
      EXPECT_EQ(Get64(mem(), kDataBase + 8), d);
      EXPECT_EQ(GetT<uint32_t>(kDataBase + 16), i);
      EXPECT_EQ(Get64(mem(), kDataBase + 24), q);
      // FST reports IE OE UE PE, FIST IE PE (SDM); DE is never reported by a store.
      EXPECT_EQ(Flags(), (swf | swd | swi | swq) & (kIe | kOe | kUe | kPe));
      // C1 of the last one (fistp m64)
      EXPECT_EQ(st().fsw & kC1, swq & kC1);
    }
  }
}

TEST_F(X87Test, IntegerLoadsStoresAndIndefinite) {
  const uint16_t w = 0x8000;                      // -32768
  const uint32_t dw = 0x7fffffff;                 // 2^31-1
  const uint64_t qw = 0x8000000000000000ull;      // -2^63
  PutBytes(kDataBase, &w, 2);
  PutBytes(kDataBase + 4, &dw, 4);
  Put64(mem(), kDataBase + 8, qw);
  Run({0xdf, 0x07, 0xdb, 0x47, 0x04, 0xdf, 0x6f, 0x08});  // fild m16; fild m32; fild m64
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_REG(St(2), Bits(0xc00e, 0x8000000000000000ull));
  EXPECT_REG(St(1), Bits(0x401d, 0xfffffffe00000000ull));
  EXPECT_REG(St(0), Bits(0xc03e, 0x8000000000000000ull));
  // FIST m16 of 2.5 / -2.5 in each rounding mode (RN even, RD, RU, RZ).
  const int16_t want_pos[4] = {2, 2, 3, 2}, want_neg[4] = {-2, -3, -2, -2};
  for (unsigned rc = 0; rc < 4; ++rc) {
    Run({0xdf, 0x17, 0xd9, 0xe0, 0xdf, 0x57, 0x02}, {R(2.5L)},
        static_cast<uint16_t>(0x037f | rc << 10));  // fist; fchs; fist
    EXPECT_EQ(GetT<int16_t>(kDataBase), want_pos[rc]) << rc;
    EXPECT_EQ(GetT<int16_t>(kDataBase + 2), want_neg[rc]) << rc;
    EXPECT_EQ(Flags(), kPe);
  }
  // Out of range and NaN: IE and the integer indefinite (masked); unmasked: nothing stored.
  Run({0xdf, 0x17, 0xdb, 0x57, 0x04, 0xdf, 0x7f, 0x08}, {R(40000.0L)});
  EXPECT_EQ(GetT<uint16_t>(kDataBase), 0x8000);
  EXPECT_EQ(GetT<uint32_t>(kDataBase + 4), 40000u);
  EXPECT_EQ(Flags(), kIe);
  Run({0xdb, 0x57, 0x10, 0xdf, 0x3f}, {Bits(0x7fff, 0xc000000000000000ull)});
  EXPECT_EQ(GetT<uint32_t>(kDataBase + 16), 0x80000000u);
  EXPECT_EQ(Get64(mem(), kDataBase), 0x8000000000000000ull);
  Put32(mem(), kDataBase, 7);
  Run({0xdb, 0x1f}, {R(3e9L)}, 0x037e);
  EXPECT_EQ(GetT<uint32_t>(kDataBase), 7u);
  EXPECT_EQ(Top(), 7u);
  // FISTTP truncates whatever RC says (SSE3): m16, m32, m64.
  Run({0xdf, 0x0f, 0xdb, 0x4f, 0x04, 0xdd, 0x4f, 0x08}, {R(-2.75L), R(2.75L), R(-9.5L)}, 0x037f);
  EXPECT_EQ(GetT<int16_t>(kDataBase), -2);
  EXPECT_EQ(GetT<int32_t>(kDataBase + 4), 2);
  EXPECT_EQ(static_cast<int64_t>(Get64(mem(), kDataBase + 8)), -9);
  EXPECT_EQ(Top(), 0u);
  EXPECT_EQ(Flags(), kPe);
}

TEST_F(X87Test, PackedBcd) {
  // 123456789012345678 and its negative; FBLD then FBSTP round trip.
  const uint8_t bcd[10] = {0x78, 0x56, 0x34, 0x12, 0x90, 0x78, 0x56, 0x34, 0x12, 0x80};
  PutBytes(kDataBase, bcd, 10);
  Run({0xdf, 0x27, 0xdf, 0x77, 0x10});  // fbld [rdi]; fbstp [rdi+16]
  ASSERT_EQ(FaultVector(), -1);
  uint8_t out[10];
  mem().Read(kDataBase + 16, out, 10);
  EXPECT_EQ(0, std::memcmp(out, bcd, 10));
  Run({0xdf, 0x27});
  EXPECT_REG(St(0), R(-123456789012345678.0L));
  // Rounding per RC: 2.5 -> 2 (RN), PE; 10^18 is out of range: IE, the BCD indefinite.
  Run({0xdf, 0x37}, {R(2.5L)});
  mem().Read(kDataBase, out, 10);
  const uint8_t two[10] = {2, 0, 0, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_EQ(0, std::memcmp(out, two, 10));
  EXPECT_EQ(Flags(), kPe);
  Run({0xdf, 0x37}, {R(1e18L)});
  mem().Read(kDataBase, out, 10);
  const uint8_t ind[10] = {0, 0, 0, 0, 0, 0, 0, 0xc0, 0xff, 0xff};
  EXPECT_EQ(0, std::memcmp(out, ind, 10));
  EXPECT_EQ(Flags(), kIe);
  // The host's FBSTP agrees on a value that rounds up in RU.
  long double v = -999999999999999998.7L;
  uint8_t host[10];
  uint16_t cw = 0x0b7f, old = 0;
  asm volatile("fnstcw %[old]\n\tfldcw %[cw]\n\tfldt %[v]\n\tfbstp %[o]\n\tfnclex\n\tfldcw %[old]"
               : [o] "=m"(host), [old] "+m"(old) : [v] "m"(v), [cw] "m"(cw) : "st");
  Run({0xdf, 0x37}, {R(v)}, cw);
  mem().Read(kDataBase, out, 10);
  EXPECT_EQ(0, std::memcmp(out, host, 10));
}

TEST_F(X87Test, ConstantsPerRoundingMode) {
  // SDM: pi, log2(e), log10(2), ln(2) are one ulp lower in RD and RZ; log2(10) one higher in RU.
  struct C { uint8_t op; uint16_t se; uint64_t rn, rd, ru; };
  const C cs[] = {
      {0xe8, 0x3fff, 0x8000000000000000ull, 0x8000000000000000ull, 0x8000000000000000ull},
      {0xe9, 0x4000, 0xd49a784bcd1b8afeull, 0xd49a784bcd1b8afeull, 0xd49a784bcd1b8affull},
      {0xea, 0x3fff, 0xb8aa3b295c17f0bcull, 0xb8aa3b295c17f0bbull, 0xb8aa3b295c17f0bcull},
      {0xeb, 0x4000, 0xc90fdaa22168c235ull, 0xc90fdaa22168c234ull, 0xc90fdaa22168c235ull},
      {0xec, 0x3ffd, 0x9a209a84fbcff799ull, 0x9a209a84fbcff798ull, 0x9a209a84fbcff799ull},
      {0xed, 0x3ffe, 0xb17217f7d1cf79acull, 0xb17217f7d1cf79abull, 0xb17217f7d1cf79acull},
  };
  for (const C& k : cs) {
    for (unsigned rc = 0; rc < 4; ++rc) {
      Run({0xd9, k.op}, {}, static_cast<uint16_t>(0x037f | rc << 10));
      const uint64_t want = rc == 0 ? k.rn : rc == 2 ? k.ru : k.rd;
      EXPECT_REG(St(0), Bits(k.se, want)) << int(k.op) << " rc " << rc;
      EXPECT_EQ(Flags(), 0);
    }
  }
  Run({0xd9, 0xee});
  EXPECT_REG(St(0), Bits(0, 0));
}

TEST_F(X87Test, ExchangeCmovSignOps) {
  Run({0xd9, 0xc9}, {R(1), R(2)});  // fxch
  EXPECT_REG(St(0), R(2));
  EXPECT_REG(St(1), R(1));
  Run({0xd9, 0xc9}, {R(1)});  // fxch with ST(1) empty: underflow, indefinite exchanged in
  EXPECT_REG(St(0), kInd);
  EXPECT_REG(St(1), R(1));
  EXPECT_EQ(Flags(), kIe);
  // fcmovb st0, st1 (CF=1), fcmovne (ZF=0 moves), fcmovnu with PF=1 (no move)
  auto flags = [](uint64_t f) { return [f](CpuState& s) { s.rflags = 2 | f; }; };
  Run({0xda, 0xc1}, {R(1), R(2)}, 0x037f, flags(kFlagCf));
  EXPECT_REG(St(0), R(2));
  Run({0xda, 0xc1}, {R(1), R(2)}, 0x037f, flags(0));
  EXPECT_REG(St(0), R(1));
  Run({0xdb, 0xc9}, {R(1), R(2)}, 0x037f, flags(0));
  EXPECT_REG(St(0), R(2));
  Run({0xdb, 0xd9}, {R(1), R(2)}, 0x037f, flags(kFlagPf));
  EXPECT_REG(St(0), R(1));
  Run({0xda, 0xd1}, {R(1), R(2)}, 0x037f, flags(kFlagZf));  // fcmovbe
  EXPECT_REG(St(0), R(2));
  // fchs; fabs of a NaN: sign bit only, no exception
  Run({0xd9, 0xe0}, {Bits(0x7fff, 0xa000000000000000ull)});
  EXPECT_REG(St(0), Bits(0xffff, 0xa000000000000000ull));
  EXPECT_EQ(Flags(), 0);
  Run({0xd9, 0xe1}, {R(-0.0L)});
  EXPECT_REG(St(0), Bits(0, 0));
  // fld st(1); fst st(2); fstp st(1)
  Run({0xd9, 0xc1, 0xdd, 0xd2, 0xdd, 0xd9}, {R(1), R(2), R(3)});
  EXPECT_EQ(Top(), 5u);
  EXPECT_REG(St(0), R(2));
  EXPECT_REG(St(1), R(2));
  EXPECT_REG(St(2), R(3));
}

// ---- arithmetic ------------------------------------------------------------------------------

TEST_F(X87Test, PrecisionAndRoundingControlByHand) {
  // 1/3: PC=24 -> the single 0x3eaaaaab; PC=53 -> the double 0x3fd5555555555555; PC=64.
  struct P { uint16_t cw; uint64_t mant; };
  const P ps[] = {
      {0x007f, 0xaaaaab0000000000ull},  // PC 24, RN
      {0x0c7f, 0xaaaaaa0000000000ull},  // PC 24, RZ
      {0x027f, 0xaaaaaaaaaaaaa800ull},  // PC 53, RN
      {0x0a7f, 0xaaaaaaaaaaaab000ull},  // PC 53, RU
      {0x037f, 0xaaaaaaaaaaaaaaabull},  // PC 64, RN
      {0x077f, 0xaaaaaaaaaaaaaaaaull},  // PC 64, RD
      {0x017f, 0xaaaaaaaaaaaaaaabull},  // PC 01 (reserved): as 64 bits
  };
  for (const P& p : ps) {
    Run({0xd8, 0xf1}, {R(1), R(3)}, p.cw);  // fdiv st0, st1
    EXPECT_REG(St(0), Bits(0x3ffd, p.mant)) << std::hex << p.cw;
    EXPECT_EQ(Flags(), kPe);
    EXPECT_EQ((st().fsw & kC1) != 0, p.mant == 0xaaaaab0000000000ull || p.mant == 0xaaaaaaaaaaaab000ull ||
                                         p.mant == 0xaaaaaaaaaaaaaaabull);  // rounded up
  }
  // x + (-x) is -0 in RD only.
  Run({0xd8, 0xc1}, {R(1), R(-1)}, 0x077f);
  EXPECT_REG(St(0), Bits(0x8000, 0));
  Run({0xd8, 0xc1}, {R(1), R(-1)}, 0x0f7f);
  EXPECT_REG(St(0), Bits(0, 0));
  // Operand order of every form: 1 - 3, 3 - 1, 1 / 4, 4 / 1 with ST(0)=1, ST(1)=... .
  Run({0xd8, 0xe1}, {R(1), R(3)});  // fsub st0, st1
  EXPECT_REG(St(0), R(-2));
  Run({0xd8, 0xe9}, {R(1), R(3)});  // fsubr st0, st1
  EXPECT_REG(St(0), R(2));
  Run({0xdc, 0xe9}, {R(1), R(3)});  // fsub st1, st0: st1 = 3 - 1
  EXPECT_REG(St(1), R(2));
  Run({0xdc, 0xe1}, {R(1), R(3)});  // fsubr st1, st0: st1 = 1 - 3
  EXPECT_REG(St(1), R(-2));
  Run({0xde, 0xe9}, {R(1), R(3)});  // fsubp: st1 = 3 - 1, pop
  EXPECT_REG(St(0), R(2));
  EXPECT_EQ(Top(), 7u);
  Run({0xde, 0xf9}, {R(4), R(1)});  // fdivp: st1 = 1 / 4, pop
  EXPECT_REG(St(0), R(0.25L));
  Run({0xde, 0xf1}, {R(4), R(1)});  // fdivrp: st1 = 4 / 1, pop
  EXPECT_REG(St(0), R(4));
  Run({0xd8, 0xf9}, {R(1), R(4)});  // fdivr st0, st1 = 4 / 1
  EXPECT_REG(St(0), R(4));
  // Memory forms: fadd qword, fisub word, fidivr dword, fmul dword.
  Put64(mem(), kDataBase, 0x4008000000000000ull);  // 3.0
  const int16_t w = 5;
  const int32_t dw = 10;
  const uint32_t f = 0x40000000;  // 2.0f
  PutBytes(kDataBase + 8, &w, 2);
  PutBytes(kDataBase + 12, &dw, 4);
  PutBytes(kDataBase + 16, &f, 4);
  Run({0xdc, 0x07, 0xde, 0x67, 0x08, 0xda, 0x7f, 0x0c, 0xd8, 0x4f, 0x10}, {R(1)});
  EXPECT_REG(St(0), R(-20.0L));  // 2 * (10 / ((1 + 3) - 5))
}

TEST_F(X87Test, ArithmeticSweepMatchesHost) {
  struct OpDef { uint8_t b0, b1; Ref (*ref)(X87Reg, X87Reg, uint16_t); };
  const OpDef ops[] = {
      {0xd8, 0xc1, RefAdd}, {0xd8, 0xe1, RefSub}, {0xd8, 0xe9, RefSubr},
      {0xd8, 0xc9, RefMul}, {0xd8, 0xf1, RefDiv}, {0xd8, 0xf9, RefDivr},
  };
  const std::vector<X87Reg> vals = Specials();
  // Every rounding control with every precision control (24, 53, 64 bits).
  std::vector<uint16_t> cws;
  for (uint16_t pc : {0x0000, 0x0200, 0x0300})
    for (uint16_t rc : {0x0000, 0x0400, 0x0800, 0x0c00}) cws.push_back(static_cast<uint16_t>(0x7f | pc | rc));
  unsigned n = 0;
  for (const OpDef& o : ops) {
    for (const X87Reg& a : vals) {
      for (const X87Reg& b : vals) {
        for (uint16_t cw : cws) {
          const Ref want = o.ref(a, b, cw);
          Run({o.b0, o.b1}, {a, b}, cw);
          ASSERT_EQ(FaultVector(), -1);
          SCOPED_TRACE(Hex(a) + " " + Hex(b) + " op " + std::to_string(o.b1) + " cw " +
                       std::to_string(cw));
          EXPECT_REG(St(0), want.r);
          EXPECT_EQ(st().fsw & (0x3f | kC1), want.sw & (0x3f | kC1));
          ++n;
        }
      }
    }
  }
  for (const X87Reg& a : vals) {
    for (uint16_t cw : cws) {
      for (int k = 0; k < 2; ++k) {
        const Ref want = k ? RefRndint(a, cw) : RefSqrt(a, cw);
        Run({0xd9, static_cast<uint8_t>(k ? 0xfc : 0xfa)}, {a}, cw);
        SCOPED_TRACE(Hex(a) + (k ? " frndint" : " fsqrt") + " cw " + std::to_string(cw));
        EXPECT_REG(St(0), want.r);
        EXPECT_EQ(st().fsw & (0x3f | kC1), want.sw & (0x3f | kC1));
      }
    }
  }
  EXPECT_GT(n, 40000u);
}

TEST_F(X87Test, MemoryOperandSweepMatchesHost) {
  // The memory forms convert the operand first; the host's own memory forms are the oracle
  // (NaN selection between a converted SNaN and a NaN in ST(0) included).
  const uint32_t fs[] = {0, 0x80000000u, 0x3f800000u, 0xbfc00000u, 0x00000001u, 0x807fffffu,
                         0x7f800000u, 0xff800000u, 0x7fc00001u, 0x7f800001u, 0xffa00000u,
                         0x7f7fffffu, 0x3eaaaaabu};
  const uint64_t ds[] = {0, 0x8000000000000000ull, 0x3ff0000000000000ull, 0x0000000000000001ull,
                         0x7ff0000000000000ull, 0x7ff8000000000001ull, 0x7ff0000000000001ull,
                         0xfff4000000000000ull, 0x7fefffffffffffffull, 0xbfd5555555555555ull};
  const int16_t ws[] = {0, 1, -1, 32767, -32768};
  const int32_t dws[] = {0, 3, -7, 2147483647};
  struct F { uint8_t b0, b1; Ref (*ref)(X87Reg, uint32_t, uint16_t); };
  const F f32[] = {{0xd8, 0x07, RefFadds}, {0xd8, 0x27, RefFsubs}, {0xd8, 0x2f, RefFsubrs},
                   {0xd8, 0x0f, RefFmuls}, {0xd8, 0x37, RefFdivs}, {0xd8, 0x3f, RefFdivrs},
                   {0xda, 0x37, RefFidivl}};
  struct D { uint8_t b0, b1; Ref (*ref)(X87Reg, uint64_t, uint16_t); };
  const D f64[] = {{0xdc, 0x07, RefFaddl}, {0xdc, 0x27, RefFsubl}, {0xdc, 0x0f, RefFmull},
                   {0xdc, 0x3f, RefFdivrl}};
  for (const X87Reg& a : Specials()) {
    for (uint16_t cw : {uint16_t{0x037f}, uint16_t{0x0e7f}}) {
      for (const F& o : f32) {
        const bool integer = o.b0 == 0xda;
        const size_t n = integer ? sizeof dws / sizeof dws[0] : sizeof fs / sizeof fs[0];
        for (size_t k = 0; k < n; ++k) {
          const uint32_t m = integer ? static_cast<uint32_t>(dws[k]) : fs[k];
          Put32(mem(), kDataBase, m);
          const Ref want = o.ref(a, m, cw);
          Run({o.b0, o.b1}, {a}, cw);
          SCOPED_TRACE(Hex(a) + " m32 " + std::to_string(m) + " op " + std::to_string(o.b1));
          EXPECT_REG(St(0), want.r);
          EXPECT_EQ(st().fsw & (0x3f | kC1), want.sw & (0x3f | kC1));
        }
      }
      for (const D& o : f64) {
        for (uint64_t m : ds) {
          Put64(mem(), kDataBase, m);
          const Ref want = o.ref(a, m, cw);
          Run({o.b0, o.b1}, {a}, cw);
          SCOPED_TRACE(Hex(a) + " m64 " + std::to_string(m) + " op " + std::to_string(o.b1));
          EXPECT_REG(St(0), want.r);
          EXPECT_EQ(st().fsw & (0x3f | kC1), want.sw & (0x3f | kC1));
        }
      }
      for (uint32_t m : fs) {  // fcom m32
        Put32(mem(), kDataBase, m);
        const Ref want = RefFcoms(a, m, cw);
        Run({0xd8, 0x17}, {a}, cw);
        EXPECT_EQ(st().fsw & (0x3f | kC0 | kC1 | kC2 | kC3), want.sw & (0x3f | kC0 | kC1 | kC2 | kC3))
            << "fcom m32 " << Hex(a) << " " << m;
      }
      for (uint64_t m : ds) {  // fcom m64
        Put64(mem(), kDataBase, m);
        const Ref want = RefFcoml(a, m, cw);
        Run({0xdc, 0x17}, {a}, cw);
        EXPECT_EQ(st().fsw & (0x3f | kC0 | kC1 | kC2 | kC3), want.sw & (0x3f | kC0 | kC1 | kC2 | kC3))
            << "fcom m64 " << Hex(a) << " " << m;
      }
      for (int16_t w : ws) {
        mem().Write(kDataBase, &w, 2);
        const Ref want = RefFiadds(a, static_cast<uint16_t>(w), cw);
        Run({0xde, 0x07}, {a}, cw);
        EXPECT_REG(St(0), want.r) << Hex(a) << " " << w;
        EXPECT_EQ(st().fsw & (0x3f | kC1), want.sw & (0x3f | kC1));
      }
    }
  }
  // FLD m32/m64 of every special pattern: value and IE/DE as the host's FLD gives them.
  for (uint32_t m : fs) {
    Put32(mem(), kDataBase, m);
    const Ref want = RefFadds(Bits(0, 0), m, 0x037f);  // 0 + m is m, with FLD's flags for
    Run({0xd9, 0x07});                                  // everything but the sign of zero
    if ((m & 0x7fffffff) != 0) {
      EXPECT_REG(St(0), want.r) << m;
    }
    EXPECT_EQ(Flags(), want.sw & (kIe | kDe)) << m;
  }
}

TEST_F(X87Test, CompareAndExamineSweepMatchHost) {
  const uint16_t cc = kC0 | kC1 | kC2 | kC3;
  std::vector<X87Reg> vals = Specials();
  vals.push_back(Bits(0x0000, 0x8000000000000001ull));  // pseudo-denormal
  for (const X87Reg& a : vals) {
    {
      const Ref want = RefFxam(a, R(0), 0x037f);
      Run({0xd9, 0xe5}, {a, R(0)});
      EXPECT_EQ(st().fsw & cc, want.sw & cc) << "fxam " << Hex(a);
      const Ref t = RefFtst(a, R(0), 0x037f);
      Run({0xd9, 0xe4}, {a, R(0)});
      EXPECT_EQ(st().fsw & (cc | 0x3f), t.sw & (cc | 0x3f)) << "ftst " << Hex(a);
    }
    for (const X87Reg& b : vals) {
      SCOPED_TRACE(Hex(a) + " " + Hex(b));
      const Ref c1 = RefFcom(a, b, 0x037f);
      Run({0xd8, 0xd1}, {a, b});
      EXPECT_EQ(st().fsw & (cc | 0x3f), c1.sw & (cc | 0x3f)) << "fcom";
      const Ref c2 = RefFucom(a, b, 0x037f);
      Run({0xdd, 0xe1}, {a, b});
      EXPECT_EQ(st().fsw & (cc | 0x3f), c2.sw & (cc | 0x3f)) << "fucom";
      for (bool quiet : {false, true}) {
        const uint64_t f = RefFcomiFlags(a, b, quiet);
        Run({0xdb, static_cast<uint8_t>(quiet ? 0xe9 : 0xf1)}, {a, b});
        EXPECT_EQ(st().rflags & kStatus, f & kStatus) << "fcomi quiet " << quiet;
      }
      // FPREM1/FPREM with a complete reduction (exponent difference < 64): remainder,
      // quotient bits and flags.
      const Ref p1 = RefFprem1(a, b, 0x037f);
      Run({0xd9, 0xf5}, {a, b});
      if (!(p1.sw & kC2)) {
        EXPECT_REG(St(0), p1.r) << "fprem1";
        EXPECT_EQ(st().fsw & (cc | 0x3f), p1.sw & (cc | 0x3f)) << "fprem1";
      }
      const Ref p = RefPrem(a, b, 0x037f);
      Run({0xd9, 0xf8}, {a, b});
      if (!(p.sw & kC2)) {
        EXPECT_REG(St(0), p.r) << "fprem";
        EXPECT_EQ(st().fsw & (cc | 0x3f), p.sw & (cc | 0x3f)) << "fprem";
      }
    }
  }
}

TEST_F(X87Test, UnsupportedEncodingsAreInvalid) {
  // SDM Vol. 1 8.2.2: unnormals, pseudo-NaNs and pseudo-infinities raise IE and give the
  // indefinite; a pseudo-denormal is a denormal operand (DE) with its value.
  const X87Reg unnormal = Bits(0x3fff, 0x4000000000000000ull);
  const X87Reg pseudo_inf = Bits(0x7fff, 0);
  const X87Reg pseudo_nan = Bits(0x7fff, 0x4000000000000000ull);
  for (const X87Reg& u : {unnormal, pseudo_inf, pseudo_nan}) {
    Run({0xd8, 0xc1}, {u, R(1)});
    EXPECT_REG(St(0), kInd) << Hex(u);
    EXPECT_EQ(Flags(), kIe);
    Run({0xd9, 0xfa}, {u});
    EXPECT_REG(St(0), kInd);
    Run({0xd9, 0xe5}, {u});  // fxam: unsupported class 000
    EXPECT_EQ(st().fsw & (kC0 | kC2 | kC3), 0);
    Run({0xdb, 0x17}, {u});  // fist: IE, indefinite
    EXPECT_EQ(GetT<uint32_t>(kDataBase), 0x80000000u);
    EXPECT_EQ(Flags(), kIe);
  }
  const X87Reg pseudo_den = Bits(0x0000, 0x8000000000000000ull);  // = 2^-16382
  Run({0xd8, 0xc1}, {pseudo_den, Bits(0x0001, 0x8000000000000000ull)});
  EXPECT_REG(St(0), Bits(0x0002, 0x8000000000000000ull));
  EXPECT_EQ(Flags(), kDe);
}

TEST_F(X87Test, UnmaskedOverflowStoresBiasAdjustedResult) {
  // 2^16000 * 2^16000 = 2^32000: exponent 32000 + 16383 - 24576 = 23807 (SDM 8.5.4).
  const X87Reg big = Bits(0x3fff + 16000, 0x8000000000000000ull);
  Run({0xd8, 0xc9}, {big, big}, 0x0377);
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_REG(St(0), Bits(23807, 0x8000000000000000ull));
  EXPECT_EQ(st().fsw & (0x3f | kEs | kB), kOe | kEs | kB);
  // Masked: infinity, OE and PE.
  Run({0xd8, 0xc9}, {big, big});
  EXPECT_REG(St(0), Bits(0x7fff, 0x8000000000000000ull));
  EXPECT_EQ(Flags(), kOe | kPe);
  // Unmasked underflow: 2^-16000 * 2^-16000 -> exponent -32000 + 16383 + 24576 = 8959.
  const X87Reg tiny = Bits(0x3fff - 16000, 0x8000000000000000ull);
  Run({0xd8, 0xc9}, {tiny, tiny}, 0x036f);
  EXPECT_REG(St(0), Bits(8959, 0x8000000000000000ull));
  EXPECT_EQ(st().fsw & 0x3f, kUe);
}

TEST_F(X87Test, UnmaskedExceptionRaisesMfAtNextWaitingInstruction) {
  // ZM unmasked: fdiv by zero leaves ST(0), sets ZE ES B; the following fnop raises #MF.
  Run({0xd8, 0xf1, 0xd9, 0xd0}, {R(1), R(0)}, 0x037b);
  EXPECT_EQ(FaultVector(), 16);
  EXPECT_EQ(Frame64(0), kCodeBase + 2);
  EXPECT_REG(St(0), R(1));
  EXPECT_EQ(st().fsw & (0x3f | kEs | kB), kZe | kEs | kB);
  EXPECT_EQ(st().fip, kCodeBase);  // the faulting instruction's pointers
  EXPECT_EQ(st().fop, 0x0f1);
  // Non-waiting FNSTSW does not fault; with CR0.NE=0 no #MF (FERR# is not wired).
  Run({0xd8, 0xf1, 0xdf, 0xe0, 0xd9, 0xd0}, {R(1), R(0)}, 0x037b,
      [](CpuState& s) { s.cr0 &= ~kCr0Ne; });
  EXPECT_EQ(FaultVector(), -1);
  EXPECT_EQ(reg(kRax) & 0xffff, 0x8084u | (6u << 11));  // B ES ZE, TOP 6
  // Unmasked IE on an SNaN operand: destination and stack unchanged, no pop.
  Run({0xde, 0xc1}, {R(1), Bits(0x7fff, 0xa000000000000000ull)}, 0x037e,
      [](CpuState& s) { s.cr0 &= ~kCr0Ne; });
  EXPECT_EQ(Top(), 6u);
  EXPECT_REG(St(1), Bits(0x7fff, 0xa000000000000000ull));
  EXPECT_EQ(Flags(), kIe);
  // Masked: faddp gives the quieted NaN and pops.
  Run({0xde, 0xc1}, {R(1), Bits(0x7fff, 0xa000000000000000ull)});
  EXPECT_EQ(Top(), 7u);
  EXPECT_REG(St(0), Bits(0x7fff, 0xe000000000000000ull));
}

TEST_F(X87Test, RemainderQuotientBits) {
  // FPREM 7 mod 2: Q = 3 -> C0=Q2=0, C3=Q1=1, C1=Q0=1; remainder 1.
  Run({0xd9, 0xf8}, {R(7), R(2)});
  EXPECT_REG(St(0), R(1));
  EXPECT_EQ(st().fsw & (kC0 | kC1 | kC2 | kC3), kC3 | kC1);
  // FPREM1 7 mod 2: 3.5 rounds to 4 (even) -> remainder -1, Q = 4 -> C0=1.
  Run({0xd9, 0xf5}, {R(7), R(2)});
  EXPECT_REG(St(0), R(-1));
  EXPECT_EQ(st().fsw & (kC0 | kC1 | kC2 | kC3), kC0);
  // -13 mod 5 (FPREM): -3, Q = 2 -> C3.
  Run({0xd9, 0xf8}, {R(-13), R(5)});
  EXPECT_REG(St(0), R(-3));
  EXPECT_EQ(st().fsw & (kC0 | kC1 | kC2 | kC3), kC3);
  // Partial remainders: exponent difference >= 64 sets C2; iterating until C2 = 0 gives the
  // same final remainder as the host's FPREM loop.
  struct P { X87Reg a, b; };
  const P ps[] = {{R(0x1.8p200L), R(1.1L)}, {R(-0x1.23456789abcdefp1000L), R(1.1L)},
                  {R(0x1.fp16000L), R(-3.3L)}, {R(0x1.8p100L), Bits(0, 3)},  // denormal ST(1)
                  {R(0x1.5p-16300L), Bits(0x8000, 0x123456789ull)}};
  for (const P& p : ps) {
    for (bool ieee : {false, true}) {
      X87Reg want = p.a;
      uint16_t want_q = 0;
      for (int i = 0; i < 100000; ++i) {
        const Ref r = ieee ? RefFprem1(want, p.b, 0x037f) : RefPrem(want, p.b, 0x037f);
        want = r.r;
        want_q = r.sw & (kC0 | kC1 | kC3);
        if (!(r.sw & kC2)) break;
      }
      // fprem(1); fnstsw ax; test ah, 4; jnz back
      Run({0xd9, static_cast<uint8_t>(ieee ? 0xf5 : 0xf8), 0xdf, 0xe0, 0xf6, 0xc4, 0x04, 0x75, 0xf7},
          {p.a, p.b});
      ASSERT_EQ(FaultVector(), -1);
      EXPECT_REG(St(0), want) << Hex(p.a) << " " << Hex(p.b) << " ieee " << ieee;
      EXPECT_EQ(st().fsw & kC2, 0);
      EXPECT_EQ(st().fsw & (kC0 | kC1 | kC3), want_q);  // the low quotient bits of the whole
    }
  }
  Run({0xd9, 0xf8}, {R(0x1.8p200L), R(1.1L)});
  EXPECT_EQ(st().fsw & kC2, kC2);
}

TEST_F(X87Test, ScaleExtractRound) {
  Run({0xd9, 0xfd}, {R(3), R(-2.5L)});  // fscale: 3 * 2^trunc(-2.5) = 0.75
  EXPECT_REG(St(0), R(0.75L));
  Run({0xd9, 0xf4}, {R(-24)});  // fxtract: ST(0) = -1.5, ST(1) = 4
  EXPECT_EQ(Top(), 6u);
  EXPECT_REG(St(0), R(-1.5L));
  EXPECT_REG(St(1), R(4));
  Run({0xd9, 0xf4}, {R(0)});  // of zero: ZE, ST(1) = -inf, ST(0) = 0
  EXPECT_EQ(Flags(), kZe);
  EXPECT_REG(St(1), Bits(0xffff, 0x8000000000000000ull));
  EXPECT_REG(St(0), R(0));
  for (const X87Reg& a : Specials()) {
    for (const X87Reg& b : {R(3), R(-70000), R(0.5L), R(40000)}) {
      const Ref want = RefScale(a, b, 0x037f);
      Run({0xd9, 0xfd}, {a, b});
      EXPECT_REG(St(0), want.r) << Hex(a) << " " << Hex(b);
      EXPECT_EQ(st().fsw & (0x3f | kC1), want.sw & (0x3f | kC1));
    }
  }
}

// ---- compares and classification ------------------------------------------------------------

TEST_F(X87Test, CompareConditionCodes) {
  const uint16_t cc = kC0 | kC2 | kC3;
  struct K { X87Reg a, b; uint16_t want; };
  const X87Reg qnan = Bits(0x7fff, 0xc000000000000000ull);
  const K ks[] = {{R(2), R(1), 0}, {R(1), R(2), kC0}, {R(1), R(1), kC3},
                  {R(0), R(-0.0L), kC3}, {R(-1), R(-2), 0}, {qnan, R(1), cc},
                  {Bits(0, 1), R(0), 0}, {Bits(0xffff, 0x8000000000000000ull), R(-1e4000L), kC0}};
  for (const K& k : ks) {
    Run({0xd8, 0xd1}, {k.a, k.b});  // fcom st1
    EXPECT_EQ(st().fsw & cc, k.want) << Hex(k.a) << " " << Hex(k.b);
    EXPECT_EQ(st().fsw & kC1, 0);
  }
  Run({0xd8, 0xd1}, {qnan, R(1)});  // FCOM signals on a QNaN, FUCOM does not
  EXPECT_EQ(Flags(), kIe);
  Run({0xdd, 0xe1}, {qnan, R(1)});
  EXPECT_EQ(Flags(), 0);
  EXPECT_EQ(st().fsw & cc, cc);
  Run({0xdd, 0xe1}, {Bits(0x7fff, 0xa000000000000000ull), R(1)});  // FUCOM on SNaN: IE
  EXPECT_EQ(Flags(), kIe);
  Run({0xd8, 0xd1}, {Bits(0, 1), R(1)});  // denormal operand: DE
  EXPECT_EQ(Flags(), kDe);
  EXPECT_EQ(st().fsw & cc, kC0);
  // fcompp pops twice, fucompp too; fcomp once.
  Run({0xde, 0xd9}, {R(1), R(2), R(3)});
  EXPECT_EQ(Top(), 7u);
  EXPECT_EQ(st().fsw & cc, kC0);
  Run({0xda, 0xe9}, {R(2), R(2)});
  EXPECT_EQ(Top(), 0u);
  EXPECT_EQ(st().fsw & cc, kC3);
  Run({0xd8, 0xd9}, {R(3), R(2)});
  EXPECT_EQ(Top(), 7u);
  // ftst, ficom m16, fcom m64
  Run({0xd9, 0xe4}, {R(-5)});
  EXPECT_EQ(st().fsw & cc, kC0);
  const int16_t w = 7;
  PutBytes(kDataBase, &w, 2);
  Run({0xde, 0x17}, {R(7)});
  EXPECT_EQ(st().fsw & cc, kC3);
  Put64(mem(), kDataBase, 0x4000000000000000ull);  // 2.0
  Run({0xdc, 0x1f}, {R(3)});  // fcomp qword
  EXPECT_EQ(st().fsw & cc, 0);
  EXPECT_EQ(Top(), 0u);
  // Empty operand: IE SF, unordered (masked).
  Run({0xd8, 0xd1}, {R(3)});
  EXPECT_EQ(st().fsw & (cc | kIe | kSf | kC1), cc | kIe | kSf);
}

TEST_F(X87Test, ComiFlags) {
  const uint64_t zpc = kFlagZf | kFlagPf | kFlagCf;
  const uint64_t junk = kFlagOf | kFlagSf | kFlagAf;
  auto set = [](CpuState& s) { s.rflags = 2 | kFlagOf | kFlagSf | kFlagAf; };
  struct K { X87Reg a, b; uint64_t want; };
  const X87Reg qnan = Bits(0x7fff, 0xc000000000000000ull);
  const K ks[] = {{R(2), R(1), 0}, {R(1), R(2), kFlagCf}, {R(1), R(1), kFlagZf}, {qnan, R(1), zpc}};
  for (const K& k : ks) {
    for (uint8_t op : {uint8_t{0xf1}, uint8_t{0xe9}}) {  // fcomi, fucomi
      Run({0xdb, op}, {k.a, k.b}, 0x037f, set);
      EXPECT_EQ(st().rflags & (zpc | junk), k.want) << Hex(k.a) << " " << int(op);
      EXPECT_EQ(Top(), 6u);
    }
  }
  Run({0xdb, 0xf1}, {qnan, R(1)}, 0x037f, set);
  EXPECT_EQ(Flags(), kIe);
  Run({0xdb, 0xe9}, {qnan, R(1)}, 0x037f, set);
  EXPECT_EQ(Flags(), 0);
  Run({0xdf, 0xf1}, {R(1), R(2)}, 0x037f, set);  // fcomip pops
  EXPECT_EQ(Top(), 7u);
  EXPECT_EQ(st().rflags & (zpc | junk), kFlagCf);
  Run({0xdf, 0xe9}, {R(1)}, 0x037f, set);  // fucomip, ST(1) empty: unordered, IE SF
  EXPECT_EQ(st().rflags & (zpc | junk), zpc);
  EXPECT_EQ(st().fsw & (kIe | kSf), kIe | kSf);
}

TEST_F(X87Test, FxamClasses) {
  struct K { X87Reg v; uint16_t cc; };
  const K ks[] = {
      {Bits(0x7fff, 0xc000000000000000ull), kC0},           // NaN
      {Bits(0xffff, 0xa000000000000000ull), kC0 | kC1},     // -SNaN
      {R(1.5L), kC2},                                       // normal
      {R(-1.5L), kC2 | kC1},
      {Bits(0x7fff, 0x8000000000000000ull), kC2 | kC0},     // inf
      {Bits(0x8000, 0), kC3 | kC1},                         // -0
      {Bits(0x0000, 5), kC3 | kC2},                         // denormal
      {Bits(0x0000, 0x8000000000000000ull), kC3 | kC2},     // pseudo-denormal
      {Bits(0x4000, 0x1000000000000000ull), 0},             // unnormal: unsupported
  };
  for (const K& k : ks) {
    Run({0xd9, 0xe5}, {k.v});
    EXPECT_EQ(st().fsw & (kC0 | kC1 | kC2 | kC3), k.cc) << Hex(k.v);
    EXPECT_EQ(Flags(), 0);
  }
  Run({0xd9, 0xe5}, {}, 0x037f, [](CpuState& s) { s.st[0] = R(-1); });  // empty: C3 C0, C1 sign
  EXPECT_EQ(st().fsw & (kC0 | kC1 | kC2 | kC3), kC3 | kC0 | kC1);
}

// ---- environment ---------------------------------------------------------------------------

// A state with TOP = 6: R6 = +0 (zero), R7 = 1.0 (valid), R0 = inf (special), R1-R5 empty.
void EnvState(CpuState& s) {
  s.fcw = 0x027f;
  s.fsw = static_cast<uint16_t>((6u << 11) | kC3 | kPe);
  s.ftw = 0xc1;
  s.st[6] = X87Reg{0, 0};
  s.st[7] = X87Reg{0x8000000000000000ull, 0x3fff};
  s.st[0] = X87Reg{0x8000000000000000ull, 0x7fff};
  s.st[1] = X87Reg{0x8000000000000000ull, 0x4000};  // empty: tag 11 whatever it holds
  s.fip = 0x1234567890ull;
  s.fcs = 0x0008;
  s.fop = 0x5d9;
  s.fdp = 0xabcdef12ull;
  s.fds = 0x0010;
}
constexpr uint16_t kEnvTag = 0x1ffe;  // R0 10, R1-R5 11, R6 01, R7 00

void ExpectBytes(GuestMemory& m, uint64_t at, const Bytes& want) {
  Bytes got(want.size());
  m.Read(at, got.data(), got.size());
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(int(got[i]), int(want[i])) << "byte " << i;
}

TEST_F(X87Test, FnstenvImages) {
  const uint8_t fsw_lo = static_cast<uint8_t>(((6u << 11) | kC3 | kPe) & 0xff);
  const uint8_t fsw_hi = static_cast<uint8_t>(((6u << 11) | kC3 | kPe) >> 8);
  // 32-bit protected-mode format (64-bit mode, no prefix).
  Run({0xd9, 0x37}, {}, 0x037f, EnvState);
  ASSERT_EQ(FaultVector(), -1);
  ExpectBytes(mem(), kDataBase,
              {0x7f, 0x02, 0xff, 0xff, fsw_lo, fsw_hi, 0xff, 0xff, 0xfe, 0x1f, 0xff, 0xff,
               0x90, 0x78, 0x56, 0x34, 0x08, 0x00, 0xd9, 0x05, 0x12, 0xef, 0xcd, 0xab,
               0x10, 0x00, 0xff, 0xff});
  EXPECT_EQ(st().fip, 0x1234567890ull);  // a control instruction: pointers unchanged
  // 16-bit protected-mode format (66 prefix).
  Run({0x66, 0xd9, 0x37}, {}, 0x037f, EnvState);
  ExpectBytes(mem(), kDataBase,
              {0x7f, 0x02, fsw_lo, fsw_hi, 0xfe, 0x1f, 0x90, 0x78, 0x08, 0x00, 0x12, 0xef,
               0x10, 0x00});
  // Real mode: 20/32-bit linear pointers with the opcode. FCS:FIP = 1234:5678 -> 179B8,
  // FDS:FDP = 0100:0010 -> 01010.
  auto real = [](CpuState& s) {
    EnvState(s);
    s.fcs = 0x1234;
    s.fip = 0x5678;
    s.fds = 0x0100;
    s.fdp = 0x0010;
  };
  Run({0xd9, 0x35}, {}, 0x037f, real, FlatMode::kReal);  // fnstenv [di] (16-bit)
  ASSERT_EQ(FaultVector(), -1);
  ExpectBytes(mem(), kDataBase,
              {0x7f, 0x02, fsw_lo, fsw_hi, 0xfe, 0x1f, 0xb8, 0x79, 0xd9, 0x15, 0x10, 0x10,
               0x00, 0x00});
  Run({0x66, 0xd9, 0x35}, {}, 0x037f, real, FlatMode::kReal);  // 32-bit real format
  ExpectBytes(mem(), kDataBase,
              {0x7f, 0x02, 0xff, 0xff, fsw_lo, fsw_hi, 0xff, 0xff, 0xfe, 0x1f, 0xff, 0xff,
               0xb8, 0x79, 0xff, 0xff, 0xd9, 0x15, 0x00, 0x00, 0x10, 0x10, 0xff, 0xff,
               0x00, 0x00, 0x00, 0x00});
  // FNSTENV masks every exception afterwards (and so nothing is pending any more).
  Run({0xd9, 0x37, 0x9b}, {}, 0x0340, [](CpuState& s) { s.fsw = kIe | kEs | kB; });
  EXPECT_EQ(FaultVector(), -1);
  EXPECT_EQ(st().fcw, 0x037f);
  EXPECT_EQ(GetT<uint16_t>(kDataBase), 0x0340);
  EXPECT_EQ(GetT<uint16_t>(kDataBase + 4), kIe | kEs | kB);
}

TEST_F(X87Test, HostFnstenvAgreesOnControlStatusTag) {
  // The host's 32-bit image of fld1; fldz; fldpi's stack: FCW, FSW, FTW dwords (its pointers
  // and opcode are not comparable: FOP/FDP are only kept on exceptions by recent hosts).
  uint8_t host[28];
  asm volatile("fninit\n\tfld1\n\tfldz\n\tfldpi\n\tfnstenv %0\n\tfninit" : "=m"(host) : : "st", "st(1)", "st(2)");
  Run({0xdb, 0xe3, 0xd9, 0xe8, 0xd9, 0xee, 0xd9, 0xeb, 0xd9, 0x37});
  uint8_t got[28];
  mem().Read(kDataBase, got, 28);
  EXPECT_EQ(0, std::memcmp(got, host, 12));
}

TEST_F(X87Test, FnsaveFrstor) {
  // fnsave [rdi]: environment then ST(0)..ST(7) (10 bytes each), then FNINIT.
  Run({0xdd, 0x37}, {}, 0x037f, EnvState);
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(GetT<uint16_t>(kDataBase + 8), kEnvTag);
  EXPECT_REG(GetM80(kDataBase + 28), Bits(0, 0));                          // ST(0) = R6
  EXPECT_REG(GetM80(kDataBase + 38), Bits(0x3fff, 0x8000000000000000ull)); // R7
  EXPECT_REG(GetM80(kDataBase + 48), Bits(0x7fff, 0x8000000000000000ull)); // R0
  EXPECT_EQ(st().fcw, 0x037f);
  EXPECT_EQ(st().fsw, 0);
  EXPECT_EQ(st().ftw, 0);
  EXPECT_EQ(st().fip, 0u);
  // fnsave; frstor round trip (16- and 32-bit forms).
  for (bool o16 : {false, true}) {
    Bytes code;
    if (o16) code.push_back(0x66);
    code.insert(code.end(), {0xdd, 0x37});
    if (o16) code.push_back(0x66);
    code.insert(code.end(), {0xdd, 0x27});
    Run(code, {}, 0x037f, EnvState);
    ASSERT_EQ(FaultVector(), -1);
    CpuState want = st();
    EnvState(want);
    EXPECT_EQ(st().fcw, want.fcw) << o16;
    EXPECT_EQ(st().fsw, want.fsw);
    EXPECT_EQ(st().ftw, want.ftw);
    EXPECT_EQ(st().fip, o16 ? 0x7890u : 0x34567890u);
    EXPECT_EQ(st().fcs, want.fcs);
    EXPECT_EQ(st().fdp, o16 ? 0xef12u : 0xabcdef12u);
    EXPECT_EQ(st().fds, want.fds);
    EXPECT_EQ(st().fop, o16 ? 0 : 0x5d9);  // no FOP in the 16-bit protected format: FNSAVE's 0 stays
    for (unsigned i : {6u, 7u, 0u}) EXPECT_REG(st().st[i], want.st[i]);
  }
  // FLDENV takes the tags as empty / not empty only, and ES from the flags and masks.
  Run({0xd9, 0x37, 0xdb, 0xe3, 0xd9, 0x27}, {}, 0x037f, EnvState);
  EXPECT_EQ(st().ftw, 0xc1);
}

TEST_F(X87Test, FsaveIsFwaitThenFnsave) {
  // 9B DD /6 decodes as FWAIT + FNSAVE: a pending exception faults at the FWAIT, before
  // anything is stored; the non-waiting FNSAVE alone stores it.
  Put64(mem(), kDataBase, 0x5555);
  Run({0x9b, 0xdd, 0x37}, {R(1)}, 0x037e, [](CpuState& s) { s.fsw |= kIe | kEs | kB; });
  EXPECT_EQ(FaultVector(), 16);
  EXPECT_EQ(Frame64(0), kCodeBase);
  EXPECT_EQ(Get64(mem(), kDataBase), 0x5555u);
  Run({0xdd, 0x37}, {R(1)}, 0x037e, [](CpuState& s) { s.fsw |= kIe | kEs | kB; });
  EXPECT_EQ(FaultVector(), -1);
  EXPECT_EQ(GetT<uint16_t>(kDataBase + 4), (7u << 11) | kIe | kEs | kB);
  EXPECT_EQ(st().fsw, 0);  // reinitialised
}

TEST_F(X87Test, EnvironmentIn16BitProtectedMode) {
  // 16-bit code segment: FNSTENV's default format is the 14-byte one; 66h selects 28 bytes.
  Run({0xd9, 0x35}, {}, 0x037f, EnvState, FlatMode::kProt16);
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(GetT<uint16_t>(kDataBase + 6), 0x7890);  // FIP offset
  EXPECT_EQ(GetT<uint16_t>(kDataBase + 8), 0x0008);  // FCS
  EXPECT_EQ(GetT<uint16_t>(kDataBase + 14), 0);      // not written (14 bytes)
  Run({0x66, 0xd9, 0x35}, {}, 0x037f, EnvState, FlatMode::kProt16);
  EXPECT_EQ(GetT<uint32_t>(kDataBase + 12), 0x34567890u);
  EXPECT_EQ(GetT<uint32_t>(kDataBase + 16), 0x05d90008u);
  // An x87 instruction in this mode records the 16-bit IP and the selectors.
  Run({0xd9, 0xe8}, {}, 0x037f, {}, FlatMode::kProt16);
  EXPECT_EQ(st().fip, kCodeBase);
  EXPECT_EQ(st().fcs, kSelCode16);
  EXPECT_EQ(st().fop, 0x1e8);
}

TEST_F(X87Test, OtherModesAndAddressSizes) {
  // Real mode, 16-bit addressing: fld qword [bx]; fmul dword [bx+si+8]; fstp tbyte [bx+16].
  Put64(mem(), kDataBase, 0x4008000000000000ull);  // 3.0
  Put32(mem(), kDataBase + 8, 0x40000000);          // 2.0f
  auto regs = [](CpuState& s) {
    s.gpr[kRbx] = kDataBase;
    s.gpr[kRsi] = 0;
  };
  Run({0xdd, 0x07, 0xd8, 0x48, 0x08, 0xdb, 0x7f, 0x10}, {}, 0x037f, regs, FlatMode::kReal);
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_REG(GetM80(kDataBase + 16), R(6));
  EXPECT_EQ(st().fdp, kDataBase + 16);
  EXPECT_EQ(st().fip, kCodeBase + 5);
  EXPECT_EQ(st().fop, 0x37f);
  // 32-bit protected mode: the same with [edi].
  Run({0xdd, 0x07, 0xd8, 0x4f, 0x08, 0xdb, 0x7f, 0x10}, {}, 0x037f, {}, FlatMode::kProt32);
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_REG(GetM80(kDataBase + 16), R(6));
  EXPECT_EQ(st().fds, kSelData);
  // 64-bit RIP-relative operand: FDP is the effective address.
  Put64(mem(), kCodeBase + 0x100, 0x3ff0000000000000ull);
  Run({0xdd, 0x05, 0xfa, 0x00, 0x00, 0x00});  // fld qword [rip + 0xfa] (next RIP + 0xfa = +0x100)
  EXPECT_REG(St(0), R(1));
  EXPECT_EQ(st().fdp, kCodeBase + 0x100);
}

TEST_F(X87Test, EmAndTsRaiseNm) {
  // CR0.EM or CR0.TS: #NM for every x87 instruction, waiting or not, before anything changes.
  const Bytes cases[] = {{0xd8, 0xc1}, {0xd9, 0xe8}, {0xd9, 0x37}, {0xdd, 0x37}, {0xd9, 0xfe},
                         {0xdf, 0x37}, {0xdb, 0xf1}};
  for (const Bytes& code : cases) {
    for (uint64_t bit : {uint64_t{4}, uint64_t{8}}) {
      Run(code, {R(1), R(2)}, 0x037f, [bit](CpuState& s) { s.cr0 |= bit; s.fop = 0x123; });
      EXPECT_EQ(FaultVector(), 7) << int(code[0]) << " " << int(code[1]);
      EXPECT_EQ(st().fop, 0x123);
      EXPECT_EQ(Top(), 6u);
    }
  }
}

// ---- pointers ----------------------------------------------------------------------------

TEST_F(X87Test, PointersAfterFaddM64) {
  Put64(mem(), kDataBase + 8, 0x3ff0000000000000ull);  // 1.0
  Run({0xdc, 0x47, 0x08, 0xd9, 0xd0}, {R(2)});  // fadd qword [rdi+8]; fnop
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_REG(St(0), R(3));
  EXPECT_EQ(st().fip, kCodeBase + 3);  // the fnop
  EXPECT_EQ(st().fop, 0x1d0);
  EXPECT_EQ(st().fdp, kDataBase + 8);  // kept from the fadd
  EXPECT_EQ(st().fds, kSelData);
  Run({0xdc, 0x47, 0x08}, {R(2)}, 0x037f, [](CpuState& s) { s.fdp = 0; s.fcs = 0x77; });
  EXPECT_EQ(st().fip, kCodeBase);
  EXPECT_EQ(st().fcs, kSelCode);
  EXPECT_EQ(st().fop, 0x447);  // DC & 7 = 4, ModR/M 47
  EXPECT_EQ(st().fdp, kDataBase + 8);
  EXPECT_EQ(st().fds, kSelData);
}

TEST_F(X87Test, TranscendentalStackHandling) {
  // The values come from x87_math.cc (tested in cpu_x87_math_test); these are exact ones.
  const X87Reg one = R(1), zero = Bits(0, 0), inf = Bits(0x7fff, 0x8000000000000000ull);
  Run({0xd9, 0xfe}, {Bits(0x8000, 0), R(5)});  // fsin -0 = -0, C2 = 0
  EXPECT_REG(St(0), Bits(0x8000, 0));
  EXPECT_EQ(Top(), 6u);
  EXPECT_EQ(st().fop, 0x1fe);
  Run({0xd9, 0xff}, {zero}, 0x037f, [](CpuState& s) { s.fsw |= kC2; });  // fcos 0 = 1
  EXPECT_REG(St(0), one);
  EXPECT_EQ(st().fsw & kC2, 0);
  // |x| >= 2^63: C2 = 1, ST(0) unchanged, no exception (fsin, fcos, fsincos, fptan).
  const X87Reg big = Bits(0x403e, 0x8000000000000000ull);
  for (uint8_t op : {uint8_t{0xfe}, uint8_t{0xff}, uint8_t{0xfb}, uint8_t{0xf2}}) {
    Run({0xd9, op}, {big});
    EXPECT_REG(St(0), big) << int(op);
    EXPECT_EQ(Top(), 7u);
    EXPECT_EQ(st().fsw & (kC2 | 0x3f), kC2);
  }
  Run({0xd9, 0xfb}, {zero});  // fsincos 0: ST(0) = cos = 1, ST(1) = sin = 0
  EXPECT_EQ(Top(), 6u);
  EXPECT_REG(St(0), one);
  EXPECT_REG(St(1), zero);
  Run({0xd9, 0xf2}, {zero});  // fptan 0: ST(1) = 0, then 1.0 pushed
  EXPECT_EQ(Top(), 6u);
  EXPECT_REG(St(0), one);
  EXPECT_REG(St(1), zero);
  Run({0xd9, 0xf2}, {inf});  // fptan inf: IE, the indefinite twice
  EXPECT_EQ(Top(), 6u);
  EXPECT_REG(St(0), kInd);
  EXPECT_REG(St(1), kInd);
  EXPECT_EQ(Flags(), kIe);
  Run({0xd9, 0xf2}, {inf}, 0x037e, [](CpuState& s) { s.cr0 &= ~kCr0Ne; });  // unmasked: nothing
  EXPECT_EQ(Top(), 7u);
  EXPECT_REG(St(0), inf);
  EXPECT_EQ(st().fsw & (kIe | kEs), kIe | kEs);
  // fpatan(1, 1) = pi/4 into ST(1), pop; f2xm1(-1) = -0.5; fyl2x(3, 8) = 9, pop;
  // fyl2xp1(2, 0) = 0, pop.
  Run({0xd9, 0xf3}, {one, one});
  EXPECT_EQ(Top(), 7u);
  EXPECT_REG(St(0), Bits(0x3ffe, 0xc90fdaa22168c235ull));
  Run({0xd9, 0xf0}, {R(-1)});
  EXPECT_REG(St(0), R(-0.5L));
  Run({0xd9, 0xf1}, {R(8), R(3)});
  EXPECT_EQ(Top(), 7u);
  EXPECT_REG(St(0), R(9));
  Run({0xd9, 0xf9}, {zero, R(2)});
  EXPECT_EQ(Top(), 7u);
  EXPECT_REG(St(0), zero);
  // fyl2x(1, 0): ZE, -inf; unmasked ZE: nothing written, no pop, #MF at the next fnop.
  Run({0xd9, 0xf1}, {zero, one});
  EXPECT_REG(St(0), Bits(0xffff, 0x8000000000000000ull));
  EXPECT_EQ(Flags(), kZe);
  Run({0xd9, 0xf1, 0xd9, 0xd0}, {zero, one}, 0x037b);
  EXPECT_EQ(FaultVector(), 16);
  EXPECT_EQ(Top(), 6u);
  EXPECT_REG(St(1), one);
  // Stack faults: fsincos on a full stack (overflow: ST(0) and the push are the indefinite),
  // fsin on an empty one, fpatan with ST(1) empty (ST(1) = indefinite, popped).
  Run({0xd9, 0xfb}, std::vector<X87Reg>(8, one));
  EXPECT_EQ(Top(), 7u);
  EXPECT_REG(St(0), kInd);
  EXPECT_REG(St(1), kInd);
  EXPECT_EQ(st().fsw & (kIe | kSf | kC1), kIe | kSf | kC1);
  Run({0xd9, 0xfe});
  EXPECT_REG(St(0), kInd);
  EXPECT_EQ(st().fsw & (kIe | kSf | kC1), kIe | kSf);
  Run({0xd9, 0xf3}, {one});
  EXPECT_EQ(Top(), 0u);
  EXPECT_REG(St(0), kInd);
  // Unsupported encodings: IE, the indefinite.
  Run({0xd9, 0xfe}, {Bits(0x3fff, 0x4000000000000000ull)});
  EXPECT_REG(St(0), kInd);
  EXPECT_EQ(Flags(), kIe);
}

// ---- gcc's own long double code ----------------------------------------------------------

// The host's compilation of this function is the oracle; kKernCode is its compilation by
// gcc 12 -O2 -mno-sse -mno-mmx -fno-pic -fno-asynchronous-unwind-tables -fno-stack-protector
// -fcf-protection=none (objcopy -O binary --only-section=.text; no relocations): FLDT/FSTPT,
// FLD/FSTP/FXCH ST(i), FLDZ, FMUL(P)/FDIV/FDIVRP/FADDP/FSUBP/FSUBRP, FCOMI/FUCOMI/FUCOMIP,
// FCHS, FABS, FILD m64, and long long conversions through FNSTCW/FLDCW/FISTP m64.
// Out-of-range conversions are the point (the x87 stores the integer indefinite): clang's
// UBSan (float-cast-overflow) must not stop the host oracle there.
#if defined(__clang__)
#define VMRR_NO_FLOAT_CAST_CHECK __attribute__((no_sanitize("float-cast-overflow")))
#else
#define VMRR_NO_FLOAT_CAST_CHECK
#endif
__attribute__((noinline)) VMRR_NO_FLOAT_CAST_CHECK void Kern(long double* v, long long* out, int n) {
  long double s = 0, t = v[0];
  for (int i = 1; i < n; ++i) {
    long double x = v[i];
    s = s * t + x / v[1];
    if (s > v[2]) s -= v[3];
    if (s < -v[2]) s = -s;
    t = t - x * (long double)out[i];
    out[i] = (long long)s;
    if (t != t || t > v[4]) t = v[5];
    s = __builtin_fabsl(s) < v[6] ? s * v[7] : s / v[7];
  }
  v[0] = s;
  v[1] = t;
  out[0] = (long long)(s * t);
  out[n] = s == t;
}
const uint8_t kKernCode[] = {
0xdb, 0x2f, 0x83, 0xfa, 0x01, 0x0f, 0x8e, 0x3d, 0x01, 0x00, 0x00, 0xd9, 0x7c, 0x24, 0xf6, 0x8d,
0x4a, 0xff, 0x31, 0xc0, 0xdb, 0x6f, 0x10, 0x48, 0xc1, 0xe1, 0x03, 0x44, 0x0f, 0xb7, 0x44, 0x24,
0xf6, 0xdb, 0x6f, 0x20, 0x66, 0x41, 0x81, 0xc8, 0x00, 0x0c, 0x66, 0x44, 0x89, 0x44, 0x24, 0xf4,
0xd9, 0xc0, 0xd9, 0xe0, 0xdb, 0x6f, 0x60, 0xdb, 0x6f, 0x70, 0xdb, 0x7c, 0x24, 0xd8, 0xd9, 0xee,
0xeb, 0x2a, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0xdb, 0x6c, 0x24, 0xd8, 0x48, 0x83, 0xc0, 0x08,
0xde, 0xcb, 0x48, 0x39, 0xc8, 0x0f, 0x84, 0xad, 0x00, 0x00, 0x00, 0xd9, 0xcd, 0xd9, 0xca, 0xeb,
0x0b, 0x0f, 0x1f, 0x80, 0x00, 0x00, 0x00, 0x00, 0xd9, 0xcd, 0xd9, 0xca, 0xdb, 0x6c, 0x47, 0x10,
0xd9, 0xc9, 0xd8, 0xce, 0xd9, 0xc1, 0xd8, 0xf6, 0xde, 0xc1, 0xdb, 0xf4, 0x76, 0x12, 0xdb, 0x6f,
0x30, 0xde, 0xe9, 0xd9, 0xcb, 0xeb, 0x0b, 0x66, 0x0f, 0x1f, 0x84, 0x00, 0x00, 0x00, 0x00, 0x00,
0xd9, 0xcb, 0xdb, 0xf3, 0x76, 0x06, 0xd9, 0xcb, 0xd9, 0xe0, 0xd9, 0xcb, 0xdf, 0x6c, 0x06, 0x08,
0xde, 0xca, 0xd9, 0xce, 0xde, 0xe1, 0xd9, 0xca, 0xd9, 0xc0, 0xd9, 0x6c, 0x24, 0xf4, 0xdf, 0x7c,
0x06, 0x08, 0xd9, 0x6c, 0x24, 0xf6, 0xd9, 0xca, 0xdb, 0xe8, 0x7a, 0x14, 0xdb, 0x6f, 0x40, 0xd9,
0xc9, 0xdb, 0xf1, 0xdd, 0xd9, 0x76, 0x0e, 0xdd, 0xd8, 0xeb, 0x07, 0x0f, 0x1f, 0x44, 0x00, 0x00,
0xdd, 0xd8, 0xdb, 0x6f, 0x50, 0xd9, 0xc2, 0xd9, 0xe1, 0xd9, 0xca, 0xdb, 0xf2, 0xdd, 0xda, 0x0f,
0x87, 0x63, 0xff, 0xff, 0xff, 0xdb, 0x6c, 0x24, 0xd8, 0x48, 0x83, 0xc0, 0x08, 0xde, 0xfb, 0x48,
0x39, 0xc8, 0x0f, 0x85, 0x70, 0xff, 0xff, 0xff, 0xdd, 0xdd, 0xdd, 0xd8, 0xdd, 0xda, 0xdd, 0xd8,
0xeb, 0x0e, 0x66, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0xdd, 0xdd, 0xdd, 0xd8, 0xdd, 0xda, 0xdd, 0xd8,
0xd9, 0xc0, 0xdb, 0x3f, 0xd9, 0xc9, 0x31, 0xc0, 0xb9, 0x00, 0x00, 0x00, 0x00, 0x48, 0x63, 0xd2,
0xd9, 0xc0, 0xdb, 0x7f, 0x10, 0xd9, 0xc0, 0xd8, 0xca, 0xd9, 0x6c, 0x24, 0xf4, 0xdf, 0x3e, 0xd9,
0x6c, 0x24, 0xf6, 0xdf, 0xe9, 0xdd, 0xd8, 0x0f, 0x9b, 0xc0, 0x48, 0x0f, 0x45, 0xc1, 0x48, 0x89,
0x04, 0xd6, 0xc3, 0x0f, 0x1f, 0x44, 0x00, 0x00, 0xd9, 0x7c, 0x24, 0xf6, 0xd9, 0xee, 0x0f, 0xb7,
0x44, 0x24, 0xf6, 0x80, 0xcc, 0x0c, 0x66, 0x89, 0x44, 0x24, 0xf4, 0xeb, 0xb3

};

TEST_F(X87Test, GccLongDoubleCodeMatchesHost) {
  uint64_t seed = 0x87;
  auto next = [&seed]() {
    seed = seed * 6364136223846793005ull + 1442695040888963407ull;
    return seed >> 11;
  };
  for (int round = 0; round < 40; ++round) {
    constexpr int kN = 24;
    long double v[kN];
    long long out[kN + 1];
    for (int i = 0; i < kN; ++i) {
      // Mixed magnitudes and signs, some exact integers, NaN/inf now and then.
      const int64_t m = static_cast<int64_t>(next() % 2000001) - 1000000;
      const int e = static_cast<int>(next() % 41) - 20;
      v[i] = std::ldexp(static_cast<long double>(m), e);
      if (next() % 17 == 0) v[i] = (next() & 1) ? __builtin_nanl("") : __builtin_infl();
      out[i] = static_cast<long long>(next() % 7) - 3;
    }
    out[kN] = 0;
    v[1] = v[1] == 0 ? 3 : v[1];
    for (int i = 0; i < kN; ++i) PutM80(kDataBase + 16 * i, R(v[i]));
    mem().Write(kDataBase + 0x800, out, sizeof out);
    Kern(v, out, kN);  // the host's answer
    const Bytes code(kKernCode, kKernCode + sizeof kKernCode);
    Start(FlatMode::kLong64, code, [](CpuState& s) {
      s.gpr[kRdi] = kDataBase;
      s.gpr[kRsi] = kDataBase + 0x800;
      s.gpr[kRdx] = kN;
      s.gpr[kRsp] = kStackTop - 8;
    });
    Put64(mem(), kStackTop - 8, kCodeBase + 0x1000);  // return address: a HLT
    const uint8_t hlt = 0xf4;
    mem().Write(kCodeBase + 0x1000, &hlt, 1);
    RunToHalt();
    ASSERT_EQ(FaultVector(), -1);
    ASSERT_EQ(st().rip, kCodeBase + 0x1001);
    EXPECT_REG(GetM80(kDataBase), R(v[0])) << round;
    EXPECT_REG(GetM80(kDataBase + 16), R(v[1])) << round;
    for (int i = 0; i <= kN; ++i)
      EXPECT_EQ(static_cast<long long>(Get64(mem(), kDataBase + 0x800 + 8 * i)), out[i]) << round << " " << i;
    EXPECT_EQ(st().ftw, 0);  // the ABI leaves the stack empty
    EXPECT_GT(cpu.icount(), 24u * 30);
  }
}

}  // namespace
}  // namespace vmrr::testing
