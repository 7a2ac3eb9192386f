/*
 * The golden suites (vectors/suites.c): tables of named recipes.
 */
#ifndef NSX_VECTORS_SUITES_H
#define NSX_VECTORS_SUITES_H

#include <stddef.h>

typedef struct nsx_suite_case {
    const char *name;
    const char *recipe;
    const char *description;
} nsx_suite_case;

typedef struct nsx_suite {
    const char *name;
    const nsx_suite_case *cases;
    size_t count;
} nsx_suite;

/* The suite called name, or NULL. */
const nsx_suite *nsx_suite_find(const char *name);
/* The index-th suite (0, 1, ...), or NULL past the last. */
const nsx_suite *nsx_suite_at(int index);

#endif
