/*
 * Fuzz target: the nsimplex metadata parser (io/meta.h).
 *
 * The bytes are the JSON text stored under __metadata__["nsimplex"] (cut at
 * a NUL byte, as a C string would be).  Every error must be one line that
 * starts "metadata: ".  A text that parses must give a problem that passes
 * nsx_problem_check; nsx_meta_format must write it, and parsing that text
 * must give the same problem and case identity (spec and a missing
 * generator aside: the writer writes its own), and formatting again must
 * give the same text.  Parsing without info must give the same problem.
 *
 *   libFuzzer: build-fuzz/metadata_fuzzer fuzz/corpus/metadata
 *   replay:    build-san/fuzz/metadata_replay fuzz/corpus/metadata
 */
#include <stdlib.h>
#include <string.h>

#include "fuzz/targets/common.h"

#define MAX_INPUT (1u << 20)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > MAX_INPUT)
        return 0;
    char *json = malloc(size + 1);
    FZ_CHECK(json != NULL, "out of memory");
    memcpy(json, data, size);
    json[size] = '\0';

    nsx_problem p, p0;
    nsx_case_info info;
    nsx_err err = {0};
    int rc = nsx_meta_parse(json, &p, &info, &err);
    fz_check_outcome(rc, &err, "metadata: ");
    if (rc) {
        FZ_CHECK(info.id == NULL && info.flags == NULL && info.pairs == NULL && info.nflags == 0 &&
                     info.npairs == 0, "a failed parse left info filled");
        free(json);
        return 0;
    }
    char why[256];
    FZ_CHECK(nsx_problem_check(&p, why, sizeof why) == 0, "parsed a problem that fails its check: %s", why);
    FZ_CHECK(info.id && info.description && info.spec, "parsed without case, description or spec");

    /* without info: the same problem (the identity and pairs are not read,
       so only their errors may differ) */
    nsx_err err0 = {0};
    rc = nsx_meta_parse(json, &p0, NULL, &err0);
    FZ_CHECK(rc == 0, "parses with info but not without: %s", err0.msg);
    FZ_CHECK(fz_problem_same(&p, &p0), "the problem differs when info is not read");

    /* format, parse back, format again */
    char *text = nsx_meta_format(&p, &info, &err);
    FZ_CHECK(text != NULL, "nsx_meta_format refused what nsx_meta_parse took: %s", err.msg);
    nsx_problem p2;
    nsx_case_info info2;
    rc = nsx_meta_parse(text, &p2, &info2, &err);
    FZ_CHECK(rc == 0, "nsx_meta_parse refused nsx_meta_format's text: %s\n  text: %s", err.msg, text);
    FZ_CHECK(fz_problem_same(&p, &p2), "the problem reads back differently\n  in:  %s\n  out: %s", json, text);
    FZ_CHECK(fz_info_same(&info, &info2), "the case identity reads back differently\n  in:  %s\n  out: %s",
             json, text);
    char *text2 = nsx_meta_format(&p2, &info2, &err);
    FZ_CHECK(text2 != NULL && strcmp(text, text2) == 0, "formatting is not stable:\n  %s\n  %s", text,
             text2 ? text2 : "(refused)");

    free(text);
    free(text2);
    nsx_case_info_free(&info);
    nsx_case_info_free(&info2);
    free(json);
    return 0;
}
