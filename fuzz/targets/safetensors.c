/*
 * Fuzz target: the safetensors reader and the case-file validation.
 *
 * The bytes are a whole file.  nsx_st_parse (from memory) and nsx_st_read
 * (the same bytes from a file: a separate code path that streams the
 * tensors) must agree exactly, on the result or on the error message, and
 * every error must be one line naming the file.  A file that parses must
 * hold what the header promised (counts, sizes, tensors tiling the data),
 * must be written back by nsx_st_write, read back to the same tensors and
 * metadata, and written again to the same bytes.  Then nsx_case_from_st
 * validates it as a case file against its metadata; a case that reads must
 * be written by nsx_case_write and read back to the same problem, identity,
 * inputs and expected outputs.
 *
 *   libFuzzer: build-fuzz/safetensors_fuzzer fuzz/corpus/safetensors
 *   replay:    build-san/fuzz/safetensors_replay fuzz/corpus/safetensors
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz/targets/common.h"

/* Larger inputs only slow the search: every check is on the structure. */
#define MAX_INPUT (1u << 20)

/* What the header promised: counts and sizes agree, data is there, and the
   tensors tile the data buffer from 0 to its end in offset order. */
static void check_parsed(const nsx_st *st, size_t size)
{
    uint64_t at = 0;
    for (size_t i = 0; i < st->nt; i++) {
        const nsx_tensor *t = &st->t[i];
        size_t count = 1;
        FZ_CHECK(t->rank >= 0 && t->rank <= NSX_ST_MAX_RANK, "rank %d", t->rank);
        for (int r = 0; r < t->rank; r++) {
            FZ_CHECK(t->shape[r] >= 0, "tensor %zu: shape[%d] = %lld", i, r, (long long)t->shape[r]);
            count *= (size_t)t->shape[r];
        }
        FZ_CHECK(count == t->count, "tensor %zu: count %zu, shape product %zu", i, t->count, count);
        FZ_CHECK(t->nbytes == t->count * nsx_dtype_size(t->dtype), "tensor %zu: nbytes %zu", i, t->nbytes);
        FZ_CHECK((t->data != NULL) == (t->nbytes != 0), "tensor %zu: data %p for %zu bytes", i,
                 (void *)t->data, t->nbytes);
        FZ_CHECK(t->offset == at, "tensor %zu: offset %llu, expected %llu", i, (unsigned long long)t->offset,
                 (unsigned long long)at);
        at += t->nbytes;
        /* the decoders take every element of every dtype */
        if (t->dtype == NSX_DTYPE_I32)
            for (size_t e = 0; e < t->count; e++)
                (void)nsx_tensor_i32_at(t, e);
        else
            for (size_t e = 0; e < t->count; e++)
                (void)nsx_tensor_f64_at(t, e);
    }
    FZ_CHECK(at + 8 <= size, "tensors hold %llu bytes of a %zu-byte file", (unsigned long long)at, size);
}

/* Written, read back, written again: the same content, then the same
   bytes (the writer's layout is canonical). */
static void round_trip_st(const nsx_st *st)
{
    char path[600];
    snprintf(path, sizeof path, "%s", fz_path("rt.safetensors"));
    nsx_err err = {0};
    int rc = nsx_st_write(path, st, &err);
    FZ_CHECK(rc == 0, "the writer refused a file the reader took: %s", err.msg);
    size_t n1, n2;
    unsigned char *b1 = fz_read_file(path, &n1);
    nsx_st back;
    rc = nsx_st_parse(b1, n1, path, &back, &err);
    FZ_CHECK(rc == 0, "the reader refused the writer's file: %s", err.msg);
    FZ_CHECK(fz_st_same(st, &back), "the written file reads back differently");
    rc = nsx_st_write(path, &back, &err);
    FZ_CHECK(rc == 0, "second write: %s", err.msg);
    unsigned char *b2 = fz_read_file(path, &n2);
    FZ_CHECK(n1 == n2 && memcmp(b1, b2, n1) == 0, "writing what was read back gives other bytes");
    unlink(path);
    free(b1);
    free(b2);
    nsx_st_free(&back);
}

/* A case that reads is written by the case writer and reads back equal. */
static void round_trip_case(const nsx_case *c)
{
    char why[256];
    FZ_CHECK(nsx_problem_check(&c->p, why, sizeof why) == 0, "a case read with a bad problem: %s", why);
    char path[600];
    snprintf(path, sizeof path, "%s", fz_path("case.safetensors"));
    nsx_err err = {0};
    int rc = nsx_case_write(path, &c->p, &c->info, &c->in, &c->expected, &err);
    FZ_CHECK(rc == 0, "the case writer refused a case the reader took: %s", err.msg);
    nsx_case back;
    rc = nsx_case_read(path, &back, &err);
    FZ_CHECK(rc == 0, "the case reader refused the case writer's file: %s", err.msg);
    FZ_CHECK(fz_problem_same(&c->p, &back.p), "the case's problem reads back differently");
    FZ_CHECK(fz_info_same(&c->info, &back.info), "the case's identity or pairs read back differently");
    FZ_CHECK(fz_case_same(c, &back), "the case's tensors read back differently");
    unlink(path);
    nsx_case_free(&back);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    char path[600];
    snprintf(path, sizeof path, "%s", fz_path("in.safetensors"));

    nsx_st st;
    nsx_err err = {0};
    int rc = nsx_st_parse(data, size, path, &st, &err);
    fz_check_outcome(rc, &err, path);
    if (rc)
        FZ_CHECK(st.nt == 0 && st.t == NULL && st.nmeta == 0 && st.meta == NULL,
                 "a failed parse left %zu tensors, %zu metadata keys", st.nt, st.nmeta);

    /* the streaming reader agrees with the parser, message for message */
    fz_write_file(path, data, size);
    nsx_st st2;
    nsx_err err2 = {0};
    int rc2 = nsx_st_read(path, &st2, &err2);
    unlink(path);
    FZ_CHECK(rc2 == rc, "nsx_st_parse gave %d (%s) but nsx_st_read %d (%s)", rc, rc ? err.msg : "ok", rc2,
             rc2 ? err2.msg : "ok");
    if (rc) {
        FZ_CHECK(strcmp(err.msg, err2.msg) == 0, "messages differ: '%s' and '%s'", err.msg, err2.msg);
        return 0;
    }
    FZ_CHECK(fz_st_same(&st, &st2) && st.nt == st2.nt, "nsx_st_parse and nsx_st_read read different files");
    for (size_t i = 0; i < st.nt; i++)
        FZ_CHECK(strcmp(st.t[i].name, st2.t[i].name) == 0 && st.t[i].offset == st2.t[i].offset,
                 "tensor %zu: different order", i);
    nsx_st_free(&st2);

    check_parsed(&st, size);
    round_trip_st(&st);

    /* the case file: validated against its metadata (takes st) */
    nsx_case c;
    rc = nsx_case_from_st(&st, path, &c, &err);
    fz_check_outcome(rc, &err, path);
    FZ_CHECK(st.nt == 0 && st.t == NULL, "nsx_case_from_st did not take the file");
    if (rc == 0) {
        round_trip_case(&c);
        nsx_case_free(&c);
    }
    return 0;
}
