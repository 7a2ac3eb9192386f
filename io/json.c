/* Strict JSON front end over cJSON, and a small JSON writer (json.h). */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"

#define WHY(...) (snprintf(why, whylen, __VA_ARGS__), -1)

/* ---- lexical check: what cJSON lets through ---- */

/* Length of the valid UTF-8 sequence at s[0..n), or 0: no overlong forms,
   no surrogates, nothing above U+10FFFF (RFC 3629). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    unsigned c = s[0];
    size_t len;
    uint32_t cp;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        len = 2, cp = c & 0x1F;
    else if (c >= 0xE0 && c <= 0xEF)
        len = 3, cp = c & 0x0F;
    else if (c >= 0xF0 && c <= 0xF4)
        len = 4, cp = c & 0x07;
    else
        return 0;
    if (len > n)
        return 0;
    for (size_t k = 1; k < len; k++) {
        if ((s[k] & 0xC0) != 0x80)
            return 0;
        cp = cp << 6 | (s[k] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
        (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

static int hexval(unsigned c)
{
    if (c >= '0' && c <= '9')
        return (int)(c - '0');
    if (c >= 'a' && c <= 'f')
        return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F')
        return (int)(c - 'A' + 10);
    return -1;
}

/* The string literal starting at s[*pi] == '"'; advances *pi past it.
   Surrogate pairs in \u escapes are left to cJSON, which checks them. */
static int lex_string(const unsigned char *s, size_t n, size_t *pi, char *why, size_t whylen)
{
    size_t i = *pi + 1;
    while (i < n) {
        unsigned c = s[i];
        if (c == '"') {
            *pi = i + 1;
            return 0;
        }
        if (c < 0x20)
            return WHY("control character 0x%02x in a string at byte %zu", c, i);
        if (c >= 0x80) {
            size_t k = utf8_len(s + i, n - i);
            if (k == 0)
                return WHY("invalid UTF-8 at byte %zu", i);
            i += k;
            continue;
        }
        if (c != '\\') {
            i++;
            continue;
        }
        if (i + 1 >= n)
            break;
        unsigned e = s[i + 1];
        if (e == 'u') {
            unsigned v = 0;
            for (size_t k = 2; k < 6; k++) {
                int h = i + k < n ? hexval(s[i + k]) : -1;
                if (h < 0)
                    return WHY("invalid \\u escape at byte %zu", i);
                v = v << 4 | (unsigned)h;
            }
            if (v == 0) /* cJSON would end the C string there */
                return WHY("escaped NUL (\\u0000) in a string at byte %zu", i);
            i += 6;
        } else if (e != '\0' && strchr("\"\\/bfnrt", (int)e)) {
            i += 2;
        } else {
            return WHY("invalid escape at byte %zu", i);
        }
    }
    return WHY("unterminated string at byte %zu", *pi);
}

static int is_digit(unsigned c) { return c >= '0' && c <= '9'; }

/* The number starting at s[*pi] ('-' or a digit), in RFC 8259's grammar
   -?(0|[1-9][0-9]*)(.[0-9]+)?([eE][+-]?[0-9]+)? and finite as a binary64;
   *is_int says whether it has neither fraction nor exponent. */
static int lex_number(const unsigned char *s, size_t n, size_t *pi, int *is_int, char *why,
                      size_t whylen)
{
    size_t i = *pi, start = *pi;
    *is_int = 1;
    if (s[i] == '-')
        i++;
    if (i < n && s[i] == '0')
        i++;
    else if (i < n && is_digit(s[i]))
        while (i < n && is_digit(s[i]))
            i++;
    else
        return WHY("invalid number at byte %zu", start);
    if (i < n && s[i] == '.') {
        *is_int = 0;
        if (++i >= n || !is_digit(s[i]))
            return WHY("invalid number at byte %zu", start);
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        *is_int = 0;
        if (++i < n && (s[i] == '+' || s[i] == '-'))
            i++;
        if (i >= n || !is_digit(s[i]))
            return WHY("invalid number at byte %zu", start);
        while (i < n && is_digit(s[i]))
            i++;
    }
    if (i < n && s[i] != '\0' && strchr("0123456789.eE+-", s[i]))
        return WHY("invalid number at byte %zu", start); /* "01", "1.2.3" */
    /* cJSON reads at most 63 characters of a number and would then fail
       with a vaguer message. */
    char tmp[64];
    if (i - start >= sizeof tmp)
        return WHY("number longer than %zu characters at byte %zu", sizeof tmp - 1, start);
    memcpy(tmp, s + start, i - start);
    tmp[i - start] = '\0';
    if (!isfinite(strtod(tmp, NULL)))
        return WHY("number out of binary64 range at byte %zu", start);
    *pi = i;
    return 0;
}

/* Whether each number of the text, in document order, is written as an
   integer: one byte per number. */
typedef struct numtext {
    unsigned char *is_int;
    size_t n, cap;
} numtext;

/* Checks the text token by token; fills nt.  -1 (why set) or -2 (out of
   memory). */
static int lex_check(const unsigned char *s, size_t n, numtext *nt, char *why, size_t whylen)
{
    size_t values = 0;
    for (size_t i = 0; i < n;) {
        unsigned c = s[i];
        int r = 0;
        if (c == '"') {
            values++;
            r = lex_string(s, n, &i, why, whylen);
        } else if (c == '-' || is_digit(c)) {
            int is_int;
            values++;
            r = lex_number(s, n, &i, &is_int, why, whylen);
            if (!r && nt->n == nt->cap) {
                size_t cap = nt->cap ? 2 * nt->cap : 64;
                unsigned char *t = realloc(nt->is_int, cap);
                if (!t)
                    return -2;
                nt->is_int = t;
                nt->cap = cap;
            }
            if (!r)
                nt->is_int[nt->n++] = (unsigned char)is_int;
        } else if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            i++;
        } else if (c < 0x20 || c >= 0x7F) {
            return WHY("unexpected byte 0x%02x at byte %zu", c, i);
        } else {
            /* starts of objects, arrays and the literals true, false, null */
            if (strchr("{[tfn", (int)c))
                values++;
            i++;
        }
        if (r)
            return r;
        if (values > NSX_JSON_MAX_VALUES)
            return WHY("more than %u JSON values", NSX_JSON_MAX_VALUES);
    }
    return 0;
}

/* Marks the numbers under item (document order, as the lexer met them)
   that were written as integers; *k counts them.  The depth is bounded by
   cJSON's nesting limit. */
static void mark_ints(cJSON *item, const numtext *nt, size_t *k)
{
    for (; item; item = item->next) {
        if (cJSON_IsNumber(item)) {
            if (*k < nt->n && nt->is_int[*k])
                item->type |= NSX_JSON_INT_TEXT;
            ++*k;
        }
        mark_ints(item->child, nt, k);
    }
}

int nsx_json_parse(const char *text, size_t len, int mode, cJSON **out, char *why, size_t whylen)
{
    const unsigned char *s = (const unsigned char *)text;
    *out = NULL;
    if (mode == NSX_JSON_HEADER && (len == 0 || s[0] != '{'))
        return WHY("does not start with '{'");
    numtext nt = {0};
    int r = lex_check(s, len, &nt, why, whylen);
    if (r) {
        free(nt.is_int);
        return r;
    }
    const char *end = NULL;
#if CJSON_VERSION_MAJOR == 1 && (CJSON_VERSION_MINOR < 7 || (CJSON_VERSION_MINOR == 7 && CJSON_VERSION_PATCH < 13))
    /* cJSON before 1.7.13 (e.g. Ubuntu 20.04's, OSS-Fuzz's base image) has
       no length-bounded parse: parse a terminated copy (the lexer refused
       NUL bytes, so the copy parses as the text) and map end back. */
    char *copy = malloc(len + 1);
    if (!copy) {
        free(nt.is_int);
        return WHY("out of memory");
    }
    memcpy(copy, text, len);
    copy[len] = 0;
    cJSON *root = cJSON_ParseWithOpts(copy, &end, 0);
    end = end ? text + (end - copy) : NULL;
    free(copy);
#else
    cJSON *root = cJSON_ParseWithLengthOpts(text, len, &end, 0);
#endif
    if (!root) {
        free(nt.is_int);
        size_t at = end ? (size_t)(end - text) : 0;
        return WHY("not valid JSON (at byte %zu)", at);
    }
    for (size_t i = (size_t)(end - text); i < len; i++) {
        int space = s[i] == ' ' ||
                    (mode == NSX_JSON_DOC && (s[i] == '\t' || s[i] == '\n' || s[i] == '\r'));
        if (!space) {
            free(nt.is_int);
            cJSON_Delete(root);
            return WHY(mode == NSX_JSON_HEADER
                           ? "unexpected byte 0x%02x at byte %zu after the JSON object (only spaces may pad it)"
                           : "unexpected byte 0x%02x at byte %zu after the JSON value",
                       s[i], i);
        }
    }
    /* The whole text is now one value, whose numbers the lexer met in the
       order of a depth-first walk of the tree. */
    size_t k = 0;
    mark_ints(root, &nt, &k);
    free(nt.is_int);
    if (k != nt.n) { /* cannot happen: the lexer and cJSON read numbers alike */
        cJSON_Delete(root);
        return WHY("not valid JSON (%zu numbers, but %zu parsed)", nt.n, k);
    }
    if (!cJSON_IsObject(root)) {
        cJSON_Delete(root);
        return WHY("not a JSON object");
    }
    *out = root;
    return 0;
}

const char *nsx_json_exact_int(const cJSON *v, int64_t *out)
{
    if (!cJSON_IsNumber(v))
        return "is not a number";
    double d = v->valuedouble;
    if (d != floor(d))
        return "is not an integer";
    if (!(v->type & NSX_JSON_INT_TEXT))
        return "is not written as an integer (no fraction, no exponent)";
    if (fabs(d) > NSX_JSON_MAX_EXACT_INT)
        return "is too large (more than 2^53 - 1)";
    *out = (int64_t)d;
    return NULL;
}

int nsx_utf8_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s);
    for (size_t i = 0; i < n;) {
        size_t k = utf8_len(u + i, n - i);
        if (k == 0)
            return 0;
        i += k;
    }
    return 1;
}

/* 1 when the (valid or not) UTF-8 at u starts with a control character. */
static int is_control(const unsigned char *u)
{
    return u[0] < 0x20 || u[0] == 0x7F || (u[0] == 0xC2 && u[1] >= 0x80 && u[1] <= 0x9F);
}

int nsx_has_control(const char *s)
{
    for (const unsigned char *u = (const unsigned char *)s; *u; u++)
        if (is_control(u))
            return 1;
    return 0;
}

/* ---- duplicate keys ---- */

struct keyed {
    const cJSON *item;
    size_t pos; /* position in the object, to tell which one came first */
};

static int cmp_keyed(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    int c = strcmp(x->item->string, y->item->string);
    if (c)
        return c;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/* The repeat that comes first in obj, or NULL; -2 when out of memory. */
static int object_dup(const cJSON *obj, const cJSON **dup)
{
    size_t k = 0;
    *dup = NULL;
    for (const cJSON *c = obj->child; c; c = c->next)
        k++;
    if (k < 2)
        return 0;
    struct keyed *v = malloc(k * sizeof *v);
    if (!v)
        return -2;
    size_t i = 0;
    for (const cJSON *c = obj->child; c; c = c->next, i++)
        v[i] = (struct keyed){c, i};
    qsort(v, k, sizeof *v, cmp_keyed);
    size_t best = SIZE_MAX;
    for (i = 1; i < k; i++)
        if (strcmp(v[i - 1].item->string, v[i].item->string) == 0 && v[i].pos < best) {
            best = v[i].pos;
            *dup = v[i].item;
        }
    free(v);
    return 0;
}

int nsx_json_find_dup(const cJSON *root, const cJSON **dup, const cJSON **parent)
{
    *dup = NULL;
    if (cJSON_IsObject(root)) {
        if (object_dup(root, dup))
            return -2;
        if (*dup) {
            if (parent)
                *parent = root;
            return 0;
        }
    }
    if (cJSON_IsObject(root) || cJSON_IsArray(root))
        for (const cJSON *c = root->child; c; c = c->next) {
            if (nsx_json_find_dup(c, dup, parent))
                return -2;
            if (*dup)
                return 0;
        }
    return 0;
}

/* ---- messages ---- */

void nsx_printable(char *out, size_t outlen, const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0, o = 0;
    size_t cut = 0; /* the output length at the last character boundary
                       that leaves room for "..." */
    assert(outlen >= 4);
    while (i < n) {
        size_t k = u[i] < 0x80 ? 1 : utf8_len(u + i, n - i);
        const char *src = (const char *)u + i;
        size_t w = k;
        if (k == 0 || is_control(u + i)) { /* one '?' per bad byte or control */
            src = "?";
            w = 1;
            k = k ? k : 1;
        }
        if (o + w + 1 > outlen) {
            memcpy(out + cut, "...", 4);
            return;
        }
        memcpy(out + o, src, w);
        o += w;
        i += k;
        if (o + 4 <= outlen)
            cut = o;
    }
    out[o] = '\0';
}

/* ---- writer ---- */

void nsx_buf_add(nsx_buf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *t = realloc(b->s, cap);
        if (!t) {
            b->oom = 1;
            return;
        }
        b->s = t;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

void nsx_buf_puts(nsx_buf *b, const char *s) { nsx_buf_add(b, s, strlen(s)); }

void nsx_buf_printf(nsx_buf *b, const char *fmt, ...)
{
    char small[256];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        nsx_buf_add(b, small, (size_t)n);
        return;
    }
    char *big = malloc((size_t)n + 1);
    if (!big) {
        b->oom = 1;
        return;
    }
    va_start(ap, fmt);
    vsnprintf(big, (size_t)n + 1, fmt, ap);
    va_end(ap);
    nsx_buf_add(b, big, (size_t)n);
    free(big);
}

void nsx_buf_json_string(nsx_buf *b, const char *s)
{
    nsx_buf_puts(b, "\"");
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\') {
            char esc[2] = {'\\', (char)c};
            nsx_buf_add(b, esc, 2);
        } else if (c < 0x20) {
            nsx_buf_printf(b, "\\u%04x", c);
        } else {
            nsx_buf_add(b, (const char *)&c, 1);
        }
    }
    nsx_buf_puts(b, "\"");
}

void nsx_fmt_double(char *out, size_t outlen, double x)
{
    if (isnan(x)) {
        snprintf(out, outlen, "nan");
        return;
    }
    if (isinf(x)) {
        snprintf(out, outlen, x < 0 ? "-inf" : "inf");
        return;
    }
    /* %.17g always reads back exactly; fewer digits often do too. */
    for (int p = 1; p <= 17; p++) {
        snprintf(out, outlen, "%.*g", p, x);
        if (strtod(out, NULL) == x)
            return;
    }
}

void nsx_buf_json_number(nsx_buf *b, double x)
{
    assert(isfinite(x)); /* JSON has no NaN or infinity */
    char tmp[32];
    nsx_fmt_double(tmp, sizeof tmp, x);
    nsx_buf_puts(b, tmp);
}

void nsx_buf_free(nsx_buf *b)
{
    free(b->s);
    *b = (nsx_buf){0};
}
