/* Option helpers shared by the subcommands (cli/args.h). */
#include <errno.h>
#include <math.h>
#include <omp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/exit.h"
#include "core/budget.h"
#include "io/json.h"
#include "nsimplex/error.h"
#include "nsimplex/ref.h"

int cli_fail(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "nsimplex %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    return NSX_EXIT_BAD;
}

int cli_fail_err(const char *cmd, const nsx_err *err)
{
    /* messages carry names from files and libraries: no control character
       reaches the terminal */
    char msg[2 * sizeof err->msg];
    nsx_printable(msg, sizeof msg, err->msg);
    fprintf(stderr, "nsimplex %s: %s\n", cmd, msg);
    return cli_exit_code(err->kind);
}

bool cli_opt(const char *cmd, int argc, char **argv, int *i, const char *name,
             const char **val, bool *bad)
{
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n) != 0 || (a[n] != '\0' && a[n] != '='))
        return false;
    if (!val) {
        if (a[n] == '=') {
            cli_fail(cmd, "%s takes no value", name);
            *bad = true;
        }
        return true;
    }
    if (a[n] == '=') {
        *val = a + n + 1;
    } else if (*i + 1 < argc) {
        *val = argv[++*i];
    } else {
        cli_fail(cmd, "%s needs a value", name);
        *bad = true;
    }
    return true;
}

bool cli_int(const char *cmd, const char *opt, const char *s, long lo, long hi, long *out)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end != '\0') {
        cli_fail(cmd, "%s: '%s' is not an integer", opt, s);
        return false;
    }
    if (v < lo || v > hi) {
        cli_fail(cmd, "%s: %ld is outside %ld..%ld", opt, v, lo, hi);
        return false;
    }
    *out = v;
    return true;
}

bool cli_double(const char *cmd, const char *opt, const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end != '\0' || !isfinite(v)) {
        cli_fail(cmd, "%s: '%s' is not a finite number", opt, s);
        return false;
    }
    *out = v;
    return true;
}

bool cli_budget_opt(const char *cmd, int argc, char **argv, int *i, nsx_budget_limits *lim, bool *bad)
{
    const char *val;
    long v;
    if (cli_opt(cmd, argc, argv, i, "--max-tuples", &val, bad)) {
        if (!*bad && !cli_int(cmd, "--max-tuples", val, 1, 0x7fffffffffffffffL, &v))
            *bad = true;
        else if (!*bad)
            lim->max_tuples = (uint64_t)v;
        return true;
    }
    if (cli_opt(cmd, argc, argv, i, "--max-memory", &val, bad)) {
        if (!*bad && !cli_int(cmd, "--max-memory", val, 1, 1L << 40, &v))
            *bad = true;
        else if (!*bad)
            lim->max_bytes = (uint64_t)v << 20;
        return true;
    }
    return false;
}

static int stdout_errno;

int cli_flush_stdout(void)
{
    errno = 0;
    int r = fflush(stdout);
    if (r && !stdout_errno)
        stdout_errno = errno;
    return r;
}

int cli_stdout_errno(void)
{
    return stdout_errno;
}

bool cli_is_help(const char *a)
{
    return strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0;
}

void cli_ref_stats(const char *cmd, const nsx_ref_stats *st, double seconds)
{
    printf("%s: ref: %llu allowed tuples in %.3f s: %.0f tuples/s; %llu values: %llu decided by the "
           "fast path, %llu by MPFR (%llu of %llu rows); %llu proven exact, %llu Ziv retries, "
           "largest working precision %ld bits\n",
           cmd, (unsigned long long)st->tuples, seconds, seconds > 0 ? (double)st->tuples / seconds : 0.0,
           (unsigned long long)st->values, (unsigned long long)st->fast_values,
           (unsigned long long)st->mpfr_values, (unsigned long long)st->mpfr_rows,
           (unsigned long long)(st->mpfr_rows + st->fast_rows), (unsigned long long)st->exact,
           (unsigned long long)st->retries, st->max_prec);
}

/* The probe's threads wait until all have started, as a team would. */
typedef struct probe {
    pthread_mutex_t mu;
    pthread_cond_t go;
    int open;
} probe;

static void *probe_thread(void *arg)
{
    probe *pr = arg;
    pthread_mutex_lock(&pr->mu);
    while (!pr->open)
        pthread_cond_wait(&pr->go, &pr->mu);
    pthread_mutex_unlock(&pr->mu);
    return NULL;
}

int cli_threads_probe(const char *cmd, int threads)
{
    int want = threads > 0 ? threads : omp_get_max_threads();
    if (want > omp_get_thread_limit()) /* OMP_THREAD_LIMIT caps every team */
        want = omp_get_thread_limit();
    if (want <= 1)
        return 0;
    pthread_t *t = malloc((size_t)(want - 1) * sizeof *t);
    if (!t) {
        fprintf(stderr, "nsimplex %s: out of memory for %d threads\n", cmd, want);
        return NSX_EXIT_INTERNAL;
    }
    probe pr = {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0};
    int started = 0, e = 0;
    /* the team's other members: the calling thread is the first */
    while (started < want - 1 && !(e = pthread_create(&t[started], NULL, probe_thread, &pr)))
        started++;
    pthread_mutex_lock(&pr.mu);
    pr.open = 1;
    pthread_cond_broadcast(&pr.go);
    pthread_mutex_unlock(&pr.mu);
    for (int x = 0; x < started; x++)
        pthread_join(t[x], NULL);
    free(t);
    if (!e)
        return 0;
    fprintf(stderr, "nsimplex %s: cannot start %d threads (only %d): %s (see --threads, OMP_NUM_THREADS, "
                    "ulimit -u and -v)\n", cmd, want, started + 1, strerror(e));
    return NSX_EXIT_INTERNAL;
}
