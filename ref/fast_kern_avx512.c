/* The fast path's hot loops for avx512 (ref/fast_kern.inc), built with its
   own instruction set flags (Makefile). */
#if !defined(__AVX512F__) || !defined(__FMA__)
#error "fast_kern_avx512.c needs -mavx512f -mfma"
#endif
#define FAST_KERN_SUFFIX avx512
#define FAST_KERN_ISA_NAME "avx512"
#include "ref/fast_kern.inc"
