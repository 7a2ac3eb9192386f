/* The SIMD kernel tests' problems (tests/simd_case.h). */
#include <check.h>
#include <dlfcn.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "nsimplex/rng.h"
#include "tests/simd_case.h"

static nsx_rng rng_state;

static uint64_t rng(void)
{
    return nsx_rng_next(&rng_state);
}

static float unif(void) /* uniform in [-1, 1), exact in binary32 */
{
    return (float)((double)(rng() >> 40) / (double)(1ull << 23) - 1.0);
}

void fill(float *x, size_t len)
{
    for (size_t t = 0; t < len; t++)
        x[t] = unif();
}

static void make_sel(const tcase *c, inst *s)
{
    const int L = c->L, K = c->topk;
    for (int b = 0; b < c->B; b++)
        for (int i = 0; i < L; i++) {
            int32_t *row = s->sel + ((size_t)b * L + i) * K;
            for (int r = 0; r < K; r++) {
                int kind = (int)(rng() % 8), j;
                if (c->sel == SEL_EMPTY_ROWS && i % 3 == 1)
                    kind = 7;
                switch (kind) {
                case 0: case 1: case 2: case 3: /* a valid key */
                    j = (int)(rng() % (uint64_t)L);
                    if (c->causal && j > i && kind < 3) /* mostly past, some future */
                        j = (int)(rng() % (uint64_t)(i + 1));
                    break;
                case 4: j = L + (int)(rng() % 3); break;       /* invalid, >= L */
                case 5: j = -2 - (int)(rng() % 5); break;      /* invalid, < -1 */
                default: j = -1; break;                        /* pad */
                }
                /* A valid key once per row, unless the case tests repeats. */
                for (int z = 0; z < r && c->sel != SEL_DUPS && j >= 0 && j < L; z++)
                    if (row[z] == j)
                        j = -1;
                row[r] = j;
            }
        }
}

void inst_make(const tcase *c, inst *s, uint64_t seed, int with_dout)
{
    memset(s, 0, sizeof *s);
    rng_state.s = seed;
    nsx_kernel_problem *p = &s->p;
    p->n = c->n; p->B = c->B; p->L = c->L; p->H = c->H; p->Hkv = c->Hkv;
    p->d = c->d; p->dv = c->dv; p->reduce = c->reduce; p->causal = c->causal;
    p->distinct = c->distinct;
    for (int m = 0; m < c->n; m++) {
        p->window[m] = c->window[m];
        p->k_bias[m] = c->kb * (m + 1);
        p->v_bias[m] = c->vb * (m + 1);
    }
    p->score_scale = c->score_scale ? c->score_scale : 1.0 / sqrt((double)c->d);
    p->out_scale = c->out_scale ? c->out_scale : 1.0;
    s->nq = (size_t)c->B * c->L * c->H * c->d;
    s->nk = (size_t)c->B * c->L * c->Hkv * c->d;
    s->nv = (size_t)c->B * c->L * c->Hkv * c->dv;
    s->no = (size_t)c->B * c->L * c->H * c->dv;
    s->nl = (size_t)c->B * c->H * c->L;
    s->q = malloc(s->nq * sizeof(float));
    fill(s->q, s->nq);
    if (with_dout) {
        s->dout = malloc(s->no * sizeof(float));
        fill(s->dout, s->no);
    }
    for (int m = 0; m < c->n; m++) {
        s->k[m] = malloc(s->nk * sizeof(float));
        s->v[m] = malloc(s->nv * sizeof(float));
        fill(s->k[m], s->nk);
        fill(s->v[m], s->nv);
    }
    if (c->sel != SEL_NONE) {
        p->topk = c->topk;
        p->sel_dims = c->sel_dims;
        s->sel = malloc((size_t)c->B * c->L * c->topk * sizeof(int32_t));
        make_sel(c, s);
        p->sel = s->sel;
    }
}

void inst_free(inst *s)
{
    free(s->q);
    free(s->dout);
    for (int m = 0; m < s->p.n; m++) {
        free(s->k[m]);
        free(s->v[m]);
    }
    free(s->sel);
}

int ref_allowed(const nsx_kernel_problem *p, int b, int i, const int *J)
{
    for (int m = 0; m < p->n; m++) {
        int j = J[m], w = p->window[m];
        if (p->causal && j > i)
            return 0;
        if (w > 0 && !(i - w < j))
            return 0;
        if (w > 0 && !p->causal && !(j < i + w))
            return 0;
        if (p->topk > 0 && (p->sel_dims >> m & 1u)) {
            const int32_t *row = p->sel + ((size_t)b * p->L + i) * p->topk;
            int found = 0;
            for (int r = 0; r < p->topk; r++)
                found |= row[r] == j; /* -1 and out-of-range never equal a key */
            if (!found)
                return 0;
        }
    }
    for (int a = 0; a < p->n && p->distinct; a++)
        for (int z = 0; z < a; z++)
            if (J[a] == J[z])
                return 0;
    return 1;
}

int next_tuple(int *J, int n, int L)
{
    for (int m = n - 1; m >= 0; m--) {
        if (++J[m] < L)
            return 1;
        J[m] = 0;
    }
    return 0;
}

void *simd_so_open(const char **path)
{
    *path = getenv("NSX_SIMD_SO");
    ck_assert_msg(*path != NULL, "NSX_SIMD_SO is not set (make check sets it)");
    void *lib = dlopen(*path, RTLD_NOW | RTLD_LOCAL);
    ck_assert_msg(lib != NULL, "dlopen %s: %s", *path, dlerror());
    return lib;
}
