// x87 transcendental instructions computed with MPFR (see x87_math.h and FPU_NOTES.md).
//
// Every finite result is the exact mathematical value rounded once, in the guest's FCW.RC,
// to the 64-bit significand of the extended format (FCW.PC does not apply: the SDM, Vol. 1
// 8.1.5.2, limits it to FADD/FSUB/FMUL/FDIV/FSQRT and their forms, and the host hardware
// agrees), with the extended exponent range emulated through MPFR's exponent range and
// mpfr_subnormalize. Single-operation results (sin, cos, tan, atan2, 2^x-1) come correctly
// rounded from MPFR itself; the products y*log2(x) and y*log2(1+x) are evaluated with a Ziv
// loop (more precision until mpfr_can_round proves the rounding and its direction).
//
// Special operands follow the SDM Vol. 2 tables of each instruction and Vol. 1 4.9.2
// (exception priority: SNaN/unsupported IE, then a QNaN operand, then other IE and ZE, then
// DE, then OE/UE, then PE), checked against the host hardware where the SDM is silent; the
// choices for operands the SDM leaves undefined are listed in FPU_NOTES.md.
#include "hv-hooks/cpu/x87_math.h"

#include <mpfr.h>

namespace vmrr {

namespace {

static_assert(sizeof(unsigned long) == 8, "mpfr_set_ui/get_ui must carry a 64-bit significand");

constexpr uint16_t kSignBit = 0x8000, kExpMask = 0x7fff;
constexpr uint64_t kIntBit = 1ull << 63, kQuietBit = 1ull << 62;
constexpr int kBias = 16383;
constexpr int kBiasAdjust = 24576;            // unmasked OE/UE exponent adjustment
constexpr uint16_t kOutOfRangeExp = kBias + 63;  // |x| >= 2^63 for FSIN/FCOS/FSINCOS/FPTAN
// MPFR's exponent of x is e with x = 0.1b... * 2^e, i.e. one more than the x87 exponent.
// The extended format's largest finite value is (2 - 2^-63) * 2^16383 (MPFR exponent 16384),
// its smallest normal 2^-16382 (MPFR exponent -16381), its smallest denormal 2^-16445 (MPFR
// exponent -16444: the emin that makes mpfr_subnormalize keep 64 bits down to 2^-16382).
constexpr mpfr_exp_t kMpfrEmax = 16384, kMpfrEmin = -16444, kMpfrNormalMin = -16381;
constexpr int kFcwOm = 1 << 3, kFcwUm = 1 << 4;

constexpr X87Reg kIndefinite{0xc000000000000000ull, 0xffff};
constexpr X87Reg kOne{kIntBit, kBias};
constexpr X87Reg kMinusOne{kIntBit, kSignBit | kBias};
constexpr X87Reg kPlusInf{kIntBit, 0x7fff};

enum class Kind { kZero, kDenormal, kNormal, kInf, kQNaN, kSNaN, kUnsupported };

Kind Classify(X87Reg x) {
  const unsigned e = x.sign_exp & kExpMask;
  const bool j = (x.mant & kIntBit) != 0;
  if (e == 0) return x.mant == 0 ? Kind::kZero : Kind::kDenormal;  // pseudo-denormals too
  if (!j) return Kind::kUnsupported;  // unnormal, pseudo-zero, pseudo-infinity, pseudo-NaN
  if (e != kExpMask) return Kind::kNormal;
  if ((x.mant & ~kIntBit) == 0) return Kind::kInf;
  return (x.mant & kQuietBit) ? Kind::kQNaN : Kind::kSNaN;
}

bool IsNaN(Kind k) { return k == Kind::kQNaN || k == Kind::kSNaN; }
bool Negative(X87Reg x) { return (x.sign_exp & kSignBit) != 0; }
X87Reg Quiet(X87Reg x) { return X87Reg{x.mant | kQuietBit, x.sign_exp}; }
X87Reg Zero(bool neg) { return X87Reg{0, static_cast<uint16_t>(neg ? kSignBit : 0)}; }
X87Reg Inf(bool neg) { return X87Reg{kIntBit, static_cast<uint16_t>(neg ? 0xffff : 0x7fff)}; }

X87MathResult Result(X87Reg r0, uint16_t flags) { return X87MathResult{r0, X87Reg{}, flags, false}; }
X87MathResult Invalid() { return Result(kIndefinite, kX87Ie); }

// One NaN operand: quieted, IE if it was signalling.
X87MathResult PropagateNaN(X87Reg a, Kind ka) {
  return Result(Quiet(a), ka == Kind::kSNaN ? kX87Ie : 0);
}

// Two operands, at least one a NaN (SDM Vol. 1 Table 4-7, x87 column): a QNaN beats an SNaN;
// two NaNs of the same kind give the one with the larger significand, quieted; on equal
// significands the positive one (as Bochs does; the host hardware agrees). IE if any SNaN.
X87MathResult PropagateNaN2(X87Reg a, Kind ka, X87Reg b, Kind kb) {
  const uint16_t ie = (ka == Kind::kSNaN || kb == Kind::kSNaN) ? kX87Ie : 0;
  if (!IsNaN(kb)) return Result(Quiet(a), ie);
  if (!IsNaN(ka)) return Result(Quiet(b), ie);
  if (ka != kb) return Result(ka == Kind::kQNaN ? a : b, ie);
  const X87Reg qa = Quiet(a), qb = Quiet(b);
  if (qa.mant != qb.mant) return Result(qa.mant > qb.mant ? qa : qb, ie);
  return Result(qa.sign_exp < qb.sign_exp ? qa : qb, ie);
}

// An MPFR variable with RAII.
class Mp {
 public:
  explicit Mp(mpfr_prec_t prec) { mpfr_init2(v_, prec); }
  ~Mp() { mpfr_clear(v_); }
  Mp(const Mp&) = delete;
  Mp& operator=(const Mp&) = delete;
  mpfr_ptr get() { return v_; }

 private:
  mpfr_t v_;
};

// Sets the exponent range of the extended format for the lifetime of the object (MPFR's
// range is per thread: Debian's MPFR is built thread-safe, TLS).
class ExtendedRange {
 public:
  ExtendedRange() : emin_(mpfr_get_emin()), emax_(mpfr_get_emax()) {
    mpfr_set_emin(kMpfrEmin);
    mpfr_set_emax(kMpfrEmax);
  }
  ~ExtendedRange() {
    mpfr_set_emin(emin_);
    mpfr_set_emax(emax_);
  }
  ExtendedRange(const ExtendedRange&) = delete;
  ExtendedRange& operator=(const ExtendedRange&) = delete;

 private:
  mpfr_exp_t emin_, emax_;
};

// The exact value of a finite nonzero register (64-bit precision holds it exactly).
void Load(mpfr_ptr v, X87Reg x) {
  const int e = x.sign_exp & kExpMask;
  const long scale = (e == 0 ? 1 : e) - kBias - 63;  // denormals and pseudo-denormals: 2^-16382
  mpfr_set_ui_2exp(v, x.mant, scale, MPFR_RNDN);
  if (Negative(x)) mpfr_neg(v, v, MPFR_RNDN);
}

mpfr_rnd_t Rounding(uint16_t fcw) {
  switch ((fcw >> 10) & 3) {
    case 0: return MPFR_RNDN;
    case 1: return MPFR_RNDD;
    case 2: return MPFR_RNDU;
    default: return MPFR_RNDZ;
  }
}

// Encodes a finite nonzero MPFR value with MPFR exponent exp and 64-bit significand into
// the register format with the given biased exponent (>= 1) or as a denormal (biased <= 0,
// the low bits being zero after mpfr_subnormalize).
X87Reg Encode(mpfr_ptr v, long biased) {
  Mp t(64);
  mpfr_set(t.get(), v, MPFR_RNDN);  // exact: same precision
  mpfr_abs(t.get(), t.get(), MPFR_RNDN);
  mpfr_set_exp(t.get(), 64);        // now the integer significand
  uint64_t m = mpfr_get_ui(t.get(), MPFR_RNDN);
  const uint16_t sign = mpfr_signbit(v) ? kSignBit : 0;
  if (biased >= 1) return X87Reg{m, static_cast<uint16_t>(sign | biased)};
  const long shift = 1 - biased;
  m = shift >= 64 ? 0 : m >> shift;
  return X87Reg{m, sign};
}

struct Rounded {
  X87Reg r;
  uint16_t flags;
};

// r: the exact result rounded to 64 bits in rnd with MPFR's wide default exponent range,
// inex its ternary value. Applies the extended format's range: masked overflow (OE, PE,
// result infinity or the largest finite value by RC), masked underflow (denormal result, UE
// if tiny and inexact; tininess after rounding, as the SDM defines it for x87), or the
// unmasked OE/UE responses (exponent adjusted by 24576, UE on every tiny result), plus PE
// and C1 (the magnitude was rounded up).
Rounded Finish(mpfr_ptr r, int inex, uint16_t fcw) {
  const mpfr_rnd_t rnd = Rounding(fcw);
  if (mpfr_zero_p(r)) return Rounded{Zero(mpfr_signbit(r) != 0), 0};
  const bool neg = mpfr_signbit(r) != 0;
  auto round_flags = [neg](int t) -> uint16_t {
    if (t == 0) return 0;
    const bool up = neg ? t < 0 : t > 0;
    return static_cast<uint16_t>(kX87Pe | (up ? kX87C1 : 0));
  };
  if (mpfr_inf_p(r)) return Rounded{Inf(neg), static_cast<uint16_t>(kX87Oe | round_flags(inex))};
  const mpfr_exp_t e = mpfr_get_exp(r);
  const bool huge = e > kMpfrEmax, tiny = e < kMpfrNormalMin;
  if (huge && !(fcw & kFcwOm)) {
    const long biased = e - 1 + kBias - kBiasAdjust;
    if (biased >= 1 && biased <= 0x7ffe)
      return Rounded{Encode(r, biased), static_cast<uint16_t>(kX87Oe | round_flags(inex))};
  }
  if (tiny && !(fcw & kFcwUm)) {
    const long biased = e - 1 + kBias + kBiasAdjust;
    if (biased >= 1 && biased <= 0x7ffe)
      return Rounded{Encode(r, biased), static_cast<uint16_t>(kX87Ue | round_flags(inex))};
  }
  int t;
  {
    ExtendedRange range;
    t = mpfr_check_range(r, inex, rnd);
    t = mpfr_subnormalize(r, t, rnd);
  }
  uint16_t flags = round_flags(t);
  if (huge) flags |= kX87Oe;
  if (tiny && t != 0) flags |= kX87Ue;
  if (mpfr_inf_p(r)) return Rounded{Inf(neg), flags};
  if (mpfr_zero_p(r)) return Rounded{Zero(neg), flags};
  return Rounded{Encode(r, mpfr_get_exp(r) - 1 + kBias), flags};
}

using Fn1 = int (*)(mpfr_ptr, mpfr_srcptr, mpfr_rnd_t);

// A correctly rounded MPFR function of one finite nonzero register.
Rounded Apply(Fn1 fn, X87Reg x, uint16_t fcw) {
  Mp a(64), r(64);
  Load(a.get(), x);
  const int inex = fn(r.get(), a.get(), Rounding(fcw));
  return Finish(r.get(), inex, fcw);
}

// y * L(x) for finite nonzero y and x where L(x) is finite and nonzero (log2 or log2p1),
// by a Ziv loop: L at precision p rounded to nearest (error <= 2^(EXP(t)-p-1)), the product
// exact at p+64 bits, hence an error below 2^(EXP(z)-p); round once p-2 bits are enough to
// fix both the rounding and its direction (the exact value is irrational unless L(x) was
// exact, in which case z is exact).
Rounded YTimes(Fn1 log_fn, X87Reg y, X87Reg x, uint16_t fcw) {
  const mpfr_rnd_t rnd = Rounding(fcw);
  Mp my(64), mx(64), r(64);
  Load(my.get(), y);
  Load(mx.get(), x);
  for (mpfr_prec_t p = 128;; p *= 2) {
    Mp t(p), z(p + 64);
    const int inex_l = log_fn(t.get(), mx.get(), MPFR_RNDN);
    mpfr_mul(z.get(), my.get(), t.get(), MPFR_RNDN);  // exact
    // The bound on p only guards against a loop that cannot end; no 64-bit input is known to
    // need more than a few hundred bits (worst cases for correct rounding are far below).
    if (inex_l == 0 || p >= 16384 ||
        mpfr_can_round(z.get(), p - 2, MPFR_RNDN, MPFR_RNDZ, 64 + (rnd == MPFR_RNDN))) {
      const int inex = mpfr_set(r.get(), z.get(), rnd);
      return Finish(r.get(), inex, fcw);
    }
  }
}

// Common part of FSIN/FCOS/FSINCOS/FPTAN: the operand checks. Returns true with *out set
// when the operand decides the result without computing.
bool TrigSpecial(X87Reg x, Kind k, X87MathResult* out) {
  if (k == Kind::kUnsupported || k == Kind::kInf) {
    *out = Invalid();
    return true;
  }
  if (IsNaN(k)) {
    *out = PropagateNaN(x, k);
    return true;
  }
  if (k == Kind::kNormal && (x.sign_exp & kExpMask) >= kOutOfRangeExp) {
    *out = X87MathResult{x, X87Reg{}, 0, true};
    return true;
  }
  return false;
}

uint16_t DenormalFlag(Kind k) { return k == Kind::kDenormal ? kX87De : 0; }

int Exp2m1Clamped(mpfr_ptr r, mpfr_srcptr x, mpfr_rnd_t rnd) {
  // For x <= -1000, 2^x - 1 lies strictly between -1 and -1 + 2^-1000: every such x rounds
  // alike, in every mode, with the same direction; for x >= 50000 the result overflows even
  // after the unmasked-overflow adjustment. Clamping keeps MPFR's work bounded.
  long clamp = 0;
  if (mpfr_cmp_si(x, -1000) < 0) clamp = -1000;
  if (mpfr_cmp_si(x, 50000) > 0) clamp = 50000;
  if (clamp == 0) return mpfr_exp2m1(r, x, rnd);
  Mp c(64);
  mpfr_set_si(c.get(), clamp, MPFR_RNDN);
  return mpfr_exp2m1(r, c.get(), rnd);
}

}  // namespace

X87MathResult X87Fsin(X87Reg x, uint16_t fcw) {
  const Kind k = Classify(x);
  X87MathResult out;
  if (TrigSpecial(x, k, &out)) return out;
  if (k == Kind::kZero) return Result(x, 0);
  Rounded r = Apply(mpfr_sin, x, fcw);
  return Result(r.r, static_cast<uint16_t>(r.flags | DenormalFlag(k)));
}

X87MathResult X87Fcos(X87Reg x, uint16_t fcw) {
  const Kind k = Classify(x);
  X87MathResult out;
  if (TrigSpecial(x, k, &out)) return out;
  if (k == Kind::kZero) return Result(kOne, 0);
  Rounded r = Apply(mpfr_cos, x, fcw);
  return Result(r.r, static_cast<uint16_t>(r.flags | DenormalFlag(k)));
}

X87MathResult X87Fsincos(X87Reg x, uint16_t fcw) {
  const Kind k = Classify(x);
  X87MathResult out;
  if (TrigSpecial(x, k, &out)) {
    if (!out.out_of_range) out.r1 = out.r0;  // NaN or indefinite in both (host hardware agrees)
    return out;
  }
  if (k == Kind::kZero) return X87MathResult{x, kOne, 0, false};
  const Rounded s = Apply(mpfr_sin, x, fcw), c = Apply(mpfr_cos, x, fcw);
  // C1 describes the cosine, the result left in ST(0) (the host hardware does the same).
  const uint16_t flags = static_cast<uint16_t>((s.flags & ~kX87C1) | c.flags | DenormalFlag(k));
  return X87MathResult{s.r, c.r, flags, false};
}

X87MathResult X87Fptan(X87Reg x, uint16_t fcw) {
  const Kind k = Classify(x);
  X87MathResult out;
  if (TrigSpecial(x, k, &out)) {
    if (!out.out_of_range) out.r1 = out.r0;  // the NaN is pushed instead of 1.0 (host hardware)
    return out;
  }
  if (k == Kind::kZero) return X87MathResult{x, kOne, 0, false};
  Rounded r = Apply(mpfr_tan, x, fcw);
  return X87MathResult{r.r, kOne, static_cast<uint16_t>(r.flags | DenormalFlag(k)), false};
}

X87MathResult X87Fpatan(X87Reg st1, X87Reg st0, uint16_t fcw) {
  const Kind ky = Classify(st1), kx = Classify(st0);
  if (ky == Kind::kUnsupported || kx == Kind::kUnsupported) return Invalid();
  if (IsNaN(ky) || IsNaN(kx)) return PropagateNaN2(st1, ky, st0, kx);
  const uint16_t de = static_cast<uint16_t>(DenormalFlag(ky) | DenormalFlag(kx));
  // Zeros and infinities included: mpfr_atan2 has the C99 atan2 special values, which are
  // the SDM's FPATAN table (no IE for 0/0 or inf/inf).
  Mp y(64), xx(64), r(64);
  auto load = [](mpfr_ptr v, X87Reg a, Kind ka) {
    if (ka == Kind::kZero) mpfr_set_zero(v, Negative(a) ? -1 : 1);
    else if (ka == Kind::kInf) mpfr_set_inf(v, Negative(a) ? -1 : 1);
    else Load(v, a);
  };
  load(y.get(), st1, ky);
  load(xx.get(), st0, kx);
  const int inex = mpfr_atan2(r.get(), y.get(), xx.get(), Rounding(fcw));
  const Rounded res = Finish(r.get(), inex, fcw);
  return Result(res.r, static_cast<uint16_t>(res.flags | de));
}

X87MathResult X87F2xm1(X87Reg x, uint16_t fcw) {
  const Kind k = Classify(x);
  if (k == Kind::kUnsupported) return Invalid();
  if (IsNaN(k)) return PropagateNaN(x, k);
  // Outside -1..+1 the SDM leaves the result undefined; here it is 2^x - 1 correctly rounded
  // everywhere: -inf -> -1 and +inf -> +inf exactly (as the host hardware), large x overflow.
  if (k == Kind::kInf) return Result(Negative(x) ? kMinusOne : kPlusInf, 0);
  if (k == Kind::kZero) return Result(x, 0);
  Rounded r = Apply(Exp2m1Clamped, x, fcw);
  return Result(r.r, static_cast<uint16_t>(r.flags | DenormalFlag(k)));
}

namespace {

// FYL2X and FYL2XP1: y * L(x). pole: x where L(x) = -inf (0 for log2, -1 for log2p1, with
// ZE when y is finite and nonzero); below: x where L is undefined (IE).
enum class LogCase { kNegInfPole, kPosInf, kZero, kFinite };

X87MathResult YLog(Fn1 log_fn, bool p1, X87Reg y, X87Reg x, uint16_t fcw) {
  const Kind ky = Classify(y), kx = Classify(x);
  if (ky == Kind::kUnsupported || kx == Kind::kUnsupported) return Invalid();
  if (IsNaN(ky) || IsNaN(kx)) return PropagateNaN2(y, ky, x, kx);
  // The class of L(x) and its sign.
  LogCase lc;
  bool l_neg = false;
  if (!p1) {
    if (kx == Kind::kZero) {
      lc = LogCase::kNegInfPole;
    } else if (Negative(x)) {
      return Invalid();  // log of a negative number (denormals and -inf included)
    } else if (kx == Kind::kInf) {
      lc = LogCase::kPosInf;
    } else if (x == kOne) {
      lc = LogCase::kZero;  // log2(1) = +0
    } else {
      lc = LogCase::kFinite;
      l_neg = (x.sign_exp & kExpMask) < kBias;  // x < 1
    }
  } else {
    if (kx == Kind::kZero) {
      lc = LogCase::kZero;  // log2(1 + (+-0)) = +-0
      l_neg = Negative(x);
    } else if (kx == Kind::kInf) {
      if (Negative(x)) return Invalid();
      lc = LogCase::kPosInf;
    } else if (Negative(x)) {
      if (x == kMinusOne) {
        lc = LogCase::kNegInfPole;
      } else if ((x.sign_exp & kExpMask) >= kBias) {
        return Invalid();  // x < -1 (x = -1 handled above; every other |x| >= 1 is < -1)
      } else {
        lc = LogCase::kFinite;
        l_neg = true;
      }
    } else {
      lc = LogCase::kFinite;
    }
  }
  const bool y_zero = ky == Kind::kZero, y_inf = ky == Kind::kInf;
  if (lc == LogCase::kNegInfPole) l_neg = true;
  const bool neg = Negative(y) != l_neg;
  if (lc == LogCase::kNegInfPole || lc == LogCase::kPosInf) {
    if (y_zero) return Invalid();  // 0 * inf
    // ZE for log of the pole with a finite y; no DE then (ZE has the higher priority: the
    // host hardware reports ZE alone for a denormal y).
    if (lc == LogCase::kNegInfPole && !y_inf) return Result(Inf(neg), kX87Ze);
  }
  const uint16_t de = static_cast<uint16_t>(DenormalFlag(ky) | DenormalFlag(kx));
  if (lc == LogCase::kNegInfPole || lc == LogCase::kPosInf) return Result(Inf(neg), de);
  if (lc == LogCase::kZero) {
    if (y_inf) return Invalid();  // inf * 0
    return Result(Zero(neg), de);
  }
  if (y_inf) return Result(Inf(neg), de);
  if (y_zero) return Result(Zero(neg), de);
  const Rounded r = YTimes(log_fn, y, x, fcw);
  return Result(r.r, static_cast<uint16_t>(r.flags | de));
}

}  // namespace

X87MathResult X87Fyl2x(X87Reg st1, X87Reg st0, uint16_t fcw) {
  return YLog(mpfr_log2, false, st1, st0, fcw);
}

X87MathResult X87Fyl2xp1(X87Reg st1, X87Reg st0, uint16_t fcw) {
  // Outside -(1 - sqrt(2)/2)..+(1 - sqrt(2)/2) the SDM leaves the result undefined; here it
  // is y * log2(1 + x) correctly rounded everywhere (x = -1: the pole, ZE; x < -1: IE).
  return YLog(mpfr_log2p1, true, st1, st0, fcw);
}

}  // namespace vmrr
