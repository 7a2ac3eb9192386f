/*
 * Number formats: exact conversions between binary64 and the input formats
 * of the precision model (f32, f16 = IEEE binary16, bf16), as stored in
 * safetensors files.
 *
 * Decoding is exact (every f32, f16 and bf16 value is a binary64 value).
 * Encoding rounds to nearest, ties to even, with gradual underflow
 * (subnormals), overflow to infinity and NaN kept as a quiet NaN of the same
 * sign (the payload is not kept).  The code is plain integer and power-of-two
 * arithmetic, independent of the FPU's rounding mode and of compiler support
 * for _Float16 or __bf16, so it can serve as the tests' reference.
 *
 * Formats are the NSX_FORMAT_* codes of nsimplex/kernel.h.
 */
#ifndef NSX_IO_FPFORMAT_H
#define NSX_IO_FPFORMAT_H

#include <stdint.h>

#include "nsimplex/kernel.h"
#include "nsimplex/names.h" /* nsx_format_name, nsx_format_from_name */

/* Exact decoders: bits (host integer, the format's bit layout) -> value. */
double nsx_f32_decode(uint32_t bits);
double nsx_f16_decode(uint16_t bits);
double nsx_bf16_decode(uint16_t bits);

/* Encoders: the bits of x rounded to nearest-even in the format.  Values
   beyond the largest finite one (after rounding) give +-infinity, NaN gives
   the quiet NaN with x's sign (0x7FC00000, 0x7E00, 0x7FC0 when positive). */
uint32_t nsx_f32_encode(double x);
uint16_t nsx_f16_encode(double x);
uint16_t nsx_bf16_encode(double x);

/* x rounded to nearest-even in format (NSX_FORMAT_F64: x itself).  NaN and
   infinities are returned unchanged; a nonzero x too small for the format
   gives a zero of x's sign.  Precondition: format is an NSX_FORMAT_*. */
double nsx_round_to_format(double x, int format);

/* 1 when x is exactly a value of format, else 0.  Infinities and NaN count
   as representable (every format has them; NaN payloads are not compared),
   which is what inputs need: leak pairs put NaN and Inf in masked positions.
   Precondition: format is an NSX_FORMAT_*. */
int nsx_representable(double x, int format);

#endif
