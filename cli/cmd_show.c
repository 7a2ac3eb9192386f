/*
 * nsimplex show FILE: the metadata and a summary of every tensor of a
 * safetensors file, for people.
 *
 * A file with nsimplex metadata is read as a case (io/casefile.h): the same
 * strict reader `eval` and `check` use, so `show` also answers "is this a
 * valid vector?".  --raw shows any readable safetensors file as it is.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "cli/args.h"
#include "cli/commands.h"
#include "cli/exit.h"
#include "io/casefile.h"
#include "io/json.h"
#include "io/meta.h"
#include "io/safetensors.h"

#define DEFAULT_VALUES 8

static void show_usage(FILE *f)
{
    fprintf(f,
            "usage: nsimplex show FILE [--values N] [--raw]\n\n"
            "Prints a safetensors file readably: its nsimplex metadata (pretty JSON),\n"
            "other __metadata__ keys, and per tensor its name, dtype, shape, the count\n"
            "of NaN and infinite values, the minimum and maximum (NaN left out) and\n"
            "the first values, each printed exactly (shortest round-trip decimal).\n\n"
            "A file with nsimplex metadata must be a valid case file (exit 2 with one\n"
            "line on stderr otherwise), as for eval and check.\n\n"
            "  --values N   values printed per tensor (default %d; 0: none)\n"
            "  --raw        do not read the metadata as a case: show any safetensors file\n\n"
            "exit codes: 0 shown, 2 unreadable or invalid file, or bad arguments\n",
            DEFAULT_VALUES);
}

/* s on stdout with every control character but newline and tab (C0, DEL,
   and C1 as UTF-8 C2 80..9F) shown as '?': metadata is the file's text, and
   must not drive the terminal. */
static void print_safe(const char *s)
{
    for (const unsigned char *u = (const unsigned char *)s; *u; u++) {
        if (u[0] == 0xC2 && u[1] >= 0x80 && u[1] <= 0x9F) {
            putchar('?');
            u++;
        } else if ((u[0] < 0x20 && u[0] != '\n' && u[0] != '\t') || u[0] == 0x7F) {
            putchar('?');
        } else {
            putchar(u[0]);
        }
    }
}

/* The nsimplex object as the file has it, token for token (numbers are
   not re-formatted), one key per line, arrays kept on one line.  Text that
   is not a strict JSON object is shown as it is. */
static void print_meta_json(const char *json)
{
    json_t *root;
    nsx_json_error je;
    size_t n = strlen(json);
    if (nsx_json_parse(json, n, NSX_JSON_DOC, &root, &je) != 0) {
        print_safe(json);
        putchar('\n');
        return;
    }
    json_decref(root);
    /* in_obj[depth]: whether the container at that depth is an object; the
       depth is bounded by the parser's limit, which the text passed */
    static char in_obj[NSX_JSON_MAX_DEPTH + 2];
    int depth = 0, in_str = 0, opened = 0; /* opened: a '{' waits for its
                                              first key, or for '}' */
    nsx_buf out = {0};
    for (size_t i = 0; i < n; i++) {
        char c = json[i];
        if (in_str) {
            nsx_buf_add(&out, &c, 1);
            if (c == '\\' && i + 1 < n)
                nsx_buf_add(&out, &json[++i], 1);
            else if (c == '"')
                in_str = 0;
            continue;
        }
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r')
            continue;
        if (opened && c != '}')
            nsx_buf_printf(&out, "\n%*s", 2 * depth, "");
        int was_opened = opened;
        opened = 0;
        if (c == '"') {
            in_str = 1;
            nsx_buf_add(&out, &c, 1);
        } else if (c == '{' || c == '[') {
            in_obj[++depth] = c == '{';
            opened = c == '{';
            nsx_buf_add(&out, &c, 1);
        } else if (c == '}' || c == ']') {
            if (c == '}' && !was_opened)
                nsx_buf_printf(&out, "\n%*s", 2 * (depth - 1), "");
            depth--;
            nsx_buf_add(&out, &c, 1);
        } else if (c == ',') {
            if (in_obj[depth])
                nsx_buf_printf(&out, ",\n%*s", 2 * depth, "");
            else
                nsx_buf_puts(&out, ", ");
        } else if (c == ':') {
            nsx_buf_puts(&out, ": ");
        } else {
            nsx_buf_add(&out, &c, 1);
        }
    }
    print_safe(out.oom ? json : out.s);
    putchar('\n');
    nsx_buf_free(&out);
}

static void print_value(const nsx_tensor *t, size_t i)
{
    if (t->dtype == NSX_DTYPE_I32) {
        printf(" %d", (int)nsx_tensor_i32_at(t, i));
        return;
    }
    char v[32];
    nsx_fmt_double(v, sizeof v, nsx_tensor_f64_at(t, i));
    printf(" %s", v);
}

static void print_tensor(const nsx_tensor *t, int width, long nvalues)
{
    char nm[80], shape[160];
    nsx_printable(nm, sizeof nm, t->name);
    nsx_shape_str(shape, sizeof shape, t->rank, t->shape);
    printf("  %-*s %-4s %-16s", width, nm, nsx_dtype_name(t->dtype), shape);
    size_t nan = 0, inf = 0, seen = 0;
    double lo = 0, hi = 0;
    for (size_t i = 0; i < t->count; i++) {
        double x = t->dtype == NSX_DTYPE_I32 ? nsx_tensor_i32_at(t, i) : nsx_tensor_f64_at(t, i);
        if (isnan(x)) {
            nan++;
            continue;
        }
        inf += isinf(x) != 0;
        lo = seen && lo <= x ? lo : x;
        hi = seen && hi >= x ? hi : x;
        seen++;
    }
    char a[32] = "-", b[32] = "-";
    if (seen) {
        nsx_fmt_double(a, sizeof a, lo);
        nsx_fmt_double(b, sizeof b, hi);
    }
    printf(" nan %zu  inf %zu  min %s  max %s\n", nan, inf, a, b);
    if (nvalues <= 0 || t->count == 0)
        return;
    printf("  %*s  ", width, "");
    for (size_t i = 0; i < t->count && i < (size_t)nvalues; i++)
        print_value(t, i);
    if (t->count > (size_t)nvalues)
        printf(" ... (%zu values)\n", t->count);
    else
        printf("\n");
}

static void print_file(const char *path, const nsx_st *st, int is_case, long nvalues)
{
    uint64_t bytes = 0;
    int width = 4;
    for (size_t i = 0; i < st->nt; i++) {
        bytes += st->t[i].nbytes;
        int w = (int)strlen(st->t[i].name);
        width = w > width ? (w < 24 ? w : 24) : width;
    }
    char lab[256];
    nsx_printable(lab, sizeof lab, path);
    printf("%s: %zu tensors, %llu bytes of data%s\n", lab, st->nt, (unsigned long long)bytes,
           is_case ? ", a valid nsimplex case" : "");
    const char *json = nsx_st_meta(st, NSX_META_KEY);
    if (json) {
        printf("metadata \"%s\":\n", NSX_META_KEY);
        print_meta_json(json);
    }
    for (size_t i = 0; i < st->nmeta; i++) {
        if (strcmp(st->meta[i].key, NSX_META_KEY) == 0)
            continue;
        char k[80], v[400];
        nsx_printable(k, sizeof k, st->meta[i].key);
        nsx_printable(v, sizeof v, st->meta[i].value);
        printf("metadata \"%s\": %s\n", k, v);
    }
    printf("tensors (in file order):\n");
    for (size_t i = 0; i < st->nt; i++)
        print_tensor(&st->t[i], width, nvalues);
}

int cmd_show(int argc, char **argv)
{
    const char *file = NULL, *val = NULL;
    long nvalues = DEFAULT_VALUES;
    int raw = 0;
    bool bad = false;
    for (int i = 1; i < argc; i++) {
        if (cli_is_help(argv[i])) {
            show_usage(stdout);
            return NSX_EXIT_OK;
        }
        if (cli_opt("show", argc, argv, &i, "--values", &val, &bad)) {
            if (bad || !cli_int("show", "--values", val, 0, 1L << 30, &nvalues))
                return NSX_EXIT_BAD;
        } else if (cli_opt("show", argc, argv, &i, "--raw", NULL, &bad)) {
            if (bad)
                return NSX_EXIT_BAD;
            raw = 1;
        } else if (argv[i][0] == '-' && argv[i][1] != '\0') {
            return cli_fail("show", "unknown option '%s' (nsimplex show --help)", argv[i]);
        } else if (file) {
            return cli_fail("show", "one FILE only ('%s' and '%s')", file, argv[i]);
        } else {
            file = argv[i];
        }
    }
    if (!file)
        return cli_fail("show", "no FILE given (nsimplex show --help)");

    nsx_err err = {0};
    nsx_st st;
    int r = nsx_st_read(file, &st, &err);
    if (r)
        return cli_fail_err("show", &err);
    if (raw || !nsx_st_meta(&st, NSX_META_KEY)) {
        print_file(file, &st, 0, nvalues);
        nsx_st_free(&st);
        return NSX_EXIT_OK;
    }
    nsx_case c;
    r = nsx_case_from_st(&st, file, &c, &err); /* takes st */
    if (r)
        return cli_fail_err("show", &err);
    print_file(file, &c.st, 1, nvalues);
    nsx_case_free(&c);
    return NSX_EXIT_OK;
}
