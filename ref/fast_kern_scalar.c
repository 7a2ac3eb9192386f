/* The fast path's hot loops for scalar (ref/fast_kern.inc), built with its
   own instruction set flags (Makefile). */
#if defined(__AVX__) || defined(__FMA__)
#error "fast_kern_scalar.c is the baseline x86-64 build"
#endif
#define FAST_KERN_SUFFIX scalar
#define FAST_KERN_ISA_NAME "scalar"
#include "ref/fast_kern.inc"
