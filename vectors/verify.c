/*
 * verify: the manifest's checksums, and the expected values re-derived from
 * each file's inputs by the reference (vectors/gen.h).
 */
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/casefile.h"
#include "io/json.h"
#include "oracle/check.h"
#include "vectors/gen.h"

/* A sample of about one case in four, the same on every run. */
#define VERIFY_SAMPLE 4

int nsx_open_regular(const char *path, nsx_err *err)
{
    /* O_NONBLOCK: opening a FIFO with no writer must not hang */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    struct stat sb;
    if (fd < 0) {
        nsx_err_set(err, NSX_E_INPUT, "%s: cannot open: %s", path, strerror(errno));
        return -1;
    }
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        nsx_err_set(err, NSX_E_INPUT, "%s: not a regular file", path);
        return -1;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    return fd;
}

static char *read_text(const char *path, size_t *len, nsx_err *err)
{
    int fd = nsx_open_regular(path, err);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0) {
            close(fd);
            nsx_err_set(err, NSX_E_NOMEM, "%s: out of memory", path);
        }
        return NULL;
    }
    char *s = NULL;
    size_t cap = 0, n = 0, got;
    do {
        if (n + 65536 > cap) {
            char *t = realloc(s, cap = 2 * cap + 65536);
            if (!t) {
                free(s);
                fclose(f);
                nsx_err_set(err, NSX_E_NOMEM, "verify: out of memory");
                return NULL;
            }
            s = t;
        }
        n += got = fread(s + n, 1, cap - n, f);
    } while (got > 0 && n < (64u << 20));
    int bad = ferror(f) || n >= (64u << 20);
    fclose(f);
    if (bad) {
        free(s);
        nsx_err_set(err, NSX_E_INPUT, "%s: unreadable or over 64 MiB", path);
        return NULL;
    }
    *len = n;
    return s;
}

static int same(double a, double b)
{
    return memcmp(&a, &b, sizeof a) == 0;
}

/* Recomputes the gradients of a gradient case (expected dq present) and
   counts the differences, reporting the first few; < 0: -error kind. */
static long recompute_grads(const char *path, nsx_case *c, FILE *log, long diffs, const nsx_ref_opts *ref,
                            nsx_ref_stats *st, nsx_err *err)
{
    const nsx_problem *p = &c->p;
    nsx_outputs g = {0};
    int ok = (g.dq = calloc(nsx_q_size(p), sizeof *g.dq)) != NULL;
    for (int m = 0; m < p->n; m++) {
        ok &= (g.dk[m] = calloc(nsx_k_size(p), sizeof *g.dk[m])) != NULL;
        ok &= (g.dv[m] = calloc(nsx_v_size(p), sizeof *g.dv[m])) != NULL;
    }
    if (!ok) {
        diffs = -nsx_err_set(err, NSX_E_NOMEM, "verify: out of memory");
    } else if (nsx_ref_backward(p, &c->in, &g, ref, st, err)) {
        nsx_err_prefix(err, path);
        diffs = -err->kind;
    } else {
        /* dq, then dk_m and dv_m for each m */
        const double *got[1 + 2 * NSX_MAX_ORDER], *want[1 + 2 * NSX_MAX_ORDER];
        size_t count[1 + 2 * NSX_MAX_ORDER];
        char names[1 + 2 * NSX_MAX_ORDER][16];
        int t = 0;
        got[t] = g.dq, want[t] = c->expected.dq, count[t] = nsx_q_size(p);
        snprintf(names[t++], sizeof names[0], "dq");
        for (int m = 0; m < p->n; m++) {
            got[t] = g.dk[m], want[t] = c->expected.dk[m], count[t] = nsx_k_size(p);
            snprintf(names[t++], sizeof names[0], "dk%d", m + 1);
            got[t] = g.dv[m], want[t] = c->expected.dv[m], count[t] = nsx_v_size(p);
            snprintf(names[t++], sizeof names[0], "dv%d", m + 1);
        }
        for (int x = 0; x < t; x++) {
            if (!want[x]) {
                if (diffs++ < 5)
                    fprintf(log, "verify: %s: has dq but no %s\n", path, names[x]);
                continue;
            }
            for (size_t e = 0; e < count[x]; e++)
                if (!same(got[x][e], want[x][e]) && diffs++ < 5)
                    fprintf(log, "verify: %s: %s element %zu is %.17g, recomputed %.17g\n", path,
                            names[x], e, want[x][e], got[x][e]);
        }
    }
    free(g.dq);
    for (int m = 0; m < p->n; m++)
        free(g.dk[m]), free(g.dv[m]);
    return diffs;
}

/* Recomputes the expected values of c; returns the number of differences
   and reports the first few. */
static long recompute(const char *path, nsx_case *c, const nsx_ref_opts *ref, FILE *log,
                      nsx_ref_stats *total, nsx_err *err)
{
    if (nsx_pairs_consistent(&c->p, &c->info, &c->in, &c->expected, err)) {
        nsx_err_prefix(err, path);
        return -err->kind;
    }
    const nsx_problem *p = &c->p;
    nsx_outputs out = {0};
    long diffs = 0;
    out.o = calloc(nsx_o_size(p), sizeof *out.o);
    out.lse = calloc(nsx_lse_size(p), sizeof *out.lse);
    if (c->expected.sel)
        out.sel = calloc(nsx_sel_size(p), sizeof *out.sel);
    if (c->expected.sel_scores)
        out.sel_scores = calloc((size_t)p->B * p->L * p->L, sizeof *out.sel_scores);
    nsx_ref_opts opts = ref ? *ref : (nsx_ref_opts){.fast = 1};
    nsx_ref_stats st = {0};
    unsigned char *skip = malloc((size_t)p->B * p->L);
    if (skip)
        nsx_pairs_unjudged(p, c->info.pairs, c->info.npairs, skip);
    opts.skip = skip;
    if (!skip || !out.o || !out.lse || (c->expected.sel && !out.sel) || (c->expected.sel_scores && !out.sel_scores)) {
        diffs = -nsx_err_set(err, NSX_E_NOMEM, "verify: out of memory");
    } else if (!c->expected.o || !c->expected.lse) {
        diffs = -nsx_err_set(err, NSX_E_INPUT, "%s: no expected o and lse", path);
    } else if (nsx_ref_forward(p, &c->in, &out, &opts, &st, err)) {
        nsx_err_prefix(err, path);
        diffs = -err->kind;
    } else {
        for (int b = 0; b < p->B; b++)
            for (int i = 0; i < p->L; i++) {
                if (skip[(size_t)b * p->L + i])
                    continue;
                for (int h = 0; h < p->H; h++) {
                    size_t at = nsx_lse_at(p, b, h, i);
                    if (!same(out.lse[at], c->expected.lse[at]) && diffs++ < 5)
                        fprintf(log, "verify: %s: lse[%d,%d,%d] is %.17g, recomputed %.17g\n", path, b, h, i,
                                c->expected.lse[at], out.lse[at]);
                    for (int ch = 0; ch < p->dv; ch++) {
                        at = nsx_o_at(p, b, i, h, ch);
                        if (!same(out.o[at], c->expected.o[at]) && diffs++ < 5)
                            fprintf(log, "verify: %s: o[%d,%d,%d,%d] is %.17g, recomputed %.17g\n", path, b, i, h,
                                    ch, c->expected.o[at], out.o[at]);
                    }
                }
                for (int r = 0; out.sel && r < p->sel.k; r++) {
                    size_t at = nsx_sel_at(p, b, i, r);
                    if (out.sel[at] != c->expected.sel[at] && diffs++ < 5)
                        fprintf(log, "verify: %s: sel[%d,%d,%d] is %d, recomputed %d\n", path, b, i, r,
                                (int)c->expected.sel[at], (int)out.sel[at]);
                }
                for (int j = 0; out.sel_scores && j < p->L; j++) {
                    size_t at = ((size_t)b * p->L + i) * p->L + j;
                    if (!same(out.sel_scores[at], c->expected.sel_scores[at]) && diffs++ < 5)
                        fprintf(log, "verify: %s: sel_scores[%d,%d,%d] is %.17g, recomputed %.17g\n", path, b,
                                i, j, c->expected.sel_scores[at], out.sel_scores[at]);
                }
            }
    }
    if (diffs >= 0 && c->expected.dq) {
        /* the gradients: the same path (fast or MPFR), no skipped rows */
        nsx_ref_opts bopts = opts;
        nsx_ref_stats bst = {0};
        bopts.skip = NULL;
        diffs = recompute_grads(path, c, log, diffs, &bopts, &bst, err);
        nsx_ref_stats_add(&st, &bst);
    }
    free(out.o), free(out.lse), free(out.sel), free(out.sel_scores);
    free(skip);
    if (total)
        nsx_ref_stats_add(total, &st);
    return diffs;
}

int nsx_verify(const char *dir, int all, const nsx_ref_opts *ref, const nsx_budget_limits *lim, FILE *log,
               int *nfailed, nsx_ref_stats *total, nsx_err *err)
{
    char mpath[4096], path[4096], hex[65];
    nsx_json_error je;
    size_t len;
    snprintf(mpath, sizeof mpath, "%s/MANIFEST.json", dir);
    char *text = read_text(mpath, &len, err);
    if (!text)
        return err->kind;
    json_t *root = NULL;
    int rc = nsx_json_parse(text, len, NSX_JSON_DOC, &root, &je);
    free(text);
    if (rc)
        return nsx_err_set(err, rc == -2 ? NSX_E_NOMEM : NSX_E_INPUT, "%s: %s", mpath, je.why);
    const json_t *cases = json_object_get(root, "cases");
    if (!json_is_array(cases)) {
        json_decref(root);
        return nsx_err_set(err, NSX_E_INPUT, "%s: no \"cases\" array", mpath);
    }
    int files = 0, checked = 0, failed = 0, index = 0;
    size_t ei;
    const json_t *e;
    json_array_foreach(cases, ei, e) {
        const json_t *file = json_object_get(e, "file");
        const json_t *sum = json_object_get(e, "sha256");
        if (!json_is_string(file) || !json_is_string(sum) || strstr(json_string_value(file), "..") ||
            json_string_value(file)[0] == '/') {
            rc = nsx_err_set(err, NSX_E_INPUT, "%s: entry %d: needs a relative \"file\" and a \"sha256\"", mpath,
                             index);
            break;
        }
        snprintf(path, sizeof path, "%s/%s", dir, json_string_value(file));
        files++;
        /* the checksum of every file: regular files only (a FIFO or a
           device listed would hang or never end) */
        nsx_err why_not;
        int fd = nsx_open_regular(path, &why_not);
        if (fd >= 0)
            close(fd);
        if (fd < 0 || nsx_sha256_file(path, hex)) {
            fprintf(log, "verify: %s\n", fd < 0 ? why_not.msg : "missing or unreadable");
            failed++;
            index++;
            continue;
        }
        if (strcmp(hex, json_string_value(sum)) != 0) {
            fprintf(log, "verify: %s: sha256 %s, the manifest says %s\n", path, hex,
                    json_string_value(sum));
            failed++;
            index++;
            continue;
        }
        /* the expected values of a sample */
        if (all || index % VERIFY_SAMPLE == 0) {
            nsx_case c;
            if ((rc = nsx_case_read(path, &c, err)))
                break;
            nsx_budget_limits scaled = nsx_budget_scaled(lim, !ref || ref->fast ? NSX_BUDGET_FAST_SPEED : 1);
            if ((rc = nsx_budget_check(&c.p, &scaled, path, NULL, err))) {
                nsx_case_free(&c);
                break;
            }
            long diffs = recompute(path, &c, ref, log, total, err);
            nsx_case_free(&c);
            if (diffs < 0) {
                rc = (int)-diffs;
                break;
            }
            if (diffs) {
                fprintf(log, "verify: %s: %ld values differ from the reference\n", path, diffs);
                failed++;
            }
            checked++;
        }
        index++;
    }
    json_decref(root);
    if (rc)
        return rc;
    fprintf(log, "verify: %d files, %d with a bad checksum or values; expected values recomputed for %d (%s)\n",
            files, failed, checked, all ? "all" : "a sample of one in 4; --all for every file");
    *nfailed = failed;
    return 0;
}
