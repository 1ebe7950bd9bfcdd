/*
 * inspect.h - `revstream inspect`: the state store of a stopped or running engine, read in a
 * read-only snapshot, printed as JSON or as a table. The metric and SLA queries are the HTTP
 * API's (query.h), summed over every partition the store holds.
 */
#ifndef RS_INSPECT_H
#define RS_INSPECT_H

#include <stdio.h>

#include "cli.h"
#include "config.h"

/* Returns 0, 1 (runtime failure, message on stderr) or 2 (a bad query parameter). */
int rs_inspect_run(const struct rs_config *cfg, const struct rs_cli *cli, FILE *out);

#endif
