/*
 * Support for the parser fuzz targets (common.h).
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz/targets/common.h"
#include "io/json.h"

void fz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
    fprintf(stderr, "\nnsimplex fuzz: %s:%d: check failed: %s\n  ", file, line, cond);
    va_list ap;
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    fflush(stderr);
    abort();
}

void fz_check_outcome(int rc, const nsx_err *err, const char *prefix)
{
    FZ_CHECK(rc == 0 || rc == NSX_E_INPUT || rc == NSX_E_UNSUPPORTED || rc == NSX_E_TOO_LARGE || rc == NSX_E_NOT_APPLICABLE ||
                 rc == NSX_E_NOMEM || rc == NSX_E_PRECISION_CAP,
             "error kind %d (%s)", rc, nsx_err_kind_name(rc));
    if (rc == 0)
        return;
    FZ_CHECK(err->kind == rc, "err->kind %d but the call returned %d", err->kind, rc);
    FZ_CHECK(err->msg[0] != '\0', "empty message for error kind %d", rc);
    FZ_CHECK(strchr(err->msg, '\n') == NULL, "message of more than one line: '%s'", err->msg);
    FZ_CHECK(strncmp(err->msg, prefix, strlen(prefix)) == 0, "message '%s' does not start with '%s'",
             err->msg, prefix);
}

static FILE *devnull;

static void close_devnull(void)
{
    fclose(devnull);
}

void fz_check_reports(const nsx_check_report *rep, const nsx_case_info *info, const char *label)
{
    if (!devnull) {
        devnull = fopen("/dev/null", "w");
        FZ_CHECK(devnull != NULL, "cannot open /dev/null");
        atexit(close_devnull);
    }
    char *json = nsx_check_json(rep, info, label);
    FZ_CHECK(json != NULL, "nsx_check_json: out of memory");
    json_t *root;
    nsx_json_error je;
    FZ_CHECK(nsx_json_parse(json, strlen(json), NSX_JSON_DOC, &root, &je) == 0,
             "the JSON report is not valid JSON (%s): %s", je.why, json);
    json_decref(root);
    free(json);
    nsx_check_print(devnull, rep, info, label);
}

/* ---- the scratch directory ---- */

static char scratch[256];
static char pathbuf[512];

static void remove_scratch(void)
{
    DIR *d = opendir(scratch);
    if (d) {
        struct dirent *e;
        while ((e = readdir(d)) != NULL) {
            if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
                continue;
            char p[600];
            snprintf(p, sizeof p, "%s/%s", scratch, e->d_name);
            unlink(p);
        }
        closedir(d);
    }
    rmdir(scratch);
}

const char *fz_path(const char *name)
{
    if (!scratch[0]) {
        struct stat sb;
        const char *base = getenv("TMPDIR");
        if (stat("/dev/shm", &sb) == 0 && S_ISDIR(sb.st_mode) && access("/dev/shm", W_OK) == 0)
            base = "/dev/shm";
        else if (!base || !*base)
            base = "/tmp";
        snprintf(scratch, sizeof scratch, "%s/nsx-fuzz-XXXXXX", base);
        FZ_CHECK(mkdtemp(scratch) != NULL, "mkdtemp %s: %s", scratch, strerror(errno));
        atexit(remove_scratch);
    }
    snprintf(pathbuf, sizeof pathbuf, "%s/%s", scratch, name);
    return pathbuf;
}

void fz_write_file(const char *path, const void *buf, size_t n)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    FZ_CHECK(fd >= 0, "open %s: %s", path, strerror(errno));
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR)
            continue;
        FZ_CHECK(k > 0, "write %s: %s", path, strerror(errno));
        p += k;
        n -= (size_t)k;
    }
    FZ_CHECK(close(fd) == 0, "close %s: %s", path, strerror(errno));
}

unsigned char *fz_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    FZ_CHECK(f != NULL, "open %s: %s", path, strerror(errno));
    size_t cap = 4096, len = 0;
    unsigned char *b = malloc(cap);
    FZ_CHECK(b != NULL, "out of memory");
    for (;;) {
        len += fread(b + len, 1, cap - len, f);
        if (len < cap)
            break;
        b = realloc(b, cap *= 2);
        FZ_CHECK(b != NULL, "out of memory");
    }
    FZ_CHECK(!ferror(f), "read %s", path);
    fclose(f);
    *n = len;
    return b;
}

/* ---- comparisons ---- */

static int tensor_same(const nsx_tensor *a, const nsx_tensor *b)
{
    if (strcmp(a->name, b->name) || a->dtype != b->dtype || a->rank != b->rank ||
        a->count != b->count || a->nbytes != b->nbytes)
        return 0;
    for (int r = 0; r < a->rank; r++)
        if (a->shape[r] != b->shape[r])
            return 0;
    return a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0;
}

int fz_st_same(const nsx_st *a, const nsx_st *b)
{
    if (a->nt != b->nt || a->nmeta != b->nmeta)
        return 0;
    for (size_t i = 0; i < a->nt; i++) {
        const nsx_tensor *t = nsx_st_get(b, a->t[i].name);
        if (!t || !tensor_same(&a->t[i], t))
            return 0;
    }
    for (size_t i = 0; i < a->nmeta; i++) {
        const char *v = nsx_st_meta(b, a->meta[i].key);
        if (!v || strcmp(v, a->meta[i].value))
            return 0;
    }
    return 1;
}

static int dbl_same(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

int fz_problem_same(const nsx_problem *a, const nsx_problem *b)
{
    int same = a->n == b->n && a->B == b->B && a->L == b->L && a->H == b->H && a->Hkv == b->Hkv &&
               a->d == b->d && a->dv == b->dv && a->reduce == b->reduce &&
               dbl_same(a->score_scale, b->score_scale) &&
               a->score_scale_rsqrt_d == b->score_scale_rsqrt_d &&
               dbl_same(a->out_scale, b->out_scale) && a->causal == b->causal &&
               a->distinct == b->distinct && a->input_format == b->input_format &&
               a->sel.source == b->sel.source && a->sel.k == b->sel.k &&
               a->sel.dims == b->sel.dims && a->sel.act == b->sel.act &&
               dbl_same(a->sel.idx_scale, b->sel.idx_scale) && a->sel.Hi == b->sel.Hi &&
               a->sel.di == b->sel.di;
    for (int m = 0; same && m < NSX_MAX_ORDER; m++)
        same = dbl_same(a->k_bias[m], b->k_bias[m]) && dbl_same(a->v_bias[m], b->v_bias[m]) &&
               a->window[m] == b->window[m];
    return same;
}

static int str_same(const char *a, const char *b)
{
    return a == b || (a && b && strcmp(a, b) == 0);
}

int fz_info_same(const nsx_case_info *a, const nsx_case_info *b)
{
    if (!str_same(a->id, b->id) || !str_same(a->suite, b->suite) ||
        !str_same(a->description, b->description) || a->nflags != b->nflags ||
        a->npairs != b->npairs)
        return 0;
    if (a->generator && b->generator && strcmp(a->generator, b->generator))
        return 0;
    for (int k = 0; k < a->nflags; k++)
        if (!str_same(a->flags[k], b->flags[k]))
            return 0;
    for (int k = 0; k < a->npairs; k++) {
        const nsx_pair *x = &a->pairs[k], *y = &b->pairs[k];
        if (x->kind != y->kind || x->a != y->a || x->b != y->b || x->t != y->t ||
            x->future != y->future || x->i != y->i || x->dim != y->dim || x->j != y->j)
            return 0;
    }
    return 1;
}

/* Bit for bit, except that NaNs of one sign are equal: the format encoders
   keep a NaN's sign but not its payload (io/fpformat.h). */
static int dbls_same(const double *a, const double *b, size_t n)
{
    if (!a || !b)
        return a == b;
    for (size_t i = 0; i < n; i++)
        if (!dbl_same(a[i], b[i]) && !(isnan(a[i]) && isnan(b[i]) && !signbit(a[i]) == !signbit(b[i])))
            return 0;
    return 1;
}

static int ints_same(const int32_t *a, const int32_t *b, size_t n)
{
    if (!a || !b)
        return a == b;
    return memcmp(a, b, n * sizeof *a) == 0;
}

int fz_case_same(const nsx_case *a, const nsx_case *b)
{
    const nsx_problem *p = &a->p;
    size_t BL = (size_t)p->B * (size_t)p->L, Hi = (size_t)p->sel.Hi, di = (size_t)p->sel.di;
    int same = dbls_same(a->in.q, b->in.q, nsx_q_size(p)) &&
               ints_same(a->in.sel, b->in.sel, nsx_sel_size(p)) &&
               dbls_same(a->in.idx_q, b->in.idx_q, BL * Hi * di) &&
               dbls_same(a->in.idx_k, b->in.idx_k, BL * di) &&
               dbls_same(a->in.idx_w, b->in.idx_w, BL * Hi) &&
               dbls_same(a->in.idx_s, b->in.idx_s, BL * (size_t)p->L) &&
               dbls_same(a->expected.o, b->expected.o, nsx_o_size(p)) &&
               dbls_same(a->expected.lse, b->expected.lse, nsx_lse_size(p)) &&
               ints_same(a->expected.sel, b->expected.sel, nsx_sel_size(p)) &&
               dbls_same(a->expected.sel_scores, b->expected.sel_scores, BL * (size_t)p->L);
    for (int m = 0; same && m < NSX_MAX_ORDER; m++)
        same = dbls_same(a->in.k[m], b->in.k[m], nsx_k_size(p)) &&
               dbls_same(a->in.v[m], b->in.v[m], nsx_v_size(p));
    return same;
}
