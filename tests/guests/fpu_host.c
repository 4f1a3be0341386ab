/* Host build of the fpu guest's numeric work (fpu_work.c): first checks the formatters
 * against the C library's printf (%.17g, %a) and fpu_sqrt against the host's SQRTSD (1 ulp) over
 * specials and pseudo-random bit patterns (exit 2 on a mismatch), then prints exactly what
 * the guest prints. Usage: fpu_host [--no-selfcheck] */
#include <stdio.h>
#include <string.h>

#include "fpu_work.h"

static void put(const char *s) { fputs(s, stdout); }

static double from_bits(uint64_t u) {
  double d;
  memcpy(&d, &u, 8);
  return d;
}

static int check_one(double x) {
  char mine[800], libc[800];
  fpu_fmt_g17(x, mine);
  snprintf(libc, sizeof libc, "%.17g", x);
  if (strcmp(mine, libc) != 0) {
    fprintf(stderr, "fmt_g17 mismatch for %a: mine %s libc %s\n", x, mine, libc);
    return 1;
  }
  fpu_fmt_a(x, mine);
  snprintf(libc, sizeof libc, "%a", x);
  if (strcmp(mine, libc) != 0) {
    fprintf(stderr, "fmt_a mismatch for %a: mine %s libc %s\n", x, mine, libc);
    return 1;
  }
  if (x > 0 && x < 1e308) {
    double host;
    __asm__("sqrtsd %1, %0" : "=x"(host) : "x"(x));
    const uint64_t a = fpu_bits(host), b = fpu_bits(fpu_sqrt(x));
    if (a - b + 1 > 2) { /* more than 1 ulp apart */
      fprintf(stderr, "fpu_sqrt(%a) = %a, SQRTSD %a\n", x, fpu_sqrt(x), host);
      return 1;
    }
  }
  return 0;
}

int main(int argc, char **argv) {
  if (!(argc > 1 && strcmp(argv[1], "--no-selfcheck") == 0)) {
    int bad = 0;
    static const double specials[] = {0.0, -0.0, 1.0, -1.0, 0.1, 0.5, 1e23, 1e22, 9007199254740993.0,
                                      123456789012345678.0, 1e-5, 1e-4, 0.0001234, 1e16, 1e17,
                                      12345678901234567.0, 99999999999999999.0, 5e-324, 1e-310,
                                      2.2250738585072014e-308, 1.7976931348623157e308, 0.3, 2.5,
                                      1.0 / 0.0, -1.0 / 0.0};
    for (unsigned i = 0; i < sizeof specials / sizeof specials[0]; ++i) bad |= check_one(specials[i]);
    uint64_t s = 0x9e3779b97f4a7c15ull;
    for (int i = 0; i < 200000 && !bad; ++i) {
      s ^= s << 13;
      s ^= s >> 7;
      s ^= s << 17;
      const double x = from_bits(s);
      if (x != x) continue; /* NaN: sign printing of NaN is checked by the fixed lines */
      bad |= check_one(x);
      /* Values near powers of ten and small integers ratios: the rounding ties. */
      bad |= check_one((double)(s % 100000) / 1000.0);
    }
    if (bad) return 2;
  }
  return fpu_work(put);
}
