/* Cost and memory of a problem before any work (core/budget.h). */
#include <stdio.h>

#include "core/budget.h"
#include "nsimplex/slice.h"

/* Saturating arithmetic: UINT64_MAX stands for "more than 64 bits". */
static uint64_t sat_mul(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_mul_overflow(a, b, &r) ? UINT64_MAX : r;
}

static uint64_t sat_add(uint64_t a, uint64_t b)
{
    uint64_t r;
    return __builtin_add_overflow(a, b, &r) ? UINT64_MAX : r;
}

/* Seconds of the MPFR reference per allowed tuple: the d products of n + 1
   factors of E1, the exponential and the dv terms of E5-E6; and per tuple
   visited by its enumeration (the mask test).  Fitted to `nsimplex eval
   --stats` on a 2-core AMD EPYC (family 25), shared: the default suite
   1e5 tuples/s at d = dv = 4 and 1.4e4 at d = dv = 64 (small rows); n = 2,
   L = 40 dense 4e4 tuples/s at d = dv = 4 (rows of up to 1600 tuples). */
#define SEC_PER_OP 0.5e-6
#define SEC_PER_VISIT 20e-9

/* Bytes per allowed tuple of the largest row, in the worst case: the
   reference's passes keep no tuple, but the exact cases store a row (n key
   positions, the raw score with limbs for up to 256 bits, the sort's two
   indices); doubled for the allocator.  Measured: a row of 2^18 tuples at
   n = 1 held about 92 bytes each. */
static uint64_t bytes_per_tuple(const nsx_problem *p)
{
    return 2 * (4 * (uint64_t)p->n + 32 + 32 + 16);
}

void nsx_budget_of(const nsx_problem *p, nsx_budget *b)
{
    uint64_t sum = 0, row_max = 0;
    for (int i = 0; i < p->L; i++) {
        /* |Z(i)|, or its upper bound with a selection or distinct */
        uint64_t row = nsx_slice_bound(p, i);
        sum = sat_add(sum, row);
        if (row > row_max)
            row_max = row;
    }
    uint64_t rows = sat_mul((uint64_t)p->B, (uint64_t)p->H);
    b->tuples = sat_mul(sum, rows);
    b->row_tuples = row_max;
    uint64_t per_row = 1;
    for (int m = 0; m < p->n; m++)
        per_row = sat_mul(per_row, (uint64_t)p->L);
    b->visited = sat_mul(sat_mul(rows, (uint64_t)p->L), per_row);
    double ops = (double)p->d * (p->n + 1) + 2.0 * p->dv + 8;
    b->seconds = (double)b->tuples * ops * SEC_PER_OP + (double)b->visited * SEC_PER_VISIT;
    /* a computed selection first scores every (query, key) pair (E8, E9):
       B L^2 of them, Hi dot products of di terms each for an indexer */
    if (p->sel.source == NSX_SEL_INDEXER || p->sel.source == NSX_SEL_SCORES) {
        uint64_t pairs = sat_mul(sat_mul((uint64_t)p->B, (uint64_t)p->L), (uint64_t)p->L);
        b->visited = sat_add(b->visited, pairs);
        double per = p->sel.source == NSX_SEL_INDEXER ? (double)p->sel.Hi * (p->sel.di + 2) : 1;
        b->seconds += (double)pairs * per * SEC_PER_OP;
    }
    /* the largest row's tuples, the outputs, and for an indexer its
       [B, L, L] scores */
    uint64_t outs = sat_add(sat_mul(sat_mul(rows, (uint64_t)p->L), (uint64_t)p->dv + 1),
                            p->sel.source == NSX_SEL_INDEXER
                                ? sat_mul(sat_mul((uint64_t)p->B, (uint64_t)p->L), (uint64_t)p->L)
                                : 0);
    b->bytes = sat_add(sat_mul(row_max, bytes_per_tuple(p)), sat_mul(outs, 8));
}

/* "22140", "2.1e+09", or "over 1.8e+19" when saturated. */
static const char *count_text(char *buf, size_t n, uint64_t v)
{
    if (v < 1000000000)
        snprintf(buf, n, "%llu", (unsigned long long)v);
    else
        snprintf(buf, n, "%s%.2g", v == UINT64_MAX ? "over " : "", (double)v);
    return buf;
}

/* "40 s", "3.2 h", "12 years". */
static const char *time_text(char *buf, size_t n, double s)
{
    if (s < 10)
        snprintf(buf, n, "%.1f s", s);
    else if (s < 120)
        snprintf(buf, n, "%.0f s", s);
    else if (s < 7200)
        snprintf(buf, n, "%.0f min", s / 60);
    else if (s < 2 * 86400)
        snprintf(buf, n, "%.1f h", s / 3600);
    else if (s < 2 * 365 * 86400.0)
        snprintf(buf, n, "%.0f days", s / 86400);
    else
        snprintf(buf, n, "%.2g years", s / (365 * 86400.0));
    return buf;
}

int nsx_budget_check(const nsx_problem *p, const nsx_budget_limits *lim, const char *what,
                     nsx_budget *out, nsx_err *err)
{
    nsx_budget b;
    nsx_budget_of(p, &b);
    if (out)
        *out = b;
    uint64_t max_t = lim && lim->max_tuples ? lim->max_tuples : NSX_BUDGET_MAX_TUPLES;
    uint64_t max_b = lim && lim->max_bytes ? lim->max_bytes : NSX_BUDGET_MAX_BYTES;
    /* the enumeration's own cost: a mask test is about 1/1000 of an
       allowed tuple's work */
    uint64_t max_v = sat_mul(max_t, 1024);
    char c1[32], c2[32], c3[32], t[32];
    if (b.tuples > max_t || b.visited > max_v)
        return nsx_err_set(err, NSX_E_TOO_LARGE,
                           "%s: n = %d, L = %d: %s allowed tuples (limit %s; %s enumerated), about %s of "
                           "work; --max-tuples N raises the limit", what, p->n, p->L,
                           count_text(c1, sizeof c1, b.tuples), count_text(c2, sizeof c2, max_t),
                           count_text(c3, sizeof c3, b.visited),
                           time_text(t, sizeof t, b.seconds / (lim && lim->speed > 0 ? lim->speed : 1)));
    if (b.bytes > max_b)
        return nsx_err_set(err, NSX_E_TOO_LARGE,
                           "%s: n = %d, L = %d: one row has %s allowed tuples, about %s MiB of memory "
                           "(limit %s MiB); --max-memory MIB raises the limit", what, p->n, p->L,
                           count_text(c1, sizeof c1, b.row_tuples), count_text(c2, sizeof c2, b.bytes >> 20),
                           count_text(t, sizeof t, max_b >> 20));
    return 0;
}

nsx_budget_limits nsx_budget_scaled(const nsx_budget_limits *lim, double speed)
{
    nsx_budget_limits out = lim ? *lim : (nsx_budget_limits){0};
    if (!out.max_tuples)
        out.max_tuples = (uint64_t)((double)NSX_BUDGET_MAX_TUPLES * speed);
    out.speed = speed;
    return out;
}
