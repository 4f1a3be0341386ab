// Directed tests of the x87/MMX/SSE foundation (issue 11, hv-hooks/cpu/FPU_NOTES.md), from
// the Intel SDM: the FXSAVE image byte by byte (both layouts) and FXRSTOR round trips, the
// XSAVE standard form and XRSTOR's header checks, XGETBV/XSETBV, the CR0.EM/MP/TS and
// CR4.OSFXSR/OSXSAVE exception rules, MXCSR reserved bits, x87 control instructions, the
// MMX/XMM data moves with their alignment rules, CPUID (leaf 0xD; nothing new advertised),
// reset values and save/load of the new state.
#include <cstring>

#include "tests/unit/cpu/cpu_test_util.h"

namespace vmrr::testing {
namespace {

using Bytes = std::vector<uint8_t>;

constexpr uint64_t kCr0Mp = 2, kCr0Em = 4, kCr0Ts = 8;
constexpr uint64_t kCr4Osfxsr = 1u << 9, kCr4Osxsave = 1u << 18;
constexpr uint64_t kArea = kDataBase + 0x400;  // 64-byte aligned save area

// A state with every x87/SSE field distinct (TOP = 3, so ST(i) = R((3 + i) & 7)).
void KnownFpuState(CpuState& s) {
  s.cr4 |= kCr4Osfxsr | kCr4Osxsave;
  s.fcw = 0x027f;
  s.fsw = static_cast<uint16_t>((3u << 11) | 0x4100 | 0x0021);  // TOP 3, C3, C0, PE, IE
  s.ftw = 0x5a;
  s.fop = 0x5d9;
  s.fip = 0x1122334455667788ull;
  s.fdp = 0x99aabbccddeeff00ull;
  s.fcs = 0x1234;
  s.fds = 0x5678;
  for (unsigned i = 0; i < 8; ++i) {
    s.st[i].mant = 0x8000000000000000ull | (0x0101010101010101ull * i);
    s.st[i].sign_exp = static_cast<uint16_t>(0x3fff + i);
  }
  for (unsigned i = 0; i < 16; ++i) {
    s.xmm[i][0] = 0x0001000200030004ull * (i + 1);
    s.xmm[i][1] = ~s.xmm[i][0];
  }
  s.mxcsr = 0x1fa1;
}

uint8_t B(GuestMemory& m, uint64_t at) {
  uint8_t v;
  m.Read(at, &v, 1);
  return v;
}
uint16_t W(GuestMemory& m, uint64_t at) {
  uint16_t v;
  m.Read(at, &v, 2);
  return v;
}
uint32_t D(GuestMemory& m, uint64_t at) {
  uint32_t v;
  m.Read(at, &v, 4);
  return v;
}

class FpuTest : public CpuTest {
 protected:
  // Runs code in 64-bit mode with the known FPU state, RDI = kArea, then `tweak`.
  void Run64(const Bytes& code, const std::function<void(CpuState&)>& tweak = {}) {
    Start(FlatMode::kLong64, code, [&](CpuState& s) {
      KnownFpuState(s);
      s.gpr[kRdi] = kArea;
      if (tweak) tweak(s);
    });
    RunToHalt();
  }
  void FillArea(uint8_t byte, unsigned n = 1024) {
    Bytes fill(n, byte);
    mem().Write(kArea, fill.data(), fill.size());
  }
};

// ---- FXSAVE / FXRSTOR -------------------------------------------------------------------

TEST_F(FpuTest, Fxsave64ImageLayout) {
  FillArea(0xcc);
  Run64({0x48, 0x0f, 0xae, 0x07, 0xf4});  // fxsave64 [rdi]
  ASSERT_EQ(FaultVector(), -1);
  GuestMemory& m = mem();
  EXPECT_EQ(W(m, kArea + 0), 0x027f);
  EXPECT_EQ(W(m, kArea + 2), (3u << 11) | 0x4121);
  EXPECT_EQ(B(m, kArea + 4), 0x5a);  // abridged tag word
  EXPECT_EQ(B(m, kArea + 5), 0);
  EXPECT_EQ(W(m, kArea + 6), 0x5d9);
  EXPECT_EQ(Get64(m, kArea + 8), 0x1122334455667788ull);   // 64-bit FIP
  EXPECT_EQ(Get64(m, kArea + 16), 0x99aabbccddeeff00ull);  // 64-bit FDP
  EXPECT_EQ(D(m, kArea + 24), 0x1fa1u);
  EXPECT_EQ(D(m, kArea + 28), 0xffffu);  // MXCSR_MASK: DAZ supported
  for (unsigned i = 0; i < 8; ++i) {  // ST(i) = R((3 + i) & 7)
    const unsigned r = (3 + i) & 7;
    EXPECT_EQ(Get64(m, kArea + 32 + 16 * i), 0x8000000000000000ull | (0x0101010101010101ull * r)) << i;
    EXPECT_EQ(W(m, kArea + 40 + 16 * i), 0x3fff + r) << i;
    for (unsigned b = 10; b < 16; ++b) EXPECT_EQ(B(m, kArea + 32 + 16 * i + b), 0) << i;
  }
  for (unsigned i = 0; i < 16; ++i) {
    EXPECT_EQ(Get64(m, kArea + 160 + 16 * i), 0x0001000200030004ull * (i + 1)) << i;
    EXPECT_EQ(Get64(m, kArea + 168 + 16 * i), ~(0x0001000200030004ull * (i + 1))) << i;
  }
  for (unsigned b = 416; b < 512; ++b) EXPECT_EQ(B(m, kArea + b), 0xcc) << b;  // not written
  EXPECT_EQ(B(m, kArea + 512), 0xcc);
}

TEST_F(FpuTest, FxsaveLegacyImageLayout) {
  FillArea(0xcc);
  Run64({0x0f, 0xae, 0x07, 0xf4});  // fxsave [rdi] (no REX.W): 32-bit pointers with selectors
  ASSERT_EQ(FaultVector(), -1);
  GuestMemory& m = mem();
  EXPECT_EQ(D(m, kArea + 8), 0x55667788u);
  EXPECT_EQ(W(m, kArea + 12), 0x1234);
  EXPECT_EQ(W(m, kArea + 14), 0);
  EXPECT_EQ(D(m, kArea + 16), 0xddeeff00u);
  EXPECT_EQ(W(m, kArea + 20), 0x5678);
  EXPECT_EQ(W(m, kArea + 22), 0);
  EXPECT_EQ(Get64(m, kArea + 160 + 16 * 15), 0x0001000200030004ull * 16);  // XMM15 in 64-bit mode
}

TEST_F(FpuTest, FxsaveProtectedModeSavesXmm0To7Only) {
  FillArea(0xcc);
  Start(FlatMode::kProt32, {0x0f, 0xae, 0x07, 0xf4}, [](CpuState& s) {
    KnownFpuState(s);
    s.gpr[kRdi] = kArea;
  });
  RunToHalt();
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(Get64(mem(), kArea + 160 + 16 * 7), 0x0001000200030004ull * 8);
  for (unsigned b = 288; b < 512; ++b) EXPECT_EQ(B(mem(), kArea + b), 0xcc) << b;
}

TEST_F(FpuTest, FxrstorRoundTripBothLayouts) {
  for (bool wide : {true, false}) {
    SCOPED_TRACE(wide ? "fxsave64/fxrstor64" : "fxsave/fxrstor");
    // fxsave(64) [rdi]; fninit; pxor xmm3, xmm3; ldmxcsr [rdi+24] is skipped; fxrstor(64) [rdi]
    Bytes code;
    if (wide) code.push_back(0x48);
    code.insert(code.end(), {0x0f, 0xae, 0x07, 0xdb, 0xe3, 0x66, 0x0f, 0xef, 0xdb});
    if (wide) code.push_back(0x48);
    code.insert(code.end(), {0x0f, 0xae, 0x0f, 0xf4});
    Run64(code);
    ASSERT_EQ(FaultVector(), -1);
    CpuState want = st();
    KnownFpuState(want);
    want.cr4 = st().cr4;
    if (wide) want.fcs = want.fds = 0;  // not in the REX.W image
    else {
      want.fip &= 0xffffffffu;
      want.fdp &= 0xffffffffu;
    }
    EXPECT_EQ(st().fcw, want.fcw);
    EXPECT_EQ(st().fsw, want.fsw);
    EXPECT_EQ(st().ftw, want.ftw);
    EXPECT_EQ(st().fop, want.fop);
    EXPECT_EQ(st().fip, want.fip);
    EXPECT_EQ(st().fdp, want.fdp);
    EXPECT_EQ(st().fcs, want.fcs);
    EXPECT_EQ(st().fds, want.fds);
    EXPECT_EQ(st().mxcsr, want.mxcsr);
    for (unsigned i = 0; i < 8; ++i) EXPECT_EQ(st().st[i], want.st[i]) << i;
    for (unsigned i = 0; i < 16; ++i) {
      EXPECT_EQ(st().xmm[i][0], want.xmm[i][0]) << i;
      EXPECT_EQ(st().xmm[i][1], want.xmm[i][1]) << i;
    }
  }
}

TEST_F(FpuTest, FxsaveFxrstorAlignmentGp) {
  Run64({0x0f, 0xae, 0x07, 0xf4}, [](CpuState& s) { s.gpr[kRdi] = kArea + 8; });
  EXPECT_EQ(FaultVector(), 13);
  Run64({0x0f, 0xae, 0x0f, 0xf4}, [](CpuState& s) { s.gpr[kRdi] = kArea + 4; });
  EXPECT_EQ(FaultVector(), 13);
}

TEST_F(FpuTest, FxrstorReservedMxcsrGp) {
  FillArea(0);
  Put32(mem(), kArea + 24, 0x10000 | 0x1f80);
  Run64({0x0f, 0xae, 0x0f, 0xf4});
  EXPECT_EQ(FaultVector(), 13);
  EXPECT_EQ(st().mxcsr, 0x1fa1u);  // unchanged
  EXPECT_EQ(st().fcw, 0x027f);
}

// ---- exception rules --------------------------------------------------------------------

TEST_F(FpuTest, TsRaisesNm) {
  const Bytes cases[] = {
      {0x0f, 0xae, 0x07, 0xf4},               // fxsave
      {0xdb, 0xe3, 0xf4},                     // fninit
      {0xdf, 0xe0, 0xf4},                     // fnstsw ax
      {0x66, 0x0f, 0x6f, 0x07, 0xf4},         // movdqa xmm0, [rdi]
      {0x0f, 0xae, 0x1f, 0xf4},               // stmxcsr [rdi]
      {0x0f, 0x77, 0xf4},                     // emms
      {0x0f, 0x6e, 0xc0, 0xf4},               // movd mm0, eax
      {0x0f, 0xae, 0x27, 0xf4},               // xsave [rdi]
  };
  for (const Bytes& code : cases) {
    Run64(code, [](CpuState& s) { s.cr0 |= kCr0Ts; });
    EXPECT_EQ(FaultVector(), 7) << int(code[0]) << " " << int(code[1]);
  }
}

TEST_F(FpuTest, FwaitNeedsTsAndMp) {
  Run64({0x9b, 0xf4}, [](CpuState& s) { s.cr0 |= kCr0Ts; });
  EXPECT_EQ(FaultVector(), -1);
  Run64({0x9b, 0xf4}, [](CpuState& s) { s.cr0 |= kCr0Ts | kCr0Mp; });
  EXPECT_EQ(FaultVector(), 7);
}

TEST_F(FpuTest, EmRules) {
  // CR0.EM: x87 and FXSAVE #NM; MMX and SSE #UD.
  Run64({0xdb, 0xe3, 0xf4}, [](CpuState& s) { s.cr0 |= kCr0Em; });
  EXPECT_EQ(FaultVector(), 7);
  Run64({0x0f, 0xae, 0x07, 0xf4}, [](CpuState& s) { s.cr0 |= kCr0Em; });
  EXPECT_EQ(FaultVector(), 7);
  Run64({0x0f, 0x6e, 0xc0, 0xf4}, [](CpuState& s) { s.cr0 |= kCr0Em | kCr0Ts; });
  EXPECT_EQ(FaultVector(), 6);
  Run64({0x66, 0x0f, 0xef, 0xc1, 0xf4}, [](CpuState& s) { s.cr0 |= kCr0Em | kCr0Ts; });
  EXPECT_EQ(FaultVector(), 6);
}

TEST_F(FpuTest, NoOsfxsrRaisesUd) {
  const Bytes cases[] = {
      {0x66, 0x0f, 0x6f, 0x07, 0xf4},  // movdqa
      {0x0f, 0xae, 0x17, 0xf4},        // ldmxcsr
      {0x66, 0x0f, 0x6e, 0xc0, 0xf4},  // movd xmm0, eax
      {0x66, 0x0f, 0xef, 0xc1, 0xf4},  // pxor xmm0, xmm1
  };
  for (const Bytes& code : cases) {
    Run64(code, [](CpuState& s) { s.cr4 &= ~kCr4Osfxsr; });
    EXPECT_EQ(FaultVector(), 6);
  }
  // MMX and FXSAVE do not depend on CR4.OSFXSR.
  Run64({0x0f, 0xef, 0xc1, 0xf4}, [](CpuState& s) { s.cr4 &= ~kCr4Osfxsr; });
  EXPECT_EQ(FaultVector(), -1);
  Run64({0x0f, 0xae, 0x07, 0xf4}, [](CpuState& s) { s.cr4 &= ~kCr4Osfxsr; });
  EXPECT_EQ(FaultVector(), -1);
}

TEST_F(FpuTest, UnimplementedSseStillUd) {
  Run64({0x66, 0x0f, 0x38, 0x40, 0xc1, 0xf4});  // pmulld xmm0, xmm1 (SSE4.1): not implemented
  EXPECT_EQ(FaultVector(), 6);
  // (Every x87 instruction is implemented since branch x87: cpu_x87_test.cc.)
}

// ---- MXCSR ------------------------------------------------------------------------------

TEST_F(FpuTest, LdmxcsrStmxcsr) {
  Put32(mem(), kArea, 0x9fc0);  // FZ, DAZ, all masks, RC = 00
  Run64({0x0f, 0xae, 0x17, 0x0f, 0xae, 0x5f, 0x04, 0xf4});  // ldmxcsr [rdi]; stmxcsr [rdi+4]
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(st().mxcsr, 0x9fc0u);
  EXPECT_EQ(D(mem(), kArea + 4), 0x9fc0u);
  for (uint32_t bad : {0x10000u, 0x80000000u, 0x1f80u | 0x20000u}) {
    Put32(mem(), kArea, bad);
    Run64({0x0f, 0xae, 0x17, 0xf4});
    EXPECT_EQ(FaultVector(), 13) << bad;
    EXPECT_EQ(st().mxcsr, 0x1fa1u);
  }
}

// ---- XSAVE family -----------------------------------------------------------------------

TEST_F(FpuTest, XgetbvXsetbv) {
  // xsetbv with EAX=3; xgetbv with ECX=0 into EDX:EAX.
  Run64({0x0f, 0x01, 0xd1, 0x31, 0xc0, 0x0f, 0x01, 0xd0, 0xf4}, [](CpuState& s) {
    s.gpr[kRax] = 3;
    s.gpr[kRcx] = 0;
    s.gpr[kRdx] = 0;
  });
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(st().xcr0, 3u);
  EXPECT_EQ(reg(kRax), 3u);
  EXPECT_EQ(reg(kRdx), 0u);
  struct Bad { uint64_t rax, rcx, rdx; };
  for (Bad b : {Bad{0, 0, 0}, Bad{2, 0, 0}, Bad{7, 0, 0}, Bad{0x11, 0, 0}, Bad{3, 0, 1},
                Bad{3, 1, 0}}) {
    Run64({0x0f, 0x01, 0xd1, 0xf4}, [&](CpuState& s) {
      s.gpr[kRax] = b.rax;
      s.gpr[kRcx] = b.rcx;
      s.gpr[kRdx] = b.rdx;
    });
    EXPECT_EQ(FaultVector(), 13) << b.rax << " " << b.rcx << " " << b.rdx;
    EXPECT_EQ(st().xcr0, 1u);
  }
  // XGETBV with ECX other than 0: #GP; without CR4.OSXSAVE both are #UD.
  Run64({0x0f, 0x01, 0xd0, 0xf4}, [](CpuState& s) { s.gpr[kRcx] = 1; });
  EXPECT_EQ(FaultVector(), 13);
  Run64({0x0f, 0x01, 0xd0, 0xf4}, [](CpuState& s) { s.cr4 &= ~kCr4Osxsave; });
  EXPECT_EQ(FaultVector(), 6);
  Run64({0x0f, 0x01, 0xd1, 0xf4}, [](CpuState& s) {
    s.cr4 &= ~kCr4Osxsave;
    s.gpr[kRax] = 3;
  });
  EXPECT_EQ(FaultVector(), 6);
}

TEST_F(FpuTest, XsaveStandardForm) {
  FillArea(0xcc);
  Put64(mem(), kArea + 512, 0x4);  // XSTATE_BV bit outside RFBM: kept
  // xsave64 [rdi] with RFBM = EDX:EAX & XCR0 = 3.
  Run64({0x48, 0x0f, 0xae, 0x27, 0xf4}, [](CpuState& s) {
    s.xcr0 = 3;
    s.gpr[kRax] = ~uint64_t{0};
    s.gpr[kRdx] = ~uint64_t{0};
  });
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(W(mem(), kArea), 0x027f);
  EXPECT_EQ(D(mem(), kArea + 24), 0x1fa1u);
  EXPECT_EQ(Get64(mem(), kArea + 160), 0x0001000200030004ull);
  EXPECT_EQ(Get64(mem(), kArea + 512), 0x7u);
  EXPECT_EQ(Get64(mem(), kArea + 520), 0xccccccccccccccccull);  // XCOMP_BV not written
  for (unsigned b = 416; b < 512; ++b) EXPECT_EQ(B(mem(), kArea + b), 0xcc) << b;
  // RFBM = 1 (x87 only): MXCSR and XMM areas are not written.
  FillArea(0xcc);
  Put64(mem(), kArea + 512, 0);
  Run64({0x0f, 0xae, 0x27, 0xf4}, [](CpuState& s) {
    s.xcr0 = 3;
    s.gpr[kRax] = 1;
    s.gpr[kRdx] = 0;
  });
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(W(mem(), kArea), 0x027f);
  EXPECT_EQ(D(mem(), kArea + 24), 0xccccccccu);
  EXPECT_EQ(Get64(mem(), kArea + 160), 0xccccccccccccccccull);
  EXPECT_EQ(Get64(mem(), kArea + 512), 0x1u);
  // 64-byte alignment.
  Run64({0x0f, 0xae, 0x27, 0xf4}, [](CpuState& s) { s.gpr[kRdi] = kArea + 16; });
  EXPECT_EQ(FaultVector(), 13);
}

TEST_F(FpuTest, XrstorInitAndHeaderChecks) {
  // XSTATE_BV = 0 with RFBM = 3: both components to their initial state, MXCSR from memory.
  FillArea(0);
  Put32(mem(), kArea + 24, 0x1f80 | 0x8000);
  Run64({0x0f, 0xae, 0x2f, 0xf4}, [](CpuState& s) {
    s.xcr0 = 3;
    s.gpr[kRax] = 3;
    s.gpr[kRdx] = 0;
  });
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(st().fcw, 0x037f);
  EXPECT_EQ(st().fsw, 0);
  EXPECT_EQ(st().ftw, 0);
  EXPECT_EQ(st().fip, 0u);
  EXPECT_EQ(st().st[5], X87Reg{});
  EXPECT_EQ(st().xmm[9][1], 0u);
  EXPECT_EQ(st().mxcsr, 0x9f80u);
  // XSTATE_BV bit not in XCR0, XCOMP_BV set, header bytes 16-23 set: #GP.
  for (unsigned at : {512u, 520u, 528u}) {
    FillArea(0);
    Put32(mem(), kArea + 24, 0x1f80);
    Put64(mem(), kArea + at, at == 512 ? 2 : 1);
    Run64({0x0f, 0xae, 0x2f, 0xf4}, [](CpuState& s) {
      s.xcr0 = 1;
      s.gpr[kRax] = 3;
    });
    EXPECT_EQ(FaultVector(), 13) << at;
    EXPECT_EQ(st().fcw, 0x027f);
  }
  // xsave then xrstor round trip.
  FillArea(0);
  Run64({0x0f, 0xae, 0x27, 0xdb, 0xe3, 0x66, 0x0f, 0xef, 0xc0, 0x0f, 0xae, 0x2f, 0xf4},
        [](CpuState& s) {
          s.xcr0 = 3;
          s.gpr[kRax] = 3;
        });
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(st().fcw, 0x027f);
  EXPECT_EQ(st().xmm[0][0], 0x0001000200030004ull);
  EXPECT_EQ(st().st[2].sign_exp, 0x3fff + 2);
}

TEST_F(FpuTest, CpuidLeafDAndNothingAdvertised) {
  // cpuid leaf 0xd sub 0, results to r8-r11; then leaf 1.
  Run64({0xb8, 0x0d, 0, 0, 0, 0x31, 0xc9, 0x0f, 0xa2, 0x49, 0x89, 0xc0, 0x49, 0x89, 0xd9,
         0x49, 0x89, 0xca, 0xb8, 0x01, 0, 0, 0, 0x0f, 0xa2, 0xf4});
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(reg(kR8), 3u);
  EXPECT_EQ(reg(kR9), 576u);
  EXPECT_EQ(reg(kR10), 576u);
  // CPUID.1 advertises no FPU, MMX, FXSR, SSE, SSE2, SSE3, SSSE3 or XSAVE yet.
  EXPECT_EQ(reg(kRdx) & ((1u << 0) | (1u << 23) | (1u << 24) | (1u << 25) | (1u << 26)), 0u);
  EXPECT_EQ(reg(kRcx) & ((1u << 0) | (1u << 9) | (1u << 26) | (1u << 27)), 0u);
}

// ---- x87 control ------------------------------------------------------------------------

TEST_F(FpuTest, X87ControlInstructions) {
  // fnstcw [rdi]; fnstsw [rdi+2]; fnstsw ax; fnclex; fninit
  Run64({0xd9, 0x3f, 0xdd, 0x7f, 0x02, 0xdf, 0xe0, 0xdb, 0xe2, 0xf4}, [](CpuState& s) {
    s.fsw = static_cast<uint16_t>(0x80ff | (5u << 11) | 0x4700);
  });
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(W(mem(), kArea), 0x027f);
  EXPECT_EQ(W(mem(), kArea + 2), 0x80ff | (5u << 11) | 0x4700);
  EXPECT_EQ(reg(kRax) & 0xffff, 0x80ffu | (5u << 11) | 0x4700);
  EXPECT_EQ(st().fsw, (5u << 11) | 0x4700);  // FNCLEX keeps TOP and C0-C3
  EXPECT_EQ(st().fip, 0x1122334455667788ull);  // control instructions leave the pointers
  Run64({0xdb, 0xe3, 0xf4});
  EXPECT_EQ(st().fcw, 0x037f);
  EXPECT_EQ(st().fsw, 0);
  EXPECT_EQ(st().ftw, 0);
  EXPECT_EQ(st().fop, 0);
  EXPECT_EQ(st().fip, 0u);
  EXPECT_EQ(st().fdp, 0u);
  EXPECT_EQ(st().fcs, 0);
  EXPECT_EQ(st().st[1].sign_exp, 0x4000);  // data registers untouched
}

TEST_F(FpuTest, FldcwUnmaskingMakesExceptionPendingForFwait) {
  // fldcw [rdi] unmasks IM with FSW.IE set: ES and B set; the following fwait raises #MF.
  Put32(mem(), kArea, 0x037e);
  Run64({0xd9, 0x2f, 0xf4}, [](CpuState& s) { s.fsw = 0x0001; });
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(st().fcw, 0x037e);
  EXPECT_EQ(st().fsw, 0x8081);
  Run64({0xd9, 0x2f, 0x9b, 0xf4}, [](CpuState& s) { s.fsw = 0x0001; });
  EXPECT_EQ(FaultVector(), 16);
  // fnclex clears it; fwait then runs.
  Run64({0xd9, 0x2f, 0xdb, 0xe2, 0x9b, 0xf4}, [](CpuState& s) { s.fsw = 0x0001; });
  EXPECT_EQ(FaultVector(), -1);
}

// ---- data moves -------------------------------------------------------------------------

TEST_F(FpuTest, MovdMovqMmx) {
  // movd mm0, eax; movq mm1, rax; movd ecx, mm1; movq rbx, mm0
  Run64({0x0f, 0x6e, 0xc0, 0x48, 0x0f, 0x6e, 0xc8, 0x0f, 0x7e, 0xc9, 0x48, 0x0f, 0x7e, 0xc3, 0xf4},
        [](CpuState& s) {
          s.gpr[kRax] = 0xfedcba9876543210ull;
          s.gpr[kRcx] = ~uint64_t{0};
        });
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(st().st[0].mant, 0x76543210u);
  EXPECT_EQ(st().st[0].sign_exp, 0xffff);
  EXPECT_EQ(st().st[1].mant, 0xfedcba9876543210ull);
  EXPECT_EQ(reg(kRcx), 0x76543210u);
  EXPECT_EQ(reg(kRbx), 0x76543210u);
  EXPECT_EQ((st().fsw >> 11) & 7, 0u);  // MMX: TOP = 0, every tag valid
  EXPECT_EQ(st().ftw, 0xff);
  EXPECT_EQ(st().st[2].sign_exp, 0x3fff + 2);  // untouched registers keep their exponent
  // movq mm2, [rdi]; movq [rdi+8], mm2 (unaligned is fine for MMX); emms
  Put64(mem(), kArea + 1, 0x0123456789abcdefull);
  Run64({0x0f, 0x6f, 0x57, 0x01, 0x0f, 0x7f, 0x57, 0x09, 0x0f, 0x77, 0xf4});
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(Get64(mem(), kArea + 9), 0x0123456789abcdefull);
  EXPECT_EQ(st().ftw, 0);  // EMMS: every tag empty
}

TEST_F(FpuTest, MovdMovqXmm) {
  // movd xmm0, eax; movq xmm1, rax; movd ecx, xmm1; movq xmm2, xmm1; movq [rdi], xmm1;
  // movq xmm3, [rdi]
  Run64({0x66, 0x0f, 0x6e, 0xc0, 0x66, 0x48, 0x0f, 0x6e, 0xc8, 0x66, 0x0f, 0x7e, 0xc9, 0xf3,
         0x0f, 0x7e, 0xd1, 0x66, 0x0f, 0xd6, 0x0f, 0xf3, 0x0f, 0x7e, 0x1f, 0xf4},
        [](CpuState& s) { s.gpr[kRax] = 0xfedcba9876543210ull; });
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(st().xmm[0][0], 0x76543210u);
  EXPECT_EQ(st().xmm[0][1], 0u);
  EXPECT_EQ(st().xmm[1][0], 0xfedcba9876543210ull);
  EXPECT_EQ(st().xmm[1][1], 0u);
  EXPECT_EQ(reg(kRcx), 0x76543210u);
  EXPECT_EQ(st().xmm[2][0], 0xfedcba9876543210ull);
  EXPECT_EQ(st().xmm[2][1], 0u);
  EXPECT_EQ(Get64(mem(), kArea), 0xfedcba9876543210ull);
  EXPECT_EQ(st().xmm[3][1], 0u);
  EXPECT_EQ(st().ftw, 0x5a);  // XMM forms leave the x87 state alone
}

TEST_F(FpuTest, Moves128AndAlignment) {
  Put64(mem(), kArea, 0x1111111111111111ull);
  Put64(mem(), kArea + 8, 0x2222222222222222ull);
  // movdqa xmm0, [rdi]; movdqu [rdi+0x21], xmm0; movups xmm1, [rdi+0x21]; movaps [rdi+0x40], xmm1;
  // movapd xmm2, xmm1; movupd xmm3, [rdi+0x21]
  Run64({0x66, 0x0f, 0x6f, 0x07, 0xf3, 0x0f, 0x7f, 0x47, 0x21, 0x0f, 0x10, 0x4f, 0x21, 0x0f,
         0x29, 0x4f, 0x40, 0x66, 0x0f, 0x28, 0xd1, 0x66, 0x0f, 0x10, 0x5f, 0x21, 0xf4});
  ASSERT_EQ(FaultVector(), -1);
  EXPECT_EQ(Get64(mem(), kArea + 0x21), 0x1111111111111111ull);
  EXPECT_EQ(Get64(mem(), kArea + 0x29), 0x2222222222222222ull);
  EXPECT_EQ(Get64(mem(), kArea + 0x48), 0x2222222222222222ull);
  EXPECT_EQ(st().xmm[2][0], 0x1111111111111111ull);
  EXPECT_EQ(st().xmm[3][1], 0x2222222222222222ull);
  const Bytes aligned_forms[] = {
      {0x66, 0x0f, 0x6f, 0x47, 0x08, 0xf4},  // movdqa xmm0, [rdi+8]
      {0x66, 0x0f, 0x7f, 0x47, 0x04, 0xf4},  // movdqa [rdi+4], xmm0
      {0x0f, 0x28, 0x47, 0x01, 0xf4},        // movaps xmm0, [rdi+1]
      {0x66, 0x0f, 0x29, 0x47, 0x02, 0xf4},  // movapd [rdi+2], xmm0
      {0x66, 0x0f, 0xef, 0x47, 0x08, 0xf4},  // pxor xmm0, [rdi+8]
  };
  for (const Bytes& code : aligned_forms) {
    Run64(code);
    EXPECT_EQ(FaultVector(), 13);
  }
}

TEST_F(FpuTest, PackedLogic) {
  // pxor xmm0, xmm1; por xmm2, xmm3; pand xmm4, xmm5; pandn xmm6, xmm7; pxor mm0, mm1;
  // pandn mm2, [rdi]
  Put64(mem(), kArea, 0xff00ff00ff00ff00ull);
  Run64({0x66, 0x0f, 0xef, 0xc1, 0x66, 0x0f, 0xeb, 0xd3, 0x66, 0x0f, 0xdb, 0xe5, 0x66, 0x0f,
         0xdf, 0xf7, 0x0f, 0xef, 0xc1, 0x0f, 0xdf, 0x17, 0xf4});
  ASSERT_EQ(FaultVector(), -1);
  CpuState k;
  KnownFpuState(k);
  for (unsigned h = 0; h < 2; ++h) {
    EXPECT_EQ(st().xmm[0][h], k.xmm[0][h] ^ k.xmm[1][h]);
    EXPECT_EQ(st().xmm[2][h], k.xmm[2][h] | k.xmm[3][h]);
    EXPECT_EQ(st().xmm[4][h], k.xmm[4][h] & k.xmm[5][h]);
    EXPECT_EQ(st().xmm[6][h], ~k.xmm[6][h] & k.xmm[7][h]);
  }
  EXPECT_EQ(st().st[0].mant, k.st[0].mant ^ k.st[1].mant);
  EXPECT_EQ(st().st[2].mant, ~k.st[2].mant & 0xff00ff00ff00ff00ull);
  EXPECT_EQ(st().st[2].sign_exp, 0xffff);
}

// ---- reset, save and load ---------------------------------------------------------------

TEST_F(FpuTest, ResetValues) {
  cpu.Reset();
  EXPECT_EQ(st().fcw, 0x0040);  // SDM Vol. 3 Table 9-1, power-up
  EXPECT_EQ(st().fsw, 0);
  EXPECT_EQ(st().ftw, 0xff);    // full tag word 5555H: every register valid (+0.0)
  EXPECT_EQ(st().mxcsr, 0x1f80u);
  EXPECT_EQ(st().xcr0, 1u);
  CpuState fresh;
  EXPECT_EQ(fresh.fcw, 0x037f);  // the FNINIT values
  EXPECT_EQ(fresh.ftw, 0);
  EXPECT_EQ(fresh.mxcsr, 0x1f80u);
}

TEST_F(FpuTest, SaveLoadRoundTrip) {
  Start(FlatMode::kLong64, {0xf4}, [](CpuState& s) {
    KnownFpuState(s);
    s.xcr0 = 3;
  });
  const std::vector<uint8_t> bytes = cpu.SaveBytes();
  TestPlatform other_platform{kRam};
  Cpu other{other_platform};
  other.LoadBytes(bytes);
  EXPECT_EQ(other.state(), st());
  EXPECT_EQ(other.SaveBytes(), bytes);
}

TEST_F(FpuTest, LoadRefusesInvalidFpuState) {
  auto refused = [&](const std::function<void(CpuState&)>& f) {
    Start(FlatMode::kLong64, {0xf4}, f);
    const std::vector<uint8_t> bytes = cpu.SaveBytes();
    TestPlatform other_platform{kRam};
    Cpu other{other_platform};
    EXPECT_THROW(other.LoadBytes(bytes), StateError);
  };
  refused([](CpuState& s) { s.mxcsr = 0x11f80; });
  refused([](CpuState& s) { s.fop = 0x800; });
  refused([](CpuState& s) { s.xcr0 = 2; });
  refused([](CpuState& s) { s.xcr0 = 7; });
}

TEST_F(FpuTest, LoadRefusesVersion3) {
  Start(FlatMode::kLong64, {0xf4});
  std::vector<uint8_t> bytes = cpu.SaveBytes();
  ASSERT_EQ(std::memcmp(bytes.data(), "CPU0", 4), 0);
  ASSERT_EQ(bytes[4], 4);
  bytes[4] = 3;
  try {
    cpu.LoadBytes(bytes);
    ADD_FAILURE() << "version 3 accepted";
  } catch (const StateError& e) {
    EXPECT_NE(std::string(e.what()).find("version 3"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace vmrr::testing
