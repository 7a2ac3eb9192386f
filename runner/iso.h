/*
 * One kernel call and where it runs (internal to runner/; docs/FUZZING.md
 * 4.1): in this process, in a child process forked for the call, or in the
 * runner process of a fork server (nsx_kernel_iso_start).  The caller
 * describes the call (its op, the problem, the byte size of each input, the
 * element count of each output), writes the inputs where iso_begin says,
 * runs it with iso_run and reads the outputs.  Isolated, inputs and outputs
 * live in one shared region:
 *
 *   [status page][guard] then per output [slack (canaries), buffer][guard]
 *   then the inputs
 *
 * each output ending where its PROT_NONE guard page begins, so a write past
 * it faults and a write before it changes a canary.  Outputs start as
 * all-ones NaNs (int32 outputs as -1), in every mode.
 */
#ifndef NSX_RUNNER_ISO_H
#define NSX_RUNNER_ISO_H

#include <stddef.h>
#include <stdint.h>

#include "runner/runner.h"

enum iso_op { ISO_FORWARD, ISO_BACKWARD, ISO_INDEXER };

/* The inputs a call can take, each a slot of the request. */
enum iso_slot {
    ISO_SEL,                        /* int32 [B, L, topk] (forward, backward) */
    ISO_Q,
    ISO_K,                          /* K_1 .. K_n */
    ISO_V = ISO_K + NSX_MAX_ORDER,  /* V_1 .. V_n */
    ISO_O = ISO_V + NSX_MAX_ORDER,  /* the backward's o, lse, dout */
    ISO_LSE,
    ISO_DOUT,
    ISO_IDX_Q,                      /* the indexer's */
    ISO_IDX_K,
    ISO_IDX_W,
    ISO_SLOTS
};

/* Outputs: o, lse (forward); dq, dk1, dv1, .., dkn, dvn (backward);
   scores, sel (indexer). */
#define ISO_MAX_BUFS (2 * NSX_MAX_ORDER + 3)

/* A call as the process that runs it receives it: offsets into the shared
   region, not pointers (the runner maps the region where it can). */
typedef struct iso_req {
    uint64_t seq;                    /* the server's call number */
    int op;                          /* ISO_* */
    size_t len;                      /* the region's length */
    nsx_kernel_problem kp;           /* forward, backward (kp.sel: ISO_SEL) */
    nsx_indexer_problem ip;          /* indexer */
    int64_t in[ISO_SLOTS];           /* offset of each input; -1: none */
    int nbuf;
    size_t count[ISO_MAX_BUFS];      /* elements of each output (4 bytes each); 0: none */
    size_t slack[ISO_MAX_BUFS];      /* offset of its slack, its buffer, its guard page */
    size_t buf[ISO_MAX_BUFS];
    size_t end[ISO_MAX_BUFS];
} iso_req;

typedef struct iso_call {
    iso_req rq;
    void *in[ISO_SLOTS];             /* where the caller writes each input */
    void *out[ISO_MAX_BUFS];         /* each output; NULL for a count of 0 */
    const char *name[ISO_MAX_BUFS];  /* its name in messages */
    unsigned char *base;             /* isolated: the region in this process */
    size_t page;
    int mapped;                      /* 1: base is a mapping of this call's own (forked child) */
    int served;                      /* 1: the region is the fork server's */
} iso_call;

/*
 * Prepares a call of op for k: nbuf outputs of count[x] 4-byte elements
 * (named name[x]) and inputs of in_bytes[s] bytes (0: not given).  Where k
 * runs its calls decides where the buffers are: k->iso NULL, allocated
 * here; k->iso with a server for k, the server's region; else a shared
 * mapping of the call's own.  0, or NSX_E_NOMEM with err.  iso_end frees
 * what iso_begin made, whatever it returned.
 */
int iso_begin(const nsx_kernel *k, iso_call *c, int op, int nbuf, const size_t *count, const char *const *name,
              const size_t *in_bytes, nsx_err *err);

/*
 * Runs the call (c->rq.kp or c->rq.ip set by the caller): 0 with *r the
 * kernel's return value, or, isolated, NSX_E_KERNEL_ERROR with k->iso->fault
 * set (a signal, a timeout, an exit, a write outside the outputs, or the
 * deadline), NSX_E_NOMEM, NSX_E_INTERNAL (the fork server failed).
 */
int iso_run(const nsx_kernel *k, iso_call *c, int *r, nsx_err *err);

void iso_end(iso_call *c);

#endif
