/* Runs the nsimplex program for the tests (cli_run.h). */
#include <errno.h>
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/cli_run.h"
#include "tests/env.h"

extern char **environ;

/* A new empty temporary file, its name into name; -1 on failure. */
static int make_temp(char *name, size_t n)
{
    snprintf(name, n, "%s/cli_run.XXXXXX", test_tmpdir());
    return mkstemp(name);
}

/* The whole content of fd, from the start, NUL-terminated. */
static char *slurp(int fd)
{
    struct stat sb;
    if (fstat(fd, &sb) != 0 || lseek(fd, 0, SEEK_SET) != 0)
        return NULL;
    size_t n = (size_t)sb.st_size;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    size_t got = 0;
    while (got < n) {
        ssize_t k = read(fd, s + got, n - got);
        if (k <= 0)
            break;
        got += (size_t)k;
    }
    s[got] = '\0';
    return s;
}

int cli_run(cli_result *r, const char *const args[])
{
    *r = (cli_result){.status = -1};
    const char *bin = getenv("NSX_BIN");
    if (!bin || !*bin)
        return -1;
    size_t na = 0;
    while (args[na])
        na++;
    char **argv = calloc(na + 2, sizeof *argv);
    if (!argv)
        return -1;
    argv[0] = (char *)bin;
    for (size_t i = 0; i < na; i++)
        argv[i + 1] = (char *)args[i];

    char on[4096], en[4096];
    int ofd = make_temp(on, sizeof on), efd = make_temp(en, sizeof en);
    int rc = -1;
    posix_spawn_file_actions_t fa;
    if (ofd >= 0 && efd >= 0 && posix_spawn_file_actions_init(&fa) == 0) {
        posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
        posix_spawn_file_actions_adddup2(&fa, ofd, 1);
        posix_spawn_file_actions_adddup2(&fa, efd, 2);
        pid_t pid;
        if (posix_spawn(&pid, bin, &fa, NULL, argv, environ) == 0) {
            int st;
            pid_t w;
            while ((w = waitpid(pid, &st, 0)) < 0 && errno == EINTR)
                ;
            if (w == pid) {
                r->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                r->out = slurp(ofd);
                r->err = slurp(efd);
                rc = r->out && r->err ? 0 : -1;
            }
        }
        posix_spawn_file_actions_destroy(&fa);
    }
    if (ofd >= 0) {
        close(ofd);
        unlink(on);
    }
    if (efd >= 0) {
        close(efd);
        unlink(en);
    }
    free(argv);
    return rc;
}

void cli_result_free(cli_result *r)
{
    free(r->out);
    free(r->err);
    *r = (cli_result){.status = -1};
}

int cli_count_lines(const char *s)
{
    int n = 0;
    for (const char *p = s; *p; p++)
        if (*p == '\n' || p[1] == '\0')
            n++;
    return n;
}

int cli_same_file(const char *a, const char *b)
{
    int fa = open(a, O_RDONLY), fb = open(b, O_RDONLY);
    struct stat sa, sb;
    int same = fa >= 0 && fb >= 0 && fstat(fa, &sa) == 0 && fstat(fb, &sb) == 0 && sa.st_size > 0 &&
               sa.st_size == sb.st_size;
    char *x = same ? slurp(fa) : NULL, *y = same ? slurp(fb) : NULL;
    same = same && x && y && memcmp(x, y, (size_t)sa.st_size) == 0;
    free(x);
    free(y);
    if (fa >= 0)
        close(fa);
    if (fb >= 0)
        close(fb);
    return same;
}
