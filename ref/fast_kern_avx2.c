/* The fast path's hot loops for avx2 (ref/fast_kern.inc), built with its
   own instruction set flags (Makefile). */
#if !defined(__AVX2__) || !defined(__FMA__)
#error "fast_kern_avx2.c needs -mavx2 -mfma"
#endif
#define FAST_KERN_SUFFIX avx2
#define FAST_KERN_ISA_NAME "avx2"
#include "ref/fast_kern.inc"
