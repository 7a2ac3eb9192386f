/* Writing golden vectors and their manifest (vectors/gen.h). */
#include <errno.h>
#include <nettle/sha2.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "io/atomic.h"
#include "io/casefile.h"
#include "io/json.h"
#include "vectors/build.h"
#include "vectors/gen.h"

int nsx_sha256_file(const char *path, char hex[65])
{
    unsigned char buf[65536], digest[SHA256_DIGEST_SIZE];
    struct sha256_ctx s;
    size_t got;
    /* a regular file only, opened without blocking (a FIFO would hang) */
    int fd = nsx_open_regular(path, NULL);
    FILE *f = fd >= 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    sha256_init(&s);
    while ((got = fread(buf, 1, sizeof buf, f)) > 0)
        sha256_update(&s, got, buf);
    int bad = ferror(f);
    fclose(f);
    if (bad)
        return -1;
    sha256_digest(&s, sizeof digest, digest);
    for (int t = 0; t < SHA256_DIGEST_SIZE; t++)
        snprintf(hex + 2 * t, 3, "%02x", digest[t]);
    return 0;
}

/* A case's seed: its suite and name, so renaming a case changes its data
   and nothing else does. */
static uint64_t case_seed(const nsx_suite *s, const nsx_suite_case *c)
{
    char key[256];
    snprintf(key, sizeof key, "%s/%s", s->name, c->name);
    return nsx_seed_of(key);
}

int nsx_gen_case(const nsx_suite *s, const nsx_suite_case *c, const char *path,
                 const nsx_budget_limits *lim, nsx_ref_stats *stats, nsx_err *err)
{
    return nsx_gen_case_ref(s, c, path, NULL, lim, stats, err);
}

int nsx_gen_case_ref(const nsx_suite *s, const nsx_suite_case *c, const char *path,
                     const nsx_ref_opts *ref, const nsx_budget_limits *lim, nsx_ref_stats *stats,
                     nsx_err *err)
{
    nsx_ref_opts dflt = {.fast = 1};
    nsx_recipe r;
    nsx_instance b;
    int rc;
    if ((rc = nsx_recipe_parse(c->recipe, &r, err))) {
        nsx_err_prefix(err, c->name);
        return rc;
    }
    if ((rc = nsx_build(&r, case_seed(s, c), &b, err))) {
        nsx_err_prefix(err, c->name);
        return rc;
    }
    nsx_budget_limits scaled = nsx_budget_scaled(lim, (ref ? ref : &dflt)->fast ? NSX_BUDGET_FAST_SPEED : 1);
    if ((rc = nsx_budget_check(&b.p, &scaled, c->name, NULL, err))) {
        nsx_instance_free(&b);
        return rc;
    }
    if (!(rc = nsx_build_expect(&b, &r, ref ? ref : &dflt, stats, err))) {
        nsx_case_info info = nsx_build_info(&b, c->name, s->name, c->description);
        rc = nsx_case_write(path, &b.p, &info, &b.in, &b.out, err);
    } else {
        nsx_err_prefix(err, c->name);
    }
    nsx_instance_free(&b);
    return rc;
}

int nsx_gen_recipe(const char *recipe, const char *name, const char *path, nsx_ref_stats *stats,
                   nsx_err *err)
{
    return nsx_gen_recipe_ref(recipe, name, path, NULL, NULL, stats, err);
}

int nsx_gen_recipe_ref(const char *recipe, const char *name, const char *path, const nsx_ref_opts *ref,
                       const nsx_budget_limits *lim, nsx_ref_stats *stats, nsx_err *err)
{
    const nsx_suite_case c = {name, recipe, "from a recipe (nsimplex gen --recipe)"};
    const nsx_suite s = {"custom", &c, 1};
    return nsx_gen_case_ref(&s, &c, path, ref, lim, stats, err);
}

/*
 * The generation record of a case file, DIR/SUITE/CASE.gen.json, beside it:
 * when it was written, how long it took, and how many values the fast path
 * and MPFR decided.  Kept out of the .safetensors bytes on purpose: the
 * time differs on every run and the split may differ between machines
 * (ISA, threads), while the file itself must be the same bytes everywhere
 * (its sha256 is in the manifest and make check regenerates it).  The
 * record names the sha256 of the file it describes, so a stale record
 * (the file regenerated or edited since) shows.
 */
static int write_record(const char *path, const char *file, double seconds, const nsx_ref_opts *o,
                        const nsx_ref_stats *st, nsx_err *err)
{
    char hex[65], rpath[4096], when[32];
    if (nsx_sha256_file(path, hex))
        return nsx_err_set(err, NSX_E_IO, "%s: cannot read back: %s", path, strerror(errno));
    time_t now = time(NULL);
    struct tm tm;
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", gmtime_r(&now, &tm));
    nsx_buf m = {0};
    nsx_buf_puts(&m, "{\"file\": ");
    nsx_buf_json_string(&m, file);
    nsx_buf_printf(&m, ", \"sha256\": \"%s\", \"generator\": \"nsimplex %s\", \"generated\": \"%s\", "
                       "\"seconds\": %.3f, \"path\": \"%s\", \"threads\": %d, \"tuples\": %llu, "
                       "\"values\": %llu, \"fast_values\": %llu, \"mpfr_values\": %llu, \"fast_rows\": %llu, "
                       "\"mpfr_rows\": %llu, \"exact\": %llu}\n",
                   hex, NSX_VERSION, when, seconds, o->fast ? "fast" : "exact-only", o->threads,
                   (unsigned long long)st->tuples, (unsigned long long)st->values,
                   (unsigned long long)st->fast_values, (unsigned long long)st->mpfr_values,
                   (unsigned long long)st->fast_rows, (unsigned long long)st->mpfr_rows,
                   (unsigned long long)st->exact);
    int rc = m.oom ? nsx_err_set(err, NSX_E_NOMEM, "gen: out of memory") : 0;
    size_t len = strlen(path);
    snprintf(rpath, sizeof rpath, "%.*s.gen.json", (int)(len - strlen(".safetensors")), path);
    nsx_atomic a;
    if (!rc && !(rc = nsx_atomic_open(&a, rpath, err)) && !(rc = nsx_atomic_write(&a, m.s, m.len, err)))
        rc = nsx_atomic_commit(&a, err);
    nsx_buf_free(&m);
    return rc;
}

/* mkdir -p for DIR and DIR/SUITE. */
static int make_dir(const char *path, nsx_err *err)
{
    if (mkdir(path, 0777) == 0 || errno == EEXIST)
        return 0;
    return nsx_err_set(err, NSX_E_INPUT, "%s: cannot create the directory: %s", path, strerror(errno));
}

int nsx_gen_suite(const nsx_suite *s, const char *dir, int shard, int nshards, const nsx_ref_opts *ref,
                  const nsx_budget_limits *lim, FILE *log, nsx_ref_stats *total, nsx_err *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, s->name);
    if (make_dir(dir, err) || make_dir(path, err))
        return err->kind;
    for (size_t c = 0; c < s->count; c++) {
        if ((int)(c % (size_t)nshards) != shard - 1)
            continue;
        nsx_ref_stats st = {0};
        struct timespec t0, t1;
        snprintf(path, sizeof path, "%s/%s/%s.safetensors", dir, s->name, s->cases[c].name);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        nsx_ref_opts o = ref ? *ref : (nsx_ref_opts){.fast = 1};
        o.progress_arg = (void *)s->cases[c].name; /* for o.progress */
        int rc = nsx_gen_case_ref(s, &s->cases[c], path, &o, lim, &st, err);
        if (rc)
            return rc;
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double seconds = (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        char rel[1024];
        snprintf(rel, sizeof rel, "%s/%s.safetensors", s->name, s->cases[c].name);
        if ((rc = write_record(path, rel, seconds, &o, &st, err)))
            return rc;
        if (log)
            fprintf(log, "gen: %-28s %9llu tuples %6.2f s  %s\n", s->cases[c].name,
                    (unsigned long long)st.tuples, seconds, path);
        if (total)
            nsx_ref_stats_add(total, &st);
    }
    return 0;
}

/* One manifest entry from the file's own metadata. */
static int manifest_entry(nsx_buf *m, const char *dir, const nsx_suite *s, const nsx_suite_case *c,
                          int *count, nsx_err *err)
{
    char rel[1024], path[4096], hex[65];
    nsx_st st;
    nsx_problem p;
    nsx_case_info info;
    snprintf(rel, sizeof rel, "%s/%s.safetensors", s->name, c->name);
    snprintf(path, sizeof path, "%s/%s", dir, rel);
    struct stat sb;
    if (stat(path, &sb) != 0 && errno == ENOENT)
        return 0; /* not generated here: not listed */
    /* a FIFO or a device in its place would hang or never end */
    int fd = nsx_open_regular(path, err);
    if (fd < 0)
        return err->kind;
    close(fd);
    if (nsx_sha256_file(path, hex))
        return nsx_err_set(err, NSX_E_INPUT, "%s: cannot read: %s", path, strerror(errno));
    if (nsx_st_read(path, &st, err))
        return err->kind;
    const char *meta = nsx_st_meta(&st, NSX_META_KEY);
    int rc = meta ? nsx_meta_parse(meta, &p, &info, err)
                  : nsx_err_set(err, NSX_E_INPUT, "no \"%s\" metadata", NSX_META_KEY);
    nsx_st_free(&st);
    if (rc) {
        nsx_err_prefix(err, path);
        return rc;
    }
    nsx_buf_puts(m, *count ? ",\n    {" : "\n    {");
    nsx_buf_puts(m, "\"file\": ");
    nsx_buf_json_string(m, rel);
    nsx_buf_printf(m, ", \"sha256\": \"%s\", \"case\": ", hex);
    nsx_buf_json_string(m, info.id);
    nsx_buf_puts(m, ", \"suite\": ");
    nsx_buf_json_string(m, s->name);
    nsx_buf_puts(m, ", \"flags\": [");
    for (int f = 0; f < info.nflags; f++) {
        nsx_buf_puts(m, f ? ", " : "");
        nsx_buf_json_string(m, info.flags[f]);
    }
    nsx_buf_puts(m, "], \"description\": ");
    nsx_buf_json_string(m, info.description);
    nsx_buf_puts(m, ", \"recipe\": ");
    nsx_buf_json_string(m, c->recipe);
    nsx_buf_puts(m, ", \"spec\": ");
    nsx_buf_json_string(m, info.spec);
    nsx_buf_puts(m, ", \"generator\": ");
    nsx_buf_json_string(m, info.generator ? info.generator : "");
    nsx_buf_puts(m, "}");
    nsx_case_info_free(&info);
    (*count)++;
    return 0;
}

int nsx_manifest_write(const char *dir, int *count, nsx_err *err)
{
    nsx_buf m = {0};
    char path[4096];
    int rc = 0;
    *count = 0;
    nsx_buf_printf(&m, "{\n  \"spec\": \"%s\",\n  \"generator\": \"nsimplex %s\",\n  \"cases\": [",
                   NSX_SPEC_VERSION, NSX_VERSION);
    for (int si = 0; nsx_suite_at(si) && !rc; si++) {
        const nsx_suite *s = nsx_suite_at(si);
        for (size_t c = 0; c < s->count && !rc; c++)
            rc = manifest_entry(&m, dir, s, &s->cases[c], count, err);
    }
    nsx_buf_puts(&m, "\n  ]\n}\n");
    if (!rc && m.oom)
        rc = nsx_err_set(err, NSX_E_NOMEM, "gen: out of memory");
    if (!rc) {
        nsx_atomic a;
        snprintf(path, sizeof path, "%s/MANIFEST.json", dir);
        if (!(rc = nsx_atomic_open(&a, path, err)) && !(rc = nsx_atomic_write(&a, m.s, m.len, err)))
            rc = nsx_atomic_commit(&a, err);
    }
    nsx_buf_free(&m);
    return rc;
}
