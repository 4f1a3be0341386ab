/* Numeric work of the `fpu` guest (tests/guests/README.md), shared byte for byte by the guest
 * (fpu.c: output to COM1) and its host build (fpu_host.c: output to stdout). Only IEEE 754
 * basic operations (+ - * /, conversions, comparisons) whose results the standard fixes, so
 * the guest on vmrr and the host program must print the same bytes. No libm: sqrt, sin, cos,
 * exp and log are written here (Newton, range reduction + series). Doubles are printed by an
 * exact decimal formatter (fmt_g17: big-integer expansion, round-half-even to 17 digits, the
 * %.17g layout), by fmt_a (the %a layout) and as bit patterns; the host build checks both
 * formatters against its C library's printf before trusting them.
 *
 * Compiled with SSE2 (-mfpmath=sse, no auto-vectorisation, no FP contraction). The long
 * double (x87) part is compiled only with FPU_LONG_DOUBLE (CMake option
 * VMRR_FPU_GUEST_LONG_DOUBLE, on by default; off, the guest is built with -mno-80387). */
#include <emmintrin.h>
#include <stddef.h>
#include <stdint.h>

#include "fpu_work.h"

/* ---- output ------------------------------------------------------------------------------ */

static fpu_out_fn out_fn;
static uint32_t out_hash = 0x811c9dc5u;

static size_t str_len(const char *s) {
  size_t n = 0;
  while (s[n]) ++n;
  return n;
}

static void out(const char *s) {
  for (const char *p = s; *p; ++p) {
    out_hash ^= (uint8_t)*p;
    out_hash *= 16777619u;
  }
  out_fn(s);
}

static void u64_to_hex(uint64_t v, int digits, char *buf) {
  static const char hex[] = "0123456789abcdef";
  for (int i = digits - 1; i >= 0; --i) {
    buf[i] = hex[v & 15];
    v >>= 4;
  }
  buf[digits] = 0;
}

static void u64_to_dec(uint64_t v, char *buf) {
  char t[24];
  int n = 0;
  do {
    t[n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  for (int i = 0; i < n; ++i) buf[i] = t[n - 1 - i];
  buf[n] = 0;
}

static void i64_to_dec(int64_t v, char *buf) {
  if (v < 0) {
    *buf++ = '-';
    u64_to_dec(0 - (uint64_t)v, buf);
  } else {
    u64_to_dec((uint64_t)v, buf);
  }
}

static char *append(char *d, const char *s) {
  while (*s) *d++ = *s++;
  *d = 0;
  return d;
}

uint64_t fpu_bits(double x) {
  union {
    double d;
    uint64_t u;
  } v;
  v.d = x;
  return v.u;
}

static double from_bits(uint64_t u) {
  union {
    double d;
    uint64_t u;
  } v;
  v.u = u;
  return v.d;
}

static uint32_t float_bits(float x) {
  union {
    float f;
    uint32_t u;
  } v;
  v.f = x;
  return v.u;
}

/* ---- exact decimal formatting ------------------------------------------------------------ */

/* Big unsigned integer in base 1e9, little-endian limbs. m * 5^1074 has 767 digits. */
enum { kLimbs = 96 };
struct big {
  uint32_t limb[kLimbs];
  int n;
};

static void big_mul_small(struct big *b, uint32_t f) {
  uint64_t carry = 0;
  for (int i = 0; i < b->n; ++i) {
    const uint64_t t = (uint64_t)b->limb[i] * f + carry;
    b->limb[i] = (uint32_t)(t % 1000000000u);
    carry = t / 1000000000u;
  }
  while (carry && b->n < kLimbs) {
    b->limb[b->n++] = (uint32_t)(carry % 1000000000u);
    carry /= 1000000000u;
  }
}

/* Writes the decimal digits of b (no leading zeros, "0" for zero); returns their count. */
static int big_digits(const struct big *b, char *d) {
  int n = 0;
  int top = b->n - 1;
  while (top > 0 && b->limb[top] == 0) --top;
  char t[10];
  int k = 0;
  uint32_t v = b->limb[top];
  do {
    t[k++] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  while (k) d[n++] = t[--k];
  for (int i = top - 1; i >= 0; --i) {
    v = b->limb[i];
    for (int j = 8; j >= 0; --j) {
      d[n + j] = (char)('0' + v % 10);
      v /= 10;
    }
    n += 9;
  }
  return n;
}

/* %.17g of x, exactly as C's printf prints it under round-to-nearest. */
void fpu_fmt_g17(double x, char *buf) {
  enum { P = 17 };
  const uint64_t u = fpu_bits(x);
  char *o = buf;
  if (u >> 63) *o++ = '-';
  const int bexp = (int)((u >> 52) & 0x7ff);
  uint64_t m = u & 0xfffffffffffffull;
  if (bexp == 0x7ff) {
    append(o, m ? "nan" : "inf");
    return;
  }
  if (bexp == 0 && m == 0) {
    append(o, "0");
    return;
  }
  int e;
  if (bexp == 0) {
    e = -1074;
  } else {
    m |= 1ull << 52;
    e = bexp - 1075;
  }
  /* x = m * 2^e = N * 10^-s with N an integer. */
  struct big b;
  b.n = 0;
  while (m) {
    b.limb[b.n++] = (uint32_t)(m % 1000000000u);
    m /= 1000000000u;
  }
  int s = 0;
  if (e >= 0) {
    int k = e;
    for (; k >= 29; k -= 29) big_mul_small(&b, 1u << 29);
    if (k) big_mul_small(&b, 1u << k);
  } else {
    int k = -e;
    s = k;
    for (; k >= 13; k -= 13) big_mul_small(&b, 1220703125u); /* 5^13 */
    uint32_t f = 1;
    for (; k > 0; --k) f *= 5;
    big_mul_small(&b, f);
  }
  static char d[800];
  int nd = big_digits(&b, d);
  /* value = 0.d[0]d[1]... * 10^(nd - s): decimal exponent of the first digit X. */
  int X = nd - s - 1;
  if (nd > P) {
    int up;
    if (d[P] > '5') {
      up = 1;
    } else if (d[P] < '5') {
      up = 0;
    } else {
      up = 0;
      for (int i = P + 1; i < nd; ++i) {
        if (d[i] != '0') {
          up = 1;
          break;
        }
      }
      if (!up) up = (d[P - 1] - '0') & 1; /* a tie: to even */
    }
    nd = P;
    if (up) {
      int i = P - 1;
      while (i >= 0 && d[i] == '9') d[i--] = '0';
      if (i >= 0) {
        d[i]++;
      } else {
        d[0] = '1';
        for (int j = 1; j < P; ++j) d[j] = '0';
        ++X;
      }
    }
  }
  while (nd < P) d[nd++] = '0';
  /* %g: trailing zeros removed. */
  int last = P - 1;
  if (X >= -4 && X < P) {
    /* Fixed notation with P - 1 - X fraction digits. */
    int frac_end = last; /* index of the last significant digit kept */
    while (frac_end > X && frac_end > 0 && d[frac_end] == '0') --frac_end;
    if (X < 0) {
      *o++ = '0';
      *o++ = '.';
      for (int i = 0; i < -X - 1; ++i) *o++ = '0';
      for (int i = 0; i <= frac_end; ++i) *o++ = d[i];
    } else {
      for (int i = 0; i <= X; ++i) *o++ = d[i];
      if (frac_end > X) {
        *o++ = '.';
        for (int i = X + 1; i <= frac_end; ++i) *o++ = d[i];
      }
    }
    *o = 0;
    return;
  }
  while (last > 0 && d[last] == '0') --last;
  *o++ = d[0];
  if (last > 0) {
    *o++ = '.';
    for (int i = 1; i <= last; ++i) *o++ = d[i];
  }
  *o++ = 'e';
  int ex = X;
  if (ex < 0) {
    *o++ = '-';
    ex = -ex;
  } else {
    *o++ = '+';
  }
  char t[8];
  int k = 0;
  do {
    t[k++] = (char)('0' + ex % 10);
    ex /= 10;
  } while (ex);
  if (k < 2) t[k++] = '0';
  while (k) *o++ = t[--k];
  *o = 0;
}

/* %a of x, as glibc prints it (normal: 0x1.<hex>p<exp>; subnormal: 0x0.<hex>p-1022). */
void fpu_fmt_a(double x, char *buf) {
  const uint64_t u = fpu_bits(x);
  char *o = buf;
  if (u >> 63) *o++ = '-';
  const int bexp = (int)((u >> 52) & 0x7ff);
  const uint64_t m = u & 0xfffffffffffffull;
  if (bexp == 0x7ff) {
    append(o, m ? "nan" : "inf");
    return;
  }
  int e;
  o = append(o, bexp ? "0x1" : "0x0");
  if (bexp == 0 && m == 0) {
    e = 0;
  } else {
    e = bexp ? bexp - 1023 : -1022;
  }
  if (m) {
    char h[16];
    u64_to_hex(m, 13, h);
    int n = 13;
    while (h[n - 1] == '0') --n;
    h[n] = 0;
    *o++ = '.';
    o = append(o, h);
  }
  *o++ = 'p';
  *o++ = e < 0 ? '-' : '+';
  char t[8];
  u64_to_dec((uint64_t)(e < 0 ? -e : e), t);
  append(o, t);
}

/* ---- arithmetic written out (no libm) ----------------------------------------------------- */

static double my_fabs(double x) { return from_bits(fpu_bits(x) & ~(1ull << 63)); }

/* Square root by Newton's iteration from a guess, after scaling by powers of 4 into [1, 4)
 * (exact). Within 1 ulp of the correctly rounded root (checked against the host's SQRTSD by
 * the host build, fpu_host.c); what matters here is that it is the same on guest and host. */
double fpu_sqrt(double x) {
  if (!(x > 0)) return x == 0 ? x : (x - x) / (x - x);
  if (x > 1.7976931348623157e308) return x;
  double scale = 1.0;
  while (x < 1.0) {
    x *= 4.0;
    scale *= 0.5;
  }
  while (x >= 4.0) {
    x *= 0.25;
    scale *= 2.0;
  }
  double r = 1.0 + (x - 1.0) / 3.0;
  for (int i = 0; i < 6; ++i) r = 0.5 * (r + x / r);
  return r * scale;
}

/* sin/cos: x = k * pi/2 + r (Cody-Waite, three parts of pi/2), |r| <= pi/4, Taylor series. */
static const double kPio2Hi = 1.57079632673412561417e+00;  /* first 33 bits of pi/2 */
static const double kPio2Mid = 6.07710050650619224932e-11; /* next 33 bits */
static const double kPio2Lo = 2.02226624879595063154e-21;  /* the rest */

static double series_sin(double r) {
  const double r2 = r * r;
  double term = r, sum = r;
  for (int n = 1; n < 12; ++n) {
    term = -term * r2 / (double)((2 * n) * (2 * n + 1));
    sum += term;
  }
  return sum;
}

static double series_cos(double r) {
  const double r2 = r * r;
  double term = 1.0, sum = 1.0;
  for (int n = 1; n < 12; ++n) {
    term = -term * r2 / (double)((2 * n - 1) * (2 * n));
    sum += term;
  }
  return sum;
}

static int64_t round_to_i64(double x) {
  /* |x| < 2^52 here: add and subtract a half, truncate (CVTTSD2SI). */
  return (int64_t)(x < 0 ? x - 0.5 : x + 0.5);
}

/* sin(x + quarter * pi/2). */
static double sin_quarters(double x, int quarter) {
  if (!(my_fabs(x) < 1e9)) return (x - x) / (x - x); /* NaN for huge, inf, NaN */
  const int64_t k = round_to_i64(x * 0.63661977236758134308);
  const double kd = (double)k;
  const double r = ((x - kd * kPio2Hi) - kd * kPio2Mid) - kd * kPio2Lo;
  switch ((int)((k + quarter) & 3)) {
    case 0: return series_sin(r);
    case 1: return series_cos(r);
    case 2: return -series_sin(r);
    default: return -series_cos(r);
  }
}

double fpu_sin(double x) { return sin_quarters(x, 0); }
double fpu_cos(double x) { return sin_quarters(x, 1); }

/* log: x = m * 2^k with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh((m-1)/(m+1)). */
static const double kLn2 = 0.69314718055994530942;

double fpu_log(double x) {
  if (x != x || x < 0) return (x - x) / (x - x);
  if (x == 0) return -1.0 / (x * x);
  if (x > 1.7976931348623157e308) return x;
  int k = 0;
  uint64_t u = fpu_bits(x);
  if ((u >> 52) == 0) { /* subnormal: scale up by 2^64 */
    x *= 18446744073709551616.0;
    k -= 64;
    u = fpu_bits(x);
  }
  k += (int)(u >> 52) - 1023;
  double m = from_bits((u & 0xfffffffffffffull) | (1023ull << 52)); /* [1, 2) */
  if (m > 1.41421356237309504880) {
    m *= 0.5;
    ++k;
  }
  const double t = (m - 1.0) / (m + 1.0), t2 = t * t;
  double term = t, sum = t;
  for (int n = 1; n < 20; ++n) {
    term *= t2;
    sum += term / (double)(2 * n + 1);
  }
  return 2.0 * sum + (double)k * kLn2;
}

/* exp: x = k ln2 + r, Taylor series of e^r, scaled by 2^k through the exponent bits. */
double fpu_exp(double x) {
  if (x != x) return x;
  if (x > 709.0) return 1.0 / 0.0 * (x - x + 1.0);
  if (x < -708.0) return 0.0;
  const int64_t k = round_to_i64(x / kLn2);
  const double r = x - (double)k * kLn2;
  double term = 1.0, sum = 1.0;
  for (int n = 1; n < 24; ++n) {
    term = term * r / (double)n;
    sum += term;
  }
  return sum * from_bits((uint64_t)(k + 1023) << 52);
}

/* ---- the work ------------------------------------------------------------------------------- */

static void line_d(const char *label, double x) {
  char b[900], g[800], a[64], h[20];
  fpu_fmt_g17(x, g);
  fpu_fmt_a(x, a);
  u64_to_hex(fpu_bits(x), 16, h);
  char *p = append(b, label);
  p = append(p, " ");
  p = append(p, g);
  p = append(p, " ");
  p = append(p, a);
  p = append(p, " 0x");
  p = append(p, h);
  append(p, "\n");
  out(b);
}

static void line_u(const char *label, uint64_t v) {
  char b[128], h[20];
  u64_to_hex(v, 16, h);
  char *p = append(b, label);
  p = append(p, " 0x");
  p = append(p, h);
  append(p, "\n");
  out(b);
}

static void line_i(const char *label, int64_t v) {
  char b[128], t[24];
  i64_to_dec(v, t);
  char *p = append(b, label);
  p = append(p, " ");
  p = append(p, t);
  append(p, "\n");
  out(b);
}

static void mxcsr_set(uint32_t v) { __asm__ volatile("ldmxcsr %0" : : "m"(v)); }
static uint32_t mxcsr_get(void) {
  uint32_t v;
  __asm__ volatile("stmxcsr %0" : "=m"(v));
  return v;
}

/* A value the compiler cannot see through (forces the run-time operation). */
static double opaque(double x) {
  __asm__ volatile("" : "+x"(x));
  return x;
}

enum { kN = 12 };
static double ma[kN][kN], mb[kN][kN], mc[kN][kN], md[kN][kN];

static void matrices(void) {
  /* Entries from a small LCG: i/j-dependent fractions with full 53-bit significands. */
  uint32_t s = 12345;
  for (int i = 0; i < kN; ++i) {
    for (int j = 0; j < kN; ++j) {
      s = s * 1103515245u + 12345u;
      ma[i][j] = (double)(int32_t)(s >> 4) / 1048576.0 / 3.0;
      s = s * 1103515245u + 12345u;
      mb[i][j] = 1.0 / ((double)(s >> 8) + 1.0) - 0.5 * (double)(i - j);
    }
  }
  /* Scalar: C = A B, the sum in k order. */
  for (int i = 0; i < kN; ++i) {
    for (int j = 0; j < kN; ++j) {
      double acc = 0.0;
      for (int k = 0; k < kN; ++k) acc += ma[i][k] * mb[k][j];
      mc[i][j] = acc;
    }
  }
  /* Packed (MULPD/ADDPD): two columns at a time, same order, so the same results. */
  for (int i = 0; i < kN; ++i) {
    for (int j = 0; j < kN; j += 2) {
      __m128d acc = _mm_setzero_pd();
      for (int k = 0; k < kN; ++k) {
        const __m128d a = _mm_set1_pd(ma[i][k]);
        const __m128d b = _mm_loadu_pd(&mb[k][j]);
        acc = _mm_add_pd(acc, _mm_mul_pd(a, b));
      }
      _mm_storeu_pd(&md[i][j], acc);
    }
  }
  uint32_t h = 0x811c9dc5u;
  int same = 1;
  for (int i = 0; i < kN; ++i) {
    for (int j = 0; j < kN; ++j) {
      const uint64_t v = fpu_bits(mc[i][j]);
      if (v != fpu_bits(md[i][j])) same = 0;
      for (int b = 0; b < 8; ++b) {
        h ^= (uint8_t)(v >> (8 * b));
        h *= 16777619u;
      }
    }
  }
  line_d("matmul c[0][0]", mc[0][0]);
  line_d("matmul c[5][7]", mc[5][7]);
  line_d("matmul c[11][11]", mc[kN - 1][kN - 1]);
  line_u("matmul hash", h);
  line_i("matmul packed_equals_scalar", same);
  double trace = 0;
  for (int i = 0; i < kN; ++i) trace += mc[i][i];
  line_d("matmul trace", trace);
}

static void functions(void) {
  static const double xs[] = {0.5, 1.0, 2.0, 3.0, 10.0, 0.001, 123.456, 1e-300, 5e-324, 1e300};
  char label[64];
  for (unsigned i = 0; i < sizeof xs / sizeof xs[0]; ++i) {
    char t[800];
    fpu_fmt_g17(xs[i], t);
    append(append(append(label, "sqrt("), t), ")");
    line_d(label, fpu_sqrt(xs[i]));
    append(append(append(label, "log("), t), ")");
    line_d(label, fpu_log(xs[i]));
  }
  static const double as[] = {0.0, 0.5, 1.0, -2.5, 3.14159, 100.0, 1000.5, -12345.678};
  for (unsigned i = 0; i < sizeof as / sizeof as[0]; ++i) {
    char t[800];
    fpu_fmt_g17(as[i], t);
    append(append(append(label, "sin("), t), ")");
    line_d(label, fpu_sin(as[i]));
    append(append(append(label, "cos("), t), ")");
    line_d(label, fpu_cos(as[i]));
    append(append(append(label, "exp("), t), ")");
    line_d(label, fpu_exp(as[i] / 16.0));
  }
  /* Identities: sin^2 + cos^2, exp(log x), sqrt(x)^2. */
  double s = 0;
  for (int i = 1; i <= 200; ++i) {
    const double x = (double)i * 0.37;
    const double sn = fpu_sin(x), cs = fpu_cos(x);
    s += my_fabs(sn * sn + cs * cs - 1.0);
    s += my_fabs(fpu_exp(fpu_log(x)) - x) / x;
    const double r = fpu_sqrt(x);
    s += my_fabs(r * r - x) / x;
  }
  line_d("identity error sum", s);
  line_i("identity error small", s < 1e-10);
}

static void specials(void) {
  const double zero = opaque(0.0), one = opaque(1.0), inf = opaque(1.0 / zero);
  line_d("1/0", one / zero);
  line_d("-1/0", -one / zero);
  line_d("0/0", zero / zero);
  line_d("inf-inf", inf - inf);
  line_d("-0", -zero);
  line_d("-0+0", -zero + zero);
  line_d("min subnormal", opaque(5e-324));
  line_d("min subnormal/2", opaque(5e-324) / 2.0);
  line_d("3*min subnormal/2", opaque(1.5e-323) / 2.0);
  line_d("max", opaque(1.7976931348623157e308));
  line_d("max*2", opaque(1.7976931348623157e308) * 2.0);
  line_d("min normal", opaque(2.2250738585072014e-308));
  line_d("0.1+0.2", opaque(0.1) + opaque(0.2));
  line_d("1e23", opaque(1e23));
  line_d("2^63", opaque(9223372036854775808.0));
  line_i("(long)-2.9", (int64_t)opaque(-2.9));
  line_i("(long)1e19", (int64_t)(opaque(1e19) > 9.2e18 ? -1 : (int64_t)opaque(1e19)));
  line_i("(int)2147483647.9", (int32_t)opaque(2147483647.9));
  line_d("(double)(2^53+1)", (double)(int64_t)((1ll << 53) + 1));
  line_d("(double)-(2^62+3)", (double)(int64_t)(-(1ll << 62) - 3));
  line_d("(double)UINT64_MAX", (double)(uint64_t)~0ull);
  /* Single precision. */
  const float f3 = (float)opaque(3.0);
  const float third = 1.0f / f3;
  line_u("1f/3f bits", float_bits(third));
  line_d("(double)(1f/3f)", (double)third);
  line_d("(float)0.1 to double", (double)(float)opaque(0.1));
  line_u("(float)1e40 bits", float_bits((float)opaque(1e40)));
  line_u("(float)1e-46 bits", float_bits((float)opaque(1e-46)));
  float fs = 0;
  for (int i = 1; i <= 1000; ++i) fs += 1.0f / (float)i;
  line_u("harmonic(1000) float bits", float_bits(fs));
  double ds = 0;
  for (int i = 1; i <= 1000; ++i) ds += 1.0 / (double)i;
  line_d("harmonic(1000) double", ds);
  /* Comparisons with NaN. */
  const double nan = zero / zero;
  line_i("nan<1 nan>1 nan==nan nan!=nan", (nan < one) * 1000 + (nan > one) * 100 + (nan == nan) * 10 + (nan != nan));
}

static volatile double sink;

static void rounding(void) {
  static const char *names[4] = {"nearest", "down", "up", "zero"};
  const uint32_t saved = mxcsr_get();
  for (uint32_t rc = 0; rc < 4; ++rc) {
    mxcsr_set((saved & ~0x6000u) | (rc << 13));
    char label[64];
    char *p = append(label, "rc=");
    p = append(p, names[rc]);
    append(p, " 1/3");
    line_d(label, opaque(1.0) / opaque(3.0));
    p = append(label, "rc=");
    p = append(p, names[rc]);
    append(p, " -1/3");
    line_d(label, opaque(-1.0) / opaque(3.0));
    p = append(label, "rc=");
    p = append(p, names[rc]);
    append(p, " (int)cvtsd2si(-2.5)");
    line_i(label, _mm_cvtsd_si32(_mm_set_sd(opaque(-2.5))));
    p = append(label, "rc=");
    p = append(p, names[rc]);
    append(p, " max+max");
    line_d(label, opaque(1.7976931348623157e308) + opaque(1.7976931348623157e308));
  }
  mxcsr_set(saved | 0x8040u); /* FTZ | DAZ */
  line_d("ftz min normal/2", opaque(2.2250738585072014e-308) / opaque(2.0));
  line_d("daz subnormal*1", opaque(5e-324) * opaque(1.0));
  mxcsr_set(saved & ~0x3fu);
  sink = opaque(1.0) / opaque(3.0);
  sink = opaque(1.0) / opaque(0.0);
  line_u("mxcsr flags after 1/3, 1/0", mxcsr_get() & 0x3f);
  mxcsr_set(saved);
}

#ifdef FPU_LONG_DOUBLE
static void line_ld(const char *label, long double x) {
  union {
    long double ld;
    struct {
      uint64_t mant;
      uint16_t se;
    } p;
  } v;
  v.p.mant = 0;
  v.p.se = 0;
  v.ld = x;
  char b[128], h[20];
  char *p = append(b, label);
  p = append(p, " se=0x");
  u64_to_hex(v.p.se, 4, h);
  p = append(p, h);
  p = append(p, " mant=0x");
  u64_to_hex(v.p.mant, 16, h);
  p = append(p, h);
  append(p, "\n");
  out(b);
  line_d("  as double", (double)x);
}

static long double opaque_ld(long double x) {
  __asm__ volatile("" : "+t"(x));
  return x;
}

static void long_doubles(void) {
  const long double one = opaque_ld(1.0L), three = opaque_ld(3.0L);
  line_ld("ld 1/3", one / three);
  long double e = 1, term = 1;
  for (int n = 1; n < 25; ++n) {
    term /= (long double)n;
    e += term;
  }
  line_ld("ld e series", e);
  /* Newton square root of 2 in extended precision. */
  long double r = 1.5L, two = opaque_ld(2.0L);
  for (int i = 0; i < 8; ++i) r = (r + two / r) * 0.5L;
  line_ld("ld sqrt2 newton", r);
  line_ld("ld sqrt2^2-2", r * r - two);
  long double h = 0;
  for (int i = 1; i <= 1000; ++i) h += one / (long double)i;
  line_ld("ld harmonic(1000)", h);
  line_ld("ld (2^64-1)", (long double)(uint64_t)~0ull);
  line_i("ld (long)-7.75", (int64_t)opaque_ld(-7.75L));
  line_ld("ld 1e4000", opaque_ld(1e300L) * opaque_ld(1e300L) * opaque_ld(1e300L) * opaque_ld(1e300L) * opaque_ld(1e300L) * opaque_ld(1e300L) * opaque_ld(1e300L) * opaque_ld(1e300L) * opaque_ld(1e300L) * opaque_ld(1e300L) * opaque_ld(1e300L) * opaque_ld(1e300L) * opaque_ld(1e300L) * opaque_ld(1e100L));
  line_ld("ld double(0.1)+1e-30", (long double)opaque(0.1) + opaque_ld(1e-30L));
  line_i("ld compare 1/3 < 0.3333333333333333333", one / three < 0.3333333333333333333L);
}
#endif

int fpu_work(fpu_out_fn fn) {
  out_fn = fn;
  out_hash = 0x811c9dc5u;
  out("fpu: SSE2 double, own formatter and functions\n");
  matrices();
  functions();
  specials();
  rounding();
#ifdef FPU_LONG_DOUBLE
  long_doubles();
  const char *ld = "ld";
#else
  const char *ld = "no-ld";
#endif
  char b[64], h[20];
  u64_to_hex(out_hash, 8, h);
  char *p = append(b, "RESULT fpu ");
  p = append(p, h);
  p = append(p, " ");
  p = append(p, ld);
  append(p, "\n");
  out_fn(b);
  (void)str_len;
  return 0;
}
