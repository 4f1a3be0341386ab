// Differential test of vmrr's software CPU against Unicorn: templated and random-byte
// instruction sequences in 64-bit long mode and 32-bit protected mode, comparing GPRs, RIP,
// defined flags, the data region and the stack. VMRR_DIFF_ITERATIONS sets the number of
// cases per test (default 100,000 per test: 200,000 per mode, about 25 s in a release
// build); VMRR_DIFF_SEED varies the seed; VMRR_DIFF_ONLY=N reruns case N alone. Sanitizer
// builds run 5,000 per test by default.
//
// CpuDiffFp.Sse64: x87, MMX, SSE-SSSE3 cases (fp_generator.h) on three sides, vmrr, Unicorn
// and the host CPU (host_oracle.h), comparing the FXSAVE image (XMM0-15, MXCSR, ST/MM,
// FCW/FSW/FTW), GPRs, flags and memory. vmrr must equal the host; Unicorn's known
// departures from the hardware are recognised one by one (UnicornDeviation, X87Deviations)
// and counted. VMRR_DIFF_FP_ITERATIONS sets its case count (205,000; ASan: 10,000);
// VMRR_DIFF_FP_SUMMARY=1 prints one line per mismatch for triage.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "tests/unit/cpu_diff/diff_harness.h"
#include "tests/unit/cpu_diff/fp_generator.h"
#include "tests/unit/cpu_diff/generator.h"
#include "tests/unit/cpu_diff/host_oracle.h"

#if defined(__SANITIZE_ADDRESS__)
#define VMRR_DIFF_SANITIZED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define VMRR_DIFF_SANITIZED 1
#endif
#endif

namespace vmrr::testing {
namespace {

uint64_t Iterations() {
  if (const char* e = std::getenv("VMRR_DIFF_ITERATIONS")) return std::strtoull(e, nullptr, 0);
#ifdef VMRR_DIFF_SANITIZED
  return 5000;
#else
  return 100000;
#endif
}

uint64_t Seed() {
  if (const char* e = std::getenv("VMRR_DIFF_SEED")) return std::strtoull(e, nullptr, 0);
  return 0x766d7272;  // "vmrr"
}

struct Stats {
  uint64_t cases = 0, rejected = 0, both_faulted = 0, same_vector = 0, skipped = 0,
           mismatches = 0;
  std::vector<uint64_t> per_template = std::vector<uint64_t>(TemplateCount(), 0);
};

// Unicorn failing to run a case it should run (a generator gap, not a CPU difference):
// counted and bounded instead of compared.
bool UnicornCouldNotRun(const DiffOutcome& u) { return !u.error.empty(); }

// vmrr_mode differs from mode to run vmrr's side with paging where Unicorn runs flat.
void RunCases(FlatMode mode, bool templated, uint64_t seed_salt, FlatMode vmrr_mode,
              uint64_t divisor = 1) {
  VmrrSide vmrr(vmrr_mode);
  UnicornSide uc(mode);
  const uint64_t n = std::max<uint64_t>(1, Iterations() / divisor);
  const char* only = std::getenv("VMRR_DIFF_ONLY");  // rerun one case by its index
  Stats st;
  std::string reports;
  for (uint64_t index = 0; index < n; ++index) {
    if (only && index != std::strtoull(only, nullptr, 0)) continue;
    // Each case has its own generator seed, so a reported index can be rerun alone.
    Rng rng(Seed() ^ seed_salt ^ ((index + 1) * 0x9e3779b97f4a7c15ull));
    DiffCase c;
    unsigned t = 0;
    for (;;) {
      const bool ok = templated ? GenerateTemplated(rng, mode, 5, &c, &t)
                                : GenerateRandomBytes(rng, mode, &c);
      if (ok) break;
      ++st.rejected;
    }
    ++st.cases;
    if (templated) {
      ++st.per_template[t];
      c.single_step = (st.cases % 8) == 0;
    } else {
      c.single_step = (st.cases % 16) == 0;
    }
    const DiffOutcome v = vmrr.Run(c);
    const DiffOutcome u = uc.Run(c);
    if (UnicornCouldNotRun(u) && v.error.empty()) {
      ++st.skipped;
      continue;
    }
    if (v.faulted && u.faulted) {
      ++st.both_faulted;
      if (v.vector == u.vector) ++st.same_vector;
    }
    const std::string report = CompareOutcomes(c, v, u);
    if (!report.empty()) {
      ++st.mismatches;
      if (st.mismatches <= 25) reports += "case " + std::to_string(index) + ": " + report;
    }
  }
  std::printf("%s%s %s: %llu cases (%llu rejected candidates), %llu faulted in both (%llu with "
              "the vector confirmed by Unicorn), %llu skipped, %llu mismatches\n",
              FlatModeName(mode), vmrr_mode != mode ? " (vmrr paged)" : "",
              templated ? "templated" : "random-bytes",
              static_cast<unsigned long long>(st.cases),
              static_cast<unsigned long long>(st.rejected),
              static_cast<unsigned long long>(st.both_faulted),
              static_cast<unsigned long long>(st.same_vector),
              static_cast<unsigned long long>(st.skipped),
              static_cast<unsigned long long>(st.mismatches));
  if (templated) {
    std::string cov = "  first template:";
    for (unsigned i = 0; i < TemplateCount(); ++i) {
      cov += " " + std::string(TemplateName(i)) + "=" + std::to_string(st.per_template[i]);
    }
    std::printf("%s\n", cov.c_str());
  }
  if (!only) {
    EXPECT_EQ(st.cases, n);
  }
  // Skips are generator gaps (an access Unicorn has no memory for); they must stay rare.
  EXPECT_LE(st.skipped * 100, st.cases) << "too many cases Unicorn could not run";
  EXPECT_EQ(st.mismatches, 0u) << reports;
}

bool HasMmx(const std::string& origin) {
  for (size_t p = origin.find("mm"); p != std::string::npos; p = origin.find("mm", p + 1)) {
    if (p == 0 || origin[p - 1] != 'x') return true;  // "mm" of an MMX form or of EMMS
  }
  // MMX-state instructions whose form names have no "mm".
  static const char* const kOthers[] = {"cvtpi2p", "2pi", "movntq", "pshufw", "movq2dq",
                                        "movdq2q"};
  for (const char* k : kOthers) {
    if (origin.find(k) != std::string::npos) return true;
  }
  return false;
}

// A value a control/status store (FNSTCW, FNSTSW, STMXCSR) wrote to the operand area that
// differs only as rule(hardware, unicorn) allows: copies the hardware's bytes over x's.
template <typename Rule>
bool FixStored(const DiffCase& c, const DiffOutcome& v, DiffOutcome* x, unsigned w, Rule rule) {
  bool fixed = false;
  for (size_t i = 0; i + w <= kFpOperandArea; ++i) {
    if (std::memcmp(&v.data[i], &x->data[i], w) == 0 ||
        std::memcmp(&v.data[i], &c.data[i], w) == 0) {
      continue;
    }
    uint64_t hv = 0, qv = 0;
    std::memcpy(&hv, &v.data[i], w);
    std::memcpy(&qv, &x->data[i], w);
    if (rule(hv, qv)) {
      std::memcpy(&x->data[i], &v.data[i], w);
      fixed = true;
    }
  }
  return fixed;
}

bool HasX87(const std::string& origin) {
  static const char* const kX87[] = {"fld", "fild", "fst", "fist", "fbld", "fbstp", "fadd", "fsub",
                                     "fmul", "fdiv", "fiadd", "fisub", "fimul", "fidiv", "fcom",
                                     "fucom", "ficom", "ftst", "fxam", "fchs", "fabs", "fxch",
                                     "fprem", "fsqrt", "frndint", "fscale", "fxtract", "ffree",
                                     "fcmov", "fincstp", "fdecstp", "fnop", "frstor"};
  for (const char* k : kX87) {
    if (origin.find(k) != std::string::npos) return true;
  }
  return false;
}

// Pseudo-NaN/-infinity, unnormal (unsupported, SDM Vol. 1 8.2.2) or pseudo-denormal.
bool UnsupportedF80(const uint8_t* p) {
  uint64_t mant = 0;
  uint16_t se = 0;
  std::memcpy(&mant, p, 8);
  std::memcpy(&se, p + 8, 2);
  return ((se & 0x7fff) != 0) != static_cast<bool>(mant >> 63);
}

// The x87 departures of QEMU 5 (Unicorn 2.0.1) from the hardware, applied to x (Unicorn's
// outcome) where v (vmrr = the host CPU) differs in the fields each one explains. The FXSAVE
// images hold the registers in stack order (ST0 first).
template <typename Add>
void X87Deviations(const DiffCase& c, const DiffOutcome& v, DiffOutcome* x, Add add) {
  const size_t out = static_cast<size_t>(c.fx_out), in = static_cast<size_t>(c.fx_in);
  const std::string& o = c.origin;
  auto has = [&](const char* k) { return o.find(k) != std::string::npos; };
  // The situations in which QEMU 5 is known to compute other values:
  //  - stack faults: QEMU 5 does not check tags; it reads empty registers as values and
  //    pushes over valid ones, without IE/SF, C1 or the QNaN indefinite;
  //    (underflow: an empty register read; overflow: a push onto a valid register);
  const bool pushes = has("fld") || has("fild") || has("fbld") || has("fxtract");
  bool pops = false;  // FSTP, FADDP, FCOMIP...: the first word of a form ends in 'p'
  for (size_t b = o.find(':') + 1, e; b != std::string::npos && b < o.size(); b = e + 1) {
    e = o.find('+', b);
    if (e == std::string::npos) e = o.size();
    const std::string t = o.substr(b, std::min(o.find(' ', b), e) - b);
    if (t.size() > 1 && t[0] == 'f' && t.back() == 'p') pops = true;
  }
  const bool empties = c.data[in + 4] != 0xff || (pushes && c.data[in + 4] != 0) || pops ||
                       has("ffree") || has("fldenv") || has("frstor") || has("fincstp") ||
                       has("fdecstp") || has("fninit");
  //  - the unsupported encodings (pseudo-NaN/-infinity, unnormals) are computed with as if
  //    normal numbers instead of raising IE;
  bool unsupported = has("fld m80") || has("frstor");
  for (size_t i = 0; i < 8; ++i) unsupported = unsupported || UnsupportedF80(&c.data[in + 32 + 16 * i]);
  //  - the precision control: QEMU 5 rounds the x87 results to 64 bits whatever FCW.PC says
  //    ... not in every helper;
  const uint16_t fcw = static_cast<uint16_t>(c.data[in] | c.data[in + 1] << 8);
  const bool pc = (fcw & 0x300) != 0x300 || has("fldcw") || has("fldenv") || has("frstor");
  //  - unmasked x87 exceptions: QEMU 5 writes the destination anyway;
  const bool unmasked = (fcw & 0x3f) != 0x3f || has("fldcw") || has("fldenv") || has("frstor");
  //  - the softfloat's own edge cases: NaN propagation (x87: the larger significand), FPREM
  //    and FPREM1 (QEMU 5 computes them in double precision), FXTRACT of zero/denormals,
  //    FSCALE of large/infinite/NaN scales, FRNDINT/FIST of huge values, FBLD/FBSTP of
  //    invalid or out-of-range values, FXAM/FTST classes of denormals and unsupported values;
  const bool edge = has("fprem") || has("fxtract") || has("fscale") || has("frndint") ||
                    has("fbld") || has("fbstp") || has("fxam") || has("ftst") || has("fist") ||
                    has("fsqrt");
  //  - MMX writes: the hardware sets the register's exponent to FFFFH, QEMU 5 does not
  //    (qemu-mmx-write-keeps-exponent), so later x87 operands differ;
  const bool mmx = HasMmx(o);
  // QEMU 5's FCOMI/FUCOMI(P) leave OF, SF and AF alone; the SDM and the hardware clear them.
  if ((has("fcomi") || has("fucomi")) && ((v.rflags ^ x->rflags) & c.flag_mask) != 0 &&
      ((v.rflags ^ x->rflags) & c.flag_mask & ~uint64_t{kFlagOf | kFlagSf | kFlagAf}) == 0) {
    x->rflags = v.rflags;
    add("qemu-fcomi-keeps-of-sf-af");
  }
  // Unicorn's status word: the exception flags (IE DE ZE OE UE PE), SF, ES/B and C1 are not
  // raised by QEMU 5's x87 helpers (only some ZE/IE are).
  uint16_t sv = 0, su = 0;
  std::memcpy(&sv, &v.data[out + 2], 2);
  std::memcpy(&su, &x->data[out + 2], 2);
  const uint16_t mask = static_cast<uint16_t>(~c.fsw_ignore);
  if ((sv ^ su) & mask & 0x82ff) {
    su = static_cast<uint16_t>((su & ~0x82ff) | (sv & 0x82ff));
    std::memcpy(&x->data[out + 2], &su, 2);
    add("qemu-x87-status-flags");
  }
  if ((sv ^ su) & mask & 0x4500) {
    if (empties || unsupported || edge || unmasked || mmx || has("fcom") || has("fucom") ||
        has("ficom")) {
      std::memcpy(&x->data[out + 2], &sv, 2);
      add("qemu-x87-condition-codes");
    }
  }
  if ((sv ^ su) & mask & 0x3800) {
    if (empties || unmasked) {
      std::memcpy(&x->data[out + 2], &sv, 2);
      add("qemu-x87-stack-faults(top)");
    }
  }
  // A status word stored by FNSTSW differs as the final one does (any of the reasons above).
  if (has("fnstsw ax") && ((v.gpr[kRax] ^ x->gpr[kRax]) & ~uint64_t{0xffff}) == 0 &&
      v.gpr[kRax] != x->gpr[kRax]) {
    x->gpr[kRax] = v.gpr[kRax];
    add("qemu-x87-status-flags(fnstsw)");
  }
  if (has("fnstsw m16") && FixStored(c, v, x, 2, [](uint64_t, uint64_t) { return true; })) {
    add("qemu-x87-status-flags(fnstsw)");
  }
  // Registers, tags, stores, EFLAGS of FCOMI and FCMOVcc.
  const bool regs_differ = std::memcmp(&v.data[out + 32], &x->data[out + 32], 128) != 0 ||
                           v.data[out + 4] != x->data[out + 4];
  bool stores_differ = false;
  for (size_t i = 0; i < kFpOperandArea; ++i) stores_differ = stores_differ || v.data[i] != x->data[i];
  const bool eflags_differ = ((v.rflags ^ x->rflags) & c.flag_mask) != 0;
  if (regs_differ || stores_differ || eflags_differ) {
    // NaN results: QEMU 5's x87 keeps the x86 rules only partly (SNaN vs QNaN order, and the
    // quieting of m32/m64 SNaN operands).
    bool nan_only = !stores_differ && !eflags_differ && v.data[out + 4] == x->data[out + 4];
    for (size_t i = 0; nan_only && i < 8; ++i) {
      const uint8_t* a = &v.data[out + 32 + 16 * i];
      const uint8_t* z = &x->data[out + 32 + 16 * i];
      if (std::memcmp(a, z, 10) == 0) continue;
      auto nan = [](const uint8_t* p) {
        uint64_t m = 0;
        std::memcpy(&m, p, 8);
        return (p[9] & 0x7f) == 0x7f && p[8] == 0xff && (m << 1) != 0;
      };
      nan_only = nan(a) && nan(z);
    }
    const char* why = nullptr;
    if (nan_only) why = "qemu-x87-nan-propagation";
    else if (empties) why = "qemu-x87-stack-faults";
    else if (unsupported) why = "qemu-x87-unsupported-formats";
    else if (unmasked) why = "qemu-x87-unmasked-exception-results";
    else if (pc) why = "qemu-x87-precision-control";
    else if (mmx) why = "qemu-mmx-write-keeps-exponent(x87 operand)";
    else if (stores_differ && (has("fst") || has("fist") || has("fbstp"))) {
      // QEMU 5 converts NaNs (payload/quiet bit), infinities and out-of-range values to the
      // memory formats in its own way, and stores the integer indefinite differently.
      why = "qemu-x87-store-conversions";
    }
    else if (edge) why = "qemu-x87-softfloat-edge-cases";
    if (why) {
      std::memcpy(&x->data[out + 32], &v.data[out + 32], 128);
      x->data[out + 4] = v.data[out + 4];
      std::memcpy(&x->data[0], &v.data[0], kFpOperandArea);
      x->rflags = v.rflags;
      std::memcpy(&x->data[out + 2], &v.data[out + 2], 2);
      // MMX reads of those registers (PMOVMSKB, MOVD r, mm) carry the difference to GPRs.
      // ... and CVTPI2PS/CVTPI2PD/MOVQ2DQ to XMM registers (and MXCSR).
      if (mmx) {
        for (int i = 0; i < 16; ++i) x->gpr[i] = v.gpr[i];
        std::memcpy(&x->data[out + 160], &v.data[out + 160], 256);
        std::memcpy(&x->data[out + 24], &v.data[out + 24], 4);
      }
      add(why);
    }
  }
}

// Condition codes the SDM leaves undefined (DiffCase::fsw_ignore) also reach AX or memory
// through a later FNSTSW: those bits are taken from vmrr's side in o.
void MaskUndefinedStores(const DiffCase& c, const DiffOutcome& v, DiffOutcome* o) {
  const uint64_t ig = c.fsw_ignore;
  if (!ig || v.faulted || o->faulted) return;
  if (c.origin.find("fnstsw ax") != std::string::npos) {
    o->gpr[kRax] = (o->gpr[kRax] & ~ig) | (v.gpr[kRax] & ig);
  }
  if (c.origin.find("fnstsw m16") != std::string::npos) {
    FixStored(c, v, o, 2, [ig](uint64_t a, uint64_t b) { return ((a ^ b) & ~ig) == 0; });
  }
}

// Differences between vmrr and the host CPU that are open vmrr bugs, listed in FPU_NOTES.md
// ("Found by the differential test"). Each is recognised narrowly and counted under its
// name, so anything else still fails the test; remove an entry when its bug is fixed.
constexpr uint64_t kMemOperandFswBits = 0x8283;  // IE DE C1 ES B
const char* KnownVmrrIssue(const DiffCase& c, const DiffOutcome& v, const DiffOutcome& h) {
  // x87.cc, arithmetic and compares with an m32/m64 operand: the operand is converted to
  // extended precision on its own before the operation, so (a) an SNaN operand is quieted
  // first and the x87 NaN rule then picks by significand instead of "the QNaN over the
  // SNaN", (b) a denormal operand raises DE even when the other operand is a NaN (SDM Vol. 1
  // 4.9.2: QNaN handling and #IA take precedence over #D), (c) an unmasked DE leaves C1 as it
  // was (the hardware clears it).
  static const char* const kForms[] = {"fadd m", "fsub m", "fsubr m", "fmul m", "fdiv m",
                                       "fdivr m", "fcom m", "fcomp m"};
  bool form = false;
  for (const char* f : kForms) form = form || c.origin.find(f) != std::string::npos;
  if (!form || c.fx_out < 0) return nullptr;
  // The cause, in the input: an m32/m64 operand (41 D8/DC modrm=10xxx111 disp32) that is an
  // SNaN or a denormal.
  bool cause = false;
  for (size_t i = 8; i + 7 <= c.code.size(); ++i) {
    if (c.code[i] != 0x41 || (c.code[i + 1] != 0xd8 && c.code[i + 1] != 0xdc) ||
        (c.code[i + 2] & 0xc7) != 0x87) {
      continue;
    }
    uint32_t disp = 0;
    std::memcpy(&disp, &c.code[i + 3], 4);
    if (disp + 8 > c.data.size()) continue;
    if (c.code[i + 1] == 0xd8) {
      uint32_t f = 0;
      std::memcpy(&f, &c.data[disp], 4);
      const uint32_t e = (f >> 23) & 0xff, m = f & 0x7fffff;
      cause = cause || (e == 0 && m) || (e == 0xff && m && !(m & 0x400000));
    } else {
      uint64_t d = 0;
      std::memcpy(&d, &c.data[disp], 8);
      const uint64_t e = (d >> 52) & 0x7ff, m = d & 0xfffffffffffffull;
      cause = cause || (e == 0 && m) || (e == 0x7ff && m && !(m >> 51));
    }
  }
  if (!cause) return nullptr;
  if (v.faulted || h.faulted) return v.faulted == h.faulted ? nullptr : "x87-m32/m64-operand-converted-before-the-operation";
  const size_t out = static_cast<size_t>(c.fx_out);
  DiffOutcome y = h;
  uint16_t sv = 0, sh = 0;
  std::memcpy(&sv, &v.data[out + 2], 2);
  std::memcpy(&sh, &y.data[out + 2], 2);
  // DE, C1, ES, B, and IE (the #IA of another operand that the early #D pre-empted).
  if (((sv ^ sh) & ~0x8283 & ~c.fsw_ignore) != 0) return nullptr;
  std::memcpy(&y.data[out + 2], &sv, 2);
  FixStored(c, v, &y, 2, [](uint64_t a, uint64_t b) { return ((a ^ b) & ~kMemOperandFswBits) == 0; });
  if (((v.gpr[kRax] ^ y.gpr[kRax]) & ~kMemOperandFswBits) == 0) y.gpr[kRax] = v.gpr[kRax];
  for (size_t i = 0; i < 8; ++i) {
    const size_t o = out + 32 + 16 * i;
    if (std::memcmp(&v.data[o], &y.data[o], 10) == 0) continue;
    auto nan = [](const uint8_t* p) {
      uint64_t m = 0;
      std::memcpy(&m, p, 8);
      return (p[9] & 0x7f) == 0x7f && p[8] == 0xff && (m << 1) != 0;
    };
    if (!nan(&y.data[o])) return nullptr;  // the host's result is a NaN (QNaN or indefinite)
    std::memcpy(&y.data[o], &v.data[o], 10);
  }
  if (!CompareOutcomes(c, v, y, "host").empty()) return nullptr;
  return "x87-m32/m64-operand-converted-before-the-operation";
}

// RCPPS/RCPSS/RSQRTPS/RSQRTSS (DiffCase::approx_xmm): the approximations are implementation
// specific (vmrr's table, Intel's and AMD's differ), so the approximated lanes are checked
// against the SDM bound, |relative error| <= 1.5 * 2^-12, taking Unicorn's result as the
// exact value (QEMU 5 computes 1/x and 1/sqrt(x) in softfloat, correctly rounded to single:
// within 2^-24 of it, allowed for). Where the host gives a special result (0, infinity,
// NaN: zero, denormal (treated as zero), infinite, negative or NaN inputs) vmrr must give
// the very same bits. Then the lanes are copied from vmrr to the other two outcomes, for
// the bit-exact comparison of everything else. Returns a report, or "" if the bound holds.
std::string CheckApproximation(const DiffCase& c, const DiffOutcome& v, DiffOutcome* h,
                               DiffOutcome* u) {
  if (v.faulted || h->faulted || c.fx_out < 0) return "";
  const size_t base = static_cast<size_t>(c.fx_out) + 160 + 16 * static_cast<size_t>(c.approx_xmm);
  std::string bad;
  for (size_t lane = 0; lane < 4; ++lane) {
    if (!(c.approx_lanes & (1u << lane))) continue;
    const size_t o = base + 4 * lane;
    uint32_t bv = 0, bh = 0, bu = 0;
    std::memcpy(&bv, &v.data[o], 4);
    std::memcpy(&bh, &h->data[o], 4);
    std::memcpy(&bu, &u->data[o], 4);
    const uint32_t eh = (bh >> 23) & 0xff;
    bool ok;
    if (eh == 0 || eh == 0xff) {
      ok = bv == bh;
    } else {
      float fv, fu;
      std::memcpy(&fv, &bv, 4);
      std::memcpy(&fu, &bu, 4);
      const double ref = fu, err = ref == 0 ? 1 : (static_cast<double>(fv) - ref) / ref;
      ok = !u->faulted && ((bv ^ bh) & 0x80000000u) == 0 &&
           (err < 0 ? -err : err) <= 1.5 / 4096 + 1.0 / (1 << 23);
    }
    if (!ok) {
      char b[200];
      std::snprintf(b, sizeof b,
                    "  %s lane %zu of xmm%d: vmrr %08x, host %08x, unicorn (exact) %08x: outside the "
                    "SDM bound\n", c.approx_rsqrt ? "rsqrt" : "rcp", lane, c.approx_xmm, bv, bh, bu);
      bad += b;
    }
    std::memcpy(&h->data[o], &bv, 4);
    if (!u->faulted) std::memcpy(&u->data[o], &bv, 4);
  }
  if (bad.empty()) return "";
  return "RCP/RSQRT approximation:\n" + bad + CompareOutcomes(c, v, *h, "host");
}

// Known departures of Unicorn 2.0.1 (QEMU 5 TCG, softfloat) from the hardware. Called only
// when vmrr and the host CPU agree (so v is the hardware's answer) and Unicorn does not.
// Each rule below recognises one documented departure in a narrow field and copies the
// hardware's value over Unicorn's; the case counts as a known deviation only if nothing
// else differs afterwards. Returns the classes applied ("a+b"), or nullptr.
const char* UnicornDeviation(const DiffCase& c, const DiffOutcome& v, const DiffOutcome& u,
                             std::string* names) {
  DiffOutcome x = u;
  names->clear();
  auto add = [&](const char* n) {
    if (!names->empty()) *names += "+";
    *names += n;
  };
  // Faults Unicorn does not raise; the host confirmed vmrr's fault, its vector and the GPRs
  // and memory at the fault, so there is nothing more to compare with Unicorn.
  if (v.faulted && !u.faulted) {
    // QEMU 5 runs MMX instructions without checking for a pending unmasked x87 exception
    // (FSW.ES); the SDM (Vol. 3 12.5, Table 12-1) and the hardware raise #MF first.
    if (v.vector == 16 && HasMmx(c.origin)) return "qemu-mmx-no-#MF";
    // Likewise QEMU 5's FLDCW (a waiting instruction) does not check for a pending #MF.
    if (v.vector == 16 && c.origin.find("fldcw") != std::string::npos) return "qemu-fldcw-no-#MF";
    // QEMU 5's x87 arithmetic neither checks for a pending unmasked exception (#MF) before
    // executing nor leaves one pending (FSW.ES) after an unmasked one, so the #MF vmrr and
    // the hardware raise never comes.
    if (v.vector == 16 && HasX87(c.origin)) return "qemu-x87-no-#MF";
    // QEMU 5 never raises #XM: unmasked SIMD FP exceptions only set the MXCSR flags.
    if (v.vector == 19) return "qemu-no-#XM";
    // An x87 exception pending after FXRSTOR only for the hardware, which recomputes ES
    // from the flags and masks (qemu-fxrstor-keeps-fsw-es-b below).
    if (v.vector == 16) {
      uint16_t fsw_in = 0, fcw_in = 0;
      std::memcpy(&fcw_in, &c.data[static_cast<size_t>(c.fx_in)], 2);
      std::memcpy(&fsw_in, &c.data[static_cast<size_t>(c.fx_in) + 2], 2);
      if (!(fsw_in & 0x80) && (fsw_in & ~fcw_in & 0x3f) != 0) return "qemu-fxrstor-keeps-fsw-es-b";
    }
    // QEMU 5 does not check the 16-byte alignment of legacy SSE m128 operands.
    if (v.vector == 13 && c.origin.find("ldmxcsr") == std::string::npos) {
      return "qemu-no-sse-alignment-#GP";
    }
    // QEMU 5's LDMXCSR loads reserved MXCSR bits instead of raising #GP (or the #GP is the
    // alignment one above: the host confirmed vmrr's vector either way).
    if (v.vector == 13) return "qemu-ldmxcsr-no-reserved-#GP/no-alignment-#GP";
    return nullptr;
  }
  // The #MF of an MMX or x87 instruction (qemu-mmx-no-#MF, qemu-x87-no-#MF) that Unicorn
  // raises only at a later instruction (FWAIT), after the first one ran.
  if (v.faulted && u.faulted && v.vector == 16 && u.vector == 16 &&
      (HasMmx(c.origin) || HasX87(c.origin))) {
    return "qemu-mmx/x87-no-#MF(#MF later)";
  }
  // FRSTOR/FLDENV load FSW.ES verbatim in QEMU 5 (see qemu-fxrstor-keeps-fsw-es-b): a later
  // FWAIT raises #MF where the hardware recomputed ES as clear.
  if (!v.faulted && u.faulted && u.vector == 16 &&
      (c.origin.find("frstor") != std::string::npos ||
       c.origin.find("fldenv") != std::string::npos)) {
    return "qemu-frstor-fldenv-keep-fsw-es-b";
  }
  // A fault of one of the kinds above (or a #GP of LDMXCSR, #XM, #MF) in vmrr, where Unicorn
  // went on to (or stopped earlier at) the CMPcc #UD below.
  if (v.faulted && u.faulted && u.vector == 6 && v.vector != 6 &&
      c.origin.find("cmp") != std::string::npos) {
    return "qemu-cmp-imm8-ge-8-#UD&another-fault";
  }
  // #XM in vmrr and the host; Unicorn went on and faulted later (e.g. #MF at an FWAIT).
  if (v.faulted && v.vector == 19 && u.faulted && u.vector != 19) return "qemu-no-#XM&later-fault";
  // QEMU 5's FWAIT raises #MF from the FSW.ES bit FXRSTOR loaded verbatim (see
  // qemu-fxrstor-keeps-fsw-es-b below); the hardware recomputed ES as clear.
  if (!v.faulted && u.faulted && u.vector == 16) {
    uint16_t fsw_in = 0, fcw_in = 0;
    std::memcpy(&fcw_in, &c.data[static_cast<size_t>(c.fx_in)], 2);
    std::memcpy(&fsw_in, &c.data[static_cast<size_t>(c.fx_in) + 2], 2);
    if ((fsw_in & 0x80) && (fsw_in & ~fcw_in & 0x3f) == 0) return "qemu-fxrstor-keeps-fsw-es-b";
  }
  // QEMU 5 raises #UD for MOVDQ2Q/MOVQ2DQ (F2/F3 0F D6 with a register operand).
  if (!v.faulted && u.faulted && u.vector == 6 &&
      (c.origin.find("movdq2q") != std::string::npos || c.origin.find("movq2dq") != std::string::npos)) {
    return "qemu-movdq2q-movq2dq-#UD";
  }
  // QEMU 5 decodes CMPPS/CMPPD/CMPSS/CMPSD with imm8 >= 8 as #UD (an AVX-only predicate);
  // legacy SSE ignores imm8 bits 3-7 (SDM CMPPS: "bits 3-7 reserved").
  if (!v.faulted && u.faulted && u.vector == 6 && c.origin.find("cmp") != std::string::npos) {
    return "qemu-cmp-imm8-ge-8-#UD";
  }
  const size_t out = static_cast<size_t>(c.fx_out);
  const bool images = !v.faulted && !u.faulted && c.fx_out >= 0;
  if (images) {
    // QEMU's FXSAVE writes 10 bytes per ST/MM slot; the hardware also zeroes bytes 10-15.
    bool changed = false;
    for (size_t i = 0; i < 8; ++i) {
      const size_t o = out + 32 + 16 * i + 10;
      if (std::memcmp(&x.data[o], &v.data[o], 6) != 0) {
        std::memcpy(&x.data[o], &v.data[o], 6);
        changed = true;
      }
    }
    if (changed) add("fxsave-st-reserved-bytes");
    // QEMU 5's EMMS leaves TOP alone; the SDM (Vol. 3 Table 12-1) and the hardware set it to
    // 0. FXSAVE stores the registers in stack order, so Unicorn's image is rotated; a status
    // word FNSTSW stored after the EMMS differs in TOP as well.
    uint16_t sv = 0, su = 0;
    std::memcpy(&sv, &v.data[out + 2], 2);
    std::memcpy(&su, &x.data[out + 2], 2);
    if (c.origin.find("emms") != std::string::npos && sv != su &&
        ((sv ^ su) & ~0xb880) == 0 && (sv & 0x3800) == 0 && (su & 0x3800) != 0) {
      const unsigned top = (su >> 11) & 7;
      std::vector<uint8_t> slots(x.data.begin() + static_cast<long>(out) + 32,
                                 x.data.begin() + static_cast<long>(out) + 160);
      for (unsigned j = 0; j < 8; ++j) {  // physical R(j) is Unicorn's ST((j - top) & 7)
        std::memcpy(&x.data[out + 32 + 16 * j], &slots[16 * ((j - top) & 7)], 16);
      }
      su = static_cast<uint16_t>(su & ~0x3800);
      std::memcpy(&x.data[out + 2], &su, 2);
      if (c.origin.find("fnstsw") != std::string::npos) {
        FixStored(c, v, &x, 2, [](uint64_t hw, uint64_t q) {
          return (hw & 0x3800) == 0 && ((hw ^ q) & ~uint64_t{0xb880}) == 0;
        });
        if (((v.gpr[kRax] ^ x.gpr[kRax]) & ~uint64_t{0xb880}) == 0) x.gpr[kRax] = v.gpr[kRax];
      }
      add("qemu-emms-keeps-top");
    }
    // QEMU 5's FXRSTOR and FLDCW keep the reserved FCW bits; the hardware reads bits 7 and
    // 13-15 as 0 and bit 6 as 1 (FcwFromMemory in fpu.cc).
    uint16_t fv = 0, fu = 0;
    std::memcpy(&fv, &v.data[out], 2);
    std::memcpy(&fu, &x.data[out], 2);
    auto fcw_rule = [](uint64_t hw, uint64_t qemu) { return ((qemu & 0x1f3f) | 0x40) == hw; };
    if (fv != fu && fcw_rule(fv, fu)) {
      std::memcpy(&x.data[out], &fv, 2);
      if (c.origin.find("fnstcw") != std::string::npos) FixStored(c, v, &x, 2, fcw_rule);
      add("qemu-fcw-reserved-bits-kept");
    }
    // QEMU 5's FXRSTOR loads FSW.ES and FSW.B as stored; the hardware recomputes both from
    // the flags and masks (ES = B = any unmasked exception flag).
    auto fsw_rule = [](uint64_t hw, uint64_t qemu) {
      return (hw & 0x7f7f) == (qemu & 0x7f7f) && hw != qemu;
    };
    uint16_t sw_v = 0, sw_u = 0;
    std::memcpy(&sw_v, &v.data[out + 2], 2);
    std::memcpy(&sw_u, &x.data[out + 2], 2);
    if (fsw_rule(sw_v, sw_u) ||
        (c.origin.find("fnstsw") != std::string::npos && fsw_rule(v.gpr[kRax] & 0xffff,
                                                                  x.gpr[kRax] & 0xffff))) {
      std::memcpy(&x.data[out + 2], &sw_v, 2);
      if (c.origin.find("fnstsw ax") != std::string::npos &&
          fsw_rule(v.gpr[kRax] & 0xffff, x.gpr[kRax] & 0xffff)) {
        x.gpr[kRax] = v.gpr[kRax];
      }
      if (c.origin.find("fnstsw m16") != std::string::npos) FixStored(c, v, &x, 2, fsw_rule);
      add("qemu-fxrstor-keeps-fsw-es-b");
    }
    // QEMU 5's MMX state transition (TOP = 0, every tag valid; SDM Vol. 3 Table 12-1) is
    // missing from its SSSE3 MMX forms (0F 38 xx, PALIGNR) and CVTPI2PS, and present in
    // CVTPI2PD with a memory operand, where the SDM and the hardware have none. Unicorn's
    // image is then rotated by the TOP difference, with other tags.
    {
      uint16_t fv2 = 0, fu2 = 0;
      std::memcpy(&fv2, &v.data[out + 2], 2);
      std::memcpy(&fu2, &x.data[out + 2], 2);
      if (HasMmx(c.origin) && (((fv2 ^ fu2) & 0x3800) != 0 || x.data[out + 4] != v.data[out + 4])) {
        const unsigned delta = ((fu2 >> 11) - (fv2 >> 11)) & 7;
        std::vector<uint8_t> slots(x.data.begin() + static_cast<long>(out) + 32,
                                   x.data.begin() + static_cast<long>(out) + 160);
        for (unsigned j = 0; j < 8; ++j) {
          std::memcpy(&x.data[out + 32 + 16 * j], &slots[16 * ((j - delta) & 7)], 16);
        }
        fu2 = static_cast<uint16_t>((fu2 & ~0x3800) | (fv2 & 0x3800));
        if (((fu2 ^ fv2) & ~0x8080) == 0) fu2 = fv2;  // and qemu-fxrstor-keeps-fsw-es-b
        std::memcpy(&x.data[out + 2], &fu2, 2);
        x.data[out + 4] = v.data[out + 4];
        add("qemu-mmx-transition-differs(ssse3,cvtpi2p*)");
      }
      // A status word stored by FNSTSW after such an instruction differs the same way (even
      // when a later MMX instruction made the final TOP agree).
      auto top_rule = [](uint64_t hw, uint64_t q) {
        return hw != q && ((hw ^ q) & ~uint64_t{0xb880}) == 0;
      };
      bool stored = false;
      if (HasMmx(c.origin) && c.origin.find("fnstsw m16") != std::string::npos) {
        stored = FixStored(c, v, &x, 2, top_rule);
      }
      if (HasMmx(c.origin) && c.origin.find("fnstsw ax") != std::string::npos &&
          top_rule(v.gpr[kRax], x.gpr[kRax])) {
        x.gpr[kRax] = v.gpr[kRax];
        stored = true;
      }
      if (stored) add("qemu-mmx-transition-differs(fnstsw)");
    }
    // QEMU 5's PHADDW/PHADDD/PHADDSW/PHSUBW/PHSUBD/PHSUBSW compute other lanes than the SDM
    // and the hardware (the pairs of the second operand are taken from the destination when
    // both are one register, and the high half is mis-ordered): XMM and MM results differ.
    if (c.origin.find("phadd") != std::string::npos || c.origin.find("phsub") != std::string::npos) {
      bool ph_changed = false;
      for (size_t i = 0; i < 8; ++i) {
        const size_t o = out + 32 + 16 * i;
        if (std::memcmp(&x.data[o], &v.data[o], 8) != 0) {
          std::memcpy(&x.data[o], &v.data[o], 8);
          ph_changed = true;
        }
      }
      if (std::memcmp(&x.data[out + 160], &v.data[out + 160], 256) != 0) {
        std::memcpy(&x.data[out + 160], &v.data[out + 160], 256);
        ph_changed = true;
      }
      // (and what a later store or MMX-to-GPR move took of them)
      for (int i = 0; i < 16; ++i) {
        if (x.gpr[i] != v.gpr[i]) {
          x.gpr[i] = v.gpr[i];
          ph_changed = true;
        }
      }
      if (std::memcmp(&x.data[0], &v.data[0], kFpOperandArea) != 0) {
        std::memcpy(&x.data[0], &v.data[0], kFpOperandArea);
        ph_changed = true;
      }
      if (ph_changed) add("qemu-phadd-phsub-lanes");
    }
    // QEMU 5's MMX register writes leave the sign/exponent of R(i) alone; the SDM (Table
    // 12-1) and the hardware set it to FFFFH.
    changed = false;
    for (size_t i = 0; i < 8; ++i) {
      const size_t o = out + 32 + 16 * i;
      if (std::memcmp(&x.data[o], &v.data[o], 8) == 0 && v.data[o + 8] == 0xff &&
          v.data[o + 9] == 0xff && (x.data[o + 8] != 0xff || x.data[o + 9] != 0xff)) {
        x.data[o + 8] = x.data[o + 9] = 0xff;
        changed = true;
      }
    }
    if (changed) add("qemu-mmx-write-keeps-exponent");
    // QEMU 5 softfloat's NaN selection for x86 SSE differs from the SDM's (Vol. 1 Table 4-7:
    // the first source's NaN, quieted, else the second's; default NaN only for invalid
    // operations without NaN operands): lanes where both results are NaNs of other payload
    // or sign. Checked per 64-bit lane as double, else per 32-bit lane as float.
    bool nan_fixed = false;
    for (size_t r = 0; r < 16; ++r) {
      for (size_t q = 0; q < 2; ++q) {
        const size_t o = out + 160 + 16 * r + 8 * q;
        uint64_t a = 0, z = 0;
        std::memcpy(&a, &v.data[o], 8);
        std::memcpy(&z, &x.data[o], 8);
        if (a == z) continue;
        auto nan64 = [](uint64_t t) { return (t & 0x7fffffffffffffffull) > 0x7ff0000000000000ull; };
        auto nan32 = [](uint32_t t) { return (t & 0x7fffffffu) > 0x7f800000u; };
        bool ok = nan64(a) && nan64(z);
        if (!ok) {
          ok = true;
          for (int h = 0; h < 2; ++h) {
            const uint32_t la = static_cast<uint32_t>(a >> (32 * h));
            const uint32_t lz = static_cast<uint32_t>(z >> (32 * h));
            if (la != lz && !(nan32(la) && nan32(lz))) ok = false;
          }
        }
        if (ok) {
          std::memcpy(&x.data[o], &a, 8);
          nan_fixed = true;
        }
      }
    }
    // MOVDQ2Q carries such a NaN into an MMX register.
    if (nan_fixed && c.origin.find("movdq2q") != std::string::npos) {
      for (size_t i = 0; i < 8; ++i) std::memcpy(&x.data[out + 32 + 16 * i], &v.data[out + 32 + 16 * i], 10);
    }
    if (nan_fixed) add("qemu-nan-propagation");
    // The same NaN difference hidden by a later bitwise/shuffle/integer instruction of the
    // case (the lane is no NaN any more): accepted in cases of two or more instructions with
    // FP arithmetic, since the host, which agrees with vmrr, is then the oracle.
    if (std::memcmp(&x.data[out + 160], &v.data[out + 160], 256) != 0 &&
        c.origin.find('+') != std::string::npos) {
      static const char* const kArith[] = {"add", "sub", "mul", "div", "min", "max", "sqrt"};
      bool arith = false;
      for (const char* a : kArith) {
        for (const char* t : {"ps", "pd", "ss", "sd"}) {
          if (c.origin.find(std::string(a) + t) != std::string::npos) arith = true;
        }
      }
      if (arith) {
        std::memcpy(&x.data[out + 160], &v.data[out + 160], 256);
        add("qemu-nan-propagation-then-bitwise");
      }
    }
    if (HasX87(c.origin)) X87Deviations(c, v, &x, add);
    // QEMU 5 (Unicorn 2.0.1) ignores MXCSR.DAZ and MXCSR.FTZ: denormal inputs are used and
    // tiny results are delivered as denormals. Every SSE result of such a case may differ, so
    // the XMM registers, MXCSR, EFLAGS and GPRs (CVT*2SI, COMIS) are taken from the
    // hardware's answer.
    if (c.origin.find("[daz/ftz]") != std::string::npos) {
      bool differs = std::memcmp(&x.data[out + 24], &v.data[out + 24], 4) != 0 ||
                     std::memcmp(&x.data[out + 160], &v.data[out + 160], 256) != 0 ||
                     ((x.rflags ^ v.rflags) & c.flag_mask) != 0;
      for (int i = 0; i < 16; ++i) differs = differs || x.gpr[i] != v.gpr[i];
      if (differs) {
        std::memcpy(&x.data[out + 24], &v.data[out + 24], 4);
        std::memcpy(&x.data[out + 160], &v.data[out + 160], 256);
        for (int i = 0; i < 16; ++i) x.gpr[i] = v.gpr[i];
        x.rflags = v.rflags;
        add("qemu-ignores-daz-ftz");
      }
    }
    // QEMU 5 never sets the MXCSR exception flags from SSE arithmetic (they stay as loaded):
    // Unicorn's flags are a subset of the hardware's, the control bits are equal.
    uint32_t mv = 0, mu = 0;
    std::memcpy(&mv, &v.data[out + 24], 4);
    std::memcpy(&mu, &x.data[out + 24], 4);
    auto mxcsr_rule = [](uint64_t hw, uint64_t qemu) {
      return hw != qemu && ((hw ^ qemu) & ~uint64_t{0x3f}) == 0 && (qemu & ~hw) == 0;
    };
    bool stored = false;
    if (c.origin.find("stmxcsr") != std::string::npos) stored = FixStored(c, v, &x, 4, mxcsr_rule);
    if (mxcsr_rule(mv, mu) || stored) {
      std::memcpy(&x.data[out + 24], &v.data[out + 24], 4);
      add("qemu-mxcsr-flags-not-raised");
    }
  }
  if (names->empty() || !CompareOutcomes(c, v, x).empty()) return nullptr;
  return names->c_str();
}

TEST(CpuDiff, Templated64) { RunCases(FlatMode::kLong64, true, 0x64, FlatMode::kLong64); }
TEST(CpuDiff, Templated32) { RunCases(FlatMode::kProt32, true, 0x32, FlatMode::kProt32); }
TEST(CpuDiff, RandomBytes64) { RunCases(FlatMode::kLong64, false, 0x6464, FlatMode::kLong64); }
TEST(CpuDiff, RandomBytes32) { RunCases(FlatMode::kProt32, false, 0x3232, FlatMode::kProt32); }
// vmrr with 32-bit paging (4 MiB identity pages) against Unicorn's flat 32-bit mode: the same
// results through vmrr's 2-level walk and TLB.
TEST(CpuDiff, Templated32Paged) {
  RunCases(FlatMode::kProt32, true, 0x3250, FlatMode::kProt32Paged, 4);
}
// Real mode (16-bit code, 66h/67h forms): random bytes only.
TEST(CpuDiff, RandomBytesReal) { RunCases(FlatMode::kReal, false, 0x1616, FlatMode::kReal, 4); }

// ---- x87/MMX/SSE/SSE2 ------------------------------------------------------------------
// Three sides: vmrr, Unicorn and the host CPU (host_oracle.h). vmrr must agree with the
// host on everything the case compares (GPRs, flags, memory, the FXSAVE image: XMM0-15,
// MXCSR, ST/MM registers, FCW/FSW/FTW; FIP/FDP/FOP masked, see kFxMaskedBegin) and with
// Unicorn except where Unicorn is classified by UnicornDeviation() as one of its known
// departures from hardware.
// VMRR_DIFF_FP_ITERATIONS sets the case count (default 205,000; sanitizer builds 10,000).

uint64_t FpIterations() {
  if (const char* e = std::getenv("VMRR_DIFF_FP_ITERATIONS")) return std::strtoull(e, nullptr, 0);
#ifdef VMRR_DIFF_SANITIZED
  return 10000;
#else
  return 205000;
#endif
}

TEST(CpuDiffFp, Sse64) {
  VmrrSide vmrr(FlatMode::kLong64, true);
  UnicornSide uc(FlatMode::kLong64, true);
  HostSide host;
  ASSERT_TRUE(host.ok());
  const uint64_t n = FpIterations();
  const char* only = std::getenv("VMRR_DIFF_ONLY");
  uint64_t cases = 0, agree = 0, faulted = 0, deviations = 0, mismatches = 0, skipped = 0;
  std::vector<uint64_t> per_form(FpFormCount(), 0);
  std::vector<std::pair<std::string, uint64_t>> classes, known_classes;
  uint64_t known_vmrr = 0, reserved_bytes = 0, approx_cases = 0;
  std::string known_reports;
  std::string reports;
  for (uint64_t index = 0; index < n; ++index) {
    if (only && index != std::strtoull(only, nullptr, 0)) continue;
    Rng rng(Seed() ^ 0xf9f9 ^ ((index + 1) * 0x9e3779b97f4a7c15ull));
    DiffCase c;
    unsigned form = 0;
    GenerateFp(rng, &c, &form);
    ++cases;
    ++per_form[form];
    c.single_step = (index % 8) == 0;
    const DiffOutcome v = vmrr.Run(c);
    const DiffOutcome u = uc.Run(c);
    DiffOutcome h = host.Run(c);
    MaskUndefinedStores(c, v, &h);
    DiffOutcome u_n = u;
    if (c.approx_xmm >= 0) {
      const std::string bad = CheckApproximation(c, v, &h, &u_n);
      ++approx_cases;
      if (!bad.empty()) {
        ++mismatches;
        if (mismatches <= 20) reports += "case " + std::to_string(index) + ": " + bad;
        continue;
      }
    }
    if (!u.error.empty() && v.error.empty() && h.error.empty()) {
      ++skipped;
      continue;
    }
    if (v.faulted) ++faulted;
    const std::string vh = CompareOutcomes(c, v, h, "host");
    // QEMU's FXSAVE leaves bytes 10-15 of each ST/MM slot alone; the hardware (and vmrr)
    // zero them. The host comparison above checks vmrr's zeros; against Unicorn they are
    // taken from vmrr's side, counted, and not reported as a deviation of every case.
    DiffOutcome u2 = u_n;
    if (!v.faulted && !u.faulted && c.fx_out >= 0) {
      bool changed = false;
      for (size_t i = 0; i < 8; ++i) {
        const size_t o = static_cast<size_t>(c.fx_out) + 32 + 16 * i + 10;
        if (std::memcmp(&u2.data[o], &v.data[o], 6) != 0) {
          std::memcpy(&u2.data[o], &v.data[o], 6);
          changed = true;
        }
      }
      if (changed) ++reserved_bytes;
    }
    const std::string vu = CompareOutcomes(c, v, u2);
    std::string why;
    const char* known = vh.empty() ? nullptr : KnownVmrrIssue(c, v, h);
    if (known) {
      ++known_vmrr;
      auto it = std::find_if(known_classes.begin(), known_classes.end(),
                             [&](const auto& p) { return p.first == known; });
      if (it == known_classes.end()) known_classes.emplace_back(known, 1);
      else ++it->second;
      if (known_reports.size() < 4000) {
        known_reports += "case " + std::to_string(index) + " (" + known + "): " + vh;
      }
      continue;
    }
    if (!vh.empty()) {
      why = "vmrr differs from the host CPU:\n" + vh +
            (vu.empty() ? "  (Unicorn agrees with vmrr)\n" : "  against Unicorn:\n" + vu);
    } else if (!vu.empty()) {
      std::string cls_names;
      const char* cls = UnicornDeviation(c, v, u2, &cls_names);
      if (cls) {
        ++deviations;
        auto it = std::find_if(classes.begin(), classes.end(),
                               [&](const auto& p) { return p.first == cls; });
        if (it == classes.end()) classes.emplace_back(cls, 1);
        else ++it->second;
        continue;
      }
      why = "Unicorn differs from vmrr and the host in an unlisted way:\n" + vu;
    } else {
      ++agree;
      continue;
    }
    ++mismatches;
    if (mismatches <= 20) reports += "case " + std::to_string(index) + ": " + why;
    if (std::getenv("VMRR_DIFF_FP_SUMMARY")) {  // one line per mismatch, for triage
      std::string fields;
      const std::string& d = vh.empty() ? vu : vh;
      for (size_t p = d.find("differences:\n"); p != std::string::npos;) {
        const size_t e = d.find('\n', p + 1);
        if (e == std::string::npos) break;
        const std::string line = d.substr(p + 1, e - p - 1);
        if (line.rfind("  ", 0) == 0) fields += line.substr(2, line.find(':') - 2) + ",";
        p = e;
      }
      std::printf("SUMMARY %llu %s | %s | %s\n", static_cast<unsigned long long>(index),
                  vh.empty() ? "unicorn" : "host", c.origin.c_str(),
                  fields.c_str());
    }
  }
  std::printf("long64 fp: %llu cases, %llu all three agree (QEMU's FXSAVE reserved bytes 10-15 "
              "of the ST slots taken from vmrr in %llu cases), %llu faulted in vmrr, %llu known Unicorn "
              "deviations (host agrees with vmrr), %llu skipped, %llu mismatches\n",
              static_cast<unsigned long long>(cases), static_cast<unsigned long long>(agree),
              static_cast<unsigned long long>(reserved_bytes),
              static_cast<unsigned long long>(faulted),
              static_cast<unsigned long long>(deviations),
              static_cast<unsigned long long>(skipped),
              static_cast<unsigned long long>(mismatches));
  std::printf("  RCPPS/RCPSS/RSQRTPS/RSQRTSS cases checked against the SDM bound: %llu\n",
              static_cast<unsigned long long>(approx_cases));
  for (const auto& p : known_classes) {
    std::printf("  KNOWN VMRR BUG (vmrr differs from the host; see FPU_NOTES.md) %s: %llu\n",
                p.first.c_str(), static_cast<unsigned long long>(p.second));
  }
  if (!known_reports.empty()) std::printf("  first reproducers of the known bugs:\n%s", known_reports.c_str());
  // Per class (a case can show several).
  std::vector<std::pair<std::string, uint64_t>> single;
  for (const auto& p : classes) {
    for (size_t b = 0, e; b <= p.first.size(); b = e + 1) {
      e = p.first.find('+', b);
      if (e == std::string::npos) e = p.first.size();
      const std::string cls = p.first.substr(b, e - b);
      auto it = std::find_if(single.begin(), single.end(), [&](const auto& q) { return q.first == cls; });
      if (it == single.end()) single.emplace_back(cls, p.second);
      else it->second += p.second;
    }
  }
  for (const auto& p : single) {
    std::printf("  unicorn deviation %s: %llu cases\n", p.first.c_str(),
                static_cast<unsigned long long>(p.second));
  }
  std::string cov = "  first form:";
  for (unsigned i = 0; i < FpFormCount(); ++i) {
    cov += " " + std::string(FpFormName(i)) + "=" + std::to_string(per_form[i]);
  }
  std::printf("%s\n", cov.c_str());
  if (!only) {
    EXPECT_EQ(cases, n);
  }
  EXPECT_LE(skipped * 100, cases) << "too many cases Unicorn could not run";
  EXPECT_EQ(mismatches, 0u) << reports;
}

// The FP harness itself: an ADDSS through the FXRSTOR/FXSAVE frame gives 1 + 2 = 3 on all
// three sides (expected value written here), and a changed XMM/FSW byte is reported.
TEST(CpuDiffFp, HarnessDetectsDifferences) {
  VmrrSide vmrr(FlatMode::kLong64, true);
  UnicornSide uc(FlatMode::kLong64, true);
  HostSide host;
  ASSERT_TRUE(host.ok());
  Rng rng(7);
  DiffCase c;
  GenerateFp(rng, &c, nullptr);
  // fxrstor64 [r15+0x1000]; addss xmm0, xmm1; fxsave64 [r15+0x1200]
  c.code = {0x49, 0x0f, 0xae, 0x8f, 0x00, 0x10, 0x00, 0x00, 0xf3, 0x0f, 0x58, 0xc1,
            0x49, 0x0f, 0xae, 0x87, 0x00, 0x12, 0x00, 0x00};
  c.origin = "fp:addss";
  c.fsw_ignore = 0;
  c.approx_xmm = -1;
  uint8_t* img = &c.data[kFxIn];
  const uint16_t fcw = 0x037f, fsw = 0;
  const uint32_t mxcsr = 0x1f80, one = 0x3f800000, two = 0x40000000;
  std::memcpy(img, &fcw, 2);
  std::memcpy(img + 2, &fsw, 2);
  std::memcpy(img + 24, &mxcsr, 4);
  std::memcpy(img + 160, &one, 4);
  std::memcpy(img + 176, &two, 4);
  const DiffOutcome v = vmrr.Run(c), u = uc.Run(c), h = host.Run(c);
  for (const DiffOutcome* o : {&v, &u, &h}) {
    ASSERT_FALSE(o->faulted);
    uint32_t r = 0;
    std::memcpy(&r, &o->data[kFxOut + 160], 4);
    EXPECT_EQ(r, 0x40400000u);  // 3.0f
  }
  EXPECT_EQ(CompareOutcomes(c, v, h, "host"), "");
  DiffOutcome x = h;
  x.data[kFxOut + 160 + 5] ^= 1;
  EXPECT_NE(CompareOutcomes(c, v, x, "host").find("xmm0: vmrr"), std::string::npos);
  x = h;
  x.data[kFxOut + 2] ^= 1;  // FSW.IE
  EXPECT_NE(CompareOutcomes(c, v, x, "host").find("fsw: vmrr"), std::string::npos);
  x = h;
  x.data[kFxOut + 8] ^= 1;  // FIP: masked
  EXPECT_EQ(CompareOutcomes(c, v, x, "host"), "");
}

// The harness itself: a deliberately different case must be reported (the test can fail).
TEST(CpuDiff, HarnessDetectsDifferences) {
  VmrrSide vmrr(FlatMode::kLong64);
  UnicornSide uc(FlatMode::kLong64);
  Rng rng(1);
  DiffCase c;
  ASSERT_TRUE(GenerateTemplated(rng, FlatMode::kLong64, 1, &c));
  c.code = {0x48, 0xff, 0xc0};  // inc rax
  c.gpr[kRax] = 41;
  DiffOutcome v = vmrr.Run(c);
  DiffOutcome u = uc.Run(c);
  EXPECT_EQ(CompareOutcomes(c, v, u), "");
  EXPECT_EQ(v.gpr[kRax], 42u);
  EXPECT_EQ(v.retired, 3u);  // inc + pushf + hlt
  u.gpr[kRax] = 43;
  EXPECT_NE(CompareOutcomes(c, v, u).find("rax: vmrr 0x2a unicorn 0x2b"), std::string::npos);
  v.data[5] ^= 1;
  EXPECT_NE(CompareOutcomes(c, v, u).find("data[0x8005]"), std::string::npos);
}

}  // namespace
}  // namespace vmrr::testing
