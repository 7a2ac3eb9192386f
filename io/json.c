/* Strict JSON over Jansson, and a small JSON writer (json.h). */
#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/json.h"

#define WHY(...) (snprintf(e->why, sizeof e->why, __VA_ARGS__), -1)

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

/* ---- parsing ---- */

/* The limits Jansson does not set, from one pass that only tells strings
   from the rest: at most NSX_JSON_MAX_VALUES values (each value but the
   root is the first in its container or follows a comma, so 1 + opening
   brackets + commas bounds their number) and nesting at most
   NSX_JSON_MAX_DEPTH deep.  The rest is Jansson's to judge. */
static int check_limits(const char *s, size_t n, nsx_json_error *e)
{
    size_t values = 1, depth = 0;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c == '"') {
            for (i++; i < n && s[i] != '"'; i++)
                i += s[i] == '\\';
        } else if (c == '{' || c == '[') {
            values++;
            if (++depth > NSX_JSON_MAX_DEPTH)
                return WHY("nested more than %d deep at byte %zu", NSX_JSON_MAX_DEPTH, i);
        } else if (c == '}' || c == ']') {
            depth -= depth > 0;
        } else if (c == ',') {
            values++;
        }
        if (values > NSX_JSON_MAX_VALUES)
            return WHY("more than %u JSON values", NSX_JSON_MAX_VALUES);
    }
    return 0;
}

/* The string token text[a..b) (quotes included), decoded by Jansson and
   made printable, into out. */
static void token_text(const char *text, size_t a, size_t b, char *out, size_t outlen)
{
    json_t *v = json_loadb(text + a, b - a, JSON_DECODE_ANY, NULL);
    if (json_is_string(v)) {
        nsx_printable(out, outlen, json_string_value(v));
    } else { /* cannot happen: Jansson read it as a key */
        char raw[80];
        snprintf(raw, sizeof raw, "%.*s", (int)(b - a < 79 ? b - a : 79), text + a);
        nsx_printable(out, outlen, raw);
    }
    json_decref(v);
}

/* Jansson stopped at a repeated key whose closing quote is text[end - 1].
   The text before it is valid JSON so far (Jansson read it), so a scan that
   tells strings, brackets and colons apart finds the key's object, its
   depth and the key that holds that object. */
static int locate_dup(const char *text, size_t end, nsx_json_error *e)
{
    enum { NONE = -1 };
    /* per level (1 = the root): the key holding it, the current member's key */
    static_assert(NSX_JSON_MAX_DEPTH <= 1000, "the scan's stack is on the C stack");
    long holder[NSX_JSON_MAX_DEPTH + 2], cur[NSX_JSON_MAX_DEPTH + 2];
    char is_obj[NSX_JSON_MAX_DEPTH + 2];
    long last = NONE; /* where the last string began */
    int depth = 0;
    is_obj[0] = 0;
    cur[0] = NONE;
    for (size_t i = 0; i < end; i++) {
        char c = text[i];
        if (c == '"') {
            last = (long)i;
            for (i++; i < end && text[i] != '"'; i++)
                i += text[i] == '\\';
        } else if (c == ':' && depth > 0) {
            cur[depth] = last;
        } else if ((c == '{' || c == '[') && depth <= NSX_JSON_MAX_DEPTH) {
            depth++;
            holder[depth] = is_obj[depth - 1] ? cur[depth - 1] : NONE;
            is_obj[depth] = c == '{';
            cur[depth] = NONE;
        } else if ((c == '}' || c == ']') && depth > 0) {
            depth--;
        }
    }
    e->dup = 1;
    e->depth = depth;
    if (last == NONE || depth == 0 || end < 2 || text[end - 1] != '"') { /* cannot happen */
        snprintf(e->key, sizeof e->key, "?");
        return WHY("duplicate key at byte %zu", end);
    }
    token_text(text, (size_t)last, end, e->key, sizeof e->key);
    long h = holder[depth];
    if (h != NONE) {
        size_t q = (size_t)h + 1;
        while (q < end && text[q] != '"')
            q += text[q] == '\\' ? 2 : 1;
        token_text(text, (size_t)h, q + 1, e->parent, sizeof e->parent);
    }
    if (depth == 1)
        return WHY("duplicate key '%s'", e->key);
    if (h == NONE)
        return WHY("duplicate key '%s' in an array element", e->key);
    return WHY("duplicate key '%s' in '%s'", e->key, e->parent);
}

/* Jansson's error as one line of ours. */
static int jansson_error(const char *text, const json_error_t *je, nsx_json_error *e)
{
    size_t at = je->position > 0 ? (size_t)je->position : 0;
    char t[sizeof je->text];
    switch (json_error_code(je)) {
    case json_error_out_of_memory:
        snprintf(e->why, sizeof e->why, "out of memory");
        return -2;
    case json_error_duplicate_key:
        return locate_dup(text, at, e);
    case json_error_invalid_utf8:
        return WHY("invalid UTF-8 at byte %zu", at);
    case json_error_null_character:
    case json_error_null_byte_in_key:
        return WHY("escaped NUL (\\u0000) in a string at byte %zu", at);
    case json_error_numeric_overflow:
        return WHY("number out of range at byte %zu (integers within 64 bits, others within "
                   "binary64)", at);
    default:
        nsx_printable(t, sizeof t, je->text);
        return WHY("not valid JSON at byte %zu: %s", at, t);
    }
}

int nsx_json_parse(const char *text, size_t len, int mode, json_t **out, nsx_json_error *e)
{
    const unsigned char *s = (const unsigned char *)text;
    *out = NULL;
    *e = (nsx_json_error){0};
    if (mode == NSX_JSON_HEADER && (len == 0 || s[0] != '{'))
        return WHY("does not start with '{'");
    int r = check_limits(text, len, e);
    if (r)
        return r;
    /* DISABLE_EOF_CHECK: what may follow the value is decided below, from
       where Jansson stopped (je.position, exact after an object). */
    json_error_t je;
    json_t *root = json_loadb(text, len,
                              JSON_REJECT_DUPLICATES | JSON_DECODE_ANY | JSON_DISABLE_EOF_CHECK, &je);
    if (!root)
        return jansson_error(text, &je, e);
    if (!json_is_object(root)) {
        json_decref(root);
        return WHY("not a JSON object");
    }
    for (size_t i = (size_t)je.position; i < len; i++) {
        int space = s[i] == ' ' ||
                    (mode == NSX_JSON_DOC && (s[i] == '\t' || s[i] == '\n' || s[i] == '\r'));
        if (!space) {
            json_decref(root);
            return WHY(mode == NSX_JSON_HEADER
                           ? "unexpected byte 0x%02x at byte %zu after the JSON object (only spaces may pad it)"
                           : "unexpected byte 0x%02x at byte %zu after the JSON value",
                       s[i], i);
        }
    }
    *out = root;
    return 0;
}

const char *nsx_json_exact_int(const json_t *v, int64_t *out)
{
    if (json_is_real(v))
        return json_real_value(v) != floor(json_real_value(v))
                   ? "is not an integer"
                   : "is not written as an integer (no fraction, no exponent)";
    if (!json_is_integer(v))
        return "is not a number";
    json_int_t x = json_integer_value(v);
    if (x > NSX_JSON_MAX_EXACT_INT || x < -NSX_JSON_MAX_EXACT_INT)
        return "is too large (more than 2^53 - 1)";
    *out = (int64_t)x;
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
    if (x == 0 && signbit(x)) {
        nsx_buf_puts(b, "-0.0"); /* a real: the integer -0 is 0 */
        return;
    }
    char tmp[32];
    nsx_fmt_double(tmp, sizeof tmp, x);
    nsx_buf_puts(b, tmp);
}

void nsx_buf_free(nsx_buf *b)
{
    free(b->s);
    *b = (nsx_buf){0};
}

void nsx_buf_json_field(nsx_buf *b, const char *key, double x)
{
    nsx_buf_printf(b, ",\"%s\":", key);
    if (isfinite(x))
        nsx_buf_json_number(b, x);
    else
        nsx_buf_puts(b, "null");
}
