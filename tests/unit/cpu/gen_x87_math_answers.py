#!/usr/bin/env python3
"""Known answers for hv-hooks/cpu/x87_math.cc, computed with mpmath (an oracle independent of
the MPFR code under test) and written as a C++ table for tests/unit/cpu/cpu_x87_math_test.cc.

    python3 tests/unit/cpu/gen_x87_math_answers.py > tests/unit/cpu/x87_math_answers.inc

Each answer is the exact result rounded once to the x87 extended format (64-bit significand,
15-bit exponent, denormals) in the given FCW.RC; FCW.PC does not apply to these instructions
(SDM Vol. 1 8.1.5.2), so the table uses every PC value with the same expected results. The
rounding is done here with Python integers and fractions; mpmath only provides the
approximation of the transcendental value, at two working precisions (Ziv's strategy: an
answer is written only when an interval around the value that holds the true result rounds
the same way, with the same direction, at both ends).

Flags follow the SDM with exceptions masked (and a few entries with OE or UE unmasked: the
exponent is adjusted by 24576 and UE is set on every tiny result): PE when inexact, C1 when
the magnitude was rounded up, UE when the result is tiny after rounding (with unbounded
exponent) and inexact, OE on overflow, DE when an operand is a denormal.
The special operands (zeros, infinities, NaNs, unsupported encodings, domain errors) are
tested by a hand-written table in the test, from the SDM tables, not here.
"""
import random
import sys
from fractions import Fraction

import mpmath
from mpmath import mp, mpf

BIAS = 16383
RN, RD, RU, RZ = 0, 1, 2, 3
IE, DE, ZE, OE, UE, PE, C1 = 1, 2, 4, 8, 16, 32, 512
MAX_MANT = (1 << 64) - 1


def value(se, m):
    """The exact value of a finite register as a Fraction."""
    e = se & 0x7fff
    scale = (1 if e == 0 else e) - BIAS - 63
    v = Fraction(m) * (Fraction(2) ** scale)
    return -v if se & 0x8000 else v


def to_mpf(q):
    with mp.workprec(max(mp.prec, 80)):
        return mpf(q.numerator) / mpf(q.denominator)  # exact: numerator/denominator power of 2


def from_mpf(v):
    # exact (mpf(v) would round to the current precision; .man_exp drops the sign)
    sign, man, exp, _ = v._mpf_
    if man == 0 and exp != 0:
        raise ValueError("not a finite number")
    q = Fraction(man) * (Fraction(2) ** exp)
    return -q if sign else q


def floor_log2(q):
    """E with 2^E <= q < 2^(E+1), q > 0."""
    e = q.numerator.bit_length() - q.denominator.bit_length()
    while Fraction(2) ** e > q:
        e -= 1
    while Fraction(2) ** (e + 1) <= q:
        e += 1
    return e


def round_at(q, neg, mode, qexp):
    """Rounds q > 0 to a multiple of 2^qexp: (n, inexact, rounded_up_in_magnitude)."""
    n_exact = q / (Fraction(2) ** qexp)
    f = n_exact.numerator // n_exact.denominator
    rem = n_exact - f
    if rem == 0:
        return f, False, False
    if mode == RN:
        up = rem > Fraction(1, 2) or (rem == Fraction(1, 2) and f % 2 == 1)
    elif mode == RZ:
        up = False
    elif mode == RU:
        up = not neg
    else:
        up = neg
    return f + (1 if up else 0), True, up


def round_x87(q, mode, om=True, um=True):
    """Rounds the exact value q (nonzero Fraction) to the extended format.
    om/um: overflow/underflow masked. Returns (sign_exp, mant, flags)."""
    neg = q < 0
    a = -q if neg else q
    sign = 0x8000 if neg else 0
    e = floor_log2(a)
    n, inexact, up = round_at(a, neg, mode, e - 63)  # unbounded exponent
    if n == 1 << 64:
        n, e = 1 << 63, e + 1
    rflags = (PE if inexact else 0) | (C1 if up else 0)
    if e > 16383:  # overflow
        if not om and e + BIAS - 24576 <= 0x7ffe:
            return sign | (e + BIAS - 24576), n, OE | rflags
        to_inf = mode == RN or (mode == RU and not neg) or (mode == RD and neg)
        if to_inf:
            return sign | 0x7fff, 1 << 63, OE | PE | C1
        return sign | 0x7ffe, MAX_MANT, OE | PE
    if e >= -16382:
        return sign | (e + BIAS), n, rflags
    # tiny (after rounding with unbounded exponent)
    if not um:
        return sign | (e + BIAS + 24576), n, UE | rflags
    n2, inexact2, up2 = round_at(a, neg, mode, -16445)
    flags = (PE | UE if inexact2 else 0) | (C1 if up2 else 0)
    if n2 >= 1 << 63:  # rounded up to the smallest normal
        return sign | 1, n2, flags
    return sign, n2, flags


def ziv(f, extra=0):
    """Rounds the value mpmath's f() approximates: returns a function of (mode, om, um).
    f is evaluated at two precisions; the result is accepted when an interval of relative
    width 2^(16-p) around the higher-precision value rounds alike at both ends."""
    def rounder(mode, om=True, um=True):
        p = 256
        while True:
            with mp.workprec(p + extra):
                v1 = f()
            with mp.workprec(2 * p + extra):
                v2 = f()
            q1, q2 = from_mpf(v1), from_mpf(v2)
            if q2 != 0 and abs(q1 - q2) <= abs(q2) * Fraction(2) ** (16 - p):
                err = abs(q2) * Fraction(2) ** (16 - p)
                lo = round_x87(q2 - err, mode, om, um)
                hi = round_x87(q2 + err, mode, om, um)
                if lo == hi and lo[2] & PE:
                    return lo
            p *= 2
            if p > 1 << 16:
                raise RuntimeError("ziv: no convergence")
    return rounder


def exact(q):
    def rounder(mode, om=True, um=True):
        return round_x87(q, mode, om, um)
    return rounder


# --- the functions ---

def sin_r(x):
    xv = value(*x)
    return ziv(lambda: mpmath.sin(to_mpf(xv)), extra=80)


def cos_r(x):
    xv = value(*x)
    return ziv(lambda: mpmath.cos(to_mpf(xv)), extra=80)


def tan_r(x):
    xv = value(*x)
    return ziv(lambda: mpmath.tan(to_mpf(xv)), extra=80)


def atan2_r(y, x):
    yv, xv = value(*y), value(*x)
    return ziv(lambda: mpmath.atan2(to_mpf(yv), to_mpf(xv)))


def f2xm1_r(x):
    xv = value(*x)
    if xv.denominator == 1:
        return exact(Fraction(2) ** xv.numerator - 1)
    return ziv(lambda: mpmath.expm1(to_mpf(xv) * mpmath.ln2))


def is_pow2(q):
    return q > 0 and (q.numerator & (q.numerator - 1)) == 0 and (q.denominator & (q.denominator - 1)) == 0


def log2_exact(q):
    return floor_log2(q)


def yl2x_r(y, x):
    yv, xv = value(*y), value(*x)
    if is_pow2(xv):
        return exact(yv * log2_exact(xv))
    if abs(xv - 1) < Fraction(1, 2):
        # log(x) = log1p(x - 1) keeps relative accuracy near 1 (x - 1 is exact there).
        return ziv(lambda: to_mpf(yv) * mpmath.log1p(to_mpf(xv - 1)) / mpmath.ln2)
    return ziv(lambda: to_mpf(yv) * mpmath.log(to_mpf(xv)) / mpmath.ln2)


def yl2xp1_r(y, x):
    yv, xv = value(*y), value(*x)
    if is_pow2(1 + xv):
        return exact(yv * log2_exact(1 + xv))
    return ziv(lambda: to_mpf(yv) * mpmath.log1p(to_mpf(xv)) / mpmath.ln2)


# --- test points ---

def reg(q, mode=RN):
    """The register nearest to q (a Fraction or int), for building inputs."""
    if q == 0:
        return (0, 0)
    se, m, _ = round_x87(Fraction(q), mode)
    return (se, m)


def neg(r):
    return (r[0] ^ 0x8000, r[1])


rng = random.Random(20261201)


def rand_reg(lo_exp, hi_exp, sign=None):
    e = rng.randint(lo_exp, hi_exp)
    m = rng.getrandbits(63) | (1 << 63)
    s = rng.getrandbits(1) if sign is None else sign
    return ((s << 15) | (e + BIAS), m)


def rand_denormal(sign=None):
    m = rng.getrandbits(rng.randint(1, 63))
    m = m or 1
    s = rng.getrandbits(1) if sign is None else sign
    return ((s << 15), m)


def near(q, k=0):
    """A register k ulps from the register nearest to q."""
    se, m = reg(q)
    m += k
    if m >= 1 << 64:  # into the next binade (|k| small)
        m, se = (m - (1 << 64)) // 2 + (1 << 63), se + 1
    elif m < 1 << 63:  # into the binade below: consecutive registers there
        m, se = m + (1 << 63), se - 1
    return (se, m)


def pi_mult(k, num=1, den=2):
    with mp.workprec(400):
        return from_mpf(mpmath.pi * k * num / den)


ONE = (BIAS, 1 << 63)
MAXREG = (0x7ffe, MAX_MANT)
PSEUDO_DENORMAL = (0, (1 << 63) | 0x123456789)

trig_points = []
trig_points += [rand_reg(-70, -30) for _ in range(6)]
trig_points += [rand_reg(-8, 2) for _ in range(14)]
trig_points += [rand_reg(3, 20) for _ in range(6)]
trig_points += [rand_reg(21, 62) for _ in range(6)]
trig_points += [(0x403d, MAX_MANT), (0xc03d, MAX_MANT)]  # just below 2^63
trig_points += [rand_denormal() for _ in range(3)] + [PSEUDO_DENORMAL, (0, 1), (0x8000, 1)]
trig_points += [(1, 1 << 63)]  # smallest normal
trig_points += [near(pi_mult(k), d) for k in (1, 2, 3, 4, 1000001) for d in (-1, 0, 1)]
trig_points += [near(pi_mult(1, 1, 4), 0), ONE, (BIAS - 1, 1 << 63), (BIAS - 32, 1 << 63)]

atan_points = []
for _ in range(30):
    atan_points.append((rand_reg(-20, 20), rand_reg(-20, 20)))
for _ in range(6):
    atan_points.append((rand_reg(-16382, -16000), rand_reg(1000, 16383)))  # underflow
    atan_points.append((rand_reg(1000, 16383), rand_reg(-16382, -16000)))  # near +-pi/2
    atan_points.append((rand_denormal(), rand_reg(-5, 5)))
    atan_points.append((rand_reg(-5, 5), rand_denormal()))
atan_points += [(ONE, ONE), (neg(ONE), neg(ONE)), (ONE, neg(ONE)), (MAXREG, (1, 1 << 63)),
                ((1, 1 << 63), MAXREG), ((0, 1), MAXREG), ((0, 1), neg(MAXREG)),
                (PSEUDO_DENORMAL, ONE)]

f2xm1_points = []
f2xm1_points += [rand_reg(-60, -1) for _ in range(20)]
f2xm1_points += [rand_reg(-16382, -16300) for _ in range(3)]
f2xm1_points += [rand_denormal() for _ in range(4)] + [PSEUDO_DENORMAL, (0, 1), (0x8000, 1)]
f2xm1_points += [ONE, neg(ONE), near(1, -1), neg(near(1, -1)), (BIAS - 1, 1 << 63),
                 neg((BIAS - 1, 1 << 63)), near(Fraction(1, 3)), near(Fraction(-2, 3))]
# outside -1..+1 (the SDM's undefined range; this implementation: 2^x - 1 everywhere)
f2xm1_points += [reg(2), reg(-2), reg(Fraction(5, 2)), reg(100), reg(-100), reg(-64), reg(-65),
                 reg(Fraction(-129, 2)), reg(16383), reg(Fraction(163839, 10)), reg(16384),
                 reg(Fraction(32769, 2)), rand_reg(5, 12, 1), rand_reg(5, 12, 0)]

yl2x_points = []
for _ in range(24):
    yl2x_points.append((rand_reg(-30, 30), rand_reg(-30, 30, 0)))
for _ in range(6):
    yl2x_points.append((rand_reg(-3, 3), rand_reg(-16382, 16383, 0)))
    yl2x_points.append((rand_denormal(), rand_reg(-3, 3, 0)))
    yl2x_points.append((rand_reg(-3, 3), rand_denormal(0)))
    yl2x_points.append((rand_reg(16300, 16383), rand_reg(100, 16383, 0)))  # may overflow
yl2x_points += [(ONE, near(1, 1)), (ONE, near(1, -1)), (neg(ONE), near(1, 1)),
                (rand_reg(-5, 5), near(1, 3)), (rand_reg(-16382, -16380), near(1, 1)),
                ((0, 1), near(1, -1)), ((0, 1), near(1, 1)),
                (reg(3), reg(8)), (reg(Fraction(1, 3)), reg(8)), (reg(Fraction(1, 3)), reg(Fraction(1, 1024))),
                (MAXREG, MAXREG), (MAXREG, reg(2)), (MAXREG, reg(4)), (neg(MAXREG), reg(4)),
                (MAXREG, reg(Fraction(1, 4))), ((0, 1), reg(Fraction(1, 2))), ((0, 3), reg(Fraction(1, 2))),
                (PSEUDO_DENORMAL, reg(Fraction(1, 2))), (ONE, PSEUDO_DENORMAL), (ONE, (0, 1)),
                (ONE, MAXREG), (ONE, reg(10)), (reg(Fraction(1, 3)), reg(3))]

yl2xp1_points = []
for _ in range(20):
    yl2xp1_points.append((rand_reg(-30, 30), rand_reg(-30, -2)))
for _ in range(6):
    yl2xp1_points.append((rand_reg(-30, 30), rand_reg(-70, -31)))
    yl2xp1_points.append((rand_denormal(), rand_reg(-30, -2)))
    yl2xp1_points.append((rand_reg(-3, 3), rand_denormal()))
with mp.workprec(200):
    edge = from_mpf(1 - mpmath.sqrt(2) / 2)
yl2xp1_points += [(ONE, near(edge)), (ONE, neg(near(edge))), (neg(ONE), near(edge, 1)),
                  (ONE, (1, 1 << 63)), (ONE, PSEUDO_DENORMAL), (ONE, (0x8000, 1)),
                  (reg(5), reg(1)), (reg(5), reg(-Fraction(1, 2))), (reg(Fraction(1, 3)), reg(3)),
                  (reg(3), reg(-Fraction(3, 4))),
                  # outside the SDM's range (defined here: y * log2(1 + x))
                  (ONE, reg(2)), (ONE, reg(-Fraction(9, 10))), (ONE, near(-1, -1)), (ONE, MAXREG),
                  (MAXREG, MAXREG), (MAXREG, reg(Fraction(1, 3))), ((0, 1), reg(Fraction(1, 3)))]


def fcw(mode, pc, om=True, um=True):
    return 0x40 | 0x27 | (0x08 if om else 0) | (0x10 if um else 0) | (pc << 8) | (mode << 10)


def is_denormal(r):
    return (r[0] & 0x7fff) == 0 and r[1] != 0


rows = []


def emit(op, a, b, r0, r1, flags, cw):
    rows.append("  {%s, 0x%04x, {0x%016xull, 0x%04x}, {0x%016xull, 0x%04x}, {0x%016xull, 0x%04x}, "
                "{0x%016xull, 0x%04x}, 0x%04x}," % (op, cw, a[1], a[0], b[1], b[0], r0[1], r0[0],
                                                   r1[1], r1[0], flags))


def pc_for(i):
    return (3, 2, 0, 1)[i % 4]  # every precision control, including the reserved 01


def one_arg(op, points, fn, extra_r1=None):
    for i, x in enumerate(points):
        rounder = fn(x)
        de = DE if is_denormal(x) else 0
        for mode in (RN, RD, RU, RZ):
            se, m, fl = rounder(mode)
            r1 = (0, 0)
            if extra_r1 is not None:
                r1 = extra_r1
            emit(op, x, (0, 0), (se, m), r1, fl | de, fcw(mode, pc_for(i + mode)))


def two_arg(op, points, fn):
    for i, (y, x) in enumerate(points):
        rounder = fn(y, x)
        de = DE if is_denormal(x) or is_denormal(y) else 0
        for mode in (RN, RD, RU, RZ):
            se, m, fl = rounder(mode)
            emit(op, y, x, (se, m), (0, 0), fl | de, fcw(mode, pc_for(i + mode)))


one_arg("kSin", trig_points, sin_r)
one_arg("kCos", trig_points, cos_r)
one_arg("kTan", trig_points, lambda x: tan_r(x), extra_r1=ONE)
# FSINCOS: r0 = sin, r1 = cos; C1 from the cosine; other flags of both.
for i, x in enumerate(trig_points[::2]):
    s, c = sin_r(x), cos_r(x)
    de = DE if is_denormal(x) else 0
    for mode in (RN, RD, RU, RZ):
        ss, sm, sf = s(mode)
        cs, cm, cf = c(mode)
        emit("kSinCos", x, (0, 0), (ss, sm), (cs, cm), (sf & ~C1) | cf | de, fcw(mode, pc_for(i + mode)))
two_arg("kAtan", atan_points, atan2_r)
one_arg("kF2xm1", f2xm1_points, f2xm1_r)
two_arg("kYl2x", yl2x_points, yl2x_r)
two_arg("kYl2xp1", yl2xp1_points, yl2xp1_r)

# FPATAN results that are multiples of pi (zeros and infinities, SDM table) in every mode.
INF = (0x7fff, 1 << 63)
ZERO = (0, 0)
for (y, x, k) in [(ZERO, neg(ZERO), 4), (neg(ZERO), neg(ZERO), -4), (ONE, ZERO, 2), (neg(ONE), neg(ZERO), -2),
                  (ZERO, neg(ONE), 4), (INF, INF, 1), (INF, neg(INF), 3), (neg(INF), neg(INF), -3), ((0, 1), ZERO, 2),
                  (neg(INF), ONE, -2), (ONE, neg(INF), 4), ((0, 1), neg(ZERO), 2), (neg(ONE), neg(INF), -4)]:
    de = DE if is_denormal(x) or is_denormal(y) else 0
    for mode in (RN, RD, RU, RZ):
        se, m, fl = ziv(lambda k=k: mpmath.pi * k / 4)(mode)
        emit("kAtan", y, x, (se, m), (0, 0), fl | de, fcw(mode, 3))

# Unmasked underflow / overflow: the exponent adjusted by 24576, UE on every tiny result.
for op, fn, args in [("kF2xm1", f2xm1_r, [(0, 0x123456789)]), ("kSin", sin_r, [(0x8000, 0x4000000000000000)]),
                     ("kAtan", atan2_r, [((0, 1 << 40), ONE)]),
                     ("kYl2x", yl2x_r, [(MAXREG, MAXREG)]), ("kF2xm1", f2xm1_r, [reg(Fraction(32769, 2))])]:
    for a in args:
        two = isinstance(a[0], tuple)
        rounder = fn(*a) if two else fn(a)
        y, x = (a if two else (a, (0, 0)))
        de = DE if is_denormal(x) or is_denormal(y) else 0
        for mode in (RN, RD, RU, RZ):
            se, m, fl = rounder(mode, om=False, um=False)
            emit(op, y, x, (se, m), ONE if op == "kTan" else (0, 0), fl | de, fcw(mode, 3, False, False))

print("// Generated by tests/unit/cpu/gen_x87_math_answers.py (mpmath %s); do not edit." % mpmath.__version__)
print("// {op, fcw, a (single operand, or ST(1)), b (ST(0) of two-operand forms), r0, r1, flags}")
print("\n".join(rows))
print("// %d answers" % len(rows), file=sys.stderr)
