/*
 * Hostile and valid safetensors files (st_corpus.h): one table entry per
 * attack on the reader, each built from a header string and data bytes.
 *
 * The same table seeds the fuzzers.  To regenerate fuzz/corpus/safetensors/
 * after changing it (from the repository root):
 *
 *     make build/tests/test_io
 *     rm -f fuzz/corpus/safetensors/[a-z]*.safetensors
 *     NSX_WRITE_CORPUS=fuzz/corpus/safetensors build/tests/test_io
 *
 * test_io checks on every run that the committed corpus matches the table.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/casefile.h"
#include "io/safetensors.h"
#include "tests/st_corpus.h"

#define HDR(s) .header = (s), .header_len = sizeof(s) - 1
#define DATA(s) .data = (s), .data_len = sizeof(s) - 1
/* 1.0f, little-endian: the data of the one-element F32 tensor "t" */
#define ONE "\x00\x00\x80\x3f"
/* A file whose only tensor "t" has entry e, with four data bytes. */
#define ENTRY(e) HDR("{\"t\":" e "}"), DATA(ONE)
#define GOOD_T "\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}"

/* {"a": [[[[ ... ]]]] }, nested far deeper than any parser should follow. */
static void make_deep(char **header, size_t *len)
{
    enum { DEPTH = 5000 };
    char *h = malloc(2 * DEPTH + 7);
    if (!h) {
        *header = NULL;
        return;
    }
    size_t n = 0;
    memcpy(h, "{\"a\":", 5);
    n = 5;
    memset(h + n, '[', DEPTH);
    n += DEPTH;
    memset(h + n, ']', DEPTH);
    n += DEPTH;
    h[n++] = '}';
    *header = h;
    *len = n;
}

const st_file st_hostile[] = {
    /* the framing: the 8-byte length and the header's extent */
    {.name = "empty_file", .what = "a file of 0 bytes", .raw = 1, DATA(""),
     .expect = "shorter than the 8-byte header length"},
    {.name = "short_file", .what = "7 bytes, less than the length field", .raw = 1,
     DATA("\x02\x00\x00\x00\x00\x00\x00"), .expect = "shorter than the 8-byte header length"},
    {.name = "hlen_max", .what = "header length 2^64 - 1", HDR("{}"), DATA(""), .set_hlen = 1,
     .hlen = UINT64_MAX, .expect = "exceeds the limit"},
    {.name = "hlen_2p63", .what = "header length 2^63: b + 8 + hlen overflows a pointer (found by "
     "fuzz/targets/check.c)", HDR("{}"), DATA(""), .set_hlen = 1, .hlen = 1ull << 63,
     .expect = "exceeds the limit"},
    {.name = "hlen_over_limit", .what = "header length just over the 100 MB limit", HDR("{}"),
     DATA(""), .set_hlen = 1, .hlen = NSX_ST_MAX_HEADER + 1ull, .expect = "exceeds the limit"},
    {.name = "hlen_past_end", .what = "header length past the end of the file", HDR("{}"),
     DATA(""), .set_hlen = 1, .hlen = 64, .expect = "runs past the end of the file"},
    {.name = "hlen_zero", .what = "header length 0: no JSON at all", HDR(""), DATA(ONE),
     .expect = "does not start with '{'"},

    /* the header as UTF-8 JSON text */
    {.name = "header_array", .what = "header is an array", HDR("[]"), DATA(""),
     .expect = "does not start with '{'"},
    {.name = "header_leading_space", .what = "space before the object", HDR(" {}"), DATA(""),
     .expect = "does not start with '{'"},
    {.name = "header_bom", .what = "UTF-8 byte order mark before the object",
     HDR("\xef\xbb\xbf{}"), DATA(""), .expect = "does not start with '{'"},
    {.name = "header_truncated", .what = "JSON cut short",
     HDR("{\"t\":{\"dtype\":\"F32\",\"shape\":[1]"), DATA(ONE), .expect = "not valid JSON"},
    {.name = "header_unterminated_string", .what = "string without its closing quote",
     HDR("{\"t"), DATA(""), .expect = "premature end of input"},
    {.name = "header_bad_literal", .what = "misspelt literal", HDR("{\"t\":tru}"), DATA(""),
     .expect = "not valid JSON"},
    {.name = "header_invalid_utf8", .what = "byte 0xFF in a name",
     HDR("{\"t\xff\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"), DATA(ONE),
     .expect = "invalid UTF-8"},
    {.name = "header_overlong_utf8", .what = "overlong UTF-8 for '/'",
     HDR("{\"\xc0\xaf\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"), DATA(ONE),
     .expect = "invalid UTF-8"},
    {.name = "header_utf8_surrogate", .what = "a UTF-16 surrogate encoded as UTF-8",
     HDR("{\"\xed\xa0\x80\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"),
     DATA(ONE), .expect = "invalid UTF-8"},
    {.name = "header_raw_control", .what = "raw control character in a string",
     HDR("{\"t\x01\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"), DATA(ONE),
     .expect = "control character 0x1"},
    {.name = "header_escaped_nul", .what = "\\u0000 that would cut a name short",
     HDR("{\"t\\u0000x\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"), DATA(ONE),
     .expect = "escaped NUL"},
    {.name = "header_lone_surrogate", .what = "\\ud800 without its pair",
     HDR("{\"\\ud800\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"), DATA(ONE),
     .expect = "not valid JSON"},
    {.name = "header_bad_escape", .what = "escape \\x", HDR("{\"t\\x\":1}"), DATA(""),
     .expect = "invalid escape"},
    {.name = "header_trailing_garbage", .what = "a byte after the object", HDR("{}x"), DATA(""),
     .expect = "only spaces may pad it"},
    {.name = "header_trailing_newline", .what = "padding other than spaces", HDR("{}\n"),
     DATA(""), .expect = "only spaces may pad it"},
    {.name = "header_nul_padding", .what = "NUL bytes as padding", HDR("{}\0\0\0\0\0\0"),
     DATA(""), .expect = "unexpected byte 0x00"},
    {.name = "header_two_objects", .what = "a second object after the first", HDR("{}{}"),
     DATA(""), .expect = "only spaces may pad it"},
    {.name = "header_leading_zero", .what = "number 01",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[01],\"data_offsets\":[0,4]}"),
     .expect = "invalid token"},
    {.name = "header_number_overflow", .what = "number 1e999",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1e999],\"data_offsets\":[0,4]}"),
     .expect = "number out of range"},
    {.name = "header_deep_nesting", .what = "arrays nested 5000 deep", .make = make_deep,
     DATA(""), .expect = "nested more than 1000 deep"},

    /* entries */
    {.name = "entry_number", .what = "entry is a number", ENTRY("5"),
     .expect = "entry is not an object"},
    {.name = "entry_array", .what = "entry is an array", ENTRY("[]"),
     .expect = "entry is not an object"},
    {.name = "entry_unknown_key", .what = "a key the format does not have",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4],\"offset\":0}"),
     .expect = "unknown key 'offset'"},
    {.name = "dtype_missing", .what = "no dtype", ENTRY("{\"shape\":[1],\"data_offsets\":[0,4]}"),
     .expect = "dtype is missing"},
    {.name = "dtype_number", .what = "dtype is a number",
     ENTRY("{\"dtype\":4,\"shape\":[1],\"data_offsets\":[0,4]}"),
     .expect = "dtype is not a string"},
    {.name = "dtype_unknown", .what = "dtype F128",
     ENTRY("{\"dtype\":\"F128\",\"shape\":[1],\"data_offsets\":[0,4]}"),
     .expect = "unknown dtype 'F128'"},
    {.name = "dtype_lowercase", .what = "dtype f32 (names are case-sensitive)",
     ENTRY("{\"dtype\":\"f32\",\"shape\":[1],\"data_offsets\":[0,4]}"),
     .expect = "unknown dtype 'f32'"},
    {.name = "dtype_unsupported", .what = "dtype I64, valid safetensors but not ours",
     HDR("{\"t\":{\"dtype\":\"I64\",\"shape\":[1],\"data_offsets\":[0,8]}}"),
     DATA("\0\0\0\0\0\0\0\0"), .expect = "dtype I64 is not supported"},
    {.name = "shape_missing", .what = "no shape", ENTRY("{\"dtype\":\"F32\",\"data_offsets\":[0,4]}"),
     .expect = "shape is missing"},
    {.name = "shape_number", .what = "shape is a number",
     ENTRY("{\"dtype\":\"F32\",\"shape\":1,\"data_offsets\":[0,4]}"),
     .expect = "shape is not an array"},
    {.name = "shape_negative", .what = "shape [-1]",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[-1],\"data_offsets\":[0,4]}"),
     .expect = "shape[0] is negative"},
    {.name = "shape_fraction", .what = "shape [1.5]",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1.5],\"data_offsets\":[0,4]}"),
     .expect = "shape[0] is not an integer"},
    {.name = "shape_float_text", .what = "shape [1.0]: integral, but not an integer",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1.0],\"data_offsets\":[0,4]}"),
     .expect = "shape[0] is not written as an integer"},
    {.name = "shape_exponent", .what = "shape [1e0]",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1e0],\"data_offsets\":[0,4]}"),
     .expect = "shape[0] is not written as an integer"},
    {.name = "shape_string", .what = "shape [\"1\"]",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[\"1\"],\"data_offsets\":[0,4]}"),
     .expect = "shape[0] is not a number"},
    {.name = "shape_inexact", .what = "2^53 + 1 beside a zero: not a binary64",
     HDR("{\"t\":{\"dtype\":\"F32\",\"shape\":[0,9007199254740993],\"data_offsets\":[0,0]}}"),
     DATA(""), .expect = "shape[1] is too large"},
    {.name = "shape_rank9", .what = "rank 9",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,4]}"),
     .expect = "rank 9"},
    {.name = "shape_overflow_wraps", .what = "2^32 x 2^32 elements: the product wraps to 0",
     HDR("{\"t\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296],\"data_offsets\":[0,0]}}"),
     DATA(""), .expect = "more elements than fit in 64 bits"},
    {.name = "shape_overflow_bytes", .what = "2^62 elements of 4 bytes",
     HDR("{\"t\":{\"dtype\":\"F32\",\"shape\":[2147483648,2147483648],\"data_offsets\":[0,0]}}"),
     DATA(""), .expect = "more elements than fit in 64 bits"},
    {.name = "offsets_missing", .what = "no data_offsets", ENTRY("{\"dtype\":\"F32\",\"shape\":[1]}"),
     .expect = "data_offsets is missing"},
    {.name = "offsets_object", .what = "data_offsets is an object",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":{\"0\":4}}"),
     .expect = "not an array of two integers"},
    {.name = "offsets_three", .what = "three offsets",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4,8]}"),
     .expect = "not an array of two integers"},
    {.name = "offsets_one", .what = "one offset",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4]}"),
     .expect = "not an array of two integers"},
    {.name = "offsets_negative", .what = "offsets [-4, 0]",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[-4,0]}"),
     .expect = "data_offsets[0] is negative"},
    {.name = "offsets_fraction", .what = "offsets [0, 4.5]",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4.5]}"),
     .expect = "data_offsets[1] is not an integer"},
    {.name = "offsets_strings", .what = "offsets as strings",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[\"0\",\"4\"]}"),
     .expect = "data_offsets[0] is not a number"},
    {.name = "offsets_reversed", .what = "end before begin",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}"),
     .expect = "end before they begin"},
    {.name = "offsets_huge", .what = "end 2^64 - 1",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,18446744073709551615]}"),
     .expect = "number out of range"},
    {.name = "offsets_past_end", .what = "8 bytes claimed, 4 present",
     HDR("{\"t\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}"), DATA(ONE),
     .expect = "run past the end"},
    {.name = "size_mismatch", .what = "two F32 elements in 4 bytes",
     ENTRY("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}"),
     .expect = "hold 4 bytes but F32 shape of 2 elements needs 8"},

    /* the layout of all entries together */
    {.name = "overlap", .what = "[0,8) and [4,12)",
     HDR("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}"),
     DATA("\0\0\0\0\0\0\0\0\0\0\0\0"), .expect = "overlap"},
    {.name = "overlap_same", .what = "two tensors on the same bytes",
     HDR("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}}"),
     DATA(ONE), .expect = "overlap"},
    {.name = "gap", .what = "bytes [4,8) belong to no tensor",
     HDR("{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}"),
     DATA("\0\0\0\0\0\0\0\0\0\0\0\0"), .expect = "a gap before 'b'"},
    {.name = "gap_at_start", .what = "the first tensor starts at 4",
     HDR("{\"t\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}"),
     DATA("\0\0\0\0" ONE), .expect = "a gap before 't'"},
    {.name = "trailing_bytes", .what = "bytes after the last tensor",
     HDR("{" GOOD_T "}"), DATA(ONE ONE), .expect = "at the end of the data buffer"},
    {.name = "no_tensor_trailing_bytes", .what = "data but no tensor", HDR("{}"), DATA(ONE),
     .expect = "at the end of the data buffer"},

    /* names and metadata */
    {.name = "duplicate_tensor", .what = "the same name twice",
     HDR("{" GOOD_T "," GOOD_T "}"), DATA(ONE), .expect = "duplicate tensor name 't'"},
    {.name = "duplicate_entry_key", .what = "dtype twice in an entry",
     ENTRY("{\"dtype\":\"F32\",\"dtype\":\"I32\",\"shape\":[1],\"data_offsets\":[0,4]}"),
     .expect = "duplicate key 'dtype' in 't'"},
    {.name = "duplicate_metadata_key", .what = "a __metadata__ key twice",
     HDR("{\"__metadata__\":{\"k\":\"a\",\"k\":\"b\"}," GOOD_T "}"), DATA(ONE),
     .expect = "duplicate __metadata__ key 'k'"},
    {.name = "duplicate_metadata", .what = "__metadata__ twice",
     HDR("{\"__metadata__\":{},\"__metadata__\":{}}"), DATA(""),
     .expect = "__metadata__ appears twice"},
    {.name = "metadata_string", .what = "__metadata__ is a string",
     HDR("{\"__metadata__\":\"x\"}"), DATA(""), .expect = "__metadata__ is not an object"},
    {.name = "metadata_value_number", .what = "a __metadata__ value that is a number",
     HDR("{\"__metadata__\":{\"k\":1}}"), DATA(""), .expect = "__metadata__ 'k' is not a string"},
    {.name = "metadata_value_object", .what = "a __metadata__ value that is an object",
     HDR("{\"__metadata__\":{\"k\":{}}}"), DATA(""),
     .expect = "__metadata__ 'k' is not a string"},
    {.name = "name_empty", .what = "tensor name \"\"",
     HDR("{\"\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"), DATA(ONE),
     .expect = "is empty or has control characters"},
    {.name = "name_escaped_control", .what = "tensor name with \\u001b (ESC)",
     HDR("{\"a\\u001b[2J\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"), DATA(ONE),
     .expect = "is empty or has control characters"},
    {.name = "name_c1_control", .what = "tensor name with U+009B (CSI)",
     HDR("{\"a\\u009b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"), DATA(ONE),
     .expect = "is empty or has control characters"},
    {.name = "name_del", .what = "tensor name with a raw DEL",
     HDR("{\"a\x7f\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}"), DATA(ONE),
     .expect = "is empty or has control characters"},
};

const size_t st_nhostile = sizeof st_hostile / sizeof st_hostile[0];

unsigned char *st_file_bytes(const st_file *f, size_t *len)
{
    char *made = NULL;
    const char *hdr = f->header;
    size_t hn = f->header_len;
    if (f->make) {
        f->make(&made, &hn);
        if (!made)
            return NULL;
        hdr = made;
    }
    size_t n = f->raw ? f->data_len : 8 + hn + f->data_len;
    unsigned char *b = malloc(n ? n : 1);
    if (b && f->raw) {
        memcpy(b, f->data, f->data_len);
    } else if (b) {
        uint64_t h = f->set_hlen ? f->hlen : hn;
        for (int k = 0; k < 8; k++)
            b[k] = (unsigned char)(h >> (8 * k));
        memcpy(b + 8, hdr, hn);
        memcpy(b + 8 + hn, f->data, f->data_len);
    }
    free(made);
    *len = n;
    return b;
}

static int write_bytes(const char *path, const unsigned char *b, size_t n)
{
    FILE *f = fopen(path, "wb");
    int ok = f && fwrite(b, 1, n, f) == n;
    if (f && fclose(f) != 0)
        ok = 0;
    if (!ok)
        fprintf(stderr, "st_corpus: cannot write %s\n", path);
    return ok ? 0 : -1;
}

/* A small valid nsimplex case: n = 2, bf16 inputs, a given selection. */
static int write_case(const char *path, nsx_err *err)
{
    enum { B = 1, L = 3, H = 2, G = 1, D = 4 }; /* d = 4: 1/sqrt(d) is exact */
    nsx_problem p;
    nsx_problem_defaults(&p);
    p.n = 2;
    p.B = B, p.L = L, p.H = H, p.Hkv = G, p.d = D, p.dv = D;
    p.window[1] = 2;
    p.k_bias[0] = 0.5;
    p.sel = (nsx_selection){.source = NSX_SEL_INDICES, .k = 2, .dims = 1};
    p.input_format = NSX_FORMAT_BF16;
    double q[B * L * H * D], k[B * L * G * D], o[B * L * H * D], lse[B * H * L];
    int32_t sel[B * L * 2] = {0, -1, 1, 0, 2, -1};
    for (int i = 0; i < B * L * H * D; i++)
        q[i] = (i % 5 - 2) * 0.25, o[i] = i / 7.0;
    for (int i = 0; i < B * L * G * D; i++)
        k[i] = (i % 3) * 0.5 - 0.5;
    for (int i = 0; i < B * H * L; i++)
        lse[i] = i * 0.1;
    nsx_inputs in = {.q = q, .k = {k, k}, .v = {k, k}, .sel = sel};
    nsx_outputs out = {.o = o, .lse = lse};
    char *flags[] = {"Windows", "GQA"};
    nsx_case_info info = {.id = "corpus_case", .suite = "corpus",
                          .description = "a small valid case for the fuzzers' seed corpus",
                          .flags = flags, .nflags = 2};
    return nsx_case_write(path, &p, &info, &in, &out, err);
}

int st_corpus_write_valid(const char *dir)
{
    char path[4096];
    nsx_err err = {0};
    nsx_st st = {0};
    int r;

    snprintf(path, sizeof path, "%s/ok_empty.safetensors", dir);
    r = nsx_st_write(path, &st, &err);

    if (!r) { /* one tensor of each dtype, and metadata */
        const int64_t two[] = {2}, none[] = {0};
        const double f[] = {1.5, -0.0};
        const int32_t i32[] = {-1, 2147483647};
        r = nsx_st_add_f64(&st, "f64", NSX_DTYPE_F64, 1, two, f, &err) ||
            nsx_st_add_f64(&st, "f32", NSX_DTYPE_F32, 1, two, f, &err) ||
            nsx_st_add_f64(&st, "f16", NSX_DTYPE_F16, 1, two, f, &err) ||
            nsx_st_add_f64(&st, "bf16", NSX_DTYPE_BF16, 1, two, f, &err) ||
            nsx_st_add_i32(&st, "i32", 1, two, i32, &err) ||
            nsx_st_add_f64(&st, "empty", NSX_DTYPE_F32, 1, none, NULL, &err) ||
            nsx_st_add_f64(&st, "scalar", NSX_DTYPE_F64, 0, NULL, f, &err) ||
            nsx_st_set_meta(&st, "format", "pt", &err);
        snprintf(path, sizeof path, "%s/ok_dtypes.safetensors", dir);
        if (!r)
            r = nsx_st_write(path, &st, &err);
    }
    nsx_st_free(&st);

    if (!r) {
        snprintf(path, sizeof path, "%s/ok_case.safetensors", dir);
        r = write_case(path, &err);
    }
    if (r)
        fprintf(stderr, "st_corpus: %s\n", err.msg);
    return r ? -1 : 0;
}

int st_corpus_write(const char *dir)
{
    char path[4096];
    for (size_t i = 0; i < st_nhostile; i++) {
        size_t n;
        unsigned char *b = st_file_bytes(&st_hostile[i], &n);
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, st_hostile[i].name);
        int r = b ? write_bytes(path, b, n) : -1;
        free(b);
        if (r)
            return -1;
    }
    return st_corpus_write_valid(dir);
}
