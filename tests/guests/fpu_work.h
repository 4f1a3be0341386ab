/* Interface of fpu_work.c (the `fpu` guest's numeric work), shared by the guest and its host
 * build. */
#ifndef VMRR_GUEST_FPU_WORK_H
#define VMRR_GUEST_FPU_WORK_H

#include <stdint.h>

typedef void (*fpu_out_fn)(const char *s);
/* Runs every part, writing lines through fn; the last is "RESULT fpu <fnv1a> <ld|no-ld>". */
int fpu_work(fpu_out_fn fn);
/* Exposed for the host build's self-check against its C library. */
void fpu_fmt_g17(double x, char *buf); /* %.17g; buf >= 800 bytes */
void fpu_fmt_a(double x, char *buf);   /* %a; buf >= 64 bytes */
double fpu_sqrt(double x);
double fpu_sin(double x);
double fpu_cos(double x);
double fpu_log(double x);
double fpu_exp(double x);
uint64_t fpu_bits(double x);

#endif
