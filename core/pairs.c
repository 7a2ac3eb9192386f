/* Leak pairs and mask probes: checks, unjudged rows, flags (pairs.h). */
#include <string.h>

#include "nsimplex/names.h"
#include "nsimplex/pairs.h"

static int in_range(int v, int lo, int hi) { return v >= lo && v <= hi; }

int nsx_pair_check(const nsx_problem *p, const nsx_pair *q, int idx, nsx_err *err)
{
#define PBAD(key, fmt, ...) nsx_err_set(err, NSX_E_INPUT, "metadata: pairs[%d].%s: " fmt, idx, key, __VA_ARGS__)
    if (!nsx_pair_kind_name(q->kind))
        return PBAD("kind", "%d is not leak, probe or gradleak", q->kind);
    if (!in_range(q->a, 0, p->B - 1))
        return PBAD("a", "batch %d is outside 0..%d", q->a, p->B - 1);
    if (!in_range(q->b, 0, p->B - 1))
        return PBAD("b", "batch %d is outside 0..%d", q->b, p->B - 1);
    if (q->a == q->b)
        return PBAD("b", "is batch %d, the same as a", q->b);
    if (q->kind == NSX_PAIR_LEAK) {
        if (!in_range(q->t, 0, p->L - 1))
            return PBAD("t", "row %d is outside 0..%d", q->t, p->L - 1);
        if (!nsx_future_name(q->future))
            return PBAD("future", "%d is not random, huge, nan or inf", q->future);
        return 0;
    }
    if (q->kind == NSX_PAIR_GRADLEAK) {
        if (!in_range(q->t, 1, p->L - 1))
            return PBAD("t", "position %d is outside 1..%d", q->t, p->L - 1);
        if (!p->causal)
            return PBAD("kind", "%s", "gradleak needs a causal problem");
        return 0;
    }
    if (!in_range(q->i, 0, p->L - 1))
        return PBAD("i", "row %d is outside 0..%d", q->i, p->L - 1);
    if (!in_range(q->dim, 1, p->n))
        return PBAD("dim", "%d is outside 1..%d", q->dim, p->n);
    if (!in_range(q->j, 0, p->L - 1))
        return PBAD("j", "position %d is outside 0..%d", q->j, p->L - 1);
    return 0;
#undef PBAD
}

void nsx_pairs_unjudged(const nsx_problem *p, const nsx_pair *pairs, int npairs, unsigned char *skip)
{
    /* Linear in pairs + rows (a file may hold many pairs of a long
       sequence): mark the first skipped row of each pair, then carry the
       marks down each batch's rows. */
    memset(skip, 0, (size_t)p->B * p->L);
    for (int x = 0; x < npairs; x++)
        if (pairs[x].kind == NSX_PAIR_LEAK && pairs[x].future != NSX_FUTURE_RANDOM &&
            pairs[x].t + 1 < p->L)
            skip[(size_t)pairs[x].b * p->L + pairs[x].t + 1] = 1;
    for (size_t b = 0; b < (size_t)p->B; b++)
        for (size_t i = 1; i < (size_t)p->L; i++)
            skip[b * p->L + i] |= skip[b * p->L + i - 1];
}

int nsx_pair_is_copy(const nsx_pair *q, int L)
{
    return q->kind == NSX_PAIR_LEAK && q->t == L - 1 && q->future == NSX_FUTURE_RANDOM;
}

const char *nsx_future_flag(int future)
{
    static const char *const flags[] = {[NSX_FUTURE_RANDOM] = "FutureRandom", [NSX_FUTURE_HUGE] = "FutureHuge",
                                        [NSX_FUTURE_NAN] = "FutureNaN", [NSX_FUTURE_INF] = "FutureInf"};
    return future >= 0 && future <= NSX_FUTURE_INF ? flags[future] : NULL;
}

int nsx_pair_flags(const nsx_pair *q, int L, const char **flags)
{
    if (q->kind == NSX_PAIR_PROBE) {
        flags[0] = "MaskProbe";
        return 1;
    }
    if (q->kind == NSX_PAIR_GRADLEAK) {
        flags[0] = "GradLeakPair";
        return 1;
    }
    if (nsx_pair_is_copy(q, L)) {
        flags[0] = "BatchCopy";
        return 1;
    }
    flags[0] = "LeakPair";
    flags[1] = nsx_future_flag(q->future);
    return 2;
}
